//! `POST /admin/backup` and `GET /admin/backup`: an online backup of the node's data
//! directory into a directory on the node's filesystem (see `guts_storage::backup`).
//!
//! `POST` answers 202 once the backup point is fixed (a storage snapshot), so every
//! write acknowledged before the request was sent is in the backup. The copy itself
//! runs as a task of the node's supervisor (`backup_jobs::spawn_copy`) and can take
//! longer than a request may (the request timeout would cut a synchronous one short);
//! `GET` reports its progress. One backup
//! runs at a time. The status lives in memory only: the manifest the backup writes last
//! is the durable record that it completed.

use std::path::PathBuf;

use crate::json::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use guts_storage::backup::{self, BackupError, Snapshot};
use http::{StatusCode, header};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backup_jobs::{self, BackupState, BackupStatus, CopyJob};
use crate::error::{ApiError, FieldError};
use crate::extract::{Admin, JsonBody};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status, start))
}

#[derive(Debug, Deserialize, ToSchema)]
struct NewBackup {
    /// An absolute path on the node's filesystem, outside the data directory: an empty
    /// or absent directory, created with mode 0700.
    path: Option<String>,
}

fn invalid_path(e: &BackupError) -> ApiError {
    ApiError::validation(FieldError {
        resource: "Backup".into(),
        field: "path".into(),
        code: "invalid".into(),
        message: Some(e.to_string()),
    })
}

/// Starts a backup; answers once the snapshot is taken.
#[utoipa::path(post, path = "/admin/backup", tag = "admin", request_body = NewBackup,
    security(("admin_token" = [])),
    responses((status = 202, description = "Snapshot taken; the copy runs (poll `GET /admin/backup`)", body = BackupStatus)))]
async fn start(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewBackup>,
) -> Result<Response, ApiError> {
    let path = PathBuf::from(
        body.path
            .ok_or_else(|| ApiError::missing_field("Backup", "path"))?,
    );
    // Held across the checks so two requests cannot both start; released before the
    // copy begins (the task takes it again to record the outcome).
    let mut latest = state
        .backups
        .latest
        .lock()
        .map_err(|_| ApiError::internal())?;
    if latest
        .as_ref()
        .is_some_and(|s| s.state == BackupState::Running)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "A backup is already running",
        ));
    }
    backup::prepare_target(&path, &state.node.data_dir).map_err(|e| invalid_path(&e))?;
    let snapshot = Snapshot::begin(&state.store).map_err(|e| {
        tracing::error!(error = %e, "backup snapshot failed");
        ApiError::internal()
    })?;
    let status = BackupStatus {
        state: BackupState::Running,
        path: path.display().to_string(),
        snapshot_at: crate::time::iso8601(snapshot.at_ms() / 1000),
        repositories: snapshot.repositories() as u64,
        finished_at: None,
        bytes: None,
        tables: None,
        error: None,
    };
    *latest = Some(status.clone());
    drop(latest);
    tracing::info!(path = %path.display(), repositories = status.repositories, "backup started");

    let job = CopyJob {
        snapshot,
        data_dir: state.node.data_dir.clone(),
        git: state.repos.git().clone(),
        path,
    };
    backup_jobs::spawn_copy(
        &state.tasks,
        state.backups.clone(),
        state.health.clone(),
        job,
        status.clone(),
    );
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, "/admin/backup")],
        Json(status),
    )
        .into_response())
}

/// The latest backup since the node started: running, done or failed.
#[utoipa::path(get, path = "/admin/backup", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "The latest backup", body = BackupStatus)))]
async fn status(_: Admin, State(state): State<AppState>) -> Result<Json<BackupStatus>, ApiError> {
    state
        .backups
        .latest()
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

#[cfg(test)]
mod tests {
    use crate::test_support::{ADMIN_TOKEN, TestApp};
    use serde_json::json;

    #[tokio::test]
    async fn a_backup_runs_once_at_a_time_and_reports_its_outcome() {
        let app = TestApp::new(Default::default());
        app.user("alice").await;
        let (res, _) = app
            .call("GET", "/admin/backup", Some(ADMIN_TOKEN), None)
            .await;
        assert_eq!(res.status(), 404);
        let (res, _) = app
            .call("POST", "/admin/backup", None, Some(json!({"path": "/x"})))
            .await;
        assert_eq!(res.status(), 401);

        let (res, body) = app
            .call("POST", "/admin/backup", Some(ADMIN_TOKEN), Some(json!({})))
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(body["errors"][0]["code"], "missing_field");
        let (res, body) = app
            .call(
                "POST",
                "/admin/backup",
                Some(ADMIN_TOKEN),
                Some(json!({"path": "relative"})),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("absolute")
        );
        let inside = app.state.node.data_dir.join("b");
        let (res, body) = app
            .call(
                "POST",
                "/admin/backup",
                Some(ADMIN_TOKEN),
                Some(json!({"path": inside})),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");

        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("backup");
        let (res, body) = app
            .call(
                "POST",
                "/admin/backup",
                Some(ADMIN_TOKEN),
                Some(json!({"path": target})),
            )
            .await;
        assert_eq!(res.status(), 202, "{body}");
        assert_eq!(res.headers()["location"], "/admin/backup");
        let mut done = serde_json::Value::Null;
        for _ in 0..500 {
            let (res, body) = app
                .call("GET", "/admin/backup", Some(ADMIN_TOKEN), None)
                .await;
            assert_eq!(res.status(), 200);
            if body["state"] != "running" {
                done = body;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(done["state"], "done", "{done}");
        assert_eq!(done["tables"]["users"], 1, "{done}");
        assert!(target.join("backup.json").is_file());

        // The same directory again: not empty.
        let (res, body) = app
            .call(
                "POST",
                "/admin/backup",
                Some(ADMIN_TOKEN),
                Some(json!({"path": target})),
            )
            .await;
        assert_eq!(res.status(), 422, "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not empty")
        );
    }

    /// The copy is the supervisor's: a shutdown (draining, then the drain) waits for it
    /// to end, and it ends recorded (done, or failed when draining stopped it), never
    /// still running and never as a failure of the node.
    #[tokio::test]
    async fn a_shutdown_awaits_the_backup_copy() {
        let app = TestApp::new(Default::default());
        app.user("alice").await;
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("backup");
        let (res, body) = app
            .call(
                "POST",
                "/admin/backup",
                Some(ADMIN_TOKEN),
                Some(json!({"path": target})),
            )
            .await;
        assert_eq!(res.status(), 202, "{body}");
        app.state.health.start_draining();
        app.state.tasks.request_shutdown();
        app.state
            .tasks
            .drain(std::time::Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(app.state.tasks.running(), 0);
        assert_eq!(app.state.tasks.failure(), None);
        let latest = app.state.backups.latest().unwrap();
        assert_ne!(latest.state, crate::backup_jobs::BackupState::Running);
    }
}
