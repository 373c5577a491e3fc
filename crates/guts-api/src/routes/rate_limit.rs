//! `GET /api/v3/rate_limit`: the caller's standing in GitHub's shape. It spends nothing
//! (the middleware only peeks at the bucket for this path), as on GitHub.

use crate::json::Json;
use axum::extract::Extension;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::middleware::rate_buckets::Status;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rate_limit))
}

/// One resource's limit, as GitHub reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct Rate {
    limit: u32,
    remaining: u32,
    /// Epoch seconds at which the allowance is whole again.
    reset: u64,
    used: u32,
    resource: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
struct Resources {
    core: Rate,
    /// Guts serves no search API; a search request would spend the `core` bucket,
    /// which is what this reports (GitHub's clients require the key).
    search: Rate,
}

#[derive(Debug, Serialize, ToSchema)]
struct RateLimitOverview {
    resources: Resources,
    /// The `core` limit again (GitHub keeps this deprecated field).
    rate: Rate,
}

/// The caller's rate limit (per token when authenticated, else per client IP).
#[utoipa::path(get, path = "/api/v3/rate_limit", tag = "rate-limit",
    responses((status = 200, description = "The caller's standing", body = RateLimitOverview)))]
async fn rate_limit(Extension(status): Extension<Status>) -> Json<RateLimitOverview> {
    let core = Rate {
        limit: status.limit,
        remaining: status.remaining,
        reset: status.reset_epoch(),
        used: status.used(),
        resource: "core",
    };
    Json(RateLimitOverview {
        resources: Resources {
            search: Rate {
                resource: "search",
                ..core.clone()
            },
            core: core.clone(),
        },
        rate: core,
    })
}
