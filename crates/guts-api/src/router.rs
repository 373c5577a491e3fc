//! Where the resource routers are merged and the edge middleware is applied: the one
//! place that decides what every request goes through, and where the OpenAPI document
//! is assembled from the documented modules.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use http::StatusCode;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::middleware::conditional::conditional;
use crate::middleware::git_edge::git_edge;
use crate::middleware::rate_limit::rate_limit;
use crate::middleware::{forwarded, json_errors, limit_in_flight, observe};
use crate::openapi::{self, ApiDoc};
use crate::routes;
use crate::state::AppState;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v3/openapi.json";

/// The REST modules described in the OpenAPI document: each returns an
/// `OpenApiRouter<AppState>` built with `routes!(handler, …)` over handlers annotated
/// with `#[utoipa::path]`. Adding a documented module is one line here.
pub(crate) fn documented() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::admin::router())
        .merge(routes::replication::router())
        .merge(routes::backup::router())
        .merge(routes::users::router())
        .merge(routes::repos::router())
        .merge(routes::branches::router())
        .merge(routes::collaborators::router())
        .merge(routes::orgs::router())
        .merge(routes::rate_limit::router())
        .merge(routes::issues::router())
        .merge(routes::comments::router())
        .merge(routes::labels::router())
        .merge(routes::pulls::router())
        .merge(routes::reviews::router())
        .merge(routes::git_data::router())
        .merge(routes::commits::router())
        .merge(routes::statuses::router())
        .merge(routes::hooks::router())
        .merge(routes::org_hooks::router())
        .merge(routes::keys::router())
        .merge(routes::check_runs::router())
        .merge(routes::contents::router())
        .merge(routes::git_writes::router())
        .merge(routes::contents_write::router())
        .merge(routes::archives::router())
        .merge(routes::repo_stats::router())
        .merge(routes::meta::router())
        .merge(routes::unmodeled::router());
    // Served through `commits/{*ref}`: documented only (see `routes::statuses`).
    router
        .get_openapi_mut()
        .merge(routes::statuses::ref_reads().into_openapi());
    router
        .get_openapi_mut()
        .merge(routes::check_runs::ref_reads().into_openapi());
    router
}

/// The router of the API listener, with `pages` (the web interface, its own edge
/// applied) beside the REST API and git's routes.
///
/// Health probes sit outside the in-flight limit and the timeout, so a saturated node
/// still answers its liveness probe instead of being restarted for being busy.
pub fn api_router(state: AppState, pages: Router) -> Router {
    let limits = state.limits.clone();
    let ssh = crate::links::SshBase(state.node.ssh_url.as_deref().map(std::sync::Arc::from));
    let (rest, doc) = documented().split_for_parts();
    let doc = openapi::render(&openapi::finish(doc));
    let not_found = || async { ApiError::not_found().into_response() };
    let guarded = rest
        .route(OPENAPI_PATH, get(openapi::serve).with_state(doc))
        // Unknown REST and admin paths are GitHub's JSON 404 even where the web
        // interface's `/{owner}/{repo}/{*rest}` would match them.
        .route("/api/{*rest}", any(not_found))
        .route("/admin/{*rest}", any(not_found))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(from_fn(json_errors))
                .layer(from_fn_with_state(state.clone(), rate_limit))
                .layer(from_fn(conditional))
                .layer(from_fn_with_state(state.clone(), limit_in_flight))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                ))
                .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
                // Extractors that buffer a body (`JsonBody`, `Bytes`) apply axum's own
                // limit, 2 MiB unless told otherwise: without this the configured
                // limit would only ever be reached by bodies axum already refused.
                .layer(DefaultBodyLimit::max(limits.max_body_bytes)),
        );
    // Git requests stream packs for as long as they need: not the REST timeout, body
    // cap and budget, but an edge of their own (a git rate limit, per-IP concurrency,
    // a long deadline; bodies are held to a minimum rate in the handlers), and
    // plain-text errors that git shows, so they stay outside the JSON edge.
    // Archive downloads cost what a clone does, and stream as long: the same edge.
    let git = routes::git::router()
        .merge(routes::downloads::router())
        .layer(from_fn_with_state(state.clone(), git_edge));
    guarded
        .merge(git)
        .merge(routes::health::router())
        .merge(routes::avatars::router())
        .with_state(state.clone())
        .merge(pages)
        .layer(from_fn_with_state(state.clone(), observe))
        .layer(from_fn_with_state(state, forwarded::client))
        .layer(axum::Extension(ssh))
}

#[cfg(test)]
mod tests {
    use axum::extract::{MatchedPath, Request};
    use axum::middleware::{Next, from_fn};
    use axum::response::Response;
    use http::HeaderValue;

    use super::*;
    use crate::test_support::{TestApp, send};

    const METHODS: [&str; 5] = ["GET", "PUT", "POST", "PATCH", "DELETE"];

    /// Echoes the route template that matched, so the test can tell "no such route"
    /// from a handler's own 404.
    async fn echo_matched(req: Request, next: Next) -> Response {
        let matched = req.extensions().get::<MatchedPath>().cloned();
        let mut response = next.run(req).await;
        if let Some(m) = matched.and_then(|m| HeaderValue::from_str(m.as_str()).ok()) {
            response.headers_mut().insert("x-matched-route", m);
        }
        response
    }

    /// A request path for a route template: numbers for numeric parameters, two
    /// segments for a wildcard (`{*path}`), a word for the others.
    fn concrete(template: &str) -> String {
        template
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some("id" | "number") => "1".to_string(),
                    Some(name) if name.starts_with('*') => "x/y".to_string(),
                    Some(name) => format!("x{name}"),
                    None => segment.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Every (path, method) in the document is served by its handler, and every other
    /// method on a documented path is 405: a route without a document entry, or an
    /// entry without a route, fails here. The templates are the routers' own (axum's
    /// `{*wildcard}` included), before [`openapi::finish`] respells them.
    #[tokio::test]
    async fn the_document_and_the_routes_agree() {
        let app = TestApp::new(Default::default());
        let (router, doc) = documented().split_for_parts();
        let router: axum::Router = router
            .layer(from_fn(echo_matched))
            .with_state(app.state.clone());
        let doc = serde_json::to_value(doc).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() >= 55, "{}", paths.len());
        for (template, item) in paths {
            let concrete = concrete(template);
            for method in METHODS {
                let documented = item.get(method.to_ascii_lowercase()).is_some();
                let (res, body) = send(router.clone(), method, &concrete, None, None).await;
                if documented {
                    assert_ne!(res.status(), 405, "{method} {template}: {body}");
                    // The reads under `commits/{ref}/` are served by its wildcard.
                    let served = if routes::statuses::THROUGH_COMMIT_WILDCARD
                        .contains(&template.as_str())
                        || routes::check_runs::THROUGH_COMMIT_WILDCARD.contains(&template.as_str())
                    {
                        "/api/v3/repos/{owner}/{repo}/commits/{*ref}"
                    } else {
                        template.as_str()
                    };
                    assert_eq!(
                        res.headers()
                            .get("x-matched-route")
                            .map(|v| v.to_str().unwrap()),
                        Some(served),
                        "{method} {template} is documented but not routed"
                    );
                } else {
                    assert_eq!(
                        res.status(),
                        405,
                        "{method} {template} is routed but not documented"
                    );
                }
            }
        }
    }

    /// The served document names every template parameter (wildcards in OpenAPI's
    /// spelling) as a required path parameter of each operation, declares no parameter
    /// twice, gives each operation a success response, and no two operations one id.
    #[test]
    fn the_served_document_declares_each_parameter_once() {
        let (_, doc) = documented().split_for_parts();
        let doc = serde_json::to_value(openapi::finish(doc)).unwrap();
        let mut operations = 0;
        let mut ids = std::collections::BTreeSet::new();
        for (template, item) in doc["paths"].as_object().unwrap() {
            assert!(!template.contains('*'), "{template}");
            let names: Vec<&str> = template
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let id = op["operationId"].as_str().unwrap();
                assert!(
                    ids.insert(id),
                    "{method} {template}: operationId {id} twice"
                );
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let mut seen = Vec::new();
                for p in &params {
                    let key = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
                    assert!(!seen.contains(&key), "{method} {template}: twice {key:?}");
                    seen.push(key);
                }
                let in_path: Vec<&str> = params
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .inspect(|p| assert_eq!(p["required"], true, "{method} {template}"))
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                let mut sorted = names.clone();
                sorted.sort_unstable();
                let mut declared = in_path.clone();
                declared.sort_unstable();
                assert_eq!(sorted, declared, "{method} {template}");
                let responses = op["responses"].as_object().unwrap();
                // A success, or a redirect where that is the whole answer (archives,
                // as GitHub describes them: 302 to the download).
                assert!(
                    responses.keys().any(|k| k.starts_with('2') || k == "302"),
                    "{method} {template}"
                );
                assert!(responses.contains_key("default"), "{method} {template}");
            }
        }
        assert!(operations >= 86, "{operations}");
    }

    /// A documented module registers routes only through `routes!`: a plain `.route(`
    /// in it would be served without appearing in the document.
    #[test]
    fn documented_modules_have_no_plain_routes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("OpenApiRouter") {
                assert!(
                    !text.contains(".route("),
                    "{} mixes plain routes",
                    path.display()
                );
            }
        }
    }

    #[tokio::test]
    async fn the_document_is_served_with_github_errors_as_defaults() {
        let app = TestApp::new(Default::default());
        let (res, doc) = app.call("GET", OPENAPI_PATH, None, None).await;
        assert_eq!(res.status(), 200);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let op = &doc["paths"]["/api/v3/repos/{owner}/{repo}"]["get"];
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Repository"
        );
        assert_eq!(
            op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/GithubError"
        );
        for name in [
            "GithubError",
            "FieldError",
            "User",
            "Repository",
            "CreateRepo",
        ] {
            assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
        }
        assert!(
            doc["paths"].get("/{owner}/{repo}/info/refs").is_none(),
            "git stays out"
        );
        let contents = &doc["paths"]["/api/v3/repos/{owner}/{repo}/contents/{path}"]["get"];
        assert_eq!(
            contents["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Contents"
        );
        let number =
            &doc["paths"]["/api/v3/repos/{owner}/{repo}/issues/{number}"]["get"]["parameters"][2];
        assert_eq!(number["name"], "number");
        assert_eq!(number["schema"]["type"], "integer");
    }

    #[tokio::test]
    async fn rate_limit_headers_429_and_the_free_rate_limit_endpoint() {
        let app = TestApp::new(crate::RateLimits {
            anonymous_per_hour: 2,
            authenticated_per_hour: 3,
        });
        let (res, _) = app.call("GET", "/api/v3/users/nobody", None, None).await;
        assert_eq!(res.status(), 404);
        let h = res.headers();
        assert_eq!(h["x-ratelimit-limit"], "2");
        assert_eq!(h["x-ratelimit-remaining"], "1");
        assert_eq!(h["x-ratelimit-used"], "1");
        assert_eq!(h["x-ratelimit-resource"], "core");
        assert!(h.contains_key("x-ratelimit-reset"));

        // The overview spends nothing.
        let (res, body) = app.call("GET", "/api/v3/rate_limit", None, None).await;
        assert_eq!(res.status(), 200);
        assert_eq!(body["resources"]["core"]["remaining"], 1);
        assert_eq!(body["rate"]["limit"], 2);

        app.call("GET", "/api/v3/users/nobody", None, None).await;
        let (res, body) = app.call("GET", "/api/v3/users/nobody", None, None).await;
        assert_eq!(res.status(), 429, "{body}");
        assert_eq!(res.headers()["x-ratelimit-remaining"], "0");
        assert_eq!(res.headers()["retry-after"], "1800");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("API rate limit exceeded for ")
        );
        assert_eq!(body["status"], "429");

        // A token has its own, larger bucket; the admin API and probes have none.
        let token = app.user("alice").await;
        let (res, body) = app.call("GET", "/api/v3/user", Some(&token), None).await;
        assert_eq!(res.status(), 200, "{body}");
        assert_eq!(res.headers()["x-ratelimit-limit"], "3");
        assert_eq!(res.headers()["x-ratelimit-remaining"], "2");
        let (res, _) = app.call("GET", "/health/live", None, None).await;
        assert!(!res.headers().contains_key("x-ratelimit-limit"));
    }

    /// A repository creation padded with an ignored field to `size` bytes of JSON.
    fn padded_repo(token: &str, name: &str, size: usize) -> http::Request<axum::body::Body> {
        let head = format!(r#"{{"name":"{name}","pad":""#);
        let pad = "x".repeat(size - head.len() - 2);
        http::Request::builder()
            .method("POST")
            .uri("/api/v3/user/repos")
            .header("authorization", format!("token {token}"))
            .body(axum::body::Body::from(format!(r#"{head}{pad}"}}"#)))
            .unwrap()
    }

    /// `GUTS_MAX_REQUEST_SIZE_MB` is the JSON body limit, above and below axum's own
    /// 2 MiB default: a body just over the setting is 413 with GitHub's error JSON, one
    /// just under it (and over 2 MiB) is read.
    #[tokio::test]
    async fn the_configured_body_limit_is_the_json_limit() {
        use crate::state::EdgeLimits;
        use crate::test_support::send_request;
        const LIMIT: usize = 3 * 1024 * 1024;
        let app = TestApp::with_limits(EdgeLimits {
            max_body_bytes: LIMIT,
            ..EdgeLimits::default()
        });
        let token = app.user("alice").await;
        let (res, body) = send_request(app.router.clone(), padded_repo(&token, "big", LIMIT)).await;
        assert_eq!(res.status(), 201, "{body}");
        let (res, body) =
            send_request(app.router.clone(), padded_repo(&token, "over", LIMIT + 1)).await;
        assert_eq!(res.status(), 413, "{body}");
        assert_eq!(body["message"], "Payload Too Large");
        assert_eq!(body["status"], "413");
        assert_eq!(body["documentation_url"], crate::error::DOCUMENTATION_URL);
    }

    /// `X-Forwarded-Host` and `-Proto` shape response URLs only when the TCP peer is a
    /// trusted proxy.
    #[tokio::test]
    async fn forwarded_headers_count_only_from_trusted_proxies() {
        use crate::middleware::TrustedProxies;
        use crate::state::EdgeLimits;
        use crate::test_support::send_request;
        let get = |token: &str| {
            let mut req = http::Request::builder()
                .uri("/api/v3/user")
                .header("host", "node.example:8080")
                .header("x-forwarded-host", "evil.example")
                .header("x-forwarded-proto", "https")
                .header("authorization", format!("token {token}"))
                .body(axum::body::Body::empty())
                .unwrap();
            let peer: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            req
        };
        let direct = TestApp::new(Default::default());
        let token = direct.user("alice").await;
        let (res, body) = send_request(direct.router.clone(), get(&token)).await;
        assert_eq!(res.status(), 200, "{body}");
        assert_eq!(body["url"], "http://node.example:8080/api/v3/users/alice");
        assert!(!body.to_string().contains("evil.example"), "{body}");

        let proxied = TestApp::with_limits(EdgeLimits {
            trusted_proxies: TrustedProxies::parse("127.0.0.1").unwrap(),
            ..EdgeLimits::default()
        });
        let token = proxied.user("alice").await;
        let (res, body) = send_request(proxied.router.clone(), get(&token)).await;
        assert_eq!(res.status(), 200, "{body}");
        assert_eq!(body["url"], "https://evil.example/api/v3/users/alice");
    }
}
