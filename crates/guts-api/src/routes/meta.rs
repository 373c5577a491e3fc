//! The API describing itself: `GET /` (GitHub's map of URL templates) and `GET /meta`.

use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::json::Json;
use crate::links::Links;
use crate::state::AppState;
use crate::views::{ApiOverview, Root};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(root_bare))
        .routes(routes!(meta))
}

/// GitHub's root: the URL templates of the API's main resources.
#[utoipa::path(get, operation_id = "meta/root", path = "/api/v3/", tag = "meta",
    responses((status = 200, description = "The URL templates", body = serde_json::Value)))]
async fn root(links: Links) -> Response {
    Json(Root::new(&links)).into_response()
}

/// The root, spelled without the trailing slash (how a base URL is usually written).
#[utoipa::path(get, operation_id = "meta/root-bare", path = "/api/v3", tag = "meta",
    responses((status = 200, description = "The URL templates", body = serde_json::Value)))]
async fn root_bare(links: Links) -> Response {
    root(links).await
}

/// What a client may know about this API's deployment.
#[utoipa::path(get, operation_id = "meta/get", path = "/api/v3/meta", tag = "meta",
    responses((status = 200, description = "The overview", body = serde_json::Value)))]
async fn meta() -> Response {
    Json(ApiOverview::new()).into_response()
}
