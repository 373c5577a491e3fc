//! Repository contents (`/contents/{path}`): GitHub's `content-tree` entry that every
//! answer is made of, and the file, symlink, submodule and directory answers.

use guts_storage::browse::{EntryKind, TreeEntry};
use serde::Serialize;

use super::base64_lines;
use crate::browse::{Repo, hex};

fn contents_type(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Submodule => "submodule",
    }
}

/// The fields every contents object has (a directory lists these alone).
#[derive(Debug, Serialize)]
pub(crate) struct ContentEntry {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Bytes of a file or symlink; 0 for a directory or submodule.
    size: u64,
    name: String,
    path: String,
    sha: String,
    url: String,
    /// `null` for a submodule, whose objects live in another repository.
    git_url: Option<String>,
    /// `null` for a submodule.
    html_url: Option<String>,
    /// Files and symlinks only, `null` otherwise.
    download_url: Option<String>,
    #[serde(rename = "_links")]
    links: ContentLinks,
}

/// `_links` of a contents object: the same URLs again, as hypermedia clients read them.
#[derive(Debug, Serialize)]
pub(crate) struct ContentLinks {
    #[serde(rename = "self")]
    this: String,
    git: Option<String>,
    html: Option<String>,
}

impl ContentEntry {
    /// `entry` (its path from the root) seen at ref `at`, which its URLs name.
    pub(crate) fn new(repo: &Repo, entry: TreeEntry, at: &str) -> ContentEntry {
        let sha = hex(&entry.id);
        let path = entry.path;
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
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
        ContentEntry {
            kind: contents_type(entry.kind),
            size: entry.size.unwrap_or(0),
            name,
            path,
            sha,
            links: ContentLinks {
                this: url.clone(),
                git: git_url.clone(),
                html: html_url.clone(),
            },
            url,
            git_url,
            html_url,
            download_url,
        }
    }
}

/// What `GET /contents/{path}` answers: a directory is the array of its entries, the
/// rest are one object.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Contents {
    Dir(Vec<ContentEntry>),
    File(FileContent),
    Symlink(SymlinkContent),
    Submodule(SubmoduleContent),
}

/// A file with its bytes in base64, or with empty `content` and encoding `none` when
/// it was too large to read.
#[derive(Debug, Serialize)]
pub(crate) struct FileContent {
    #[serde(flatten)]
    entry: ContentEntry,
    content: String,
    encoding: &'static str,
}

/// A symlink: GitHub shows its target rather than its bytes.
#[derive(Debug, Serialize)]
pub(crate) struct SymlinkContent {
    #[serde(flatten)]
    entry: ContentEntry,
    target: String,
}

/// A submodule: GitHub adds the URL it is cloned from, which lives in `.gitmodules`;
/// Guts does not read it, so it is `null`.
#[derive(Debug, Serialize)]
pub(crate) struct SubmoduleContent {
    #[serde(flatten)]
    entry: ContentEntry,
    submodule_git_url: Option<String>,
}

impl Contents {
    /// A directory's `entries`, seen at `at`.
    pub(crate) fn dir(repo: &Repo, entries: Vec<TreeEntry>, at: &str) -> Contents {
        Contents::Dir(
            entries
                .into_iter()
                .map(|e| ContentEntry::new(repo, e, at))
                .collect(),
        )
    }

    /// A file or symlink seen at `at`, with its bytes when they were read (`None` when
    /// the file was too large to send inline).
    pub(crate) fn blob(repo: &Repo, entry: TreeEntry, data: Option<&[u8]>, at: &str) -> Contents {
        let symlink = entry.kind == EntryKind::Symlink;
        let entry = ContentEntry::new(repo, entry, at);
        if symlink {
            let target = data.map(String::from_utf8_lossy).unwrap_or_default();
            return Contents::Symlink(SymlinkContent {
                entry,
                target: target.into_owned(),
            });
        }
        let (content, encoding) = match data {
            Some(data) => (base64_lines(data), "base64"),
            None => (String::new(), "none"),
        };
        Contents::File(FileContent {
            entry,
            content,
            encoding,
        })
    }

    /// A submodule seen at `at`.
    pub(crate) fn submodule(repo: &Repo, entry: TreeEntry, at: &str) -> Contents {
        Contents::Submodule(SubmoduleContent {
            entry: ContentEntry::new(repo, entry, at),
            submodule_git_url: None,
        })
    }
}
