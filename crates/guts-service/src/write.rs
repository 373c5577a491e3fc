//! Writing without git, as bots and CI tools do through GitHub's REST API: objects
//! (blobs, trees, commits, annotated tags) written into the repository's git store,
//! refs created, moved and deleted, and one-file commits (contents `PUT`/`DELETE`).
//!
//! Every use case here needs what a push needs ([`Service::may_push`]). Objects are
//! written locally and need no operation (peers fetch them, as after a merge, once a
//! ref names them). Every ref change is exactly one `UpdateRef` operation signed for
//! the caller through [`Service::pusher`], the very path `git push` takes: the fold
//! applies branch protection, reserved refs and ref-name rules per ref, so a write
//! through the API is refused exactly where the same push would be. Its refusal is
//! turned into this layer's errors here, once, with GitHub's meaning for each use
//! case (a protected branch refuses a contents write with a conflict, a ref update as
//! unprocessable).

use std::time::{SystemTime, UNIX_EPOCH};

use guts_core::names::validate_ref_name;
use guts_core::{ObjectId, ProtectedAction, Rejection};
use guts_storage::{
    EntryChange, FileEdit, GitRepo, Mode, NewCommit, NewTag, Oid, RefCommand, RefRefusal,
    Signature, TreeEdit, WriteError,
};

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, FieldProblem, ServiceError};
use crate::repos::RepoAccess;

/// The email written for a caller who names none: stable per login, and never a
/// real mailbox (GitHub's `@users.noreply.github.com` in spirit). Merges use it too.
pub fn noreply_email(login: &str) -> String {
    format!("{login}@users.noreply.guts")
}

/// An author, committer or tagger as the client gave it; `time_secs` `None` is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub time_secs: Option<i64>,
}

/// One entry of a tree request, as the client spelled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntryRequest {
    pub path: String,
    pub mode: String,
    /// `blob`, `tree` or `commit`, checked against the mode when given.
    pub kind: Option<String>,
    /// `Some(None)` is GitHub's `sha: null`: remove the path.
    pub sha: Option<Option<String>>,
    pub content: Option<String>,
}

/// `POST git/commits`.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub message: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author: Option<Person>,
    pub committer: Option<Person>,
}

/// `POST git/tags`.
#[derive(Debug, Clone)]
pub struct TagRequest {
    pub tag: String,
    pub message: String,
    pub object: String,
    pub object_type: String,
    pub tagger: Option<Person>,
}

/// What `POST git/tags` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTag {
    pub id: Oid,
    /// As written: the caller, dated now, when the request named none.
    pub tagger: Signature,
    /// The object tagged.
    pub object: Oid,
}

/// Contents `PUT` (with `content`) or `DELETE` (without).
#[derive(Debug, Clone)]
pub struct FileRequest {
    pub path: String,
    /// A short branch name; the default branch when `None`.
    pub branch: Option<String>,
    /// The blob the client replaces (required when a file is there).
    pub sha: Option<String>,
    pub content: Option<Vec<u8>>,
    pub message: String,
    pub author: Option<Person>,
    pub committer: Option<Person>,
}

/// What a contents write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWritten {
    /// The short branch name written to.
    pub branch: String,
    pub commit: Oid,
    /// The file's blob; `None` after a deletion.
    pub blob: Option<Oid>,
    pub created: bool,
}

/// The shortest full ref name GitHub creates: `refs/` and two more components.
fn check_new_ref_name(name: &str) -> Result<(), ServiceError> {
    let invalid = |message: String| ServiceError::Invalid {
        summary: Some("Reference name is invalid"),
        problems: vec![FieldProblem {
            resource: "Reference".into(),
            field: "ref".into(),
            code: FieldCode::Invalid,
            message: Some(message),
        }],
    };
    validate_ref_name(name).map_err(|e| invalid(e.to_string()))?;
    if name.matches('/').count() < 2 {
        return Err(invalid(
            "must start with 'refs' and have at least two slashes".into(),
        ));
    }
    if name.starts_with("refs/guts/") {
        return Err(invalid("refs under refs/guts/ are reserved".into()));
    }
    Ok(())
}

/// The full ref name of `git/refs/{ref}` (`heads/main` → `refs/heads/main`), when it
/// is one a ref could have; any other name names no ref.
pub fn ref_from_path(short: &str) -> Option<String> {
    let full = format!("refs/{}", short.strip_prefix("refs/").unwrap_or(short));
    check_new_ref_name(&full).ok().map(|()| full)
}

/// A full 40-digit hex object id, else 422 naming `field`.
pub(crate) fn parse_sha(
    resource: &'static str,
    field: &'static str,
    text: &str,
) -> Result<Oid, ServiceError> {
    let mut id = [0u8; 20];
    // `from_str_radix` alone would take `+f` as a digit pair.
    if text.len() != 40
        || !text.bytes().all(|b| b.is_ascii_hexdigit())
        || hex_decode(text, &mut id).is_none()
    {
        return Err(ServiceError::invalid(
            resource,
            field,
            FieldCode::Invalid,
            Some(format!("{text:?} is not a full 40-character object id")),
        ));
    }
    Ok(id)
}

fn hex_decode(text: &str, out: &mut [u8; 20]) -> Option<()> {
    let bytes = text.as_bytes();
    for (i, slot) in out.iter_mut().enumerate() {
        let pair = bytes.get(2 * i..2 * i + 2)?;
        let s = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(s, 16).ok()?;
    }
    Some(())
}

fn hex(id: &Oid) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Author and committer as GitHub fills them in: each defaults to the other, and both
/// to the caller (login, [`noreply_email`]), dated now unless a date was given.
fn identities(
    who: &Authed,
    author: Option<Person>,
    committer: Option<Person>,
) -> (Signature, Signature) {
    let now = now_secs();
    let login = &who.user.login;
    let sign = |p: Person| Signature {
        name: p.name,
        email: p.email,
        time_secs: p.time_secs.unwrap_or(now),
    };
    let caller = || Signature {
        name: login.clone(),
        email: noreply_email(login),
        time_secs: now,
    };
    match (author, committer) {
        (Some(a), Some(c)) => (sign(a), sign(c)),
        (Some(a), None) => {
            let a = sign(a);
            (a.clone(), a)
        }
        (None, Some(c)) => {
            let c = sign(c);
            (c.clone(), c)
        }
        (None, None) => (caller(), caller()),
    }
}

/// Storage's refusals as this layer's errors, naming `resource`'s fields.
fn write_error(resource: &'static str, e: WriteError) -> ServiceError {
    let field = |field: &'static str, e: &WriteError| {
        ServiceError::invalid(resource, field, FieldCode::Invalid, Some(e.to_string()))
    };
    match e {
        WriteError::InvalidPath { .. } => field("path", &e),
        WriteError::ContentNotABlob(_) => field("content", &e),
        WriteError::Missing { what, .. } | WriteError::WrongKind { what, .. } => {
            ServiceError::Invalid {
                summary: Some(match e {
                    WriteError::Missing { .. } => "Object does not exist",
                    _ => "Object is of the wrong type",
                }),
                problems: vec![FieldProblem {
                    resource: resource.into(),
                    field: what.into(),
                    code: FieldCode::Invalid,
                    message: Some(e.to_string()),
                }],
            }
        }
        WriteError::TooLarge { .. } => field("content", &e),
        WriteError::TooMany { what, .. } => {
            field(if what == "parents" { "parents" } else { "tree" }, &e)
        }
        WriteError::InvalidIdentity { role, .. } => field(role, &e),
        WriteError::InvalidTagName(..) => field("tag", &e),
        WriteError::InvalidMessage => field("message", &e),
        WriteError::ShaRequired => {
            ServiceError::Unprocessable("Invalid request.\n\n\"sha\" wasn't supplied.".into())
        }
        WriteError::ShaMismatch { .. } => ServiceError::Conflict(e.to_string().into()),
        WriteError::FileNotFound(_) => ServiceError::NotFound,
        WriteError::NotAFile(_) => field("path", &e),
        e @ WriteError::Git(_) => {
            tracing::error!(error = %e, "writing git objects failed");
            ServiceError::Internal
        }
    }
}

/// Which use case a ref refusal answers: GitHub tells the same refusal differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefWrite {
    Create,
    Update,
    Delete,
    Contents,
}

/// The fold's (or the compare-and-swap's) refusal of one ref change.
fn ref_refused(name: &str, via: RefWrite, refusal: RefRefusal) -> ServiceError {
    match refusal {
        RefRefusal::Stale { .. } => match via {
            RefWrite::Create => ServiceError::Unprocessable("Reference already exists".into()),
            RefWrite::Delete => ServiceError::Unprocessable("Reference does not exist".into()),
            RefWrite::Update | RefWrite::Contents => ServiceError::Conflict(
                format!("{name} was changed by another update; fetch it and try again").into(),
            ),
        },
        RefRefusal::Rejected(Rejection::NonFastForward) => {
            ServiceError::Unprocessable("Update is not a fast forward".into())
        }
        RefRefusal::Rejected(
            r @ (Rejection::Protected(_)
            | Rejection::ReviewRequired { .. }
            | Rejection::StatusCheck { .. }),
        ) => {
            let why = match &r {
                Rejection::ReviewRequired { .. }
                | Rejection::Protected(ProtectedAction::DirectPush) => {
                    "Changes must be made through a pull request.".to_string()
                }
                Rejection::Protected(ProtectedAction::ForcePush) => {
                    "Cannot force-push to this branch.".to_string()
                }
                Rejection::Protected(ProtectedAction::Deletion) => {
                    "Cannot delete this protected branch.".to_string()
                }
                other => other.to_string(),
            };
            let message = format!("Protected branch update failed for {name}: {why}");
            if via == RefWrite::Contents {
                ServiceError::Conflict(message.into())
            } else {
                ServiceError::Unprocessable(message)
            }
        }
        RefRefusal::Rejected(r @ Rejection::NotPermitted { .. }) => ServiceError::Rejected(r),
        other @ (RefRefusal::Rejected(_) | RefRefusal::AtomicAborted) => {
            ServiceError::Unprocessable(other.to_string())
        }
    }
}

impl Service {
    /// Runs `f` against the repository's git store on the blocking pool, after the
    /// push check.
    pub(crate) async fn with_git<T, F>(
        &self,
        who: &Authed,
        access: &RepoAccess,
        f: F,
    ) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&GitRepo) -> Result<T, ServiceError> + Send + 'static,
    {
        self.may_push(who, access)?;
        let git = self.repos.git().clone();
        let dir = access.view.id.to_string();
        tokio::task::spawn_blocking(move || {
            let repo = git.open_repo(&dir).map_err(|e| {
                tracing::error!(error = %e, "cannot open a repository to write");
                ServiceError::Internal
            })?;
            f(&repo)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a git write task failed");
            ServiceError::Internal
        })?
    }

    /// One ref change as one signed `UpdateRef` of `who`, through the push path.
    async fn change_ref(
        &self,
        who: &Authed,
        access: &RepoAccess,
        via: RefWrite,
        command: RefCommand,
    ) -> Result<(), ServiceError> {
        let name = command.name.clone();
        let pusher = self.pusher(who, access)?;
        let mut results = pusher.update_refs(vec![command], false).await?;
        match results.pop() {
            Some(Ok(())) => Ok(()),
            Some(Err(refusal)) => Err(ref_refused(&name, via, refusal)),
            None => {
                tracing::error!("a ref update answered nothing");
                Err(ServiceError::Internal)
            }
        }
    }

    /// `POST git/blobs`: writes `bytes` as a blob.
    pub async fn create_blob(
        &self,
        who: &Authed,
        access: &RepoAccess,
        bytes: Vec<u8>,
    ) -> Result<Oid, ServiceError> {
        self.with_git(who, access, move |git| {
            git.create_blob(&bytes).map_err(|e| write_error("Blob", e))
        })
        .await
    }

    /// `POST git/trees`: `entries` on top of `base_tree` (or of nothing).
    pub async fn create_tree(
        &self,
        who: &Authed,
        access: &RepoAccess,
        base_tree: Option<String>,
        entries: Vec<TreeEntryRequest>,
    ) -> Result<Oid, ServiceError> {
        let base = base_tree
            .map(|b| parse_sha("Tree", "base_tree", &b))
            .transpose()?;
        if entries.len() > guts_storage::write::MAX_TREE_EDITS {
            return Err(write_error(
                "Tree",
                WriteError::TooMany {
                    what: "tree entries",
                    max: guts_storage::write::MAX_TREE_EDITS,
                },
            ));
        }
        let edits = entries
            .into_iter()
            .map(tree_edit)
            .collect::<Result<Vec<_>, _>>()?;
        self.with_git(who, access, move |git| {
            git.create_tree(base.as_ref(), &edits)
                .map_err(|e| write_error("Tree", e))
        })
        .await
    }

    /// `POST git/commits`.
    pub async fn create_commit(
        &self,
        who: &Authed,
        access: &RepoAccess,
        request: CommitRequest,
    ) -> Result<Oid, ServiceError> {
        let tree = parse_sha("Commit", "tree", &request.tree)?;
        let parents = request
            .parents
            .iter()
            .map(|p| parse_sha("Commit", "parents", p))
            .collect::<Result<Vec<_>, _>>()?;
        let (author, committer) = identities(who, request.author, request.committer);
        let message = request.message;
        self.with_git(who, access, move |git| {
            git.create_commit(&NewCommit {
                tree,
                parents: &parents,
                author: &author,
                committer: &committer,
                message: &message,
            })
            .map_err(|e| write_error("Commit", e))
        })
        .await
    }

    /// `POST git/tags`: an annotated tag object (its ref is `POST git/refs`).
    pub async fn create_tag(
        &self,
        who: &Authed,
        access: &RepoAccess,
        request: TagRequest,
    ) -> Result<CreatedTag, ServiceError> {
        let object = parse_sha("Tag", "object", &request.object)?;
        let (tagger, _) = identities(who, request.tagger, None);
        self.with_git(who, access, move |git| {
            git.create_tag(&NewTag {
                name: &request.tag,
                message: &request.message,
                object,
                object_type: &request.object_type,
                tagger: &tagger,
            })
            .map(|id| CreatedTag {
                id,
                tagger: tagger.clone(),
                object,
            })
            .map_err(|e| write_error("Tag", e))
        })
        .await
    }

    /// `POST git/refs`: a new ref at an existing object (a branch at a commit).
    pub async fn create_ref(
        &self,
        who: &Authed,
        access: &RepoAccess,
        name: &str,
        sha: &str,
    ) -> Result<(), ServiceError> {
        check_new_ref_name(name)?;
        let new = parse_sha("Reference", "sha", sha)?;
        if access.view.state.refs.contains_key(name) {
            return Err(ServiceError::Unprocessable(
                "Reference already exists".into(),
            ));
        }
        let branch = name.starts_with("refs/heads/");
        self.with_git(who, access, move |git| object_for_ref(git, &new, branch))
            .await?;
        let command = RefCommand {
            name: name.to_string(),
            old: None,
            new: Some(ObjectId::from_bytes(new)),
        };
        self.change_ref(who, access, RefWrite::Create, command)
            .await
    }

    /// `PATCH git/refs/{ref}`: moves an existing ref; a move that is not a
    /// fast-forward needs `force` (and then what a force-push needs).
    pub async fn update_ref(
        &self,
        who: &Authed,
        access: &RepoAccess,
        short: &str,
        sha: &str,
        force: bool,
    ) -> Result<(), ServiceError> {
        let new = parse_sha("Reference", "sha", sha)?;
        let (name, old) = existing_ref(access, short)?;
        let branch = name.starts_with("refs/heads/");
        let old_id = *old.as_bytes();
        let fast_forward = self
            .with_git(who, access, move |git| {
                object_for_ref(git, &new, branch)?;
                Ok(git.is_ancestor(&old_id, &new))
            })
            .await?;
        if !fast_forward && !force {
            return Err(ServiceError::Unprocessable(
                "Update is not a fast forward".into(),
            ));
        }
        let command = RefCommand {
            name: name.clone(),
            old: Some(old),
            new: Some(ObjectId::from_bytes(new)),
        };
        self.change_ref(who, access, RefWrite::Update, command)
            .await
    }

    /// `DELETE git/refs/{ref}`.
    pub async fn delete_ref(
        &self,
        who: &Authed,
        access: &RepoAccess,
        short: &str,
    ) -> Result<(), ServiceError> {
        self.may_push(who, access)?;
        let (name, old) = existing_ref(access, short)?;
        let command = RefCommand {
            name,
            old: Some(old),
            new: None,
        };
        self.change_ref(who, access, RefWrite::Delete, command)
            .await
    }

    /// Contents `PUT` (`content` set) or `DELETE`: one commit changing one file on
    /// top of the branch, and the branch moved to it by one signed operation. The
    /// first write to an empty repository's branch makes its first commit.
    pub async fn write_file(
        &self,
        who: &Authed,
        access: &RepoAccess,
        request: FileRequest,
    ) -> Result<FileWritten, ServiceError> {
        let default = access
            .view
            .state
            .meta
            .as_ref()
            .map(|m| m.default_branch.clone())
            .unwrap_or_else(|| "main".into());
        let branch = request.branch.filter(|b| !b.is_empty()).unwrap_or(default);
        guts_core::names::validate_branch_name(&branch).map_err(|e| {
            ServiceError::invalid("Content", "branch", FieldCode::Invalid, Some(e.to_string()))
        })?;
        let expected = request
            .sha
            .as_deref()
            .map(|s| parse_sha("Content", "sha", s))
            .transpose()?;
        let name = format!("refs/heads/{branch}");
        let tip = access.view.state.refs.get(&name).map(|r| r.target);
        // A branch that does not exist is written only as an empty repository's first.
        if tip.is_none() && !access.view.state.refs.is_empty() {
            return Err(ServiceError::NotFound);
        }
        let (author, committer) = identities(who, request.author, request.committer);
        let (path, content, message) = (request.path, request.content, request.message);
        let tip_id = tip.map(|t| *t.as_bytes());
        let edited = self
            .with_git(who, access, move |git| {
                git.edit_file(&FileEdit {
                    tip: tip_id,
                    path: &path,
                    expected,
                    content: content.as_deref(),
                    message: &message,
                    author: &author,
                    committer: &committer,
                })
                .map_err(|e| write_error("Content", e))
            })
            .await?;
        let command = RefCommand {
            name: name.clone(),
            old: tip,
            new: Some(ObjectId::from_bytes(edited.commit)),
        };
        self.change_ref(who, access, RefWrite::Contents, command)
            .await?;
        Ok(FileWritten {
            branch,
            commit: edited.commit,
            blob: edited.blob,
            created: edited.created,
        })
    }
}

/// The ref `git/refs/{short}` names and its current target, else GitHub's 422.
fn existing_ref(access: &RepoAccess, short: &str) -> Result<(String, ObjectId), ServiceError> {
    let missing = || ServiceError::Unprocessable("Reference does not exist".into());
    let name = ref_from_path(short).ok_or_else(missing)?;
    let old = access
        .view
        .state
        .refs
        .get(&name)
        .map(|r| r.target)
        .ok_or_else(missing)?;
    Ok((name, old))
}

/// `sha` exists; a branch must name a commit (git would refuse to check out
/// anything else).
fn object_for_ref(git: &GitRepo, sha: &Oid, branch: bool) -> Result<(), ServiceError> {
    let unprocessable = |m: &str| ServiceError::Unprocessable(m.to_string());
    match git.object_kind(sha) {
        Ok(None) => Err(unprocessable("Object does not exist")),
        Ok(Some(kind)) if branch && kind != "commit" => {
            Err(unprocessable("A branch must point at a commit"))
        }
        Ok(Some(_)) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, sha = hex(sha), "reading an object's kind failed");
            Err(ServiceError::Internal)
        }
    }
}

/// A tree entry request as storage's edit, every field checked.
fn tree_edit(entry: TreeEntryRequest) -> Result<TreeEdit, ServiceError> {
    let invalid = |field: &'static str, message: String| {
        ServiceError::invalid("Tree", field, FieldCode::Invalid, Some(message))
    };
    let mode = Mode::parse(&entry.mode).ok_or_else(|| {
        invalid(
            "tree.mode",
            format!(
                "{:?} is not one of 100644, 100755, 040000, 160000, 120000",
                entry.mode
            ),
        )
    })?;
    if let Some(kind) = &entry.kind
        && kind != mode.object_type()
    {
        return Err(invalid(
            "tree.type",
            format!("{kind:?} does not match mode {}", entry.mode),
        ));
    }
    let change = match (entry.sha, entry.content) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "tree.sha",
                "use either tree.sha or content, not both".into(),
            ));
        }
        (Some(None), None) => EntryChange::Remove,
        (Some(Some(sha)), None) => EntryChange::Object(parse_sha("Tree", "tree.sha", &sha)?),
        (None, Some(content)) => EntryChange::Content(content.into_bytes()),
        (None, None) => {
            return Err(ServiceError::invalid(
                "Tree",
                "tree.sha",
                FieldCode::MissingField,
                Some("tree.sha or content is required".into()),
            ));
        }
    };
    Ok(TreeEdit {
        path: entry.path,
        mode,
        change,
    })
}

#[cfg(test)]
mod tests;

impl Service {
    /// With `auto_init`, the creator's first commit in the new repository `view`: a
    /// README naming it (and its description), on the default branch, written like a
    /// contents `PUT` (one signed ref update). A failure here leaves the repository
    /// created and empty, which the error reports.
    pub(crate) async fn initialise(
        &self,
        who: &Authed,
        view: std::sync::Arc<guts_storage::RepoView>,
        auto_init: bool,
    ) -> Result<std::sync::Arc<guts_storage::RepoView>, ServiceError> {
        let Some(meta) = view.state.meta.as_ref().filter(|_| auto_init) else {
            return Ok(view);
        };
        let mut readme = format!("# {}\n", meta.name);
        if !meta.description.is_empty() {
            readme = format!("{readme}\n{}\n", meta.description);
        }
        let access = self.access(crate::Caller::User(who), view.clone());
        let request = FileRequest {
            path: "README.md".into(),
            branch: None,
            sha: None,
            content: Some(readme.into_bytes()),
            message: "Initial commit".into(),
            author: None,
            committer: None,
        };
        self.write_file(who, &access, request).await?;
        self.repos.get(view.id).ok_or(ServiceError::NotFound)
    }
}
