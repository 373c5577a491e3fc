//! JSON responses, serialized into a buffer sized for GitHub's objects.
//!
//! axum's `Json` starts from 128 bytes and grows as it writes; a GitHub object is one
//! to a few kilobytes (an issue with its user is about 1.8 kB), so that cost a chain of
//! reallocations and copies on every response. This starts at a size that holds one
//! object and grows only for pages of them. GitHub's error bodies (`error::ApiError`)
//! keep axum's `Json`: they are small, and this type answers its own failure with one.

use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use serde::Serialize;

use crate::error::ApiError;

/// Holds one typical object (an issue, a repository, a pull request) without growing.
const INITIAL_BYTES: usize = 4096;

/// A JSON response body: `application/json`, serialized once, straight into the
/// response's buffer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut buf = Vec::with_capacity(INITIAL_BYTES);
        match serde_json::to_writer(&mut buf, &self.0) {
            Ok(()) => (
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                buf,
            )
                .into_response(),
            Err(e) => {
                // The views are strings, numbers and nested structs: a failure here is
                // a bug, answered as GitHub's 500 rather than a truncated body.
                tracing::error!(error = %e, "a response did not serialise");
                ApiError::internal().into_response()
            }
        }
    }
}
