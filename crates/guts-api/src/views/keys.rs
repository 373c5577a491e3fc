//! GitHub's shapes for SSH keys: a user's own key (`key`), a key anyone may list
//! (`key-simple`) and a repository's deploy key (`deploy-key`).
//!
//! `verified` is false for a claim shadowed by an earlier claim of the same key that
//! another node of the cluster accepted concurrently: it never authenticates, and is
//! shown to its owner so that they can delete it. `last_used` is always null: Guts
//! does not record key use (it would be a write per SSH connection).

use guts_service::SshKey;
use guts_storage::{KeyOwner, SshKeyRecord};
use serde::Serialize;

use super::Null;
use crate::links::Links;
use crate::time::iso8601;

/// GitHub's `key`: one of the caller's own keys.
#[derive(Debug, Serialize)]
pub(crate) struct Key {
    pub(crate) key: String,
    pub(crate) id: u64,
    pub(crate) url: String,
    pub(crate) title: String,
    pub(crate) created_at: String,
    pub(crate) verified: bool,
    /// A user's key acts with every permission of its user.
    pub(crate) read_only: bool,
    pub(crate) last_used: Null,
}

impl Key {
    pub(crate) fn new(links: &Links, key: &SshKey) -> Self {
        let r = &key.record;
        Key {
            key: r.key.clone(),
            id: r.id,
            url: links.api(&format!("/user/keys/{}", r.id)),
            title: r.title.clone(),
            created_at: iso8601(r.created_at),
            verified: key.active,
            read_only: false,
            last_used: Null,
        }
    }
}

/// GitHub's `key-simple`: what `GET /users/{username}/keys` shows anyone.
#[derive(Debug, Serialize)]
pub(crate) struct KeySimple {
    pub(crate) id: u64,
    pub(crate) key: String,
    pub(crate) created_at: String,
    pub(crate) last_used: Null,
}

impl KeySimple {
    pub(crate) fn new(record: &SshKeyRecord) -> Self {
        KeySimple {
            id: record.id,
            key: record.key.clone(),
            created_at: iso8601(record.created_at),
            last_used: Null,
        }
    }
}

/// GitHub's `deploy-key`.
#[derive(Debug, Serialize)]
pub(crate) struct DeployKey {
    pub(crate) id: u64,
    pub(crate) key: String,
    pub(crate) url: String,
    pub(crate) title: String,
    pub(crate) verified: bool,
    pub(crate) created_at: String,
    pub(crate) read_only: bool,
    pub(crate) added_by: Option<String>,
    pub(crate) last_used: Null,
    pub(crate) enabled: bool,
}

impl DeployKey {
    /// `owner/name`: the repository as this request spells it.
    pub(crate) fn new(links: &Links, owner: &str, name: &str, key: &SshKey) -> Self {
        let r = &key.record;
        let (read_only, added_by) = match &r.owner {
            KeyOwner::Deploy {
                read_only,
                added_by,
                ..
            } => (*read_only, Some(added_by.clone())),
            KeyOwner::User { .. } => (true, None),
        };
        DeployKey {
            id: r.id,
            key: r.key.clone(),
            url: links.api(&format!("/repos/{owner}/{name}/keys/{}", r.id)),
            title: r.title.clone(),
            verified: key.active,
            created_at: iso8601(r.created_at),
            read_only,
            added_by,
            last_used: Null,
            enabled: true,
        }
    }
}
