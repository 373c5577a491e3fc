//! Request extractors whose rejections are GitHub-shaped `ApiError`s: JSON bodies and
//! bearer tokens.

use axum::body::Bytes;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use base64::Engine as _;
use guts_service::Caller;
use guts_storage::RepoView;
use http::request::Parts;
use http::{StatusCode, header};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::{ApiError, FieldError};
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

/// The GitHub resource name a request body describes (`Issue`, `Label`…), for the
/// `resource` of its validation errors.
pub trait ApiResource {
    const RESOURCE: &'static str;
}

/// A JSON body (as [`JsonBody`]) that is then checked with `validator`'s rules declared
/// on `T`, before the handler does any work: GitHub's 422 "Validation Failed" with one
/// `{resource, field, code}` per broken rule (`missing_field` for a `required` rule,
/// `invalid` otherwise).
#[derive(Debug, Clone)]
pub struct ValidJson<T>(pub T);

impl<T, S> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned + validator::Validate + ApiResource,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(value) = JsonBody::<T>::from_request(req, state).await?;
        value
            .validate()
            .map_err(|errors| validation_error(T::RESOURCE, &errors))?;
        Ok(ValidJson(value))
    }
}

/// `validator`'s errors as GitHub's field errors, sorted by field.
fn validation_error(resource: &'static str, errors: &validator::ValidationErrors) -> ApiError {
    let mut fields: Vec<FieldError> = errors
        .field_errors()
        .into_iter()
        .flat_map(|(field, broken)| {
            broken.iter().map(move |e| FieldError {
                resource: resource.into(),
                field: field.to_string().into(),
                code: if e.code == "required" {
                    "missing_field".into()
                } else {
                    "invalid".into()
                },
                message: e.message.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    fields.sort_by(|a, b| a.field.cmp(&b.field));
    ApiError::validation_all(fields)
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

/// The credential a request carries: a token from `token`/`Bearer`, or the password of
/// HTTP Basic (how git sends a token). `None` when there is no Authorization header;
/// `Some(None)` when there is one we cannot read (which is a bad credential).
fn credential(parts: &Parts) -> Option<Option<Zeroizing<String>>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    if let Some(token) = bearer_token(parts) {
        return Some(Some(Zeroizing::new(token.to_string())));
    }
    let basic = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .map(Zeroizing::new)
        .and_then(|raw| {
            let text = std::str::from_utf8(&raw).ok()?;
            text.split_once(':')
                .map(|(_, password)| Zeroizing::new(password.to_string()))
        });
    Some(basic)
}

pub use guts_service::Authed;

/// The caller, if they sent credentials. Credentials that match nothing are a 401
/// even where anonymous access would be fine, as on GitHub.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<Authed>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The rate limiter has usually resolved the caller already.
        let caller = match parts.extensions.get::<Authed>() {
            Some(authed) => Some(authed.clone()),
            None => resolve_caller(parts, state)?,
        };
        if let Some(authed) = &caller {
            tracing::Span::current().record("user", authed.user.login.as_str());
        }
        Ok(MaybeUser(caller))
    }
}

/// Who the request's credentials name: `None` without credentials, 401 for
/// credentials that match nothing (GitHub answers those 401 even where anonymous
/// access would be fine).
pub(crate) fn resolve_caller(parts: &Parts, state: &AppState) -> Result<Option<Authed>, ApiError> {
    let Some(credential) = credential(parts) else {
        return Ok(None);
    };
    let Some(token) = credential else {
        return Err(ApiError::bad_credentials());
    };
    Ok(Some(state.service.authenticate(&token)?))
}

/// The caller, who must be authenticated (401 "Requires authentication" otherwise).
#[derive(Debug, Clone)]
pub struct AuthUser(pub Authed);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match MaybeUser::from_request_parts(parts, state).await?.0 {
            Some(authed) => Ok(AuthUser(authed)),
            None => Err(ApiError::requires_authentication()),
        }
    }
}

/// The repository the path's `{owner}` and `{repo}` name (a trailing `.git` ignored),
/// as the caller may see it: 404 for one that does not exist or is private to them.
/// Carries the caller (`None` when anonymous), so a handler that takes this needs no
/// `MaybeUser`; after an `AuthUser`, the 401 for a missing login comes first.
#[derive(Debug, Clone)]
pub struct VisibleRepo {
    pub view: Arc<RepoView>,
    pub caller: Option<Authed>,
}

impl FromRequestParts<AppState> for VisibleRepo {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        visible_repo(parts, state, |service, caller, owner, repo, _| {
            service.repo(caller, owner, repo)
        })
        .await
    }
}

/// [`VisibleRepo`] for the handlers that render issues and nothing else of the
/// repository (one issue, a list of them): its view may come from the store's thread
/// rows instead of a loaded state (see `guts_service::Service::repo_threads`), and
/// then holds only the repository's header, labels and threads: on a route with a
/// `{number}`, only that thread; on one without, only those the query's `state` and
/// `labels` (GitHub's issue list filters, read as the list reads them) may show.
#[derive(Debug, Clone)]
pub struct VisibleThreads(pub VisibleRepo);

impl FromRequestParts<AppState> for VisibleThreads {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        visible_threads(parts, state, true)
            .await
            .map(VisibleThreads)
    }
}

/// [`VisibleThreads`] for the pull request list, whose query has no `labels`: rows are
/// pre-selected by `state` alone. Rendering a pull request in a list (GitHub sends
/// `mergeable` null there) reads the header's refs and access, which the view has.
#[derive(Debug, Clone)]
pub struct VisiblePulls(pub VisibleRepo);

impl FromRequestParts<AppState> for VisiblePulls {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        visible_threads(parts, state, false).await.map(VisiblePulls)
    }
}

/// The repository with the threads a route needs (see [`VisibleThreads`]), the query's
/// `labels` pre-selecting rows only where the list has that filter.
async fn visible_threads(
    parts: &mut Parts,
    state: &AppState,
    by_labels: bool,
) -> Result<VisibleRepo, ApiError> {
    let wanted = axum::extract::Query::<ListPreselect>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let labels = match by_labels {
        true => guts_service::list_labels(wanted.labels.as_deref()),
        false => Vec::new(),
    };
    // A `state` the list refuses selects everything; the handler answers 422.
    let open = guts_service::state_filter(wanted.state.as_deref()).ok();
    visible_repo(parts, state, |service, caller, owner, repo, number| {
        let select = match (number, open) {
            (Some(number), _) => guts_storage::RowSelect::One(number),
            (None, Some(open)) => guts_storage::RowSelect::Matching {
                open,
                labels: &labels,
            },
            (None, None) => guts_storage::RowSelect::All,
        };
        service.repo_threads(caller, owner, repo, select)
    })
    .await
}

/// What [`VisibleThreads`] reads of a list's query to pre-select rows.
#[derive(Debug, Default, serde::Deserialize)]
struct ListPreselect {
    state: Option<String>,
    labels: Option<String>,
}

/// The repository the path names, found by `find` (given the path's `{number}`, if
/// any) as the caller may see it.
async fn visible_repo(
    parts: &mut Parts,
    state: &AppState,
    find: impl FnOnce(
        &guts_service::Service,
        Caller<'_>,
        &str,
        &str,
        Option<u64>,
    ) -> Result<guts_service::RepoAccess, guts_service::ServiceError>,
) -> Result<VisibleRepo, ApiError> {
    let MaybeUser(caller) = MaybeUser::from_request_parts(parts, state).await?;
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::not_found())?;
    let (mut owner, mut repo, mut number) = (None, None, None);
    for (key, value) in &params {
        match key {
            "owner" => owner = Some(value),
            "repo" => repo = Some(value),
            // One that does not parse is refused by the handler's own extractor.
            "number" => number = value.parse::<u64>().ok(),
            _ => {}
        }
    }
    let (Some(owner), Some(repo)) = (owner, repo) else {
        tracing::error!("VisibleRepo on a route without {{owner}} and {{repo}}");
        return Err(ApiError::internal());
    };
    tracing::Span::current().record("repo", format!("{owner}/{repo}"));
    let access = find(
        &state.service,
        Caller::from(caller.as_ref()),
        owner,
        repo,
        number,
    )?;
    Ok(VisibleRepo {
        view: access.view,
        caller,
    })
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

    #[derive(Debug, serde::Deserialize, validator::Validate)]
    struct Sample {
        #[validate(required)]
        title: Option<String>,
        #[validate(length(min = 1, max = 5, message = "must be 1 to 5 characters"))]
        #[serde(default)]
        name: String,
    }

    impl ApiResource for Sample {
        const RESOURCE: &'static str = "Sample";
    }

    async fn valid(body: &str) -> Result<Sample, ApiError> {
        let request = Request::builder()
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        ValidJson::<Sample>::from_request(request, &())
            .await
            .map(|v| v.0)
    }

    #[tokio::test]
    async fn validated_bodies_fail_with_githubs_field_errors() {
        assert_eq!(
            valid(r#"{"title": "t", "name": "ok"}"#).await.unwrap().name,
            "ok"
        );
        let e = valid(r#"{"name": "far too long"}"#).await.unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let json = serde_json::to_value(e.errors()).unwrap();
        assert_eq!(json[0]["field"], "name");
        assert_eq!(json[0]["code"], "invalid");
        assert_eq!(json[0]["message"], "must be 1 to 5 characters");
        assert_eq!(json[1]["field"], "title");
        assert_eq!(json[1]["code"], "missing_field");
        assert_eq!(json[1]["resource"], "Sample");
        // Broken JSON is still 400, the wrong shape 422, before any rule runs.
        assert_eq!(
            valid("{").await.unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            valid(r#"{"title": 1}"#).await.unwrap_err().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
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
