//! Labels: the repository's labels (`/repos/{owner}/{repo}/labels[/{name}]`) and the
//! labels of one issue or pull request (`/repos/{owner}/{repo}/issues/{number}/labels`).
//! Names are case-insensitive, as on GitHub.

use crate::json::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use guts_core::{LabelDef, OpId, Payload};
use guts_service::Caller;
use guts_storage::RepoView;
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, FieldError};
use crate::extract::{ApiResource, AuthUser, Authed, JsonBody, ValidJson, VisibleRepo};
use crate::links::Links;
use crate::openapi::schemas;
use crate::pagination::{Page, PageParams};
use crate::params::{OwnerRepo, OwnerRepoNumber};

use crate::state::AppState;
use crate::threads::{self, LabelRef, Render, find_thread};
use guts_service::{check_labels, label_diff};
use validator::{Validate, ValidationError};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(list_on, add_on, replace_on, clear_on))
        .routes(routes!(remove_on))
}

/// `{owner}/{repo}/{name}`, the path parameters of one label's routes.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoName {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// The label's name (case-insensitive).
    name: String,
}

/// `{owner}/{repo}/{number}/{name}`: a label of one issue or pull request.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "describes path parameters; handlers take them as a tuple"
)]
struct OwnerRepoNumberName {
    /// The owner's login (user or organization).
    owner: String,
    /// The repository's name.
    repo: String,
    /// The issue or pull request number.
    number: u64,
    /// The label's name (case-insensitive).
    name: String,
}

/// The repository's labels, in name order.
#[utoipa::path(get, operation_id = "issues/list-labels-for-repo", path = "/api/v3/repos/{owner}/{repo}/labels", tag = "issues",
    params(OwnerRepo, PageParams),
    responses((status = 200, description = "One page of labels", body = Vec<schemas::Label>)))]
async fn list(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleRepo { view, .. }: VisibleRepo,
) -> Result<Response, ApiError> {
    let labels: Vec<&LabelDef> = view.state.collab.labels.values().collect();
    let (items, headers) = page.apply(labels);
    let render = Render::new(&state, &links, &view);
    let body: Vec<_> = items.iter().map(|l| render.label(l)).collect();
    Ok((headers, Json(body)).into_response())
}

fn find_label<'v>(view: &'v RepoView, name: &str) -> Result<&'v LabelDef, ApiError> {
    view.state
        .collab
        .labels
        .get(&name.to_lowercase())
        .ok_or_else(ApiError::not_found)
}

/// One label.
#[utoipa::path(get, operation_id = "issues/get-label", path = "/api/v3/repos/{owner}/{repo}/labels/{name}", tag = "issues",
    params(OwnerRepoName),
    responses((status = 200, description = "The label", body = schemas::Label)))]
async fn get_one(
    State(state): State<AppState>,
    links: Links,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let label = find_label(&view, &name)?;
    Ok(Json(Render::new(&state, &links, &view).label(label)).into_response())
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
struct LabelBody {
    /// Required to create; a new name when editing.
    #[validate(custom(function = "label_name"))]
    name: Option<String>,
    /// A new name (editing).
    #[validate(custom(function = "label_name"))]
    new_name: Option<String>,
    /// Six hex digits, with or without `#` (`ededed` by default).
    #[validate(custom(function = "label_color"))]
    color: Option<String>,
    /// At most 100 characters.
    #[validate(length(max = 100, message = "is too long (maximum is 100 characters)"))]
    description: Option<String>,
}

impl ApiResource for LabelBody {
    const RESOURCE: &'static str = "Label";
}

/// GitHub's label names: 1 to 50 characters, no commas (they separate names in
/// queries).
/// GitHub's rule (1 to 50 characters, no comma), and the operation's cap in bytes
/// ([`MAX_LABEL_BYTES`](crate::caps::MAX_LABEL_BYTES)), which 50 wide characters exceed.
fn label_name(name: &str) -> Result<(), ValidationError> {
    if name.trim().is_empty()
        || name.chars().count() > 50
        || name.len() > crate::caps::MAX_LABEL_BYTES
        || name.contains(',')
    {
        return Err(ValidationError::new("invalid")
            .with_message("must be 1 to 50 characters without commas".into()));
    }
    Ok(())
}

fn label_color(text: &str) -> Result<(), ValidationError> {
    let hex = text.trim_start_matches('#');
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ValidationError::new("invalid").with_message("must be a 6 character hex code".into()))
    }
}

/// GitHub accepts colours with or without `#`, in any case; stored lowercase without.
fn color(text: &str) -> String {
    text.trim_start_matches('#').to_lowercase()
}

async fn respond_label(
    state: &AppState,
    links: &Links,
    authed: &Authed,
    view: &RepoView,
    name: String,
    label: LabelDef,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let key = label.name.to_lowercase();
    let payload = Payload::SetLabel {
        name,
        label: Some(label),
    };
    let (view, _) = threads::append(state, authed, view, payload).await?;
    let label = find_label(&view, &key)?;
    let body = Render::new(state, links, &view).label(label);
    Ok((status, Json(body)).into_response())
}

/// Creates a label; 422 `already_exists` when the name is taken.
#[utoipa::path(post, operation_id = "issues/create-label", path = "/api/v3/repos/{owner}/{repo}/labels", tag = "issues",
    params(OwnerRepo), request_body = LabelBody,
    responses((status = 201, description = "The new label", body = schemas::Label)))]
async fn create(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    ValidJson(body): ValidJson<LabelBody>,
) -> Result<Response, ApiError> {
    let name = body
        .name
        .ok_or_else(|| ApiError::missing_field("Label", "name"))?;
    check_labels(std::slice::from_ref(&name))?;
    if view.state.collab.labels.contains_key(&name.to_lowercase()) {
        return Err(ApiError::validation(FieldError {
            resource: "Label".into(),
            field: "name".into(),
            code: "already_exists".into(),
            message: None,
        }));
    }
    let label = LabelDef {
        name: name.clone(),
        color: color(body.color.as_deref().unwrap_or("ededed")),
        description: body.description.unwrap_or_default(),
    };
    respond_label(
        &state,
        &links,
        &authed,
        &view,
        name,
        label,
        StatusCode::CREATED,
    )
    .await
}

/// Edits a label (name, colour, description).
#[utoipa::path(patch, operation_id = "issues/update-label", path = "/api/v3/repos/{owner}/{repo}/labels/{name}", tag = "issues",
    params(OwnerRepoName), request_body = LabelBody,
    responses((status = 200, description = "The label", body = schemas::Label)))]
async fn update(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, name)): Path<(String, String, String)>,
    ValidJson(body): ValidJson<LabelBody>,
) -> Result<Response, ApiError> {
    let current = find_label(&view, &name)?.clone();
    let new_name = body.new_name.or(body.name).unwrap_or(current.name);
    check_labels(std::slice::from_ref(&new_name))?;
    let label = LabelDef {
        name: new_name,
        color: match body.color {
            Some(c) => color(&c),
            None => current.color,
        },
        description: match body.description {
            Some(d) => d,
            None => current.description,
        },
    };
    respond_label(&state, &links, &authed, &view, name, label, StatusCode::OK).await
}

/// Deletes a label.
#[utoipa::path(delete, operation_id = "issues/delete-label", path = "/api/v3/repos/{owner}/{repo}/labels/{name}", tag = "issues",
    params(OwnerRepoName),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(state): State<AppState>,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, name)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    find_label(&view, &name)?;
    threads::append(
        &state,
        &authed,
        &view,
        Payload::SetLabel { name, label: None },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The labels of thread `id`, as a list response.
fn labels_of(state: &AppState, links: &Links, view: &RepoView, id: &OpId) -> Response {
    let render = Render::new(state, links, view);
    let body = view
        .state
        .collab
        .threads
        .get(id)
        .map(|t| render.thread_labels(t))
        .unwrap_or_default();
    Json(body).into_response()
}

/// The labels of an issue or pull request.
#[utoipa::path(get, operation_id = "issues/list-labels-on-issue", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/labels",
    tag = "issues", params(OwnerRepoNumber, PageParams),
    responses((status = 200, description = "One page of labels", body = Vec<schemas::Label>)))]
async fn list_on(
    State(state): State<AppState>,
    links: Links,
    page: Page,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((_owner, _repo, number)): Path<(String, String, u64)>,
) -> Result<Response, ApiError> {
    let (_, thread) = find_thread(&view, number)?;
    let render = Render::new(&state, &links, &view);
    let (items, headers) = page.apply(render.thread_labels(thread));
    Ok((headers, Json(items)).into_response())
}

/// `{"labels": [...]}` or a bare array, of names or `{"name"}` objects.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
enum LabelsBody {
    Wrapped { labels: Vec<LabelRef> },
    Bare(Vec<LabelRef>),
}

impl LabelsBody {
    fn names(self) -> Result<Vec<String>, ApiError> {
        let refs = match self {
            LabelsBody::Wrapped { labels } | LabelsBody::Bare(labels) => labels,
        };
        let names: Vec<String> = refs.into_iter().map(LabelRef::into_name).collect();
        check_labels(&names)?;
        Ok(names)
    }
}

async fn change_on(
    state: &AppState,
    links: &Links,
    authed: &Authed,
    (owner, repo, number): (String, String, u64),
    change: impl FnOnce(&guts_core::Thread) -> (Vec<String>, Vec<String>),
) -> Result<Response, ApiError> {
    let view = state
        .service
        .repo(Caller::User(authed), &owner, &repo)?
        .view;
    let (id, thread) = find_thread(&view, number)?;
    let (add, remove) = change(thread);
    let payload = Payload::LabelThread {
        thread: id,
        add,
        remove,
    };
    let (view, _) = threads::append(state, authed, &view, payload).await?;
    Ok(labels_of(state, links, &view, &id))
}

/// Adds labels to an issue or pull request.
#[utoipa::path(post, operation_id = "issues/add-labels", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/labels",
    tag = "issues", params(OwnerRepoNumber), request_body = LabelsBody,
    responses((status = 200, description = "Its labels", body = Vec<schemas::Label>)))]
async fn add_on(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path(path): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<LabelsBody>,
) -> Result<Response, ApiError> {
    let names = body.names()?;
    change_on(&state, &links, &authed, path, |_| (names, Vec::new())).await
}

/// Replaces the labels of an issue or pull request.
#[utoipa::path(put, operation_id = "issues/set-labels", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/labels",
    tag = "issues", params(OwnerRepoNumber), request_body = LabelsBody,
    responses((status = 200, description = "Its labels", body = Vec<schemas::Label>)))]
async fn replace_on(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path(path): Path<(String, String, u64)>,
    JsonBody(body): JsonBody<LabelsBody>,
) -> Result<Response, ApiError> {
    let names = body.names()?;
    change_on(&state, &links, &authed, path, |t| label_diff(t, &names)).await
}

/// Removes every label of an issue or pull request.
#[utoipa::path(delete, operation_id = "issues/remove-all-labels", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/labels",
    tag = "issues", params(OwnerRepoNumber),
    responses((status = 204, description = "Removed")))]
async fn clear_on(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    Path(path): Path<(String, String, u64)>,
) -> Result<StatusCode, ApiError> {
    change_on(&state, &links, &authed, path, |t| label_diff(t, &[])).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one label of an issue or pull request; 404 when it does not carry it.
#[utoipa::path(delete, operation_id = "issues/remove-label", path = "/api/v3/repos/{owner}/{repo}/issues/{number}/labels/{name}",
    tag = "issues", params(OwnerRepoNumberName),
    responses((status = 200, description = "Its remaining labels", body = Vec<schemas::Label>)))]
async fn remove_on(
    State(state): State<AppState>,
    links: Links,
    AuthUser(authed): AuthUser,
    VisibleRepo { view, .. }: VisibleRepo,
    Path((owner, repo, number, name)): Path<(String, String, u64, String)>,
) -> Result<Response, ApiError> {
    let (_, thread) = find_thread(&view, number)?;
    if !thread.labels.contains(&name.to_lowercase()) {
        return Err(ApiError::not_found().with_message("Label does not exist"));
    }
    change_on(&state, &links, &authed, (owner, repo, number), |_| {
        (Vec::new(), vec![name])
    })
    .await
}
