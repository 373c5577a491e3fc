//! Request extractors whose rejections are GitHub-shaped `ApiError`s: JSON bodies and
//! bearer tokens.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body. Like GitHub: no Content-Type required, unparseable JSON is 400
/// "Problems parsing JSON", well-formed JSON of the wrong shape is 422, an oversized body
/// is 413.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "Payload Too Large")
            } else {
                ApiError::bad_request("Problems reading the request body")
            }
        })?;
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(JsonBody(value)),
            Err(e) if e.is_data() => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("Invalid request.\n\n{e}"),
            )),
            Err(_) => Err(ApiError::bad_request("Problems parsing JSON")),
        }
    }
}

/// The token of an `Authorization: token X` or `Authorization: Bearer X` header.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        .then_some(token)
        .filter(|t| !t.is_empty())
}

/// Proof that the request carries `GUTS_ADMIN_TOKEN`.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = &state.admin_token else {
            return Err(ApiError::forbidden(
                "The admin API is disabled: set GUTS_ADMIN_TOKEN to enable it",
            ));
        };
        let Some(given) = bearer_token(parts) else {
            return Err(ApiError::requires_authentication());
        };
        if guts_ops::secret::constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
            Ok(Admin)
        } else {
            Err(ApiError::bad_credentials())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(auth: &str) -> Parts {
        let (parts, ()) = Request::builder()
            .header(header::AUTHORIZATION, auth)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    #[test]
    fn token_and_bearer_schemes() {
        assert_eq!(bearer_token(&parts("token abc")), Some("abc"));
        assert_eq!(bearer_token(&parts("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&parts("Basic abc")), None);
        assert_eq!(bearer_token(&parts("token ")), None);
        assert_eq!(bearer_token(&parts("tokenabc")), None);
    }
}
