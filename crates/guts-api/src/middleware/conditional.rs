//! Conditional requests, as GitHub answers them: every successful JSON answer to a
//! `GET` carries an `ETag` (a hash of its body), and a `GET` whose `If-None-Match`
//! names it is answered `304 Not Modified` without the body. Pollers (CI bots,
//! Renovate) rely on this, and GitHub does not count a 304 against the rate limit:
//! `rate_limit`, outside this layer, gives the request back.
//!
//! Only answers whose whole body is already in memory (the typed views: an exact size
//! within [`MAX_TAGGED_BYTES`]) are tagged; streamed bodies (blobs, archives) pass
//! through untouched, so this never buffers what a handler streams.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use http::{HeaderValue, Method, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt as _;

use crate::error::ApiError;

/// Largest body tagged: a page of 100 objects fits; anything larger is streamed.
const MAX_TAGGED_BYTES: u64 = 8 << 20;

pub(crate) async fn conditional(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let wanted = req.headers().get(IF_NONE_MATCH).cloned();
    let response = next.run(req).await;
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let whole = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_TAGGED_BYTES);
    if response.status() != StatusCode::OK || !json || !whole {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(collected) = body.collect().await else {
        return ApiError::internal().into_response();
    };
    let bytes = collected.to_bytes();
    let hash = blake3::hash(&bytes);
    let tag = format!("\"{}\"", hash.to_hex().get(..40).unwrap_or_default());
    let Ok(tag) = HeaderValue::from_str(&tag) else {
        return ApiError::internal().into_response();
    };
    // The body depends on who asks (permissions, private repositories): shared caches
    // must key on the credentials too, and keep it only briefly, as GitHub says.
    parts
        .headers
        .insert(VARY, HeaderValue::from_static("Accept, Authorization"));
    parts.headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=60, s-maxage=60"),
    );
    let fresh = wanted
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches(v, tag.as_bytes()));
    parts.headers.insert(ETAG, tag);
    if fresh {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(CONTENT_TYPE);
        parts.headers.remove(http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Whether an `If-None-Match` list names `tag` (weak comparison, as RFC 9110 asks for
/// `If-None-Match`), or is `*`.
fn matches(list: &str, tag: &[u8]) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate).as_bytes() == tag
    })
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn if_none_match_lists_are_compared_weakly() {
        assert!(matches("\"abc\"", b"\"abc\""));
        assert!(matches("W/\"abc\"", b"\"abc\""));
        assert!(matches("\"x\", \"abc\"", b"\"abc\""));
        assert!(matches("*", b"\"abc\""));
        assert!(!matches("\"abd\"", b"\"abc\""));
        assert!(!matches("", b"\"abc\""));
    }

    /// A repeated read with the ETag it was given is a 304 with the same ETag, no
    /// body, and the rate limit left as it was; a changed resource is a 200 again.
    #[tokio::test]
    async fn a_304_repeats_the_etag_and_costs_no_rate_limit() {
        use axum::body::Body;
        use http::Request;
        use serde_json::json;

        use crate::test_support::{TestApp, send_request};

        let app = TestApp::new(Default::default());
        let token = app.user("alice").await;
        let (res, _) = app
            .call(
                "POST",
                "/api/v3/user/repos",
                Some(&token),
                Some(json!({"name": "r"})),
            )
            .await;
        assert_eq!(res.status(), 201);
        let get = |etag: Option<&str>| {
            let mut req = Request::builder()
                .uri("/api/v3/repos/alice/r")
                .header("authorization", format!("token {token}"));
            if let Some(etag) = etag {
                req = req.header("if-none-match", etag);
            }
            send_request(app.router.clone(), req.body(Body::empty()).unwrap())
        };
        let remaining = |res: &http::Response<()>| -> u64 {
            res.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (first, body) = get(None).await;
        assert_eq!(first.status(), 200);
        assert_eq!(body["name"], "r");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");

        let (again, body) = get(Some(&etag)).await;
        assert_eq!(again.status(), 304);
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(body.is_null(), "a 304 has no body: {body}");
        assert_eq!(remaining(&again), remaining(&first), "a 304 is not counted");
        let (weak, _) = get(Some(&format!("W/{etag}"))).await;
        assert_eq!(weak.status(), 304);

        // A stale tag is a full answer, and it is counted.
        let (stale, body) = get(Some("\"0000\"")).await;
        assert_eq!(stale.status(), 200);
        assert_eq!(body["name"], "r");
        assert_eq!(remaining(&stale), remaining(&first) - 1);
        // The resource changes: the old tag no longer matches.
        let (res, _) = app
            .call(
                "PATCH",
                "/api/v3/repos/alice/r",
                Some(&token),
                Some(json!({"description": "changed"})),
            )
            .await;
        assert_eq!(res.status(), 200);
        let (changed, body) = get(Some(&etag)).await;
        assert_eq!(changed.status(), 200);
        assert_eq!(body["description"], "changed");
        assert_ne!(changed.headers()["etag"], etag.as_str());
    }
}
