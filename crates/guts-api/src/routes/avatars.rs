//! `GET /avatars/u/{id}`: a generated identicon for every user and organization id, the
//! image behind the `avatar_url` of GitHub's user objects (GitHub serves uploaded
//! pictures from its own host; Guts has no uploads, and clients want a URI they can
//! fetch, not an empty string).
//!
//! The picture is a pure function of the numeric id (which every node agrees on), so
//! every node of a cluster serves the same bytes for it, forever: a long cache lifetime
//! and an ETag are safe. The SVG carries no text from any user, and is served with a
//! policy that forbids scripts in it anyway.

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::error::ApiError;

/// Cells per side: a 5×5 grid mirrored around its middle column, as GitHub's own
/// identicons.
const GRID: usize = 5;

/// The route behind [`Links::avatar`](crate::links::Links::avatar) (`AVATAR_PREFIX`).
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/avatars/u/{id}", get(avatar))
}

async fn avatar(Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return ApiError::not_found().into_response();
    };
    let etag = format!("\"{id:x}\"");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        identicon(id).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    response
}

/// The identicon of `id` as SVG: a hash of the id picks a colour and which cells of the
/// left half (mirrored onto the right) are filled.
fn identicon(id: u64) -> String {
    let hash = blake3::hash(&id.to_le_bytes());
    let bytes = hash.as_bytes();
    let [r, g, b] = [bytes[0], bytes[1], bytes[2]].map(|c| 64 + c / 2);
    let mut cells = String::new();
    let half = GRID.div_ceil(2);
    for row in 0..GRID {
        for col in 0..half {
            let bit = row * half + col;
            let on = bytes
                .get(3 + bit / 8)
                .is_some_and(|byte| byte >> (bit % 8) & 1 == 1);
            if !on {
                continue;
            }
            for x in [col, GRID - 1 - col] {
                cells.push_str(&format!("M{x} {row}h1v1h-1z"));
                if x == GRID - 1 - x {
                    break;
                }
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"420\" height=\"420\" \
         viewBox=\"-0.5 -0.5 6 6\" shape-rendering=\"crispEdges\">\
         <rect x=\"-0.5\" y=\"-0.5\" width=\"6\" height=\"6\" fill=\"#f0f0f0\"/>\
         <path fill=\"#{r:02x}{g:02x}{b:02x}\" d=\"{cells}\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identicons_are_stable_symmetric_and_distinct() {
        let a = identicon(42);
        assert_eq!(a, identicon(42));
        assert_ne!(a, identicon(43));
        assert!(a.starts_with("<svg ") && a.ends_with("</svg>"));
        // Mirrored: every filled cell of the left half has its twin on the right.
        let hash = blake3::hash(&42u64.to_le_bytes());
        let filled = (0..15)
            .filter(|bit| hash.as_bytes()[3 + bit / 8] >> (bit % 8) & 1 == 1)
            .count();
        let middle = (0..15)
            .filter(|bit| bit % 3 == 2 && hash.as_bytes()[3 + bit / 8] >> (bit % 8) & 1 == 1)
            .count();
        assert_eq!(a.matches("h1v1h-1z").count(), 2 * filled - middle);
    }

    #[tokio::test]
    async fn served_with_a_strict_policy_and_revalidated_by_etag() {
        use http_body_util::BodyExt as _;
        use tower::ServiceExt as _;

        let app = crate::test_support::TestApp::new(Default::default());
        let get = |path: &str, etag: Option<&str>| {
            let mut req = http::Request::builder().uri(path);
            if let Some(etag) = etag {
                req = req.header("if-none-match", etag);
            }
            let req = req.body(axum::body::Body::empty()).unwrap();
            app.router.clone().oneshot(req)
        };
        // The URL the user objects hand out is the one served.
        let (mut parts, _) = http::Request::new(()).into_parts();
        let links =
            <crate::links::Links as axum::extract::FromRequestParts<()>>::from_request_parts(
                &mut parts,
                &(),
            )
            .await
            .unwrap();
        let url = links.avatar(7);
        let path = url.strip_prefix(links.origin()).unwrap();
        let res = get(path, None).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/svg+xml");
        let policy = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'none'"), "{policy}");
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], identicon(7).as_bytes());
        let res = get(path, Some(&etag)).await.unwrap();
        assert_eq!(res.status(), 304);
        assert_eq!(res.headers()["etag"], etag.as_str());
        let res = get("/avatars/u/not-a-number", None).await.unwrap();
        assert_eq!(res.status(), 404);
    }
}
