//! GitHub's JSON shapes for git data: commits (the git object and the REST commit),
//! changed files, tree entries and file contents. Every object carries the absolute
//! URLs GitHub gives, because clients navigate by them.

use base64::Engine as _;
use guts_storage::browse::{ChangeStatus, CommitInfo, EntryKind, FileChange, Signature, TreeEntry};
use serde_json::{Value, json};

use crate::browse::{Repo, hex};
use crate::time::iso8601;

/// Base64 as GitHub sends blob and file contents: wrapped at 60 characters, each line
/// ending in a newline.
pub(crate) fn base64_lines(data: &[u8]) -> String {
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
/// the streamed field comes last.)
pub(crate) fn json_with_base64(head: &Value, field: &str, data: Vec<u8>) -> axum::body::Body {
    let mut open = head.to_string();
    if open.ends_with('}') {
        open.pop();
    }
    if open.len() > 1 {
        open.push(',');
    }
    open.push_str(&json!(field).to_string());
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
    axum::body::Body::from_stream(stream)
}

/// `{name, email, date}`; the date in UTC, as GitHub shows it.
fn person(sig: &Signature) -> Value {
    json!({
        "name": sig.name,
        "email": sig.email,
        "date": iso8601(u64::try_from(sig.seconds).unwrap_or(0)),
    })
}

/// Git signatures are not verified here: GitHub's shape for an unverified commit.
fn verification() -> Value {
    json!({
        "verified": false,
        "reason": "unsigned",
        "signature": null,
        "payload": null,
        "verified_at": null,
    })
}

fn tree_ref(repo: &Repo, commit: &CommitInfo) -> Value {
    let tree = hex(&commit.tree);
    json!({ "sha": tree, "url": repo.api(&format!("/git/trees/{tree}")) })
}

/// `parents` of a commit, each with its API URL under `api` (`/commits` or
/// `/git/commits`) and its web URL.
fn parents(repo: &Repo, commit: &CommitInfo, api: &str) -> Vec<Value> {
    commit
        .parents
        .iter()
        .map(|p| {
            let p = hex(p);
            json!({
                "sha": p,
                "url": repo.api(&format!("{api}/{p}")),
                "html_url": repo.web(&format!("/commit/{p}")),
            })
        })
        .collect()
}

/// The git commit object (`GET /git/commits/{sha}`).
pub(crate) fn git_commit(repo: &Repo, commit: &CommitInfo) -> Value {
    let sha = hex(&commit.id);
    json!({
        "sha": sha,
        "node_id": format!("C_{sha}"),
        "url": repo.api(&format!("/git/commits/{sha}")),
        "html_url": repo.web(&format!("/commit/{sha}")),
        "author": person(&commit.author),
        "committer": person(&commit.committer),
        "tree": tree_ref(repo, commit),
        "message": commit.message,
        "parents": parents(repo, commit, "/git/commits"),
        "verification": verification(),
    })
}

/// The REST commit (`GET /commits`, `GET /commits/{ref}`, a branch's `commit`).
/// `author` and `committer` are GitHub accounts matched by email; Guts accounts carry
/// no email, so they are `null`, as GitHub shows a commit by an unknown address.
pub(crate) fn commit(repo: &Repo, commit: &CommitInfo) -> Value {
    let sha = hex(&commit.id);
    json!({
        "sha": sha,
        "node_id": format!("C_{sha}"),
        "commit": {
            "author": person(&commit.author),
            "committer": person(&commit.committer),
            "message": commit.message,
            "tree": tree_ref(repo, commit),
            "url": repo.api(&format!("/git/commits/{sha}")),
            "comment_count": 0,
            "verification": verification(),
        },
        "url": repo.api(&format!("/commits/{sha}")),
        "html_url": repo.web(&format!("/commit/{sha}")),
        "comments_url": repo.api(&format!("/commits/{sha}/comments")),
        "author": null,
        "committer": null,
        "parents": parents(repo, commit, "/commits"),
    })
}

fn status_name(status: ChangeStatus) -> &'static str {
    match status {
        ChangeStatus::Added => "added",
        ChangeStatus::Modified => "modified",
        ChangeStatus::Removed => "removed",
        ChangeStatus::Renamed => "renamed",
    }
}

/// One entry of a commit's or comparison's `files`, seen at commit `at`, with its
/// `patch` when storage made one (see `guts_storage::browse::FileChange::patch`).
pub(crate) fn file(repo: &Repo, change: &FileChange, at: &str) -> Value {
    let blob = change.new_id.or(change.old_id).map(|id| hex(&id));
    let path = &change.path;
    let mut value = json!({
        "sha": blob,
        "filename": path,
        "status": status_name(change.status),
        "additions": change.additions,
        "deletions": change.deletions,
        "changes": change.additions + change.deletions,
        "blob_url": repo.web(&format!("/blob/{at}/{path}")),
        "raw_url": repo.web(&format!("/raw/{at}/{path}")),
        "contents_url": repo.api(&format!("/contents/{path}?ref={at}")),
    });
    if let Some(map) = value.as_object_mut() {
        if let Some(previous) = &change.previous_path {
            map.insert("previous_filename".to_string(), json!(previous));
        }
        // Absent (not null) for binary files and files over the diff limits, as on
        // GitHub.
        if let Some(patch) = &change.patch {
            map.insert("patch".to_string(), json!(patch));
        }
    }
    value
}

/// `stats` of a single commit.
pub(crate) fn stats(changes: &[FileChange]) -> Value {
    let additions: usize = changes.iter().map(|c| c.additions).sum();
    let deletions: usize = changes.iter().map(|c| c.deletions).sum();
    json!({ "total": additions + deletions, "additions": additions, "deletions": deletions })
}

fn git_type(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File | EntryKind::Symlink => "blob",
        EntryKind::Dir => "tree",
        EntryKind::Submodule => "commit",
    }
}

/// One entry of `GET /git/trees/{sha}`.
pub(crate) fn tree_entry(repo: &Repo, entry: &TreeEntry) -> Value {
    let sha = hex(&entry.id);
    let kind = git_type(entry.kind);
    let mut value = json!({
        "path": entry.path,
        "mode": format!("{:06o}", entry.mode),
        "type": kind,
        "sha": sha,
    });
    if let Some(map) = value.as_object_mut() {
        if let Some(size) = entry.size {
            map.insert("size".to_string(), json!(size));
        }
        if entry.kind != EntryKind::Submodule {
            map.insert(
                "url".to_string(),
                json!(repo.api(&format!("/git/{kind}s/{sha}"))),
            );
        }
    }
    value
}

fn contents_type(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Submodule => "submodule",
    }
}

/// The fields every contents object has (GitHub's `content-tree` entry), for an entry
/// seen at ref `at`.
pub(crate) fn content_entry(repo: &Repo, entry: &TreeEntry, at: &str) -> Value {
    let sha = hex(&entry.id);
    let path = &entry.path;
    let name = path.rsplit('/').next().unwrap_or(path);
    let url = repo.api(&format!("/contents/{path}?ref={at}"));
    let (git_url, html_url, download_url) = match entry.kind {
        EntryKind::Dir => (
            Some(repo.api(&format!("/git/trees/{sha}"))),
            Some(repo.web(&format!("/tree/{at}/{path}"))),
            None,
        ),
        EntryKind::Submodule => (None, None, None),
        EntryKind::File | EntryKind::Symlink => (
            Some(repo.api(&format!("/git/blobs/{sha}"))),
            Some(repo.web(&format!("/blob/{at}/{path}"))),
            Some(repo.web(&format!("/raw/{at}/{path}"))),
        ),
    };
    json!({
        "type": contents_type(entry.kind),
        "size": entry.size.unwrap_or(0),
        "name": name,
        "path": path,
        "sha": sha,
        "url": url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": download_url,
        "_links": { "self": url, "git": git_url, "html": html_url },
    })
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

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
            let body = json_with_base64(&head, "content", data);
            let bytes = body.collect().await.unwrap().to_bytes();
            let got: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(got, expected, "{len} bytes");
        }
        let empty = json_with_base64(&json!({}), "content", b"hi".to_vec());
        let bytes = empty.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"{\"content\":\"aGk=\\n\"}");
    }
}
