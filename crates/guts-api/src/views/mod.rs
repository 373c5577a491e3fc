//! GitHub's JSON shapes as typed `Serialize` structs, each declared once and embedded
//! where GitHub embeds it (a simple user in an issue, the repository at both ends of a
//! pull request). A response is serialized straight from them into its body: no
//! `serde_json::Value` tree is built, cloned and dropped on the way, which was a third
//! of the CPU of a thread read. Clients navigate by the URLs in them (PyGithub follows
//! them verbatim), so every resource carries its absolute `url` and related `*_url`s.
//!
//! `users`: users and organizations; `repos`: repositories; `collab`: issues, pull
//! requests, comments, labels and reviews, which `threads::Render` fills in with the
//! caches of one request; `keys`: SSH keys and deploy keys.

mod checks;
mod collab;
mod hooks;
mod keys;
mod meta;
mod repos;
#[cfg(test)]
mod tests;
mod users;

use std::ops::Deref;
use std::rc::Rc;

use serde::{Serialize, Serializer};

pub(crate) use checks::{
    CheckRun, CheckRunList, CheckRunOutput, CheckSuite, CheckSuiteId, CheckSuiteList,
    CombinedStatus, NameEmail, SimpleCommit, SimpleStatus, Status,
};
pub(crate) use collab::{
    BranchEnd, Href, Issue, IssueComment, IssuePullRequestLinks, Label, PullLinks, PullRequest,
    PullStats, Reactions, Review, ReviewComment, ReviewCommentLinks, ReviewLinks,
};
pub(crate) use hooks::{
    Changes, CheckRunBody, DeliveryExchange, DeliveryFull, DeliveryItem, Envelope, GitPerson,
    HookConfigView, HookResponse, HookView, IssueBody, IssueCommentBody, MemberBody, OrgPing,
    PingBody, PullBody, PushBody, PushCommit, RefBody, RepositoryBody, ReviewBody,
    ReviewCommentBody, StatusBody, StatusCommit,
};
pub(crate) use keys::{DeployKey, Key, KeySimple};
pub(crate) use meta::{ApiOverview, Root};
pub(crate) use repos::{Repository, owned_repositories, repository};
pub(crate) use users::{
    Collaborator, Contributor, Org, OrgAsUser, OrgSimple, SimpleUser, User, new_account, org_json,
};

/// A view that several objects of one response embed (the author of many issues, the
/// repository at both ends of every pull request): built once, shared by reference
/// count, serialized as the view itself. (serde's `rc` feature, which would serialize
/// `Rc` directly, is off in the workspace.)
#[derive(Debug)]
pub(crate) struct Shared<T>(Rc<T>);

impl<T> Shared<T> {
    pub(crate) fn new(view: T) -> Self {
        Shared(Rc::new(view))
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Rc::clone(&self.0))
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A field of GitHub's shape that Guts does not model (a milestone, a licence, a
/// user's bio): always `null`, and present because clients read it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Null;

impl Serialize for Null {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

/// `prefix` followed by `suffix`, in one allocation of the exact size: the URLs of one
/// object share a prefix (`…/api/v3/users/{login}`) built once.
pub(crate) fn join(prefix: &str, suffix: &str) -> String {
    [prefix, suffix].concat()
}

/// `text`, or `None` (GitHub's `null`) when it is empty.
pub(crate) fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}
