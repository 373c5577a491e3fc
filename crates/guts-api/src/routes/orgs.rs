//! Organizations (`/orgs/{org}`): the org object, its members and memberships, and its
//! repositories, rendered from the use cases of `guts_service` (whose `orgs` module
//! says how an organization's key owns its repositories and how memberships reach
//! them).

use crate::json::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_storage::{OrgRecord, OrgRole, UserRecord};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, FieldError};
use crate::extract::{AuthUser, JsonBody, MaybeUser};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::CreateRepo;
use crate::state::AppState;
use crate::views::{self, Org, OrgSimple, SimpleUser};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_org))
        .routes(routes!(list_members))
        .routes(routes!(list_public_members))
        .routes(routes!(get_membership, set_membership, remove_membership))
        .routes(routes!(list_repos, create_repo))
        .routes(routes!(check_member))
        .routes(routes!(check_public_member))
        .routes(routes!(my_orgs))
        .routes(routes!(orgs_of_user))
}

/// `{org}/{username}`, the path parameters of the membership routes.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OrgUser {
    /// The organization's login.
    org: String,
    /// The member's login.
    username: String,
}

/// The organization `login`, or GitHub's 404.
pub(crate) fn existing_org(state: &AppState, login: &str) -> Result<OrgRecord, ApiError> {
    Ok(state.service.org(login)?)
}

fn role_of(state: &AppState, org: &OrgRecord, login: &str) -> Result<Option<OrgRole>, ApiError> {
    Ok(state.service.org_role(org, login)?)
}

/// GitHub's membership object: a user's standing in an organization.
#[derive(Debug, Serialize)]
struct Membership {
    url: String,
    /// Always `active`: Guts adds members at once, without invitations.
    state: &'static str,
    /// `admin` or `member`.
    role: &'static str,
    organization_url: String,
    organization: OrgSimple,
    user: SimpleUser,
}

impl Membership {
    fn new(links: &Links, org: &OrgRecord, user: &UserRecord, role: OrgRole) -> Self {
        let organization_url = links.api(&format!("/orgs/{}", org.login));
        Membership {
            url: format!("{organization_url}/memberships/{}", user.login),
            state: "active",
            role: match role {
                OrgRole::Admin => "admin",
                OrgRole::Member => "member",
            },
            organization_url,
            organization: OrgSimple::new(links, org),
            user: SimpleUser::of(links, user),
        }
    }
}

/// An organization.
#[utoipa::path(get, path = "/api/v3/orgs/{org}", tag = "orgs",
    params(("org" = String, Path, description = "The organization's login")),
    responses((status = 200, description = "The organization", body = schemas::Organization)))]
async fn get_org(
    State(state): State<AppState>,
    links: Links,
    Path(login): Path<String>,
) -> Result<Json<Org>, ApiError> {
    let org = existing_org(&state, &login)?;
    Ok(Json(views::org_json(&state, &links, &org)))
}

/// The organization's members (Guts has no concealed memberships: all are public).
#[utoipa::path(get, path = "/api/v3/orgs/{org}/members", tag = "orgs",
    params(("org" = String, Path, description = "The organization's login"), PageParams),
    responses((status = 200, description = "One page of members", body = Vec<schemas::SimpleUser>)))]
async fn list_members(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    members_page(&state, &links, &page, &login)
}

/// The organization's public members: all of them (see `list_members`).
#[utoipa::path(get, operation_id = "orgs/list-public-members", path = "/api/v3/orgs/{org}/public_members", tag = "orgs",
    params(("org" = String, Path, description = "The organization's login"), PageParams),
    responses((status = 200, description = "One page of members", body = Vec<schemas::SimpleUser>)))]
async fn list_public_members(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    members_page(&state, &links, &page, &login)
}

fn members_page(
    state: &AppState,
    links: &Links,
    page: &Page,
    login: &str,
) -> Result<Response, ApiError> {
    let org = existing_org(state, login)?;
    let members = state.accounts.members(&org.login).map_err(ApiError::from)?;
    let (members, headers) = page.apply(members);
    let mut body = Vec::with_capacity(members.len());
    for m in members {
        if let Some(user) = state.accounts.user(&m.login).map_err(ApiError::from)? {
            body.push(SimpleUser::of(links, &user));
        }
    }
    Ok((headers, Json(body)).into_response())
}

/// A user's membership; visible to the user and to the org's members (404 otherwise,
/// as GitHub hides memberships from outsiders).
#[utoipa::path(get, path = "/api/v3/orgs/{org}/memberships/{username}", tag = "orgs",
    params(OrgUser),
    responses((status = 200, description = "The membership", body = schemas::OrgMembership)))]
async fn get_membership(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path((login, username)): Path<(String, String)>,
) -> Result<Json<Membership>, ApiError> {
    let org = existing_org(&state, &login)?;
    let is_self = authed.user.login.eq_ignore_ascii_case(&username);
    if !is_self && role_of(&state, &org, &authed.user.login)?.is_none() {
        return Err(ApiError::not_found());
    }
    let user = state.service.user(&username)?;
    let role = role_of(&state, &org, &user.login)?.ok_or_else(ApiError::not_found)?;
    Ok(Json(Membership::new(&links, &org, &user, role)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
struct SetMembership {
    /// `admin` or `member` (default).
    #[serde(default)]
    role: Option<String>,
}

/// Adds a member or changes their role (org admins only). Guts adds at once; GitHub
/// would send an invitation.
#[utoipa::path(put, path = "/api/v3/orgs/{org}/memberships/{username}", tag = "orgs",
    params(OrgUser), request_body = SetMembership,
    responses((status = 200, description = "The membership", body = schemas::OrgMembership)))]
async fn set_membership(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path((login, username)): Path<(String, String)>,
    JsonBody(body): JsonBody<SetMembership>,
) -> Result<Json<Membership>, ApiError> {
    let org = existing_org(&state, &login)?;
    let role = match body.role.as_deref().unwrap_or("member") {
        "admin" => OrgRole::Admin,
        "member" => OrgRole::Member,
        _ => {
            return Err(ApiError::validation(FieldError {
                resource: "Membership".into(),
                field: "role".into(),
                code: "invalid".into(),
                message: Some("role must be admin or member".to_string()),
            }));
        }
    };
    let user = state.service.user(&username)?;
    state
        .service
        .set_membership(&authed, &org, &user, role)
        .await?;
    Ok(Json(Membership::new(&links, &org, &user, role)))
}

/// Removes a member (org admins only; the last admin stays).
#[utoipa::path(delete, path = "/api/v3/orgs/{org}/memberships/{username}", tag = "orgs",
    params(OrgUser),
    responses((status = 204, description = "Removed")))]
async fn remove_membership(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    Path((login, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = existing_org(&state, &login)?;
    state
        .service
        .remove_membership(&authed, &org, &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organization's repositories that the caller may see.
#[utoipa::path(get, path = "/api/v3/orgs/{org}/repos", tag = "orgs",
    params(("org" = String, Path, description = "The organization's login"), PageParams),
    responses((status = 200, description = "One page of repositories", body = Vec<schemas::Repository>)))]
async fn list_repos(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    let org = existing_org(&state, &login)?;
    Ok(views::owned_repositories(
        &state,
        &links,
        &page,
        caller.as_ref(),
        &org.login,
    ))
}

/// Creates a repository owned by the organization (members only). The org's key signs
/// `CreateRepo` (the org is its Owner), makes the creating member a repository admin
/// and gives each member their access through membership.
#[utoipa::path(post, path = "/api/v3/orgs/{org}/repos", tag = "orgs",
    params(("org" = String, Path, description = "The organization's login")),
    request_body = CreateRepo,
    responses((status = 201, description = "The new repository", body = schemas::Repository)))]
async fn create_repo(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path(login): Path<String>,
    JsonBody(body): JsonBody<CreateRepo>,
) -> Result<Response, ApiError> {
    let org = existing_org(&state, &login)?;
    let view = state
        .service
        .create_org_repo(&authed, &org, body.into())
        .await?;
    let body = views::repository(&state, &links, &view, Some(&authed));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Whether `username` is a member: 204 if so, 404 if not, to the organization's
/// members. Anyone else is sent, as GitHub does, to the public membership check with
/// a 302; every membership in Guts is public, so the answer there is the same.
#[utoipa::path(get, operation_id = "orgs/check-membership-for-user", path = "/api/v3/orgs/{org}/members/{username}", tag = "orgs",
    params(OrgUser),
    responses((status = 204, description = "A member"),
        (status = 302, description = "The requester is not a member: see the public membership",
            headers(("Location" = String, description = "The public membership check")))))]
async fn check_member(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((login, username)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let org = existing_org(&state, &login)?;
    let asker_is_member = match &caller {
        Some(authed) => role_of(&state, &org, &authed.user.login)?.is_some(),
        None => false,
    };
    if !asker_is_member {
        let location = links.api(&format!("/orgs/{}/public_members/{username}", org.login));
        let mut response = StatusCode::FOUND.into_response();
        let value = http::HeaderValue::from_str(&location).map_err(|_| ApiError::not_found())?;
        response.headers_mut().insert(http::header::LOCATION, value);
        return Ok(response);
    }
    member_status(&state, &org, &username)
}

/// Whether `username` is a public member (every member is, in Guts): 204 or 404.
#[utoipa::path(get, operation_id = "orgs/check-public-membership-for-user", path = "/api/v3/orgs/{org}/public_members/{username}", tag = "orgs",
    params(OrgUser),
    responses((status = 204, description = "A public member")))]
async fn check_public_member(
    State(state): State<AppState>,
    Path((login, username)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let org = existing_org(&state, &login)?;
    member_status(&state, &org, &username)
}

fn member_status(state: &AppState, org: &OrgRecord, username: &str) -> Result<Response, ApiError> {
    match role_of(state, org, username)? {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(ApiError::not_found()),
    }
}

/// The organizations the caller belongs to.
#[utoipa::path(get, operation_id = "orgs/list-for-authenticated-user", path = "/api/v3/user/orgs", tag = "orgs",
    params(PageParams),
    responses((status = 200, description = "One page of organizations", body = Vec<serde_json::Value>)))]
async fn my_orgs(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    AuthUser(authed): AuthUser,
) -> Result<Response, ApiError> {
    org_list(&state, &links, &page, &authed.user.login)
}

/// The organizations a user belongs to (every membership is public in Guts).
#[utoipa::path(get, operation_id = "orgs/list-for-user", path = "/api/v3/users/{username}/orgs", tag = "orgs",
    params(("username" = String, Path, description = "The user's login"), PageParams),
    responses((status = 200, description = "One page of organizations", body = Vec<serde_json::Value>)))]
async fn orgs_of_user(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    // An organization's login answers too, as on GitHub: it belongs to none.
    if state
        .accounts
        .org(&username)
        .map_err(ApiError::from)?
        .is_some()
    {
        return Ok(Json(Vec::<OrgSimple>::new()).into_response());
    }
    let user = state.service.user(&username)?;
    org_list(&state, &links, &page, &user.login)
}

fn org_list(
    state: &AppState,
    links: &Links,
    page: &Page,
    login: &str,
) -> Result<Response, ApiError> {
    let orgs = state.service.orgs_of(login)?;
    let (orgs, headers) = page.apply(orgs);
    let body: Vec<OrgSimple> = orgs.iter().map(|o| OrgSimple::new(links, o)).collect();
    Ok((headers, Json(body)).into_response())
}
