//! Collaborators (`/repos/{owner}/{repo}/collaborators/{username}`): GitHub's
//! permission names mapped onto the fold's roles (`pull`/`triage` → read,
//! `push`/`maintain` → write, `admin` → admin). Changes are signed `SetRole`
//! operations by the caller (by the organization when an admin of the organization
//! that owns the repository makes them); the fold decides whether they may be made.
//! A member's access through their organization is not a collaborator role: it is
//! the organization's to change (`routes::orgs`), and removing such a member as a
//! collaborator leaves it.

use crate::json::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use guts_core::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, VisibleRepo};
use crate::links::Links;
use crate::openapi::schemas;
use crate::state::AppState;
use crate::views::Collaborator;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(check, add, remove))
        .routes(routes!(permission))
}

/// `{owner}/{repo}/{username}`, the path parameters of the collaborator routes.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoUser {
    owner: String,
    repo: String,
    /// The collaborator's login.
    username: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
struct AddCollaborator {
    #[serde(default)]
    permission: Option<String>,
}

fn permission_name(role: Option<Role>) -> &'static str {
    match role {
        None => "none",
        Some(Role::Read) => "read",
        Some(Role::Write) => "write",
        Some(Role::Admin | Role::Owner) => "admin",
    }
}

/// Adds a collaborator at once (a signed `SetRole`), or changes their permission.
#[utoipa::path(put, path = "/api/v3/repos/{owner}/{repo}/collaborators/{username}",
    tag = "collaborators", params(OwnerRepoUser),
    request_body(content = Option<AddCollaborator>, description = "Optional; `permission` defaults to `push`"),
    responses(
        (status = 204, description = "Added at once (Guts has no invitations), or permission updated"),
    ))]
async fn add(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, username)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    // The body is optional (GitHub defaults to `push`).
    let body: AddCollaborator = if body.iter().all(u8::is_ascii_whitespace) {
        AddCollaborator::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request("Problems parsing JSON"))?
    };
    let permission = body.permission.unwrap_or_else(|| "push".to_owned());
    state
        .service
        .set_collaborator(&authed, &view, &username, Some(&permission))
        .await?;
    // GitHub answers 201 with an invitation for a new collaborator, 204 when nothing
    // waits for an acceptance; Guts adds them at once, so always the latter.
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a collaborator (a signed `SetRole` with no role).
#[utoipa::path(delete, path = "/api/v3/repos/{owner}/{repo}/collaborators/{username}",
    tag = "collaborators", params(OwnerRepoUser),
    responses((status = 204, description = "Removed")))]
async fn remove(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, username)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .set_collaborator(&authed, &view, &username, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// 204 if the user has a role in the repository, else 404.
/// `?affiliation=` of the collaborator list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `all` (default), `direct` (granted on the repository) or `outside` (direct,
    /// and not members of the organization that owns it).
    affiliation: Option<String>,
    /// Only those with at least this permission: `pull`, `triage`, `push`,
    /// `maintain` or `admin`.
    permission: Option<String>,
}

/// Everyone with a role in the repository, with their permissions: collaborators,
/// the organization's members through it, and the owner, as GitHub lists them.
#[utoipa::path(get, operation_id = "repos/list-collaborators", path = "/api/v3/repos/{owner}/{repo}/collaborators",
    tag = "collaborators", params(crate::params::OwnerRepo, ListQuery, crate::pagination::PageParams),
    responses((status = 200, description = "One page of collaborators", body = Vec<schemas::Collaborator>)))]
async fn list(
    State(state): State<AppState>,
    links: Links,
    page: crate::pagination::Page,
    VisibleRepo { view, .. }: VisibleRepo,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let at_least = match query.permission.as_deref() {
        None => Role::Read,
        Some(p) => guts_service::role_for(p).ok_or_else(|| {
            ApiError::invalid_field(
                "Collaborator",
                "permission",
                "must be pull, triage, push, maintain or admin",
            )
        })?,
    };
    let access = &view.state.access;
    let keep: fn(&guts_core::Access, &guts_core::PublicKey) -> bool =
        match query.affiliation.as_deref().unwrap_or("all") {
            "all" => |_, _| true,
            "direct" => |a, k| a.collaborators.contains_key(k),
            "outside" => |a, k| a.collaborators.contains_key(k) && !a.org.contains_key(k),
            _ => {
                return Err(ApiError::invalid_field(
                    "Collaborator",
                    "affiliation",
                    "must be all, direct or outside",
                ));
            }
        };
    let members: Vec<_> = state
        .service
        .members(&view, at_least)
        .into_iter()
        .filter(|(user, _)| user.public_key().is_ok_and(|k| keep(access, &k)))
        .collect();
    let (items, headers) = page.apply(members);
    let body: Vec<Collaborator> = items
        .iter()
        .map(|(user, role)| {
            Collaborator::new(&links, user, Some(*role), permission_name(Some(*role)))
        })
        .collect();
    Ok((headers, Json(body)).into_response())
}

#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/collaborators/{username}",
    tag = "collaborators", params(OwnerRepoUser),
    responses((status = 204, description = "A collaborator")))]
async fn check(
    State(state): State<AppState>,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, username)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = state.service.user(&username)?;
    let key = user.public_key().map_err(|_| ApiError::internal())?;
    match view.state.role(&key) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found()),
    }
}

/// The user's permission in the repository (`none` without a role).
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}/collaborators/{username}/permission",
    tag = "collaborators", params(OwnerRepoUser),
    responses((status = 200, description = "The permission", body = schemas::CollaboratorPermission)))]
async fn permission(
    State(state): State<AppState>,
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, username)): Path<(String, String, String)>,
) -> Result<Json<CollaboratorPermission>, ApiError> {
    let user = state.service.user(&username)?;
    let key = user.public_key().map_err(|_| ApiError::internal())?;
    let role = view.state.role(&key);
    Ok(Json(CollaboratorPermission {
        permission: permission_name(role),
        role_name: permission_name(role),
        user: Collaborator::new(&links, &user, role, permission_name(role)),
    }))
}

/// A user's permission in a repository, by GitHub's name for it.
#[derive(Debug, Serialize)]
struct CollaboratorPermission {
    /// `admin`, `write`, `read` or `none`.
    permission: &'static str,
    role_name: &'static str,
    user: Collaborator,
}
