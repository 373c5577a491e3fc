//! Organizations (`/orgs/{org}`): the org object, its members and memberships, and its
//! repositories. Orgs are accounts (created through the admin API) whose signing key
//! the cluster secret derives. The org's key creates its repositories and is their
//! Owner; it makes the creating member a repository admin (`SetRole`) and gives every
//! member access through membership (`SetOrgAccess`: admin for org admins, read for
//! members, as GitHub's default base permission). Memberships are replicated account
//! records changed by org admins; each change is signed into every repository of the
//! org, so the fold, not this module, decides what a member may do, at each
//! operation's causal past. Leaving the org ends every role held in its repositories.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::{Payload, Role};
use guts_storage::{AccountError, OrgRecord, OrgRole, Scope, UserRecord};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, FieldError};
use crate::extract::{AuthUser, Authed, JsonBody, MaybeUser};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::routes::repos::{CreateRepo, append_signed, create_owned, list_owned, render};
use crate::routes::users::{account_error, existing_user};
use crate::state::AppState;
use crate::views;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_org))
        .routes(routes!(list_members))
        .routes(routes!(get_membership, set_membership, remove_membership))
        .routes(routes!(list_repos, create_repo))
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
    state
        .accounts
        .org(login)
        .map_err(account_error)?
        .ok_or_else(ApiError::not_found)
}

fn role_of(state: &AppState, org: &OrgRecord, login: &str) -> Result<Option<OrgRole>, ApiError> {
    state
        .accounts
        .membership(&org.login, login)
        .map_err(account_error)
}

/// GitHub's membership object.
fn membership_json(links: &Links, org: &OrgRecord, user: &Value, role: OrgRole) -> Value {
    let login = user["login"].as_str().unwrap_or_default();
    json!({
        "url": links.api(&format!("/orgs/{}/memberships/{login}", org.login)),
        "state": "active",
        "role": match role { OrgRole::Admin => "admin", OrgRole::Member => "member" },
        "organization_url": links.api(&format!("/orgs/{}", org.login)),
        "organization": views::simple_org(links, org),
        "user": user,
    })
}

/// An organization.
#[utoipa::path(get, path = "/api/v3/orgs/{org}", tag = "orgs",
    params(("org" = String, Path, description = "The organization's login")),
    responses((status = 200, description = "The organization", body = schemas::Organization)))]
async fn get_org(
    State(state): State<AppState>,
    links: Links,
    Path(login): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let org = existing_org(&state, &login)?;
    Ok(Json(org_json(&state, &links, &org)))
}

/// GitHub's organization object, with its count of public repositories.
pub(crate) fn org_json(state: &AppState, links: &Links, org: &OrgRecord) -> Value {
    let public = state
        .repos
        .list()
        .iter()
        .filter(|v| v.state.meta.as_ref().is_some_and(|m| !m.private))
        .filter(|v| state.served(v).owner.eq_ignore_ascii_case(&org.login))
        .count();
    views::org(links, org, public)
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
    let org = existing_org(&state, &login)?;
    let members = state.accounts.members(&org.login).map_err(account_error)?;
    let (members, headers) = page.apply(members);
    let mut body = Vec::with_capacity(members.len());
    for m in members {
        if let Some(user) = state.accounts.user(&m.login).map_err(account_error)? {
            body.push(views::simple_user(
                &links,
                &user.login,
                user.id,
                user.site_admin,
            ));
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
) -> Result<Json<Value>, ApiError> {
    let org = existing_org(&state, &login)?;
    let is_self = authed.user.login.eq_ignore_ascii_case(&username);
    if !is_self && role_of(&state, &org, &authed.user.login)?.is_none() {
        return Err(ApiError::not_found());
    }
    let user = existing_user(&state, &username)?;
    let role = role_of(&state, &org, &user.login)?.ok_or_else(ApiError::not_found)?;
    let user = views::simple_user(&links, &user.login, user.id, user.site_admin);
    Ok(Json(membership_json(&links, &org, &user, role)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
struct SetMembership {
    /// `admin` or `member` (default).
    #[serde(default)]
    role: Option<String>,
}

/// 403 unless the caller administers the organization (site admins always do).
fn require_org_admin(state: &AppState, org: &OrgRecord, authed: &Authed) -> Result<(), ApiError> {
    authed.require(Scope::Repo)?;
    if authed.user.site_admin || role_of(state, org, &authed.user.login)? == Some(OrgRole::Admin) {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "You must be an admin of the organization to change memberships",
    ))
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
) -> Result<Json<Value>, ApiError> {
    let org = existing_org(&state, &login)?;
    require_org_admin(&state, &org, &authed)?;
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
    let user = existing_user(&state, &username)?;
    state
        .accounts
        .set_membership(&org.login, &user.login, Some(role))
        .await
        .map_err(account_error)?;
    // The record first, then the repositories: a crash between leaves the member with
    // less access, never more, and repeating the call completes it.
    sign_membership(&state, &org, &user, Some(role)).await?;
    tracing::info!(org = %org.login, member = %user.login, ?role, "membership set");
    let user = views::simple_user(&links, &user.login, user.id, user.site_admin);
    Ok(Json(membership_json(&links, &org, &user, role)))
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
    require_org_admin(&state, &org, &authed)?;
    let Some(role) = role_of(&state, &org, &username)? else {
        return Err(ApiError::not_found());
    };
    let user = existing_user(&state, &username)?;
    if role == OrgRole::Admin {
        let members = state.accounts.members(&org.login).map_err(account_error)?;
        if members.iter().filter(|m| m.role == OrgRole::Admin).count() <= 1 {
            return Err(account_error(AccountError::LastOrgAdmin));
        }
    }
    // The repositories first, then the record: a crash between leaves the member with
    // less access, never more, and repeating the call (the record still says member)
    // completes it.
    sign_membership(&state, &org, &user, None).await?;
    if let Err(e) = state
        .accounts
        .set_membership(&org.login, &user.login, None)
        .await
    {
        // Refused (the last admin stays): give back what was taken.
        sign_membership(&state, &org, &user, Some(role)).await?;
        return Err(account_error(e));
    }
    tracing::info!(org = %org.login, member = %user.login, "membership removed");
    Ok(StatusCode::NO_CONTENT)
}

/// A stored user's public key (unreadable only if the store is corrupt).
fn key_of(user: &UserRecord) -> Result<guts_core::PublicKey, ApiError> {
    user.public_key().map_err(|e| {
        tracing::error!(error = %e, "stored user key unreadable");
        ApiError::internal()
    })
}

/// The role a membership gives in each of the organization's repositories.
fn access_of(role: OrgRole) -> Role {
    match role {
        OrgRole::Admin => Role::Admin,
        OrgRole::Member => Role::Read,
    }
}

/// Signs `user`'s access through membership (`None`: they left) into every repository
/// the organization's key owns, where it differs from what the repository has.
async fn sign_membership(
    state: &AppState,
    org: &OrgRecord,
    user: &UserRecord,
    role: Option<OrgRole>,
) -> Result<(), ApiError> {
    let key = state.accounts.org_signing_key(&org.login);
    let member = key_of(user)?;
    let wanted = role.map(access_of);
    for view in state.repos.list() {
        let owned = view.state.role(&key.public()) == Some(Role::Owner)
            && view
                .state
                .meta
                .as_ref()
                .is_some_and(|m| m.owner.eq_ignore_ascii_case(&org.login));
        if !owned {
            continue;
        }
        let current = view.state.access.org.get(&member).copied();
        let done = match wanted {
            Some(_) => current == wanted,
            // Leaving ends collaborator roles too: done only when none is left.
            None => view.state.role(&member).is_none(),
        };
        if done {
            continue;
        }
        let payload = Payload::SetOrgAccess {
            user: member,
            role: wanted,
        };
        append_signed(state, &view, &key, payload).await?;
    }
    Ok(())
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
    Ok(list_owned(
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
    if role_of(&state, &org, &authed.user.login)?.is_none() {
        return Err(ApiError::forbidden(
            "You must be a member of the organization to create its repositories",
        ));
    }
    let key = state.accounts.org_signing_key(&org.login);
    let mut view = create_owned(&state, &authed, &org.login, body, &key).await?;
    let creator = key_of(&authed.user)?;
    let payload = Payload::SetRole {
        user: creator,
        role: Some(Role::Admin),
    };
    view = append_signed(&state, &view, &key, payload).await?;
    let members = state.accounts.members(&org.login).map_err(account_error)?;
    for member in members {
        let Some(user) = state.accounts.user(&member.login).map_err(account_error)? else {
            continue;
        };
        let user = key_of(&user)?;
        let payload = Payload::SetOrgAccess {
            user,
            role: Some(access_of(member.role)),
        };
        view = append_signed(&state, &view, &key, payload).await?;
    }
    let body = render(&state, &links, &view, Some(&authed));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
