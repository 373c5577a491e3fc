//! Organization webhooks (`/orgs/{org}/hooks…`): managing them, pinging them and their
//! delivery log. Thin, as `routes::hooks` is: extract, call one use case of
//! `guts_service` (organization admins only), render with `crate::webhooks`' views. An
//! organization's hooks hear every event of every repository it owns.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_storage::OrgRecord;
use http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{AuthUser, JsonBody};
use crate::json::Json;
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{ConfigBody, HookBody};
use crate::state::AppState;
use crate::webhooks::{delivery_full, delivery_item, org_hook_view};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(get_config, update_config))
        .routes(routes!(ping))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(redeliver))
}

/// `{org}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct Org {
    /// The organization's login.
    org: String,
}

/// `{org}/{hook_id}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OrgHookParams {
    /// The organization's login.
    org: String,
    /// The hook's id.
    hook_id: u64,
}

/// `{org}/{hook_id}/{delivery_id}`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OrgHookDelivery {
    /// The organization's login.
    org: String,
    /// The hook's id.
    hook_id: u64,
    /// The delivery's id.
    delivery_id: u64,
}

fn org(state: &AppState, login: &str) -> Result<OrgRecord, ApiError> {
    Ok(state.service.org(login)?)
}

/// The organization's hooks; its admins only.
#[utoipa::path(get, operation_id = "orgs/list-webhooks", path = "/api/v3/orgs/{org}/hooks", tag = "orgs",
    params(Org, PageParams),
    responses((status = 200, description = "One page of hooks", body = Vec<schemas::Hook>)))]
async fn list(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    AuthUser(who): AuthUser,
    Path(login): Path<String>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    let hooks = state.service.org_hooks(&who, &record)?;
    let (items, headers) = page.apply(hooks);
    let body: Vec<_> = items
        .iter()
        .map(|h| org_hook_view(&links, &record.login, h))
        .collect();
    Ok((headers, Json(body)).into_response())
}

/// Creates a hook of the organization; a `ping` is sent to it.
#[utoipa::path(post, operation_id = "orgs/create-webhook", path = "/api/v3/orgs/{org}/hooks", tag = "orgs",
    params(Org),
    request_body = HookBody,
    responses((status = 201, description = "The new hook", body = schemas::Hook)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path(login): Path<String>,
    JsonBody(body): JsonBody<HookBody>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    let hook = state
        .service
        .create_org_hook(&who, &record, body.input()?)
        .await?;
    let view = org_hook_view(&links, &record.login, &hook);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// One hook of the organization.
#[utoipa::path(get, operation_id = "orgs/get-webhook", path = "/api/v3/orgs/{org}/hooks/{hook_id}", tag = "orgs",
    params(OrgHookParams),
    responses((status = 200, description = "The hook", body = schemas::Hook)))]
async fn get_one(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((login, number)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    let hook = state.service.org_hook(&who, &record, number)?;
    Ok(Json(org_hook_view(&links, &record.login, &hook)).into_response())
}

/// Changes a hook of the organization.
#[utoipa::path(patch, operation_id = "orgs/update-webhook", path = "/api/v3/orgs/{org}/hooks/{hook_id}", tag = "orgs",
    params(OrgHookParams),
    request_body = HookBody,
    responses((status = 200, description = "The hook", body = schemas::Hook)))]
async fn update(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((login, number)): Path<(String, u64)>,
    JsonBody(body): JsonBody<HookBody>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    let hook = state
        .service
        .update_org_hook(&who, &record, number, body.input()?)
        .await?;
    Ok(Json(org_hook_view(&links, &record.login, &hook)).into_response())
}

/// Deletes a hook of the organization.
#[utoipa::path(delete, operation_id = "orgs/delete-webhook", path = "/api/v3/orgs/{org}/hooks/{hook_id}", tag = "orgs",
    params(OrgHookParams),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((login, number)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    state.service.delete_org_hook(&who, &record, number).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A hook's configuration.
#[utoipa::path(get, operation_id = "orgs/get-webhook-config-for-org", path = "/api/v3/orgs/{org}/hooks/{hook_id}/config", tag = "orgs",
    params(OrgHookParams),
    responses((status = 200, description = "The configuration", body = schemas::HookConfig)))]
async fn get_config(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((login, number)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    let hook = state.service.org_hook(&who, &record, number)?;
    Ok(Json(org_hook_view(&links, &record.login, &hook).config).into_response())
}

/// Changes a hook's configuration.
#[utoipa::path(patch, operation_id = "orgs/update-webhook-config-for-org", path = "/api/v3/orgs/{org}/hooks/{hook_id}/config", tag = "orgs",
    params(OrgHookParams),
    request_body = ConfigBody,
    responses((status = 200, description = "The configuration", body = schemas::HookConfig)))]
async fn update_config(
    State(state): State<AppState>,
    links: Links,
    AuthUser(who): AuthUser,
    Path((login, number)): Path<(String, u64)>,
    JsonBody(config): JsonBody<ConfigBody>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    let input = HookBody::config_only(config).input()?;
    let hook = state
        .service
        .update_org_hook(&who, &record, number, input)
        .await?;
    Ok(Json(org_hook_view(&links, &record.login, &hook).config).into_response())
}

/// Sends a `ping` to the hook.
#[utoipa::path(post, operation_id = "orgs/ping-webhook", path = "/api/v3/orgs/{org}/hooks/{hook_id}/pings", tag = "orgs",
    params(OrgHookParams),
    responses((status = 204, description = "Queued")))]
async fn ping(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((login, number)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    state.service.ping_org_hook(&who, &record, number).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The delivery attempts this node made for the hook, newest first.
#[utoipa::path(get, operation_id = "orgs/list-webhook-deliveries", path = "/api/v3/orgs/{org}/hooks/{hook_id}/deliveries", tag = "orgs",
    params(OrgHookParams, PageParams),
    responses((status = 200, description = "One page of deliveries", body = Vec<schemas::HookDeliveryItem>)))]
async fn deliveries(
    State(state): State<AppState>,
    page: Page,
    AuthUser(who): AuthUser,
    Path((login, number)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    let skip = (page.page - 1).saturating_mul(page.per_page);
    let found = state
        .service
        .org_hook_deliveries(&who, &record, number, skip, page.per_page)?;
    let body: Vec<_> = found.iter().map(delivery_item).collect();
    Ok(Json(body).into_response())
}

/// One delivery attempt, with its request and response.
#[utoipa::path(get, operation_id = "orgs/get-webhook-delivery", path = "/api/v3/orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}", tag = "orgs",
    params(OrgHookDelivery),
    responses((status = 200, description = "The delivery", body = schemas::HookDelivery)))]
async fn delivery(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((login, number, id)): Path<(String, u64, u64)>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    let hook = state.service.org_hook(&who, &record, number)?;
    let found = state.service.org_hook_delivery(&who, &record, number, id)?;
    Ok(Json(delivery_full(&found, hook.url)).into_response())
}

/// Sends a delivery's event again (same payload, same `X-GitHub-Delivery`).
#[utoipa::path(post, operation_id = "orgs/redeliver-webhook-delivery", path = "/api/v3/orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", tag = "orgs",
    params(OrgHookDelivery),
    responses((status = 202, description = "Queued", body = schemas::Accepted)))]
async fn redeliver(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path((login, number, id)): Path<(String, u64, u64)>,
) -> Result<Response, ApiError> {
    let record = org(&state, &login)?;
    state
        .service
        .redeliver_org(&who, &record, number, id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({}))).into_response())
}
