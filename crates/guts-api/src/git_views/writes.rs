//! What the write routes answer that no read route does: GitHub's `file-commit` (a
//! contents `PUT`/`DELETE`: the file as it now is, and the commit that made it),
//! `short-blob` (`POST git/blobs`) and `git-tag` (`POST git/tags`). Trees, commits and
//! refs are answered with the read routes' own views.

use guts_service::CreatedTag;
use guts_storage::Oid;
use guts_storage::browse::{CommitInfo, Signature as BrowseSignature, TreeEntry};
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
    pub(crate) fn new(
        repo: &Repo,
        created: &CreatedTag,
        tag: String,
        message: String,
        kind: String,
    ) -> GitTag {
        let sha = hex(&created.id);
        let object_sha = hex(&created.object);
        let tagger = created.tagger.clone();
        GitTag {
            node_id: format!("TAG_{sha}"),
            url: repo.api(&format!("/git/tags/{sha}")),
            tag,
            message,
            tagger: Person::new(BrowseSignature {
                name: tagger.name,
                email: tagger.email,
                seconds: tagger.time_secs,
                offset: 0,
            }),
            object: TagObject {
                url: repo.api(&format!("/git/{kind}s/{object_sha}")),
                sha: object_sha,
                kind,
            },
            verification: Verification::UNSIGNED,
            sha,
        }
    }
}
