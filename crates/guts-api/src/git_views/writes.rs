//! What the write routes answer that no read route does: GitHub's `file-commit` (a
//! contents `PUT`/`DELETE`: the file as it now is, and the commit that made it),
//! `short-blob` (`POST git/blobs`) and `git-tag` (`POST git/tags`). Trees, commits and
//! refs are answered with the read routes' own views.

use guts_service::CreatedTag;
use guts_storage::Oid;
use guts_storage::browse::{CommitInfo, Signature as BrowseSignature, TagInfo, TreeEntry};
use serde::Serialize;

use super::commit::{GitCommit, Person, Verification};
use super::contents::ContentEntry;
use crate::browse::{Repo, hex};

/// GitHub's `file-commit`: `content` is `null` after a deletion.
#[derive(Debug, Serialize)]
pub(crate) struct FileCommit {
    content: Option<ContentEntry>,
    commit: GitCommit,
}

impl FileCommit {
    /// The file `entry` (`None` once deleted) on branch `at`, written by `commit`.
    pub(crate) fn new(
        repo: &Repo,
        entry: Option<TreeEntry>,
        at: &str,
        commit: CommitInfo,
    ) -> FileCommit {
        FileCommit {
            content: entry.map(|e| ContentEntry::new(repo, e, at)),
            commit: GitCommit::new(repo, commit),
        }
    }
}

/// GitHub's `short-blob`: where the new blob is.
#[derive(Debug, Serialize)]
pub(crate) struct ShortBlob {
    url: String,
    sha: String,
}

impl ShortBlob {
    pub(crate) fn new(repo: &Repo, id: &Oid) -> ShortBlob {
        let sha = hex(id);
        ShortBlob {
            url: repo.api(&format!("/git/blobs/{sha}")),
            sha,
        }
    }
}

/// The object an annotated tag points at.
#[derive(Debug, Serialize)]
pub(crate) struct TagObject {
    sha: String,
    #[serde(rename = "type")]
    kind: String,
    url: String,
}

/// GitHub's `git-tag`: an annotated tag object.
#[derive(Debug, Serialize)]
pub(crate) struct GitTag {
    node_id: String,
    tag: String,
    sha: String,
    url: String,
    message: String,
    tagger: Person,
    object: TagObject,
    verification: Verification,
}

impl GitTag {
    /// The tag `created` named `tag`, of an object of kind `kind`, as written.
    pub(crate) fn created(
        repo: &Repo,
        created: &CreatedTag,
        tag: String,
        message: String,
        kind: &'static str,
    ) -> GitTag {
        let tagger = created.tagger.clone();
        GitTag::new(
            repo,
            TagInfo {
                id: created.id,
                name: tag,
                message,
                object: created.object,
                object_kind: kind,
                tagger: Some(BrowseSignature {
                    name: tagger.name,
                    email: tagger.email,
                    seconds: tagger.time_secs,
                    offset: 0,
                }),
            },
        )
    }

    /// The annotated tag object `tag` (a tag written without a tagger shows an empty
    /// one: GitHub's shape requires it).
    pub(crate) fn new(repo: &Repo, tag: TagInfo) -> GitTag {
        let sha = hex(&tag.id);
        let object_sha = hex(&tag.object);
        let kind = tag.object_kind;
        GitTag {
            node_id: format!("TAG_{sha}"),
            url: repo.api(&format!("/git/tags/{sha}")),
            tag: tag.name,
            message: tag.message,
            tagger: Person::new(tag.tagger.unwrap_or(BrowseSignature {
                name: String::new(),
                email: String::new(),
                seconds: 0,
                offset: 0,
            })),
            object: TagObject {
                url: repo.api(&format!("/git/{kind}s/{object_sha}")),
                sha: object_sha,
                kind: kind.to_owned(),
            },
            verification: Verification::UNSIGNED,
            sha,
        }
    }
}
