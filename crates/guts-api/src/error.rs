//! `ApiError`: the one error type of the HTTP edge, rendered as GitHub's error JSON
//! (`{"message", "documentation_url", "status", "errors"?}`).
//!
//! Handlers return `Result<_, ApiError>`; middleware that produces its own error
//! statuses (body limit, timeout) is normalised into the same shape by
//! [`crate::middleware::json_errors`], so a client never sees a bare-text error.

use std::borrow::Cow;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// Where GitHub's error bodies point; clients only show it.
pub const DOCUMENTATION_URL: &str = "https://docs.github.com/rest";

/// One entry of the `errors` array of a 422, as GitHub reports validation failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    #[schema(value_type = String)]
    pub resource: Cow<'static, str>,
    #[schema(value_type = String)]
    pub field: Cow<'static, str>,
    /// GitHub's codes: `missing`, `missing_field`, `invalid`, `already_exists`, `custom`.
    #[schema(value_type = String)]
    pub code: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
    www_authenticate: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    documentation_url: &'static str,
    status: String,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
            errors: Vec::new(),
            retry_after: None,
            www_authenticate: false,
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found")
    }

    /// No credentials where some were needed (GitHub's wording).
    pub fn requires_authentication() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Requires authentication")
    }

    /// Credentials that match nothing (GitHub's wording).
    pub fn bad_credentials() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Bad credentials")
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 422 with one field error, GitHub's answer to a well-formed but invalid request.
    pub fn validation(field: FieldError) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
        e.errors.push(field);
        e
    }

    /// 422: a required field is absent (GitHub's `missing_field`).
    pub fn missing_field(resource: &'static str, field: &'static str) -> Self {
        Self::validation(FieldError {
            resource: resource.into(),
            field: field.into(),
            code: "missing_field".into(),
            message: None,
        })
    }

    /// 422: one field breaks a rule, said in `message` (GitHub's `invalid`).
    pub fn invalid_field(resource: &'static str, field: &'static str, message: &str) -> Self {
        Self::validation(FieldError {
            resource: resource.into(),
            field: field.into(),
            code: "invalid".into(),
            message: Some(message.to_owned()),
        })
    }

    /// 422 with every field error found, in a stable order.
    pub fn validation_all(fields: Vec<FieldError>) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
        e.errors = fields;
        e
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The node is saturated: come back shortly.
    pub fn overloaded(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server is at capacity, retry later",
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// The caller spent its rate limit (GitHub's message names who).
    pub fn rate_limited(message: impl Into<Cow<'static, str>>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, message);
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// Something on our side failed; the detail goes to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }

    /// The same error with GitHub's `errors` array (a 403's `too_large`, say).
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Replaces the top-level message (GitHub's "Repository creation failed." over a
    /// field error, for instance).
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    /// Adds `WWW-Authenticate: Basic`, which git's credential helpers wait for.
    pub fn with_basic_challenge(mut self) -> Self {
        self.www_authenticate = true;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field errors of a 422.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            message: &self.message,
            documentation_url: DOCUMENTATION_URL,
            status: self.status.as_u16().to_string(),
            errors: &self.errors,
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"guts\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn renders_github_error_json() {
        let response = ApiError::validation(FieldError {
            resource: "Repository".into(),
            field: "name".into(),
            code: "invalid".into(),
            message: None,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["message"], "Validation Failed");
        assert_eq!(json["documentation_url"], DOCUMENTATION_URL);
        assert_eq!(json["status"], "422");
        assert_eq!(json["errors"][0]["field"], "name");
        assert_eq!(json["errors"][0]["code"], "invalid");
    }

    #[tokio::test]
    async fn overload_carries_retry_after_and_no_empty_errors() {
        let response = ApiError::overloaded(2).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(json.get("errors").is_none());
    }
}
