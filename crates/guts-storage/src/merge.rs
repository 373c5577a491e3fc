//! The merge engine for pull requests: whether a head merges cleanly into a base, and
//! the commits a merge, squash or rebase produces, written into the object database.
//!
//! Refs are never touched here: the caller moves the base branch through a signed
//! operation, so that the fold stays the only truth about refs. Everything blocks (it
//! reads and writes objects) and runs on the blocking pool.
//!
//! All merging happens in a copy of the repository whose object writes stay in memory
//! (merge results, conflict-marked blobs, the virtual merge bases of criss-cross
//! histories). Only a successful merge's objects reach the disk, fsynced, so an attempt
//! that conflicts, or a mergeability check, leaves the repository exactly as it was.

use std::collections::{BTreeSet, HashMap};

use gix::ObjectId;
use gix::bstr::BString;
use gix::merge::tree::TreatAsUnresolved;
use guts_core::MergeMethod;

use crate::git::{GitRepo, Oid};

/// Who authors (squash, merge) or commits (all methods) the commits a merge writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub email: String,
    /// Seconds since the Unix epoch; written with a `+0000` offset, as the node has no
    /// idea of the user's time zone.
    pub time_secs: i64,
}

/// One merge to perform.
#[derive(Debug, Clone, Copy)]
pub struct MergeRequest<'a> {
    /// The tip of the branch merged into.
    pub base: Oid,
    /// The tip of the pull request's branch.
    pub head: Oid,
    pub method: MergeMethod,
    /// The first line of the merge or squash commit (GitHub's `commit_title`). Unused
    /// by a rebase, whose commits keep their own messages.
    pub title: &'a str,
    /// The body of the merge or squash commit (GitHub's `commit_message`); may be empty.
    pub message: &'a str,
    /// Author and committer of merge and squash commits, committer of rebased ones.
    pub author: &'a Signature,
}

/// Whether a head can be merged into a base (GitHub's `mergeable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mergeability {
    /// The three-way merge has no unresolved conflict.
    Clean,
    /// The three-way merge conflicts in these paths (sorted, each once).
    Conflicts { paths: Vec<String> },
    /// Head is already contained in base: there is nothing to merge.
    UpToDate,
}

/// Why a merge could not be computed or written.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("merge conflict in {}", paths.join(", "))]
    Conflict { paths: Vec<String> },
    /// A tip is not a commit of this repository (absent, or another kind of object).
    #[error("commit {0} not found")]
    NotFound(String),
    #[error("head is already merged into base")]
    UpToDate,
    /// Base and head have no common ancestor (GitHub: "entirely different commit
    /// histories").
    #[error("base and head have no history in common")]
    Unrelated,
    /// A rebase replays a linear history; a merge commit in it has no single parent to
    /// replay against (GitHub refuses such rebases too).
    #[error("commit {0} is a merge commit; a rebase needs a linear history")]
    MergeCommitInRebase(String),
    #[error("git: {0}")]
    Git(String),
}

fn git_err(e: impl std::fmt::Display) -> MergeError {
    MergeError::Git(e.to_string())
}

/// The three-way merge of two trees: its tree, or the paths it conflicts in.
enum Merged {
    Tree(ObjectId),
    Conflicts(Vec<String>),
}

impl GitRepo {
    /// Whether `head` merges cleanly into `base`. Writes nothing: neither refs nor
    /// objects.
    pub fn mergeability(&self, base: &Oid, head: &Oid) -> Result<Mergeability, MergeError> {
        let memory = self.in_memory();
        let Some((base, head)) = related_tips(&memory, base, head)? else {
            return Ok(Mergeability::UpToDate);
        };
        Ok(match merge_commits(&memory, base, head)? {
            Merged::Tree(_) => Mergeability::Clean,
            Merged::Conflicts(paths) => Mergeability::Conflicts { paths },
        })
    }

    /// Writes the commit(s) a merge produces and returns the new tip for the base
    /// branch. Never touches refs: the caller moves the base branch through a signed
    /// operation. On any error nothing has been written.
    pub fn write_merge(&self, req: &MergeRequest<'_>) -> Result<Oid, MergeError> {
        let mut memory = self.in_memory();
        let Some((base, head)) = related_tips(&memory, &req.base, &req.head)? else {
            return Err(MergeError::UpToDate);
        };
        let signature = actor(req.author);
        let tip = match req.method {
            MergeMethod::Merge | MergeMethod::Squash => {
                let tree = match merge_commits(&memory, base, head)? {
                    Merged::Tree(tree) => tree,
                    Merged::Conflicts(paths) => return Err(MergeError::Conflict { paths }),
                };
                // GitHub makes a merge commit even when base is an ancestor of head.
                let parents = if req.method == MergeMethod::Merge {
                    vec![base, head]
                } else {
                    vec![base]
                };
                write_commit(
                    &memory,
                    gix::objs::Commit {
                        tree,
                        parents: parents.into(),
                        author: signature.clone(),
                        committer: signature,
                        encoding: None,
                        message: commit_message(req.title, req.message),
                        extra_headers: Vec::new(),
                    },
                )?
            }
            MergeMethod::Rebase => rebase(&memory, base, head, &signature)?,
        };
        self.persist(&mut memory)?;
        tip.as_bytes().try_into().map_err(git_err)
    }

    /// A copy of this repository whose object writes stay in memory.
    pub(crate) fn in_memory(&self) -> gix::Repository {
        let mut memory = self.gix().clone().with_object_memory();
        // Merges read the same trees and blobs several times (merge base, both sides,
        // each replayed commit).
        memory.object_cache_size_if_unset(4 * 1024 * 1024);
        memory
    }

    /// Writes what `memory` holds into the object database, durably: the caller is
    /// about to sign an operation naming the new tip, which must never outlive its
    /// objects in a crash.
    pub(crate) fn persist(&self, memory: &mut gix::Repository) -> Result<(), MergeError> {
        let Some(objects) = memory.objects.take_object_memory() else {
            return Ok(());
        };
        let mut dirs = BTreeSet::new();
        for (id, (kind, data)) in objects.iter() {
            let written = gix::objs::Write::write_buf(self.gix(), *kind, data).map_err(git_err)?;
            if written != *id {
                return Err(git_err(format!("object {id} was written as {written}")));
            }
            let hex = id.to_hex().to_string();
            let dir = self
                .path()
                .join("objects")
                .join(hex.get(..2).unwrap_or_default());
            let file = dir.join(hex.get(2..).unwrap_or_default());
            // Absent when the object already existed in a pack.
            if file.is_file() {
                sync(&file)?;
                dirs.insert(dir);
            }
        }
        dirs.iter().try_for_each(|dir| sync(dir))
    }
}

fn sync(path: &std::path::Path) -> Result<(), MergeError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| git_err(format!("{}: {e}", path.display())))
}

/// Checks that both tips are commits and share history. `None` when head is already
/// contained in base.
fn related_tips(
    repo: &gix::Repository,
    base: &Oid,
    head: &Oid,
) -> Result<Option<(ObjectId, ObjectId)>, MergeError> {
    let (base, head) = (commit_id(repo, base)?, commit_id(repo, head)?);
    if base == head {
        return Ok(None);
    }
    match repo.merge_base(base, head).map_err(git_err)? {
        None => Err(MergeError::Unrelated),
        Some(common) if common.detach() == head => Ok(None),
        Some(_) => Ok(Some((base, head))),
    }
}

fn commit_id(repo: &gix::Repository, id: &Oid) -> Result<ObjectId, MergeError> {
    let id = ObjectId::Sha1(*id);
    match repo.try_find_header(id).map_err(git_err)? {
        Some(header) if header.kind() == gix::object::Kind::Commit => Ok(id),
        _ => Err(MergeError::NotFound(id.to_string())),
    }
}

/// The labels of conflict markers in blobs; they never reach a ref, but name the sides
/// for whoever inspects a conflicted merge.
fn labels() -> gix::merge::blob::builtin_driver::text::Labels<'static> {
    gix::merge::blob::builtin_driver::text::Labels {
        ancestor: Some("merge base".into()),
        current: Some("base".into()),
        other: Some("head".into()),
    }
}

/// Git's recursive merge of two commits (criss-cross histories get a virtual merge
/// base, as `git merge-tree` does).
fn merge_commits(
    repo: &gix::Repository,
    base: ObjectId,
    head: ObjectId,
) -> Result<Merged, MergeError> {
    let options = repo.tree_merge_options().map_err(git_err)?;
    let mut outcome = repo
        .merge_commits(base, head, labels(), options.into())
        .map_err(git_err)?;
    finish(&mut outcome.tree_merge)
}

/// The merged tree, written (to memory), or the unresolved conflicts' paths.
fn finish(outcome: &mut gix::merge::tree::Outcome<'_>) -> Result<Merged, MergeError> {
    let how = TreatAsUnresolved::git();
    if outcome.has_unresolved_conflicts(how) {
        let paths: BTreeSet<String> = outcome
            .conflicts
            .iter()
            .filter(|c| c.is_unresolved(how))
            .flat_map(|c| [c.ours.location(), c.theirs.location()])
            .map(ToString::to_string)
            .collect();
        return Ok(Merged::Conflicts(paths.into_iter().collect()));
    }
    Ok(Merged::Tree(
        outcome.tree.write().map_err(git_err)?.detach(),
    ))
}

/// Replays head's commits missing from base onto base, oldest first, keeping each
/// one's author and message; `committer` becomes their committer. Returns the last.
fn rebase(
    repo: &gix::Repository,
    base: ObjectId,
    head: ObjectId,
    committer: &gix::actor::Signature,
) -> Result<ObjectId, MergeError> {
    let options = repo.tree_merge_options().map_err(git_err)?;
    let mut tip = base;
    let mut tip_tree = tree_of(repo, base)?;
    for id in commits_to_replay(repo, base, head)? {
        let original = repo
            .find_commit(id)
            .map_err(git_err)?
            .decode()
            .map_err(git_err)?
            .to_owned()
            .map_err(git_err)?;
        let Some(parent) = original.parents.first() else {
            return Err(MergeError::Unrelated);
        };
        let mut outcome = repo
            .merge_trees(
                tree_of(repo, *parent)?,
                tip_tree,
                original.tree,
                labels(),
                options.clone(),
            )
            .map_err(git_err)?;
        tip_tree = match finish(&mut outcome)? {
            Merged::Tree(tree) => tree,
            Merged::Conflicts(paths) => return Err(MergeError::Conflict { paths }),
        };
        tip = write_commit(
            repo,
            gix::objs::Commit {
                tree: tip_tree,
                parents: vec![tip].into(),
                author: original.author,
                committer: committer.clone(),
                encoding: original.encoding,
                message: original.message,
                // A signature (gpgsig) covered the original commit, not this one.
                extra_headers: Vec::new(),
            },
        )?;
    }
    Ok(tip)
}

/// The commits reachable from head and not from base, oldest first. They must form a
/// chain of single-parent commits.
fn commits_to_replay(
    repo: &gix::Repository,
    base: ObjectId,
    head: ObjectId,
) -> Result<Vec<ObjectId>, MergeError> {
    let mut parent_of = HashMap::new();
    let walk = repo
        .rev_walk([head])
        .with_hidden([base])
        .all()
        .map_err(git_err)?;
    for info in walk {
        let info = info.map_err(git_err)?;
        match info.parent_ids.as_slice() {
            [parent] => parent_of.insert(info.id, *parent),
            [] => return Err(MergeError::Unrelated),
            _ => return Err(MergeError::MergeCommitInRebase(info.id.to_string())),
        };
    }
    let mut chain = Vec::with_capacity(parent_of.len());
    let mut next = head;
    while let Some(parent) = parent_of.get(&next) {
        chain.push(next);
        next = *parent;
    }
    if chain.len() != parent_of.len() {
        return Err(git_err("the commits to rebase do not form one chain"));
    }
    chain.reverse();
    Ok(chain)
}

fn tree_of(repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId, MergeError> {
    Ok(repo
        .find_commit(commit)
        .map_err(git_err)?
        .tree_id()
        .map_err(git_err)?
        .detach())
}

/// Writes a commit object; `Repository::commit` would also move a ref.
fn write_commit(repo: &gix::Repository, commit: gix::objs::Commit) -> Result<ObjectId, MergeError> {
    Ok(repo.write_object(&commit).map_err(git_err)?.detach())
}

pub(crate) fn actor(signature: &Signature) -> gix::actor::Signature {
    gix::actor::Signature {
        name: signature.name.as_str().into(),
        email: signature.email.as_str().into(),
        time: gix::date::Time {
            seconds: signature.time_secs,
            offset: 0,
        },
    }
}

/// `title`, a blank line and `message` (when there is one), newline-terminated as git
/// writes messages.
fn commit_message(title: &str, message: &str) -> BString {
    let message = message.trim_end();
    let mut out = title.trim_end().to_string();
    out.push('\n');
    if !message.is_empty() {
        out.push('\n');
        out.push_str(message);
        out.push('\n');
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::git::GitRepos;
    use crate::testing::git;

    const PR_TITLE: &str = "Merge pull request #1 from octo/feature";

    /// A bare repository (the node's) and a work tree whose branches are pushed into it.
    struct Fixture {
        _dir: tempfile::TempDir,
        bare: PathBuf,
        work: PathBuf,
        repo: GitRepo,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let repos = GitRepos::open(dir.path()).unwrap();
            let id = "ef".repeat(32);
            repos.create(&id, "refs/heads/main").unwrap();
            let work = dir.path().join("work");
            std::fs::create_dir(&work).unwrap();
            git(&work, &["init", "-q", "-b", "main"]);
            Fixture {
                bare: repos.path(&id),
                repo: repos.open_repo(&id).unwrap(),
                work,
                _dir: dir,
            }
        }

        /// Writes `files`, commits everything as `author` ("Name <email>") and returns
        /// the commit.
        fn commit(&self, author: &str, message: &str, files: &[(&str, &str)]) -> Oid {
            for (path, content) in files {
                std::fs::write(self.work.join(path), content).unwrap();
            }
            git(&self.work, &["add", "-A"]);
            let who = [
                "-c",
                "user.name=Committer",
                "-c",
                "user.email=c@example.com",
            ];
            let args = [
                &who[..],
                &["commit", "-q", "--author", author, "-m", message],
            ];
            git(&self.work, &args.concat());
            oid(&git(&self.work, &["rev-parse", "HEAD"]))
        }

        fn push(&self) {
            let bare = self.bare.to_str().unwrap();
            git(&self.work, &["push", "-q", "-f", bare, "--all"]);
        }

        /// `git` run against the bare repository.
        fn bare_git(&self, args: &[&str]) -> String {
            git(&self.bare, args)
        }

        fn show(&self, format: &str, commit: &Oid) -> String {
            let format = format!("--format={format}");
            self.bare_git(&["log", "-1", &format, &hex::encode(commit)])
        }

        /// The tree `git merge-tree` makes of base and head: the reference.
        fn git_merge_tree(&self, base: &Oid, head: &Oid) -> String {
            let (base, head) = (hex::encode(base), hex::encode(head));
            self.bare_git(&["merge-tree", "--write-tree", &base, &head])
        }

        /// `write_merge` with this test's title, message and signature.
        fn write(&self, base: Oid, head: Oid, method: MergeMethod) -> Result<Oid, MergeError> {
            let author = guts();
            self.repo.write_merge(&MergeRequest {
                base,
                head,
                method,
                title: PR_TITLE,
                message: "Add c.txt",
                author: &author,
            })
        }

        /// `mergeability`, checking that it wrote no object.
        fn mergeability(&self, base: &Oid, head: &Oid) -> Mergeability {
            let before = self.count_objects();
            let checked = self.repo.mergeability(base, head).unwrap();
            assert_eq!(self.count_objects(), before, "mergeability wrote objects");
            checked
        }

        fn count_objects(&self) -> String {
            self.bare_git(&["count-objects", "-v"])
        }

        /// Points a ref at `tip` (so fsck checks everything it reaches) and runs fsck.
        fn fsck_with(&self, tip: &Oid) {
            self.repo
                .update_ref("refs/heads/merged", None, Some(*tip))
                .unwrap();
            self.bare_git(&["fsck", "--full", "--strict", "--no-dangling"]);
        }

        /// ```text
        /// main:    init - m1            (m1 edits line 1 of a.txt)
        ///              \
        /// feature:      f1 - f2         (f1: Ann edits line 5; f2: Bob adds c.txt)
        /// ```
        /// `conflict` makes f1 edit line 1 as well. Returns (main, feature).
        fn diverged(&self, conflict: bool) -> (Oid, Oid) {
            self.commit(
                "Init <i@example.com>",
                "init",
                &[("a.txt", "1\n2\n3\n4\n5\n")],
            );
            git(&self.work, &["branch", "feature"]);
            let base = self.commit(
                "Max <m@example.com>",
                "m1",
                &[("a.txt", "one\n2\n3\n4\n5\n")],
            );
            git(&self.work, &["checkout", "-q", "feature"]);
            let first = if conflict { "uno" } else { "1" };
            let edited = format!("{first}\n2\n3\n4\nfive\n");
            self.commit("Ann <ann@example.com>", "f1", &[("a.txt", &edited)]);
            let head = self.commit("Bob <bob@example.com>", "f2", &[("c.txt", "c\n")]);
            git(&self.work, &["checkout", "-q", "main"]);
            self.push();
            (base, head)
        }
    }

    fn oid(hex: &str) -> Oid {
        hex::decode(hex).unwrap().try_into().unwrap()
    }

    fn guts() -> Signature {
        Signature {
            name: "Guts Merger".into(),
            email: "merger@example.com".into(),
            time_secs: 1_700_000_000,
        }
    }

    /// The diverged fixture with head written into base by `method`: (fixture, base,
    /// head, result).
    fn diverged_and_written(method: MergeMethod) -> (Fixture, Oid, Oid, Oid) {
        let f = Fixture::new();
        let (base, head) = f.diverged(false);
        let written = f.write(base, head, method).unwrap();
        (f, base, head, written)
    }

    #[test]
    fn clean_merge_commit_has_both_parents_and_gits_merge_tree() {
        let f = Fixture::new();
        let (base, head) = f.diverged(false);
        assert_eq!(f.mergeability(&base, &head), Mergeability::Clean);
        let merged = f.write(base, head, MergeMethod::Merge).unwrap();
        let parents = format!("{} {}", hex::encode(base), hex::encode(head));
        assert_eq!(f.show("%P", &merged), parents);
        assert_eq!(f.show("%T", &merged), f.git_merge_tree(&base, &head));
        assert_eq!(f.show("%B", &merged), format!("{PR_TITLE}\n\nAdd c.txt"));
        let who = "Guts Merger <merger@example.com> 1700000000";
        assert_eq!(f.show("%an <%ae> %at", &merged), who);
        assert_eq!(f.show("%cn <%ce> %ct", &merged), who);
        // No ref moved.
        assert_eq!(f.repo.ref_target("refs/heads/main").unwrap(), Some(base));
        f.fsck_with(&merged);
    }

    #[test]
    fn squash_is_one_commit_on_base_with_the_merge_tree() {
        let (f, base, head, squashed) = diverged_and_written(MergeMethod::Squash);
        assert_eq!(f.show("%P", &squashed), hex::encode(base));
        assert_eq!(f.show("%T", &squashed), f.git_merge_tree(&base, &head));
        assert_eq!(f.show("%an", &squashed), "Guts Merger");
        f.fsck_with(&squashed);
    }

    #[test]
    fn rebase_replays_head_commits_keeping_authors_and_messages() {
        let (f, base, head, rebased) = diverged_and_written(MergeMethod::Rebase);
        let range = format!("{}..{}", hex::encode(base), hex::encode(rebased));
        assert_eq!(f.bare_git(&["rev-list", "--count", &range]), "2");
        assert_eq!(f.bare_git(&["rev-list", "--merges", &range]), "");
        let log = f.bare_git(&["log", "--format=%an|%ae|%s|%cn", &range]);
        assert_eq!(
            log,
            "Bob|bob@example.com|f2|Guts Merger\nAnn|ann@example.com|f1|Guts Merger"
        );
        assert_eq!(f.show("%T", &rebased), f.git_merge_tree(&base, &head));
        // The first replayed commit sits on base.
        let first = f.bare_git(&["rev-parse", &format!("{}^", hex::encode(rebased))]);
        assert_eq!(
            f.bare_git(&["log", "-1", "--format=%P", &first]),
            hex::encode(base)
        );
        f.fsck_with(&rebased);
    }

    #[test]
    fn conflicts_are_reported_and_nothing_is_written() {
        let f = Fixture::new();
        let (base, head) = f.diverged(true);
        let before = f.count_objects();
        assert_eq!(
            f.mergeability(&base, &head),
            Mergeability::Conflicts {
                paths: vec!["a.txt".into()]
            }
        );
        for method in [MergeMethod::Merge, MergeMethod::Squash, MergeMethod::Rebase] {
            let result = f.write(base, head, method);
            match result {
                Err(MergeError::Conflict { paths }) => assert_eq!(paths, ["a.txt"]),
                other => panic!("{method:?}: {other:?}"),
            }
        }
        assert_eq!(f.count_objects(), before);
        assert_eq!(f.repo.ref_target("refs/heads/main").unwrap(), Some(base));
        f.fsck_with(&base);
    }

    #[test]
    fn merged_heads_are_up_to_date_and_fast_forwards_still_get_a_merge_commit() {
        let f = Fixture::new();
        let init = f.commit("Init <i@example.com>", "init", &[("a.txt", "a\n")]);
        let tip = f.commit("Max <m@example.com>", "two", &[("b.txt", "b\n")]);
        f.push();
        for head in [init, tip] {
            assert_eq!(
                f.repo.mergeability(&tip, &head).unwrap(),
                Mergeability::UpToDate
            );
            for method in [MergeMethod::Merge, MergeMethod::Squash, MergeMethod::Rebase] {
                let result = f.write(tip, head, method);
                assert!(matches!(result, Err(MergeError::UpToDate)), "{result:?}");
            }
        }
        // Base is an ancestor of head: GitHub still writes a merge commit.
        assert_eq!(
            f.repo.mergeability(&init, &tip).unwrap(),
            Mergeability::Clean
        );
        let merged = f.write(init, tip, MergeMethod::Merge).unwrap();
        let parents = format!("{} {}", hex::encode(init), hex::encode(tip));
        assert_eq!(f.show("%P", &merged), parents);
        assert_eq!(f.show("%T", &merged), f.show("%T", &tip));
        f.fsck_with(&merged);
    }

    #[test]
    fn unknown_unrelated_and_non_commit_tips_are_errors() {
        let f = Fixture::new();
        let tip = f.commit("Init <i@example.com>", "init", &[("a.txt", "a\n")]);
        git(&f.work, &["checkout", "-q", "--orphan", "other"]);
        let orphan = f.commit("Orphan <o@example.com>", "orphan", &[("o.txt", "o\n")]);
        f.push();
        let blob = oid(&f.bare_git(&["rev-parse", &format!("{}:a.txt", hex::encode(tip))]));
        for missing in [[7; 20], blob] {
            let checked = f.repo.mergeability(&tip, &missing);
            assert!(
                matches!(checked, Err(MergeError::NotFound(_))),
                "{checked:?}"
            );
            let checked = f.repo.mergeability(&missing, &tip);
            assert!(
                matches!(checked, Err(MergeError::NotFound(_))),
                "{checked:?}"
            );
            let written = f.write(tip, missing, MergeMethod::Merge);
            assert!(
                matches!(written, Err(MergeError::NotFound(_))),
                "{written:?}"
            );
        }
        let checked = f.repo.mergeability(&tip, &orphan);
        assert!(matches!(checked, Err(MergeError::Unrelated)), "{checked:?}");
    }

    #[test]
    fn rebase_refuses_merge_commits() {
        let f = Fixture::new();
        let (base, _) = f.diverged(false);
        git(&f.work, &["checkout", "-q", "feature"]);
        git(&f.work, &["branch", "side"]);
        f.commit("Ann <ann@example.com>", "f3", &[("d.txt", "d\n")]);
        git(&f.work, &["checkout", "-q", "side"]);
        f.commit("Ann <ann@example.com>", "s1", &[("e.txt", "e\n")]);
        git(&f.work, &["checkout", "-q", "feature"]);
        let who = ["-c", "user.name=C", "-c", "user.email=c@example.com"];
        git(
            &f.work,
            &[&who[..], &["merge", "-q", "--no-edit", "side"]].concat(),
        );
        let head = oid(&git(&f.work, &["rev-parse", "HEAD"]));
        f.push();
        let rebased = f.write(base, head, MergeMethod::Rebase);
        match rebased {
            Err(MergeError::MergeCommitInRebase(id)) => assert_eq!(id, hex::encode(head)),
            other => panic!("{other:?}"),
        }
        // The other methods take it.
        let merged = f.write(base, head, MergeMethod::Merge).unwrap();
        assert_eq!(f.show("%T", &merged), f.git_merge_tree(&base, &head));
        f.fsck_with(&merged);
    }
}
