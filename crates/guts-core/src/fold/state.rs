//! The folded state of a repository ([`RepoState`]) and its canonical encoding: what
//! two nodes compare to know they agree. Kept apart from the fold's rules (the parent
//! module), which are the only code that changes it.

use std::collections::BTreeMap;

use crate::checks::Checks;
use crate::codec::Writer;
use crate::collab::{Collab, Pull};
use crate::hlc::Hlc;
use crate::hooks::Hooks;
use crate::identity::PublicKey;
use crate::ids::{ObjectId, OpId};
use crate::op::{BranchProtection, RequiredChecks, Role};

use super::STATE_FORMAT_VERSION;
use super::rejection::{Rejection, encode_rejection};

/// What `CreateRepo` established, as amended by `UpdateRepo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoMeta {
    pub owner: String,
    pub name: String,
    pub description: String,
    pub private: bool,
    /// A short branch name (`main`).
    pub default_branch: String,
    pub created_by: PublicKey,
    pub created_at: Hlc,
    /// When the repository took its current name: its creation, or its last rename.
    /// What ranks concurrent claims of a name, so that a rename never takes a name from
    /// a repository that held it first.
    pub named_at: Hlc,
    /// Names it had before, most recent last (at most [`MAX_FORMER_NAMES`]): they keep
    /// answering until another repository takes them, as on GitHub.
    pub former_names: Vec<String>,
    pub homepage: String,
    pub has_issues: bool,
    pub archived: bool,
}

/// How many former names of a repository keep answering.
pub const MAX_FORMER_NAMES: usize = 8;

impl RepoMeta {
    /// Whether the settings of [`Payload::RepoSettings`] are all as created (so the
    /// state encodes as it did before they existed).
    fn settings_are_default(&self) -> bool {
        self.named_at == self.created_at
            && self.former_names.is_empty()
            && self.homepage.is_empty()
            && self.has_issues
            && !self.archived
    }
}

/// The current value of a ref and the operation that set it (whose `(timestamp, id)`
/// decides a later conflict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefState {
    pub target: ObjectId,
    pub op: OpId,
    pub at: Hlc,
}

/// A repository's state: the fold of its operations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoState {
    /// `None` until a valid `CreateRepo` is folded.
    pub meta: Option<RepoMeta>,
    /// Set by `DeleteRepo`; every later operation is rejected.
    pub deleted: bool,
    /// Who holds which role. The creator is `Owner`.
    pub access: Access,
    /// Keyed by full ref name.
    pub protections: BTreeMap<String, BranchProtection>,
    /// Keyed by full ref name.
    pub refs: BTreeMap<String, RefState>,
    /// Losing tips of concurrent ref updates, keyed by their ref name
    /// `refs/guts/conflicts/<ref without "refs/">/<losing op id>`.
    pub conflicts: BTreeMap<String, ObjectId>,
    pub rejected: BTreeMap<OpId, Rejection>,
    /// Number of operations applied (not rejected).
    pub applied: u64,
    /// Issues, pull requests, comments, labels and reviews.
    pub collab: Collab,
    /// Commit statuses and check runs.
    pub checks: Checks,
    /// Webhooks.
    pub hooks: Hooks,
}

impl RepoState {
    /// The canonical encoding: equal states, equal bytes. A local format (for digests
    /// and comparison), so lengths are `u64` and nothing can fail.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(STATE_FORMAT_VERSION);
        w.option_tag(self.meta.is_some());
        if let Some(meta) = &self.meta {
            w.long_bytes(meta.owner.as_bytes());
            w.long_bytes(meta.name.as_bytes());
            w.long_bytes(meta.description.as_bytes());
            w.bool(meta.private);
            w.long_bytes(meta.default_branch.as_bytes());
            w.fixed(meta.created_by.as_bytes());
            w.hlc(meta.created_at);
        }
        w.bool(self.deleted);
        w.long_count(self.access.collaborators.len());
        for (user, role) in &self.access.collaborators {
            w.fixed(user.as_bytes());
            w.u8(crate::codec::role_tag(*role));
        }
        w.long_count(self.protections.len());
        for (branch, protection) in &self.protections {
            w.long_bytes(branch.as_bytes());
            crate::codec::encode_protection(&mut w, protection);
            w.bool(protection.dismiss_stale_reviews);
        }
        w.long_count(self.refs.len());
        for (name, state) in &self.refs {
            w.long_bytes(name.as_bytes());
            w.fixed(state.target.as_bytes());
            w.fixed(state.op.as_bytes());
            w.hlc(state.at);
        }
        w.long_count(self.conflicts.len());
        for (name, target) in &self.conflicts {
            w.long_bytes(name.as_bytes());
            w.fixed(target.as_bytes());
        }
        w.long_count(self.rejected.len());
        for (id, rejection) in &self.rejected {
            w.fixed(id.as_bytes());
            encode_rejection(&mut w, rejection);
        }
        w.u64(self.applied);
        self.collab.encode(&mut w);
        // Organization access comes last and only when there is some, so the states of
        // repositories without it encode (and digest) as they did before it existed:
        // nodes of both versions agree on them during a rolling upgrade.
        if !self.access.org.is_empty() {
            w.long_count(self.access.org.len());
            for (user, role) in &self.access.org {
                w.fixed(user.as_bytes());
                w.u8(crate::codec::role_tag(*role));
            }
        }
        // Likewise the settings of `RepoSettings`, behind a marker no count starts
        // with (a count of 2^64-1 organization members cannot exist).
        if let Some(meta) = self.meta.as_ref().filter(|m| !m.settings_are_default()) {
            w.u64(u64::MAX);
            w.hlc(meta.named_at);
            w.long_count(meta.former_names.len());
            for name in &meta.former_names {
                w.long_bytes(name.as_bytes());
            }
            w.long_bytes(meta.homepage.as_bytes());
            w.bool(meta.has_issues);
            w.bool(meta.archived);
        }
        // And requested reviewers, behind a marker of their own, only when some are.
        let requested = self.collab.threads.iter().filter_map(|(id, t)| {
            let pull = t.pull.as_ref().filter(|p| !p.requested.is_empty())?;
            Some((id, &pull.requested))
        });
        if requested.clone().next().is_some() {
            w.u64(u64::MAX - 1);
            w.long_count(requested.clone().count());
            for (id, keys) in requested {
                w.fixed(id.as_bytes());
                w.long_count(keys.len());
                for key in keys {
                    w.fixed(key.as_bytes());
                }
            }
        }
        // And edited or deleted inline review comments (their bodies are encoded with
        // the reviews), likewise.
        let touched = self
            .collab
            .reviews
            .iter()
            .filter(|(_, r)| !r.edited.is_empty() || !r.deleted.is_empty());
        if touched.clone().next().is_some() {
            w.u64(u64::MAX - 2);
            w.long_count(touched.clone().count());
            for (id, review) in touched {
                w.fixed(id.as_bytes());
                w.long_count(review.edited.len());
                for (index, at) in &review.edited {
                    w.u32(*index);
                    w.hlc(*at);
                }
                w.long_count(review.deleted.len());
                for index in &review.deleted {
                    w.u32(*index);
                }
            }
        }
        // And the required status checks of protections, likewise.
        let required = self
            .protections
            .iter()
            .filter_map(|(branch, p)| Some((branch, p.required_checks.as_ref()?)));
        if required.clone().next().is_some() {
            w.u64(u64::MAX - 4);
            w.long_count(required.clone().count());
            for (branch, checks) in required {
                w.long_bytes(branch.as_bytes());
                w.bool(checks.strict);
                w.long_count(checks.contexts.len());
                for context in &checks.contexts {
                    w.long_bytes(context.as_bytes());
                }
            }
        }
        // And commit statuses, likewise.
        if !self.checks.statuses.is_empty() {
            w.u64(u64::MAX - 3);
            self.checks.encode(&mut w);
        }
        // And webhooks, likewise.
        if !self.hooks.hooks.is_empty() {
            w.u64(u64::MAX - 6);
            self.hooks.encode(&mut w);
        }
        // And check runs, likewise.
        if !self.checks.runs.is_empty() {
            w.u64(u64::MAX - 5);
            self.checks.runs.encode(&mut w);
        }
        w.into_bytes()
    }

    /// blake3 of [`RepoState::encode`]: what two nodes compare to know they agree.
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(&self.encode()).as_bytes()
    }

    /// The status checks branch `name` (a full ref name) requires, if any.
    pub fn required_checks(&self, name: &str) -> Option<&RequiredChecks> {
        self.protections.get(name)?.required_checks.as_ref()
    }

    /// Whether any branch (`refs/heads/…`) exists.
    pub fn has_branches(&self) -> bool {
        self.refs
            .range::<str, _>((
                std::ops::Bound::Included("refs/heads/"),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|(name, _)| name.starts_with("refs/heads/"))
    }

    /// The commit branch `short` (`main`, not `refs/heads/main`) points at.
    pub fn branch(&self, short: &str) -> Option<ObjectId> {
        self.refs
            .get(&format!("refs/heads/{short}"))
            .map(|r| r.target)
    }

    /// The role `user` holds now (at the end of the fold).
    pub fn role(&self, user: &PublicKey) -> Option<Role> {
        self.access.role(user)
    }

    /// Approvals of `pull` that would count if it merged `head` now: a local merge
    /// names every head, so its causal past holds the whole ACL. What the API checks
    /// before doing any git work; the fold checks the merge operation itself.
    pub fn merge_approvals(&self, pull: &Pull, head: &ObjectId) -> usize {
        let dismiss_stale = self
            .protections
            .get(&format!("refs/heads/{}", pull.base))
            .is_some_and(|p| p.dismiss_stale_reviews);
        self.collab
            .approvals(pull, &self.access, dismiss_stale.then_some(head))
    }
}

/// Who holds which role in a repository: its collaborators, and the members of the
/// organization that owns it. Each member's effective role is the higher of the two, so
/// what comes through the organization can be neither lowered nor removed by a
/// repository admin, only by the organization (the repository's owner).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    /// Roles granted by `SetRole`. The creator is `Owner`.
    pub collaborators: BTreeMap<PublicKey, Role>,
    /// Roles that come through organization membership (`SetOrgAccess`).
    pub org: BTreeMap<PublicKey, Role>,
}

impl Access {
    /// `user`'s effective role: the higher of their collaborator and organization roles.
    pub fn role(&self, user: &PublicKey) -> Option<Role> {
        let collaborator = self.collaborators.get(user).copied();
        collaborator.max(self.org.get(user).copied())
    }

    /// Everyone with a role, each with their effective role, ordered by key.
    pub fn members(&self) -> BTreeMap<PublicKey, Role> {
        let mut all = self.org.clone();
        for (user, role) in &self.collaborators {
            let entry = all.entry(*user).or_insert(*role);
            *entry = (*entry).max(*role);
        }
        all
    }
}
