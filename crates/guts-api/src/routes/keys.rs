//! SSH keys (`/user/keys…`, `/users/{username}/keys`) and deploy keys
//! (`/repos/{owner}/{repo}/keys…`). Thin: each handler extracts, calls one use case of
//! `guts_service` (which parses and checks the key, and keeps deploy keys to
//! repository admins, 404 to anyone else as on GitHub), and renders `views::keys`.
//! A key in use anywhere in the cluster is 422 `key is already in use`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_service::{Authed, Caller, RepoAccess};
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::json::Json;
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::OwnerRepo;
use crate::state::AppState;
use crate::views::{DeployKey, Key, KeySimple};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_own, add_own))
        .routes(routes!(get_own, delete_own))
        .routes(routes!(list_public))
        .routes(routes!(list_deploy, add_deploy))
        .routes(routes!(get_deploy, delete_deploy))
}

/// `{key_id}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct KeyId {
    /// The key's id.
    key_id: u64,
}

/// `{owner}/{repo}/{key_id}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoKey {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// The key's id.
    key_id: u64,
}

/// The body of `POST /user/keys`.
#[derive(Debug, Deserialize, ToSchema)]
struct NewKey {
    /// A name for the key.
    #[serde(default)]
    title: Option<String>,
    /// The public key, in OpenSSH format (`ssh-ed25519 AAAA… comment`); required.
    #[serde(default)]
    key: Option<String>,
}

/// The body of `POST /repos/{owner}/{repo}/keys`.
#[derive(Debug, Deserialize, ToSchema)]
struct NewDeployKey {
    /// A name for the key.
    #[serde(default)]
    title: Option<String>,
    /// The public key, in OpenSSH format; required.
    #[serde(default)]
    key: Option<String>,
    /// Whether the key may only read (the default); `false` lets it push.
    #[serde(default)]
    read_only: Option<bool>,
}

/// The caller's SSH keys.
#[utoipa::path(get, operation_id = "users/list-public-ssh-keys-for-authenticated-user",
    path = "/api/v3/user/keys", tag = "users", params(PageParams),
    responses((status = 200, description = "One page of keys", body = Vec<schemas::Key>)))]
async fn list_own(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    AuthUser(who): AuthUser,
) -> Result<Response, ApiError> {
    let keys = state.service.own_ssh_keys(&who)?;
    let (items, headers) = page.apply(keys);
    let body: Vec<_> = items.iter().map(|k| Key::new(&links, k)).collect();
    Ok((headers, Json(body)).into_response())
}

/// Adds an SSH key to the caller's account.
#[utoipa::path(post, operation_id = "users/create-public-ssh-key-for-authenticated-user",
    path = "/api/v3/user/keys", tag = "users", request_body = NewKey,
    responses((status = 201, description = "The new key", body = schemas::Key)))]
async fn add_own(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<Response, ApiError> {
    let key = state
        .service
        .add_own_ssh_key(&who, body.title.as_deref(), body.key.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(Key::new(&links, &key))).into_response())
}

/// One of the caller's SSH keys.
#[utoipa::path(get, operation_id = "users/get-public-ssh-key-for-authenticated-user",
    path = "/api/v3/user/keys/{key_id}", tag = "users", params(KeyId),
    responses((status = 200, description = "The key", body = schemas::Key)))]
async fn get_own(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let key = state.service.own_ssh_key(&who, id)?;
    Ok(Json(Key::new(&links, &key)).into_response())
}

/// Deletes one of the caller's SSH keys, on every node of the cluster.
#[utoipa::path(delete, operation_id = "users/delete-public-ssh-key-for-authenticated-user",
    path = "/api/v3/user/keys/{key_id}", tag = "users", params(KeyId),
    responses((status = 204, description = "Deleted")))]
async fn delete_own(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    state.service.delete_own_ssh_key(&who, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The SSH keys that authenticate as a user; anyone may list them.
#[utoipa::path(get, operation_id = "users/list-public-keys-for-user",
    path = "/api/v3/users/{username}/keys", tag = "users",
    params(("username" = String, Path, description = "The account's login"), PageParams),
    responses((status = 200, description = "One page of keys", body = Vec<schemas::KeySimple>)))]
async fn list_public(
    State(state): State<AppState>,
    page: Page,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    let keys = state.service.public_ssh_keys(&login)?;
    let (items, headers) = page.apply(keys);
    let body: Vec<_> = items.iter().map(KeySimple::new).collect();
    Ok((headers, Json(body)).into_response())
}

/// The repository as the caller may see it.
fn repo(state: &AppState, who: &Authed, owner: &str, name: &str) -> Result<RepoAccess, ApiError> {
    Ok(state.service.repo(Caller::User(who), owner, name)?)
}

fn deploy_view(links: &Links, access: &RepoAccess, key: &guts_service::SshKey) -> DeployKey {
    DeployKey::new(links, &access.served.owner, &access.served.name, key)
}

/// The repository's deploy keys; admins only.
#[utoipa::path(get, operation_id = "repos/list-deploy-keys",
    path = "/api/v3/repos/{owner}/{repo}/keys", tag = "repos", params(OwnerRepo, PageParams),
    responses((status = 200, description = "One page of deploy keys", body = Vec<schemas::DeployKey>)))]
async fn list_deploy(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let access = repo(&state, &who, &owner, &name)?;
    let keys = state.service.deploy_keys(&who, &access)?;
    let (items, headers) = page.apply(keys);
    let body: Vec<_> = items
        .iter()
        .map(|k| deploy_view(&links, &access, k))
        .collect();
    Ok((headers, Json(body)).into_response())
}

/// Adds a deploy key (read-only unless `read_only` is false); admins only.
#[utoipa::path(post, operation_id = "repos/create-deploy-key",
    path = "/api/v3/repos/{owner}/{repo}/keys", tag = "repos", params(OwnerRepo),
    request_body = NewDeployKey,
    responses((status = 201, description = "The new deploy key", body = schemas::DeployKey)))]
async fn add_deploy(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<NewDeployKey>,
) -> Result<Response, ApiError> {
    let access = repo(&state, &who, &owner, &name)?;
    let key = state
        .service
        .add_deploy_key(
            &who,
            &access,
            body.title.as_deref(),
            body.key.as_deref(),
            body.read_only,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(deploy_view(&links, &access, &key)),
    )
        .into_response())
}

/// One deploy key; admins only.
#[utoipa::path(get, operation_id = "repos/get-deploy-key",
    path = "/api/v3/repos/{owner}/{repo}/keys/{key_id}", tag = "repos", params(OwnerRepoKey),
    responses((status = 200, description = "The deploy key", body = schemas::DeployKey)))]
async fn get_deploy(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, id)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let access = repo(&state, &who, &owner, &name)?;
    let key = state.service.deploy_key(&who, &access, id)?;
    Ok(Json(deploy_view(&links, &access, &key)).into_response())
}

/// Deletes a deploy key, on every node of the cluster; admins only.
#[utoipa::path(delete, operation_id = "repos/delete-deploy-key",
    path = "/api/v3/repos/{owner}/{repo}/keys/{key_id}", tag = "repos", params(OwnerRepoKey),
    responses((status = 204, description = "Deleted")))]
async fn delete_deploy(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((owner, name, id)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let access = repo(&state, &who, &owner, &name)?;
    state.service.delete_deploy_key(&who, &access, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
