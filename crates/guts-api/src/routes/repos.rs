//! Repositories: create (`POST /user/repos`), get, delete, and the lists
//! `GET /user/repos` and `GET /users/{username}/repos`. Every change is a signed
//! operation by the acting user; the fold, not this module, decides permissions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::{Keypair, Payload, Rejection, Role};
use guts_storage::{OrgRole, RepoError, RepoView, Scope};
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::caps;
use crate::error::{ApiError, FieldError};
use crate::extract::{AuthUser, Authed, JsonBody, MaybeUser};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::routes::users::{account_error, existing_user, missing};
use crate::state::AppState;
use crate::views;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mine, create))
        .routes(routes!(list_for_user))
        .routes(routes!(get_repo, delete_repo))
}

/// `{owner}/{repo}`, the path parameters of every repository route.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
pub(crate) struct OwnerRepo {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name (a trailing `.git` is ignored).
    repo: String,
}

/// The caller's role in a repository; site admins read everything.
fn role_of(view: &RepoView, caller: Option<&Authed>) -> Option<Role> {
    let authed = caller?;
    let key = authed.user.public_key().ok()?;
    view.state.role(&key)
}

/// Private repositories are invisible (404, as on GitHub) to whoever has no role.
fn visible(view: &RepoView, caller: Option<&Authed>) -> bool {
    let private = view.state.meta.as_ref().is_none_or(|m| m.private);
    !private || role_of(view, caller).is_some() || caller.is_some_and(|a| a.user.site_admin)
}

pub(crate) fn render(
    state: &AppState,
    links: &Links,
    view: &RepoView,
    caller: Option<&Authed>,
) -> serde_json::Value {
    let Some(meta) = &view.state.meta else {
        return serde_json::Value::Null;
    };
    let served = state.served(view);
    // A repository whose author does not hold its login here (another cluster's) is
    // owned by its author, never by the local account of that login.
    let owner = if served.is_bound(meta) {
        let account = state.accounts.user(&meta.owner).ok().flatten();
        match (&account, state.accounts.org(&meta.owner).ok().flatten()) {
            (None, Some(org)) => views::simple_org(links, &org),
            _ => views::owner(links, &meta.owner, account.as_ref(), &meta.created_by),
        }
    } else {
        views::owner(links, &served.owner, None, &meta.created_by)
    };
    views::repo(
        links,
        view,
        &served,
        owner,
        caller.map(|c| role_of(view, Some(c))),
    )
}

pub(crate) fn find_visible(
    state: &AppState,
    owner: &str,
    name: &str,
    caller: Option<&Authed>,
) -> Result<Arc<RepoView>, ApiError> {
    let name = name.strip_suffix(".git").unwrap_or(name);
    state
        .repos
        .find(owner, name)
        .filter(|v| visible(v, caller))
        .ok_or_else(ApiError::not_found)
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CreateRepo {
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    /// `public` or `private` (overrides `private` when `private`).
    #[serde(default)]
    visibility: Option<String>,
    /// Short branch name; `main` when absent.
    #[serde(default)]
    default_branch: Option<String>,
}

/// Creates a repository owned by the caller, who signs its `CreateRepo` operation.
#[utoipa::path(post, path = "/api/v3/user/repos", tag = "repos",
    request_body = CreateRepo,
    responses((status = 201, description = "The new repository", body = schemas::Repository)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    JsonBody(body): JsonBody<CreateRepo>,
) -> Result<Response, ApiError> {
    let key = state
        .accounts
        .signing_key(&authed.user)
        .map_err(account_error)?;
    let view = create_owned(&state, &authed, &authed.user.login, body, &key).await?;
    let body = render(&state, &links, &view, Some(&authed));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Creates repository `owner/{body.name}`, its `CreateRepo` signed by `key` (which
/// becomes its Owner in the fold): the caller's for their own repository, the
/// organization's for an organization's.
pub(crate) async fn create_owned(
    state: &AppState,
    authed: &Authed,
    owner: &str,
    body: CreateRepo,
    key: &Keypair,
) -> Result<Arc<RepoView>, ApiError> {
    authed.require(Scope::Repo)?;
    let name = body.name.ok_or_else(|| missing("Repository", "name"))?;
    let private = body.private.unwrap_or(false) || body.visibility.as_deref() == Some("private");
    let description = body.description.unwrap_or_default();
    if description.len() > 4096 {
        return Err(invalid(
            "description",
            "is too long (maximum is 4096 characters)",
        ));
    }
    let branch = body.default_branch.unwrap_or_else(|| "main".to_string());
    tracing::Span::current().record("repo", format!("{owner}/{name}"));
    state
        .repos
        .create(key, owner, &name, &description, private, &branch)
        .await
        .map_err(|e| match e {
            RepoError::NameTaken => ApiError::validation(FieldError {
                resource: "Repository".into(),
                field: "name".into(),
                code: "custom".into(),
                message: Some("name already exists on this account".to_string()),
            })
            .with_message("Repository creation failed."),
            other => repo_error(other),
        })
}

fn invalid(field: &'static str, message: &str) -> ApiError {
    ApiError::validation(FieldError {
        resource: "Repository".into(),
        field: field.into(),
        code: "invalid".into(),
        message: Some(message.to_string()),
    })
}

/// Signs `payload` as the caller and appends it to the repository's log. The token
/// must carry the `repo` scope; the fold decides whether the caller may do it.
pub(crate) async fn append_as(
    state: &AppState,
    authed: &Authed,
    view: &RepoView,
    payload: Payload,
) -> Result<Arc<RepoView>, ApiError> {
    authed.require(Scope::Repo)?;
    let key = state
        .accounts
        .signing_key(&authed.user)
        .map_err(account_error)?;
    append_signed(state, view, &key, payload).await
}

/// Signs `payload` with `key` and appends it to the repository's log.
pub(crate) async fn append_signed(
    state: &AppState,
    view: &RepoView,
    key: &Keypair,
    payload: Payload,
) -> Result<Arc<RepoView>, ApiError> {
    let resource = caps::resource_of(&payload);
    state
        .repos
        .append(view.id, key, payload)
        .await
        .map_err(|e| match e {
            RepoError::Encode(e) => caps::encode_error(resource, &e),
            other => repo_error(other),
        })
}

/// The organization's key if the repository is an organization's (its key is the
/// Owner) and the caller administers that organization: org admins administer every
/// repository of their organization, as on GitHub, including what only its owner may
/// do (delete it, change an admin's role).
pub(crate) fn org_key_for_admin(
    state: &AppState,
    authed: &Authed,
    view: &RepoView,
) -> Result<Option<Keypair>, ApiError> {
    let Some(meta) = &view.state.meta else {
        return Ok(None);
    };
    let Some(org) = state.accounts.org(&meta.owner).map_err(account_error)? else {
        return Ok(None);
    };
    let key = state.accounts.org_signing_key(&org.login);
    if view.state.role(&key.public()) != Some(Role::Owner) {
        // Created by a member before organizations had keys: that member owns it.
        return Ok(None);
    }
    let role = state
        .accounts
        .membership(&org.login, &authed.user.login)
        .map_err(account_error)?;
    Ok((role == Some(OrgRole::Admin)).then_some(key))
}

/// [`append_as`], but signed as the organization when the caller administers the
/// organization that owns the repository (see [`org_key_for_admin`]), for changes that
/// may need the owner's authority.
pub(crate) async fn append_administering(
    state: &AppState,
    authed: &Authed,
    view: &RepoView,
    payload: Payload,
) -> Result<Arc<RepoView>, ApiError> {
    authed.require(Scope::Repo)?;
    match org_key_for_admin(state, authed, view)? {
        Some(key) => append_signed(state, view, &key, payload).await,
        None => append_as(state, authed, view, payload).await,
    }
}

pub(crate) fn repo_error(e: RepoError) -> ApiError {
    match e {
        RepoError::InvalidName(reason) => invalid("name", &reason.to_string()),
        RepoError::InvalidBranch(reason) => invalid("default_branch", &reason.to_string()),
        RepoError::NameTaken => {
            ApiError::new(StatusCode::CONFLICT, "name already exists on this account")
        }
        RepoError::NotFound => ApiError::not_found(),
        RepoError::NameNotHeld(login) => ApiError::forbidden(format!(
            "You do not have permission to create repositories under {login}."
        )),
        RepoError::Moved(what) => ApiError::new(StatusCode::CONFLICT, what),
        RepoError::Invalid(what) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, what),
        RepoError::Rejected(Rejection::NotPermitted { .. }) => {
            ApiError::forbidden("Must have admin rights to Repository.")
        }
        RepoError::Rejected(Rejection::AdminRequiresOwner | Rejection::OwnerImmutable) => {
            ApiError::forbidden(
                "Only the repository's owner (or its organization's admins) may change the role of an admin or the owner.",
            )
        }
        RepoError::Rejected(other) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string())
        }
        RepoError::Encode(e) => caps::encode_error("Repository", &e),
        e @ RepoError::Store(_) => {
            tracing::error!(error = %e, "repository storage failed");
            ApiError::internal()
        }
    }
}

/// A repository the caller may see (private ones are 404 to outsiders).
#[utoipa::path(get, path = "/api/v3/repos/{owner}/{repo}", tag = "repos",
    params(OwnerRepo),
    responses((status = 200, description = "The repository", body = schemas::Repository)))]
async fn get_repo(
    State(state): State<AppState>,
    links: Links,
    MaybeUser(caller): MaybeUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    tracing::Span::current().record("repo", format!("{owner}/{name}"));
    let view = find_visible(&state, &owner, &name, caller.as_ref())?;
    Ok(Json(render(&state, &links, &view, caller.as_ref())))
}

/// Deletes a repository (a signed `DeleteRepo`; the fold requires the owner: the user
/// who created it, or for an organization's repository, an admin of the organization).
#[utoipa::path(delete, path = "/api/v3/repos/{owner}/{repo}", tag = "repos",
    params(OwnerRepo),
    responses((status = 204, description = "Deleted")))]
async fn delete_repo(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tracing::Span::current().record("repo", format!("{owner}/{name}"));
    let view = find_visible(&state, &owner, &name, Some(&authed))?;
    append_administering(&state, &authed, &view, Payload::DeleteRepo).await?;
    tracing::info!(repo = %format!("{owner}/{name}"), by = %authed.user.login, "repository deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Repositories the caller has a role in (GitHub: owner, collaborator, member).
#[utoipa::path(get, path = "/api/v3/user/repos", tag = "repos",
    params(PageParams),
    responses((status = 200, description = "One page of repositories", body = Vec<schemas::Repository>)))]
async fn list_mine(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    AuthUser(authed): AuthUser,
) -> Response {
    let mine: Vec<Arc<RepoView>> = state
        .repos
        .list()
        .into_iter()
        .filter(|v| role_of(v, Some(&authed)).is_some())
        .collect();
    let (items, headers) = page.apply(mine);
    let body: Vec<_> = items
        .iter()
        .map(|v| render(&state, &links, v, Some(&authed)))
        .collect();
    (headers, Json(body)).into_response()
}

/// A user's repositories that the caller may see.
#[utoipa::path(get, path = "/api/v3/users/{username}/repos", tag = "repos",
    params(("username" = String, Path, description = "The owner's login"), PageParams),
    responses((status = 200, description = "One page of repositories", body = Vec<schemas::Repository>)))]
async fn list_for_user(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    MaybeUser(caller): MaybeUser,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    if state.accounts.org(&login).map_err(account_error)?.is_none() {
        existing_user(&state, &login)?;
    }
    Ok(list_owned(&state, &links, &page, caller.as_ref(), &login))
}

/// One page of the repositories owned by `owner` (a user or an organization) that the
/// caller may see.
pub(crate) fn list_owned(
    state: &AppState,
    links: &Links,
    page: &Page,
    caller: Option<&Authed>,
    owner: &str,
) -> Response {
    let theirs: Vec<Arc<RepoView>> = state
        .repos
        .list()
        .into_iter()
        .filter(|v| state.served(v).owner.eq_ignore_ascii_case(owner))
        .filter(|v| visible(v, caller))
        .collect();
    let (items, headers) = page.apply(theirs);
    let body: Vec<_> = items
        .iter()
        .map(|v| render(state, links, v, caller))
        .collect();
    (headers, Json(body)).into_response()
}
