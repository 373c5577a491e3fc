//! Repository webhooks (`/repos/{owner}/{repo}/hooks…`): managing hooks, pinging and
//! testing them, and their delivery log. Thin: each handler extracts, calls one use
//! case of `guts_service` (admin only; one signed `SetHook` per change), and renders
//! with `crate::webhooks`' views. Delivery itself is `crate::webhooks`' task.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_service::{Caller, Requested};
use http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::json::Json;
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{ConfigBody, HookBody, OwnerRepo};
use crate::state::AppState;
use crate::webhooks::{delivery_full, delivery_item, hook_view};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(get_config, update_config))
        .routes(routes!(ping))
        .routes(routes!(test))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(redeliver))
}

/// `{owner}/{repo}/{hook_id}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoHook {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// The hook's id.
    hook_id: u64,
}

/// `{owner}/{repo}/{hook_id}/{delivery_id}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoHookDelivery {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// The hook's id.
    hook_id: u64,
    /// The delivery's id.
    delivery_id: u64,
}

/// The hook as the response of a write.
fn render_hook(
    state: &AppState,
    links: &Links,
    owner: &str,
    name: &str,
    who: &guts_service::Authed,
    status: StatusCode,
    id: &guts_core::OpId,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(who), owner, name)?;
    let view = hook_view(state, links, &access.view, id).ok_or_else(ApiError::not_found)?;
    Ok((status, Json(view)).into_response())
}

/// The repository's hooks; admins only.
#[utoipa::path(get, operation_id = "repos/list-webhooks", path = "/api/v3/repos/{owner}/{repo}/hooks", tag = "repos",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "One page of hooks", body = Vec<schemas::Hook>)))]
async fn list(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let hooks = state.service.hooks(&who, &access)?;
    let (items, headers) = page.apply(hooks);
    let body: Vec<_> = items
        .iter()
        .filter_map(|(id, _)| hook_view(&state, &links, &access.view, id))
        .collect();
    Ok((headers, Json(body)).into_response())
}

/// Creates a hook; a `ping` is sent to it.
#[utoipa::path(post, operation_id = "repos/create-webhook", path = "/api/v3/repos/{owner}/{repo}/hooks", tag = "repos",
    params(OwnerRepo),
    request_body = HookBody,
    responses((status = 201, description = "The new hook", body = schemas::Hook)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<HookBody>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let input = body.input()?;
    let (_, id) = state.service.create_hook(&who, &access, input).await?;
    render_hook(
        &state,
        &links,
        &owner,
        &name,
        &who,
        StatusCode::CREATED,
        &id,
    )
}

/// One hook.
#[utoipa::path(get, operation_id = "repos/get-webhook", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}", tag = "repos",
    params(OwnerRepoHook),
    responses((status = 200, description = "The hook", body = schemas::Hook)))]
async fn get_one(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let (id, _) = state.service.hook(&who, &access, number)?;
    render_hook(&state, &links, &owner, &name, &who, StatusCode::OK, &id)
}

/// Changes a hook (`config` replaces the configuration's given fields).
#[utoipa::path(patch, operation_id = "repos/update-webhook", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}", tag = "repos",
    params(OwnerRepoHook),
    request_body = HookBody,
    responses((status = 200, description = "The hook", body = schemas::Hook)))]
async fn update(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, number)): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<HookBody>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let input = body.input()?;
    let (_, id) = state
        .service
        .update_hook(&who, &access, number, input)
        .await?;
    render_hook(&state, &links, &owner, &name, &who, StatusCode::OK, &id)
}

/// Deletes a hook.
#[utoipa::path(delete, operation_id = "repos/delete-webhook", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}", tag = "repos",
    params(OwnerRepoHook),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    state.service.delete_hook(&who, &access, number).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A hook's configuration.
#[utoipa::path(get, operation_id = "repos/get-webhook-config-for-repo", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}/config", tag = "repos",
    params(OwnerRepoHook),
    responses((status = 200, description = "The configuration", body = schemas::HookConfig)))]
async fn get_config(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let (id, _) = state.service.hook(&who, &access, number)?;
    let view = hook_view(&state, &links, &access.view, &id).ok_or_else(ApiError::not_found)?;
    Ok(Json(view.config).into_response())
}

/// Changes a hook's configuration.
#[utoipa::path(patch, operation_id = "repos/update-webhook-config-for-repo", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}/config", tag = "repos",
    params(OwnerRepoHook),
    request_body = ConfigBody,
    responses((status = 200, description = "The configuration", body = schemas::HookConfig)))]
async fn update_config(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((owner, name, number)): Path<(String, String, u64)>,
    JsonBody(config): JsonBody<ConfigBody>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let input = HookBody::config_only(config).input()?;
    let (view, id) = state
        .service
        .update_hook(&who, &access, number, input)
        .await?;
    let hook = hook_view(&state, &links, &view, &id).ok_or_else(ApiError::not_found)?;
    Ok(Json(hook.config).into_response())
}

/// Sends a `ping` to the hook.
#[utoipa::path(post, operation_id = "repos/ping-webhook", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}/pings", tag = "repos",
    params(OwnerRepoHook),
    responses((status = 204, description = "Queued")))]
async fn ping(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    state
        .service
        .request_hook_event(&who, &access, number, Requested::Ping)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sends the latest push to the default branch to the hook, as a `push` event.
#[utoipa::path(post, operation_id = "repos/test-push-webhook", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}/tests", tag = "repos",
    params(OwnerRepoHook),
    responses((status = 204, description = "Queued")))]
async fn test(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    state
        .service
        .request_hook_event(&who, &access, number, Requested::Test)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The delivery attempts this node made for the hook, newest first.
#[utoipa::path(get, operation_id = "repos/list-webhook-deliveries", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}/deliveries", tag = "repos",
    params(OwnerRepoHook, PageParams),
    responses((status = 200, description = "One page of deliveries", body = Vec<schemas::HookDeliveryItem>)))]
async fn deliveries(
    State(state): State<AppState>,
    page: Page,
    AuthUser(who): AuthUser,
    Path((owner, name, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let skip = (page.page - 1).saturating_mul(page.per_page);
    let found = state
        .service
        .hook_deliveries(&who, &access, number, skip, page.per_page)?;
    let body: Vec<_> = found.iter().map(delivery_item).collect();
    Ok(Json(body).into_response())
}

/// One delivery attempt, with its request and response.
#[utoipa::path(get, operation_id = "repos/get-webhook-delivery", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}", tag = "repos",
    params(OwnerRepoHookDelivery),
    responses((status = 200, description = "The delivery", body = schemas::HookDelivery)))]
async fn delivery(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((owner, name, number, id)): Path<(String, String, u64, u64)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    let (hook, _) = state.service.hook(&who, &access, number)?;
    let found = state.service.hook_delivery(&who, &access, number, id)?;
    let url = access
        .view
        .state
        .hooks
        .hooks
        .get(&hook)
        .map(|h| h.config.url.clone())
        .unwrap_or_default();
    Ok(Json(delivery_full(&found, url)).into_response())
}

/// Sends a delivery's event again (same payload, same `X-GitHub-Delivery`).
#[utoipa::path(post, operation_id = "repos/redeliver-webhook-delivery", path = "/api/v3/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", tag = "repos",
    params(OwnerRepoHookDelivery),
    responses((status = 202, description = "Queued", body = schemas::Accepted)))]
async fn redeliver(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((owner, name, number, id)): Path<(String, String, u64, u64)>,
) -> Result<Response, ApiError> {
    let access = state.service.repo(Caller::User(&who), &owner, &name)?;
    state.service.redeliver(&who, &access, number, id).await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({}))).into_response())
}
