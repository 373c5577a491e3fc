//! Collaboration state: issues and pull requests ("threads"), their comments, labels,
//! assignees and reviews, and the rules that fold their operations.
//!
//! # Numbers
//!
//! GitHub clients address issues and pull requests by number, one sequence for both per
//! repository, but there is no global counter to draw from without consensus. So a
//! thread is identified by the id of the operation that opened it, and its number is a
//! display name the fold hands out: an `OpenIssue`/`OpenPull` carries the number its
//! author saw free (the highest number plus one, at the author's heads), and keeps it if
//! no thread earlier in the topological order took it; otherwise it gets the next free
//! number. A node that is not racing anyone (the common case) therefore hands out
//! exactly the number it answered with, and two nodes that opened the same number
//! concurrently agree on which kept it once they have each other's operations. A
//! proposal above the next free number is treated as taken, so numbers stay dense.
//!
//! # Permissions
//!
//! As on GitHub: on a public repository anyone may open issues and pull requests,
//! comment and review; on a private one that takes a role. Editing a thread or comment
//! is for its author or a writer; labels, assignees, locking and merging are for
//! writers. A locked thread takes comments from writers only.
//!
//! Anyone who may review may approve, but toward a branch's required approvals only
//! approvals by writers count: the role at the review (recorded on it) and at the merge
//! (the merge's causal past) must both be write or above, else a pull-only
//! collaborator, or anyone on a public repository, could stand in for a maintainer.
//!
//! Collections are persistent maps (`imbl`), so publishing the state after every
//! operation (a clone per append) costs O(1) rather than a copy of every issue.
//!
//! # Bodies
//!
//! The state keeps where each body is written ([`TextRef`]: the operation that set it
//! last) rather than the text. The operation log holds every body anyway, so a
//! repository's state is its structure, about the same size whatever people write,
//! and a read fetches the bodies it renders (see [`Payload::text`]).

use std::collections::{BTreeMap, BTreeSet};

use imbl::OrdMap;

use crate::fold::Rejection;
use crate::hlc::Hlc;
use crate::identity::PublicKey;
use crate::ids::{ObjectId, OpId};
use crate::op::{BranchProtection, Role};

mod encode;
pub use encode::ROW_FORMAT_VERSION;

/// Longest issue or pull request title, in bytes.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Longest label name, in bytes.
pub const MAX_LABEL_BYTES: usize = 100;
/// Most labels added or removed by one operation, and most labels on a thread.
pub const MAX_LABELS: usize = 100;
/// Most assignees of a thread (GitHub's limit).
pub const MAX_ASSIGNEES: usize = 10;
/// Most inline comments in one review.
pub const MAX_REVIEW_COMMENTS: usize = 1000;
/// Colour of a label created implicitly by labelling a thread (GitHub's default).
pub const DEFAULT_LABEL_COLOR: &str = "ededed";

/// Changes to a thread: the fields that are `Some`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ThreadEdit {
    pub title: Option<String>,
    pub body: Option<String>,
    /// `Some(false)` closes, `Some(true)` reopens.
    pub open: Option<bool>,
    pub locked: Option<bool>,
    /// Pull requests only.
    pub draft: Option<bool>,
    /// Pull requests only: a short branch name.
    pub base: Option<String>,
}

/// A repository label. `color` is six hex digits without `#`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelDef {
    pub name: String,
    pub color: String,
    pub description: String,
}

/// What an `AssignThread` assigns people as. Requested reviewers ride under a tag of
/// their own, so assignments signed before they existed keep their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assignment {
    Assignee,
    /// A reviewer whose review is requested, until they review.
    Reviewer,
}

/// What a review says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Approve,
    RequestChanges,
    Comment,
}

impl Verdict {
    /// GitHub's review `state`.
    pub fn github_state(self) -> &'static str {
        match self {
            Verdict::Approve => "APPROVED",
            Verdict::RequestChanges => "CHANGES_REQUESTED",
            Verdict::Comment => "COMMENTED",
        }
    }
}

/// How a pull request was merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

/// An inline comment of a review, on `line` of `path` in the reviewed commit, as a
/// `Review` operation carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReviewComment {
    pub path: String,
    pub line: u32,
    pub body: String,
}

/// An inline comment of a review as the state keeps it: its body by reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InlineComment {
    pub path: String,
    pub line: u32,
    pub body: TextRef,
}

/// Where a body's text is: which text of which operation (see the module's "Bodies").
/// Two folds of the same operations name the same operations, so this is as
/// deterministic as the text, and the state's digest covers it instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TextRef {
    /// The operation that wrote the text.
    pub op: OpId,
    /// Which of its texts: 0 is its body, `i + 1` inline comment `i` of a review.
    pub part: u32,
    /// The text's length in bytes, so that an empty body needs no read.
    pub len: u32,
}

impl TextRef {
    /// Text `part` of operation `op`, which is `text`.
    pub fn new(op: OpId, part: u32, text: &str) -> TextRef {
        TextRef {
            op,
            part,
            // Bodies are capped far below 4 GiB by the operation codec.
            len: u32::try_from(text.len()).unwrap_or(u32::MAX),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A merged pull request's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    pub by: PublicKey,
    pub at: Hlc,
    pub method: MergeMethod,
    /// The head commit that was merged.
    pub head: ObjectId,
    /// The commit the base branch was moved to.
    pub commit: ObjectId,
}

/// What makes a thread a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub head: String,
    pub base: String,
    /// The head branch's commit when the pull request was opened; the branch itself
    /// is what an open pull request shows.
    pub head_sha: ObjectId,
    /// The base branch's commit when the pull request was opened.
    pub base_sha: ObjectId,
    pub draft: bool,
    /// Reviews in fold order.
    pub reviews: Vec<OpId>,
    pub merged: Option<Merged>,
    /// Reviewers whose review is requested and who have not reviewed since.
    pub requested: BTreeSet<PublicKey>,
}

/// An issue or a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub number: u64,
    pub author: PublicKey,
    pub title: String,
    pub body: TextRef,
    pub created_at: Hlc,
    pub updated_at: Hlc,
    pub open: bool,
    /// When and by whom it was last closed, while it is closed.
    pub closed: Option<(Hlc, PublicKey)>,
    pub locked: bool,
    /// Keys of the repository's label map (lowercase names).
    pub labels: BTreeSet<String>,
    pub assignees: BTreeSet<PublicKey>,
    /// Live comments, oldest first.
    pub comments: Vec<OpId>,
    /// Boxed: most threads are issues, and a thread is an entry of a persistent map's
    /// node, so its size counts for every issue.
    pub pull: Option<Box<Pull>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub thread: OpId,
    pub author: PublicKey,
    pub body: TextRef,
    pub created_at: Hlc,
    pub updated_at: Hlc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub pull: OpId,
    pub author: PublicKey,
    pub verdict: Verdict,
    pub body: TextRef,
    pub commit: ObjectId,
    pub at: Hlc,
    pub comments: Vec<InlineComment>,
    /// Inline comments edited since (index → when) and deleted (their slots stay, so
    /// the others keep their ids).
    pub edited: BTreeMap<u32, Hlc>,
    pub deleted: BTreeSet<u32>,
    /// The role its author held in the review's causal past. Recorded because an
    /// approval counts toward required approvals only from someone who had write
    /// access when approving (as on GitHub), and the fold cannot look back at that
    /// ACL when the merge comes.
    pub role: Option<Role>,
}

impl Review {
    /// The indices of its inline comments that are not deleted.
    pub fn live_comments(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.comments.len())
            .filter(|i| u32::try_from(*i).is_ok_and(|i| !self.deleted.contains(&i)))
    }
}

/// Every thread, comment, label and review of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collab {
    pub threads: OrdMap<OpId, Thread>,
    /// Number → thread.
    pub numbers: OrdMap<u64, OpId>,
    pub comments: OrdMap<OpId, Comment>,
    /// Keyed by lowercase name.
    pub labels: OrdMap<String, LabelDef>,
    pub reviews: OrdMap<OpId, Review>,
    /// Numeric id (GitHub's integer comment ids, [`OpId::numeric`]) → comment. Derived
    /// from `comments`, so not part of the encoding.
    pub comment_ids: OrdMap<u64, OpId>,
}

/// Who is acting, with what role, when, in which operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Actor {
    pub key: PublicKey,
    pub held: Option<Role>,
    pub at: Hlc,
    pub op: OpId,
    /// Whether the repository is public at this point of the fold.
    pub public: bool,
}

impl Actor {
    fn require(&self, required: Role) -> Result<(), Rejection> {
        if self.held >= Some(required) {
            Ok(())
        } else {
            Err(Rejection::NotPermitted {
                required,
                held: self.held,
            })
        }
    }

    /// Reading (and so taking part in discussions): anyone on a public repository.
    fn require_participant(&self) -> Result<(), Rejection> {
        if self.public {
            Ok(())
        } else {
            self.require(Role::Read)
        }
    }

    /// The author of the thing, or a writer.
    fn require_author_or_writer(&self, author: &PublicKey) -> Result<(), Rejection> {
        if *author == self.key {
            self.require_participant()
        } else {
            self.require(Role::Write)
        }
    }
}

/// A new pull request, checked by the fold against refs and ancestry.
pub(crate) struct NewPull<'a> {
    pub number: u64,
    pub title: &'a str,
    pub body: &'a str,
    pub head: &'a str,
    pub base: &'a str,
    pub draft: bool,
    pub head_sha: ObjectId,
    pub base_sha: ObjectId,
}

impl Collab {
    pub fn thread_by_number(&self, number: u64) -> Option<(OpId, &Thread)> {
        let id = *self.numbers.get(&number)?;
        self.threads.get(&id).map(|t| (id, t))
    }

    /// The number a new thread would be given: one above the highest.
    pub fn next_number(&self) -> u64 {
        self.numbers
            .get_max()
            .map_or(1, |(n, _)| n.saturating_add(1))
    }

    /// Approvals of a pull request that count toward its base branch's required
    /// approvals, as GitHub counts them: each reviewer's latest approving or
    /// change-requesting review (a plain comment changes nothing) counts if it
    /// approves, its author had write access when reviewing, and still has it in
    /// `acl` (the ACL of the merge's causal past, so a revocation the merger saw
    /// takes the approval away). Without the write checks a pull-only collaborator,
    /// or on a public repository anyone, could satisfy a review requirement.
    ///
    /// With `fresh` (the base dismisses stale reviews) only approvals of exactly that
    /// commit, the head being merged, count: an approval of an earlier head was given
    /// before the commits pushed since. Comparing commits rather than recording
    /// pushes keeps this a function of the reviews and the merge alone.
    pub fn approvals(
        &self,
        pull: &Pull,
        acl: &crate::fold::Access,
        fresh: Option<&ObjectId>,
    ) -> usize {
        let mut latest: BTreeMap<PublicKey, &Review> = BTreeMap::new();
        for review in pull.reviews.iter().filter_map(|id| self.reviews.get(id)) {
            if review.verdict != Verdict::Comment {
                latest.insert(review.author, review);
            }
        }
        latest
            .values()
            .filter(|r| r.verdict == Verdict::Approve)
            .filter(|r| r.role >= Some(Role::Write))
            .filter(|r| acl.role(&r.author) >= Some(Role::Write))
            .filter(|r| fresh.is_none_or(|head| r.commit == *head))
            .count()
    }

    fn thread(&self, id: &OpId) -> Result<&Thread, Rejection> {
        self.threads.get(id).ok_or(Rejection::NoSuchThread)
    }

    fn assign_number(&self, proposed: u64) -> u64 {
        let next = self.next_number();
        if proposed >= 1 && proposed <= next && !self.numbers.contains_key(&proposed) {
            proposed
        } else {
            next
        }
    }

    fn insert_thread(&mut self, id: OpId, thread: Thread) {
        self.numbers.insert(thread.number, id);
        self.threads.insert(id, thread);
    }

    fn touch(&mut self, id: &OpId, at: Hlc, change: impl FnOnce(&mut Thread)) {
        if let Some(thread) = self.threads.get_mut(id) {
            change(thread);
            thread.updated_at = thread.updated_at.max(at);
        }
    }

    pub(crate) fn open_issue(
        &mut self,
        actor: &Actor,
        number: u64,
        title: &str,
        body: &str,
        labels: &[String],
        assignees: &[PublicKey],
    ) -> Result<(), Rejection> {
        actor.require_participant()?;
        validate_title(title)?;
        if !labels.is_empty() || !assignees.is_empty() {
            actor.require(Role::Write)?;
        }
        validate_label_names(labels)?;
        if assignees.len() > MAX_ASSIGNEES {
            return Err(Rejection::TooMany { field: "assignees" });
        }
        let thread = Thread {
            number: self.assign_number(number),
            author: actor.key,
            title: title.to_owned(),
            body: TextRef::new(actor.op, 0, body),
            created_at: actor.at,
            updated_at: actor.at,
            open: true,
            closed: None,
            locked: false,
            labels: BTreeSet::new(),
            assignees: assignees.iter().copied().collect(),
            comments: Vec::new(),
            pull: None,
        };
        self.insert_thread(actor.op, thread);
        self.add_labels(&actor.op, labels, actor.at);
        Ok(())
    }

    pub(crate) fn open_pull(&mut self, actor: &Actor, new: &NewPull<'_>) -> Result<(), Rejection> {
        actor.require_participant()?;
        validate_title(new.title)?;
        if new.head == new.base {
            return Err(Rejection::SameBranch);
        }
        let duplicate = self.threads.values().any(|t| {
            t.open
                && t.pull
                    .as_ref()
                    .is_some_and(|p| p.head == new.head && p.base == new.base)
        });
        if duplicate {
            return Err(Rejection::DuplicatePull);
        }
        let thread = Thread {
            number: self.assign_number(new.number),
            author: actor.key,
            title: new.title.to_owned(),
            body: TextRef::new(actor.op, 0, new.body),
            created_at: actor.at,
            updated_at: actor.at,
            open: true,
            closed: None,
            locked: false,
            labels: BTreeSet::new(),
            assignees: BTreeSet::new(),
            comments: Vec::new(),
            pull: Some(Box::new(Pull {
                head: new.head.to_owned(),
                base: new.base.to_owned(),
                head_sha: new.head_sha,
                base_sha: new.base_sha,
                draft: new.draft,
                reviews: Vec::new(),
                merged: None,
                requested: BTreeSet::new(),
            })),
        };
        self.insert_thread(actor.op, thread);
        Ok(())
    }

    /// Checks an edit; `base_exists` tells whether a new base branch exists.
    pub(crate) fn edit_thread(
        &mut self,
        actor: &Actor,
        id: &OpId,
        edit: &ThreadEdit,
        base_exists: bool,
    ) -> Result<(), Rejection> {
        let thread = self.thread(id)?;
        if edit.locked.is_some() {
            actor.require(Role::Write)?;
        }
        actor.require_author_or_writer(&thread.author)?;
        if let Some(title) = &edit.title {
            validate_title(title)?;
        }
        let merged = thread.pull.as_ref().is_some_and(|p| p.merged.is_some());
        if merged && (edit.open.is_some() || edit.base.is_some() || edit.draft.is_some()) {
            return Err(Rejection::AlreadyMerged);
        }
        if (edit.base.is_some() || edit.draft.is_some()) && thread.pull.is_none() {
            return Err(Rejection::NotAPull);
        }
        if let Some(base) = &edit.base {
            if !base_exists {
                return Err(Rejection::BranchMissing);
            }
            if thread.pull.as_ref().is_some_and(|p| p.head == *base) {
                return Err(Rejection::SameBranch);
            }
        }
        self.touch(id, actor.at, |t| {
            if let Some(title) = &edit.title {
                t.title.clone_from(title);
            }
            if let Some(body) = &edit.body {
                t.body = TextRef::new(actor.op, 0, body);
            }
            if let Some(open) = edit.open {
                if open {
                    t.closed = None;
                } else if t.open {
                    t.closed = Some((actor.at, actor.key));
                }
                t.open = open;
            }
            if let Some(locked) = edit.locked {
                t.locked = locked;
            }
            if let Some(pull) = &mut t.pull {
                if let Some(draft) = edit.draft {
                    pull.draft = draft;
                }
                if let Some(base) = &edit.base {
                    pull.base.clone_from(base);
                }
            }
        });
        Ok(())
    }

    pub(crate) fn label_thread(
        &mut self,
        actor: &Actor,
        id: &OpId,
        add: &[String],
        remove: &[String],
    ) -> Result<(), Rejection> {
        self.thread(id)?;
        actor.require(Role::Write)?;
        validate_label_names(add)?;
        validate_label_names(remove)?;
        self.add_labels(id, add, actor.at);
        self.touch(id, actor.at, |t| {
            for name in remove {
                t.labels.remove(&name.to_lowercase());
            }
        });
        Ok(())
    }

    /// Adds labels to a thread, creating the repository labels that do not exist yet.
    /// A thread keeps at most [`MAX_LABELS`]; extra ones are ignored.
    fn add_labels(&mut self, id: &OpId, names: &[String], at: Hlc) {
        for name in names {
            let key = name.to_lowercase();
            if !self.labels.contains_key(&key) {
                self.labels.insert(
                    key.clone(),
                    LabelDef {
                        name: name.clone(),
                        color: DEFAULT_LABEL_COLOR.to_owned(),
                        description: String::new(),
                    },
                );
            }
            self.touch(id, at, |t| {
                if t.labels.len() < MAX_LABELS {
                    t.labels.insert(key);
                }
            });
        }
    }

    /// Requests reviews of pull request `id` from `add` (who the fold has checked have
    /// a role) and withdraws them from `remove`: by someone with write access or the
    /// pull request's author, never from the author, at most [`MAX_ASSIGNEES`] at once.
    pub(crate) fn request_reviewers(
        &mut self,
        actor: &Actor,
        id: &OpId,
        add: &[PublicKey],
        remove: &[PublicKey],
    ) -> Result<(), Rejection> {
        let thread = self.thread(id)?;
        let pull = thread.pull.as_ref().ok_or(Rejection::NotAPull)?;
        if thread.author != actor.key {
            actor.require(Role::Write)?;
        }
        if add.contains(&thread.author) {
            return Err(Rejection::OwnPullReview);
        }
        let mut requested = pull.requested.clone();
        requested.extend(add.iter().copied());
        for key in remove {
            requested.remove(key);
        }
        if requested.len() > MAX_ASSIGNEES {
            return Err(Rejection::TooMany { field: "reviewers" });
        }
        self.touch(id, actor.at, |t| {
            if let Some(pull) = &mut t.pull {
                pull.requested = requested;
            }
        });
        Ok(())
    }

    pub(crate) fn assign_thread(
        &mut self,
        actor: &Actor,
        id: &OpId,
        add: &[PublicKey],
        remove: &[PublicKey],
    ) -> Result<(), Rejection> {
        let thread = self.thread(id)?;
        actor.require(Role::Write)?;
        let mut assignees = thread.assignees.clone();
        assignees.extend(add.iter().copied());
        for key in remove {
            assignees.remove(key);
        }
        if assignees.len() > MAX_ASSIGNEES {
            return Err(Rejection::TooMany { field: "assignees" });
        }
        self.touch(id, actor.at, |t| t.assignees = assignees);
        Ok(())
    }

    pub(crate) fn comment(
        &mut self,
        actor: &Actor,
        id: &OpId,
        body: &str,
    ) -> Result<(), Rejection> {
        let thread = self.thread(id)?;
        if thread.locked {
            actor.require(Role::Write)?;
        } else {
            actor.require_participant()?;
        }
        validate_body(body)?;
        self.comments.insert(
            actor.op,
            Comment {
                thread: *id,
                author: actor.key,
                body: TextRef::new(actor.op, 0, body),
                created_at: actor.at,
                updated_at: actor.at,
            },
        );
        self.comment_ids.insert(actor.op.numeric(), actor.op);
        self.touch(id, actor.at, |t| t.comments.push(actor.op));
        Ok(())
    }

    pub(crate) fn edit_comment(
        &mut self,
        actor: &Actor,
        id: &OpId,
        body: Option<&str>,
    ) -> Result<(), Rejection> {
        let comment = self.comments.get(id).ok_or(Rejection::NoSuchComment)?;
        actor.require_author_or_writer(&comment.author)?;
        let thread = comment.thread;
        match body {
            Some(body) => {
                validate_body(body)?;
                if let Some(comment) = self.comments.get_mut(id) {
                    comment.body = TextRef::new(actor.op, 0, body);
                    comment.updated_at = comment.updated_at.max(actor.at);
                }
            }
            None => {
                self.comments.remove(id);
                self.comment_ids.remove(&id.numeric());
                if let Some(t) = self.threads.get_mut(&thread) {
                    t.comments.retain(|c| c != id);
                }
            }
        }
        Ok(())
    }

    /// Edits or deletes inline comment `index` of review `id`: by its author or a
    /// writer, as an issue comment.
    pub(crate) fn edit_review_comment(
        &mut self,
        actor: &Actor,
        id: &OpId,
        index: u32,
        body: Option<&str>,
    ) -> Result<(), Rejection> {
        let review = self.reviews.get(id).ok_or(Rejection::NoSuchComment)?;
        let slot = usize::try_from(index).map_err(|_| Rejection::NoSuchComment)?;
        if slot >= review.comments.len() || review.deleted.contains(&index) {
            return Err(Rejection::NoSuchComment);
        }
        actor.require_author_or_writer(&review.author)?;
        if let Some(body) = body {
            validate_body(body)?;
        }
        if let Some(review) = self.reviews.get_mut(id) {
            match body {
                Some(body) => {
                    if let Some(comment) = review.comments.get_mut(slot) {
                        comment.body = TextRef::new(actor.op, 0, body);
                    }
                    let at = review.edited.entry(index).or_insert(actor.at);
                    *at = (*at).max(actor.at);
                }
                None => {
                    review.deleted.insert(index);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn set_label(
        &mut self,
        actor: &Actor,
        name: &str,
        label: Option<&LabelDef>,
    ) -> Result<(), Rejection> {
        actor.require(Role::Write)?;
        validate_label_name(name)?;
        let old = name.to_lowercase();
        let Some(label) = label else {
            self.labels.remove(&old);
            self.relabel(&old, None);
            return Ok(());
        };
        validate_label_name(&label.name)?;
        validate_color(&label.color)?;
        if label.description.len() > MAX_TITLE_BYTES {
            return Err(Rejection::InvalidText {
                field: "description",
            });
        }
        let new = label.name.to_lowercase();
        if new != old {
            if self.labels.contains_key(&new) {
                return Err(Rejection::LabelExists);
            }
            self.labels.remove(&old);
            self.relabel(&old, Some(&new));
        }
        self.labels.insert(new, label.clone());
        Ok(())
    }

    /// Renames (or with `None` removes) a label on every thread that carries it.
    fn relabel(&mut self, old: &str, new: Option<&str>) {
        let carrying: Vec<OpId> = self
            .threads
            .iter()
            .filter(|(_, t)| t.labels.contains(old))
            .map(|(id, _)| *id)
            .collect();
        for id in carrying {
            if let Some(t) = self.threads.get_mut(&id) {
                t.labels.remove(old);
                if let Some(new) = new {
                    t.labels.insert(new.to_owned());
                }
            }
        }
    }

    pub(crate) fn review(
        &mut self,
        actor: &Actor,
        pull_id: &OpId,
        verdict: Verdict,
        body: &str,
        commit: ObjectId,
        comments: &[ReviewComment],
    ) -> Result<(), Rejection> {
        let thread = self.thread(pull_id)?;
        let pull = thread.pull.as_ref().ok_or(Rejection::NotAPull)?;
        if thread.locked {
            actor.require(Role::Write)?;
        } else {
            actor.require_participant()?;
        }
        if verdict != Verdict::Comment && thread.author == actor.key {
            return Err(Rejection::OwnPullReview);
        }
        if pull.merged.is_some() && verdict != Verdict::Comment {
            return Err(Rejection::AlreadyMerged);
        }
        validate_body(body)?;
        if comments.len() > MAX_REVIEW_COMMENTS {
            return Err(Rejection::TooMany { field: "comments" });
        }
        for comment in comments {
            if comment.path.is_empty() || comment.path.len() > crate::codec::MAX_NAME_BYTES {
                return Err(Rejection::InvalidText { field: "path" });
            }
            validate_body(&comment.body)?;
        }
        self.reviews.insert(
            actor.op,
            Review {
                pull: *pull_id,
                author: actor.key,
                verdict,
                body: TextRef::new(actor.op, 0, body),
                commit,
                at: actor.at,
                comments: comments
                    .iter()
                    .zip(1..)
                    .map(|(c, part)| InlineComment {
                        path: c.path.clone(),
                        line: c.line,
                        body: TextRef::new(actor.op, part, &c.body),
                    })
                    .collect(),
                edited: BTreeMap::new(),
                deleted: BTreeSet::new(),
                role: actor.held,
            },
        );
        self.touch(pull_id, actor.at, |t| {
            if let Some(pull) = &mut t.pull {
                pull.reviews.push(actor.op);
                // A review answers the request for it, as on GitHub.
                pull.requested.remove(&actor.key);
            }
        });
        Ok(())
    }

    /// Checks that `pull` may merge `head` now under the protection of its base,
    /// approvals counted against `acl` (the merge's causal past), and returns the base
    /// branch's full ref name. Changes nothing.
    pub(crate) fn check_merge(
        &self,
        actor: &Actor,
        pull_id: &OpId,
        protections: &BTreeMap<String, BranchProtection>,
        acl: &crate::fold::Access,
        head: &ObjectId,
    ) -> Result<String, Rejection> {
        actor.require(Role::Write)?;
        let thread = self.thread(pull_id)?;
        let pull = thread.pull.as_ref().ok_or(Rejection::NotAPull)?;
        if pull.merged.is_some() {
            return Err(Rejection::AlreadyMerged);
        }
        if !thread.open {
            return Err(Rejection::ThreadClosed);
        }
        if pull.draft {
            return Err(Rejection::Draft);
        }
        let base = format!("refs/heads/{}", pull.base);
        let protection = protections.get(&base).cloned().unwrap_or_default();
        let required = usize::from(protection.required_approvals);
        let fresh = protection.dismiss_stale_reviews.then_some(head);
        let approvals = self.approvals(pull, acl, fresh);
        if approvals < required {
            return Err(Rejection::ReviewRequired {
                required: u8::try_from(required).unwrap_or(u8::MAX),
                approvals: u8::try_from(approvals).unwrap_or(u8::MAX),
            });
        }
        Ok(base)
    }

    pub(crate) fn mark_merged(&mut self, pull_id: &OpId, merged: Merged) {
        self.touch(pull_id, merged.at, |t| {
            t.open = false;
            t.closed = Some((merged.at, merged.by));
            if let Some(pull) = &mut t.pull {
                pull.merged = Some(merged);
            }
        });
    }
}

fn validate_title(title: &str) -> Result<(), Rejection> {
    if title.trim().is_empty() || title.len() > MAX_TITLE_BYTES {
        return Err(Rejection::InvalidText { field: "title" });
    }
    Ok(())
}

fn validate_body(body: &str) -> Result<(), Rejection> {
    if body.len() > crate::codec::MAX_TEXT_BYTES {
        return Err(Rejection::InvalidText { field: "body" });
    }
    Ok(())
}

fn validate_label_name(name: &str) -> Result<(), Rejection> {
    if name.trim().is_empty() || name.len() > MAX_LABEL_BYTES || name.contains(',') {
        return Err(Rejection::InvalidText { field: "label" });
    }
    Ok(())
}

fn validate_label_names(names: &[String]) -> Result<(), Rejection> {
    if names.len() > MAX_LABELS {
        return Err(Rejection::TooMany { field: "labels" });
    }
    names.iter().try_for_each(|n| validate_label_name(n))
}

fn validate_color(color: &str) -> Result<(), Rejection> {
    if color.len() == 6 && color.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Rejection::InvalidText { field: "color" })
    }
}
