//! [`WebError`]: what a page handler answers instead of a page, and the one mapping of
//! the use-case layer's errors to pages (a readable page with the right status, never a
//! stack trace or a JSON body).

use axum::response::{IntoResponse, Redirect, Response};
use guts_service::{Denied, FieldCode, ServiceError};
use http::StatusCode;
use maud::html;

use crate::layout;

/// A page that could not be shown, or a visitor who must sign in first.
#[derive(Debug)]
pub(crate) enum WebError {
    /// An error page: its status and what to tell the visitor.
    Page { status: StatusCode, message: String },
    /// The page needs a signed-in user: to the sign-in page, and back after.
    SignIn { return_to: String },
}

impl WebError {
    pub(crate) fn page(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError::Page {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn not_found() -> WebError {
        WebError::page(
            StatusCode::NOT_FOUND,
            "This is not the page you are looking for.",
        )
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> WebError {
        WebError::page(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> WebError {
        WebError::page(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn internal() -> WebError {
        WebError::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on this node. It has been logged.",
        )
    }
}

/// Where a sign-in may send the browser back to: a path on this node only (`//evil` and
/// `/\evil` are other hosts to a browser).
pub(crate) fn local_path(path: &str) -> Option<&str> {
    (path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\"))
        .then_some(path)
        .filter(|p| p.len() <= 2048 && !p.contains(['\r', '\n']))
}

fn field_message(code: FieldCode, field: &str, message: Option<String>) -> String {
    match (code, message) {
        (_, Some(message)) => format!("{field} {message}"),
        (FieldCode::MissingField, None) => format!("{field} is required"),
        (FieldCode::AlreadyExists, None) => format!("{field} already exists"),
        (_, None) => format!("{field} is invalid"),
    }
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> WebError {
        match e {
            ServiceError::NotFound => WebError::not_found(),
            ServiceError::BadCredentials => WebError::page(
                StatusCode::UNAUTHORIZED,
                "Your session has ended. Sign in again.",
            ),
            ServiceError::Forbidden(Denied::Role(_)) | ServiceError::Rejected(_) => {
                WebError::forbidden(format!("You cannot do that here: {e}."))
            }
            ServiceError::Forbidden(denied) => WebError::forbidden(denied.to_string()),
            ServiceError::Invalid { summary, problems } => {
                let mut lines: Vec<String> = summary.map(str::to_string).into_iter().collect();
                lines.extend(
                    problems
                        .into_iter()
                        .map(|p| field_message(p.code, &p.field.replace('_', " "), p.message)),
                );
                WebError::page(StatusCode::UNPROCESSABLE_ENTITY, lines.join(". "))
            }
            ServiceError::Moved(what) => WebError::page(StatusCode::CONFLICT, what),
            ServiceError::NotMergeable(why) => WebError::page(StatusCode::CONFLICT, why),
            ServiceError::Conflict(what) => WebError::page(StatusCode::CONFLICT, what),
            ServiceError::TooLarge { resource, error } => WebError::page(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{resource}: {error}"),
            ),
            ServiceError::Unprocessable(what) => {
                WebError::page(StatusCode::UNPROCESSABLE_ENTITY, what)
            }
            ServiceError::TooManyAttempts { .. } => WebError::page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts. Wait a few minutes and try again.",
            ),
            ServiceError::Internal => WebError::internal(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { return_to } => {
                let target = match local_path(&return_to) {
                    Some(path) => format!("/login?return_to={}", layout::query_escape(path)),
                    None => "/login".to_string(),
                };
                Redirect::to(&target).into_response()
            }
            WebError::Page { status, message } => {
                let title = status.canonical_reason().unwrap_or("Error");
                let body = html! {
                    main.error-page #main {
                        h1 { (status.as_u16()) " " (title) }
                        p.flash-error { (message) }
                        p { a href="/" { "Back to the start page" } }
                    }
                };
                (status, layout::bare(title, body)).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/o/r/issues?x=1"), Some("/o/r/issues?x=1"));
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example",
            "",
            "x",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }
}
