//! An in-process API over real storage in a temp dir, for tests that drive routers
//! with `oneshot` (no sockets).

use std::sync::Arc;

use axum::body::Body;
use guts_git::serve::GitMetrics;
use guts_ops::{HealthBuilder, MetricsRegistry, Secret};
use guts_storage::{Accounts, GitRepos, Repositories, Sealer, StorageMetrics, Store, WriterHandle};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use crate::metrics::HttpMetrics;
use crate::middleware::RateLimits;
use crate::state::{AppState, EdgeLimits, NodeInfo, Services};

pub(crate) const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub(crate) struct TestApp {
    pub(crate) state: AppState,
    pub(crate) router: axum::Router,
    _writer: WriterHandle,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub(crate) fn new(rate_limits: RateLimits) -> TestApp {
        Self::with_limits(EdgeLimits {
            rate_limits,
            ..EdgeLimits::default()
        })
    }

    /// An app with the given edge limits (body size, trusted proxies…).
    pub(crate) fn with_limits(limits: EdgeLimits) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = MetricsRegistry::new();
        let http = Arc::new(HttpMetrics::register(registry.registry_mut()));
        let storage_metrics = Arc::new(StorageMetrics::register(registry.registry_mut()));
        let git = Arc::new(GitMetrics::register(registry.registry_mut()));
        let (store, writer) = Store::open(dir.path(), storage_metrics).unwrap();
        let sealer = Arc::new(Sealer::new(&[7; 32]));
        let repos = Repositories::open(
            store.clone(),
            GitRepos::open(dir.path()).unwrap(),
            sealer.clone(),
        )
        .unwrap();
        let accounts = Accounts::new(store.clone(), sealer);
        let state = AppState::new(
            Arc::new(HealthBuilder::default().build()),
            http,
            NodeInfo {
                version: "test",
                peer_id: "12D3KooWtest".to_string(),
                data_dir: dir.path().to_path_buf(),
                ssh_url: None,
            },
            Some(Secret::new(ADMIN_TOKEN.to_string())),
            None,
            limits,
            Services {
                accounts,
                repos: Arc::new(repos),
                store,
                open_registration: false,
                git_metrics: git,
                peers: None,
                tasks: guts_ops::Supervisor::new(),
                hook_policy: guts_service::HookPolicy::default(),
            },
        );
        TestApp {
            router: crate::api_router(state.clone(), axum::Router::new()),
            state,
            _writer: writer,
            _dir: dir,
        }
    }

    /// Sends one request; `token` goes into `Authorization: token …`.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (Response<()>, serde_json::Value) {
        send(self.router.clone(), method, path, token, body).await
    }

    /// Creates an account through the admin API and returns its token.
    pub(crate) async fn user(&self, login: &str) -> String {
        let (res, body) = self
            .call(
                "POST",
                "/admin/users",
                Some(ADMIN_TOKEN),
                Some(serde_json::json!({ "login": login })),
            )
            .await;
        assert_eq!(res.status(), 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

/// One request through any router; the JSON body (or `Null`) comes back beside the head.
pub(crate) async fn send(
    router: axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (Response<()>, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        req = req.header("authorization", format!("token {token}"));
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    send_request(router, req).await
}

/// Sends a request built by the caller (raw bodies, extra headers, a peer address).
pub(crate) async fn send_request(
    router: axum::Router,
    req: Request<Body>,
) -> (Response<()>, serde_json::Value) {
    let res = router.oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (Response::from_parts(parts, ()), json)
}
