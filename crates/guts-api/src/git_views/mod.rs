//! GitHub's JSON shapes for git data, one typed struct per shape, embedded where
//! GitHub embeds them: commits (the git object and the REST commit) and changed files
//! ([`mod@commit`]), refs, trees and blobs ([`objects`]), file contents ([`contents`]),
//! branches with their protection ([`branch`]), and what the write routes answer
//! ([`writes`]: a file commit, a short blob, an annotated tag). Every object carries the absolute
//! URLs GitHub gives, because clients navigate by them.

mod branch;
mod commit;
mod contents;
mod objects;
mod stats;
mod writes;

use base64::Engine as _;
use serde::Serialize;

use crate::error::ApiError;

pub(crate) use branch::{Branch, EnforceAdmins, Protection, RequiredReviews, ShortBranch};
pub(crate) use commit::{Commit, CommitWithFiles, Compared, Comparison, DiffEntry, GitCommit};
pub(crate) use contents::Contents;
pub(crate) use objects::{BlobHead, GitRef, GitTree};
pub(crate) use stats::{Languages, Tag};
pub(crate) use writes::{FileCommit, GitTag, ShortBlob};

/// Base64 as GitHub sends blob and file contents: wrapped at 60 characters, each line
/// ending in a newline.
fn base64_lines(data: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for chunk in encoded.as_bytes().chunks(60) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// Input bytes per streamed chunk of [`json_with_base64`]: 1,092 lines of 45 bytes
/// (60 base64 characters each), about 64 KiB of JSON.
const BASE64_CHUNK_BYTES: usize = 45 * 1092;

/// The JSON object `head` with one more string field `field` holding `data` as
/// [`base64_lines`] would, streamed: the base64 is made one chunk at a time as the
/// body is read, so only `data` and one chunk are held. (Field order is free in JSON;
/// the streamed field comes last.) `head` must serialise as a JSON object; the error,
/// raised before anything is sent, is for one that does not serialise at all.
pub(crate) fn json_with_base64(
    head: &impl Serialize,
    field: &str,
    data: Vec<u8>,
) -> Result<axum::body::Body, ApiError> {
    let unserialisable = |e: serde_json::Error| {
        tracing::error!(error = %e, "a streamed JSON head did not serialise");
        ApiError::internal()
    };
    let mut open = serde_json::to_string(head).map_err(unserialisable)?;
    if open.ends_with('}') {
        open.pop();
    }
    if open.len() > 1 {
        open.push(',');
    }
    open.push_str(&serde_json::to_string(field).map_err(unserialisable)?);
    open.push_str(":\"");
    let chunks = data.len().div_ceil(BASE64_CHUNK_BYTES);
    let stream = futures::stream::iter(
        std::iter::once(bytes::Bytes::from(open))
            .chain((0..chunks).map(move |i| {
                let start = i * BASE64_CHUNK_BYTES;
                let end = (start + BASE64_CHUNK_BYTES).min(data.len());
                let chunk = data.get(start..end).unwrap_or_default();
                // Each 60-character line ends in a newline, escaped in a JSON string.
                let lines = base64_lines(chunk).replace('\n', "\\n");
                bytes::Bytes::from(lines)
            }))
            .chain(std::iter::once(bytes::Bytes::from_static(b"\"}")))
            .map(Ok::<_, std::convert::Infallible>),
    );
    Ok(axum::body::Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use guts_storage::browse::CommitInfo;

    use crate::browse::Repo;
    use http_body_util::BodyExt as _;
    use serde_json::Value;
    use serde_json::json;

    use super::*;

    /// The streamed blob JSON is the JSON the whole-value rendering gave, for sizes
    /// around the chunk and line boundaries.
    #[tokio::test]
    async fn streamed_base64_json_equals_the_whole_value() {
        let head = json!({ "sha": "abc", "size": 3, "encoding": "base64" });
        for len in [
            0,
            1,
            44,
            45,
            46,
            BASE64_CHUNK_BYTES,
            BASE64_CHUNK_BYTES + 7,
            200_000,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut expected = head.clone();
            expected["content"] = json!(base64_lines(&data));
            let body = json_with_base64(&head, "content", data).unwrap();
            let bytes = body.collect().await.unwrap().to_bytes();
            let got: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(got, expected, "{len} bytes");
        }
        let empty = json_with_base64(&json!({}), "content", b"hi".to_vec()).unwrap();
        let bytes = empty.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"content\":\"aGk=\\n\"}");
    }

    /// The keys GitHub sends as `null` are present as `null`, not left out: clients
    /// index into them (a struct field skipped when `None` would drop them).
    #[tokio::test]
    async fn nullable_keys_are_sent_as_null() {
        use axum::extract::FromRequestParts as _;
        use guts_storage::browse::{EntryKind, Signature, TreeEntry};

        use crate::links::Links;
        use crate::test_support::TestApp;

        let app = TestApp::new(Default::default());
        let token = app.user("alice").await;
        let (res, body) = app
            .call(
                "POST",
                "/api/v3/user/repos",
                Some(&token),
                Some(json!({ "name": "r" })),
            )
            .await;
        assert!(res.status().is_success(), "{body}");
        let (mut parts, _) = http::Request::new(()).into_parts();
        let links = Links::from_request_parts(&mut parts, &()).await.unwrap();
        let repo = Repo::find(&app.state, links, "alice", "r", None).unwrap();

        let sig = Signature {
            name: "a".into(),
            email: "a@x".into(),
            seconds: 0,
            offset: 0,
        };
        let info = CommitInfo {
            id: [1; 20],
            tree: [2; 20],
            parents: vec![],
            author: sig.clone(),
            committer: sig,
            message: "m".into(),
        };
        let rest = serde_json::to_value(Commit::new(&repo, info.clone())).unwrap();
        assert_eq!(rest["author"], Value::Null);
        assert_eq!(rest["committer"], Value::Null);
        let verification = rest["commit"]["verification"].as_object().unwrap();
        for key in ["signature", "payload", "verified_at"] {
            assert_eq!(verification.get(key), Some(&Value::Null), "{key}");
        }

        let comparison = Comparison::new(
            &repo,
            "a...b",
            "b",
            Compared {
                base: info,
                merge_base: None,
                status: "identical",
                commits: vec![],
                ahead_by: 0,
                behind_by: 0,
                changes: vec![],
            },
            300,
        );
        let comparison = serde_json::to_value(comparison).unwrap();
        assert_eq!(comparison.get("merge_base_commit"), Some(&Value::Null));

        let entry = TreeEntry {
            path: "sub".into(),
            mode: 0o160000,
            kind: EntryKind::Submodule,
            id: [3; 20],
            size: None,
        };
        let submodule = serde_json::to_value(Contents::submodule(&repo, entry, "main")).unwrap();
        for key in ["git_url", "html_url", "download_url", "submodule_git_url"] {
            assert_eq!(submodule.get(key), Some(&Value::Null), "{key}");
        }
        for key in ["git", "html"] {
            assert_eq!(submodule["_links"].get(key), Some(&Value::Null), "{key}");
        }
    }
}
