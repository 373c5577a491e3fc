//! SSH public keys: a user's keys and a repository's deploy keys, as replicated
//! account data.
//!
//! Every add is a record of its own, a *claim* on the key's fingerprint with a random
//! id ([`SshKeyRecord`], table [`SSH_KEYS`]). Deleting a key never removes its row: the
//! claim becomes a tombstone (`revoked`, with a higher stamp), so the deletion
//! replicates and outranks the live claim on every node ([`super::sync`]), and
//! re-adding the same key later makes a new claim with a new id.
//!
//! **One key, one owner.** An add is refused while the fingerprint has a live claim
//! anywhere in this node's view. Two nodes may still accept the same key concurrently,
//! before they sync; then both claims are live, and the fingerprint belongs to the
//! *earliest* live claim by `(created_at, id)` on every node alike. The other claims
//! are *shadowed*: they never authenticate, the public key list hides them, and their
//! owners see them marked unverified (guts-api) so they can delete them. Should the
//! owning claim be deleted, the next earliest takes over: it was added by its owner,
//! and nobody else holds the key.
//!
//! Two indexes are kept in the same transaction as every change of a claim, and hold
//! only live claims: [`SSH_KEY_FINGERPRINTS`] (`fingerprint ++ id`, so authentication
//! is one prefix read, never a scan of all keys) and [`SSH_KEY_OWNERS`] (a user's or a
//! repository's keys, for listings and caps). Both are derived from [`SSH_KEYS`] alone.

use std::ops::Bound;

use guts_core::RepoId;
use redb::{ReadableTable as _, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{AccountError, Accounts, UserRecord, decode, encode, now, now_ms, stamp};
use crate::error::StoreError;
use crate::schema::{SSH_KEY_FINGERPRINTS, SSH_KEY_OWNERS, SSH_KEYS, USERS};

/// Live keys one user may hold; an add beyond it is refused (a spam of keys would
/// otherwise grow every node's replicated set without bound).
pub const MAX_KEYS_PER_USER: usize = 100;
/// Live deploy keys one repository may hold.
pub const MAX_DEPLOY_KEYS_PER_REPO: usize = 100;
/// Longest key text stored, in bytes (a 16384-bit RSA key is about 2.8 KB).
pub const MAX_KEY_TEXT_BYTES: usize = 16 * 1024;
/// Longest title, in characters.
pub const MAX_KEY_TITLE_CHARS: usize = 1024;
/// Ids are below 2^53, so JavaScript clients hold them exactly.
const ID_LIMIT: u64 = 1 << 53;

/// Whom a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KeyOwner {
    /// A user's own key: it acts as that user.
    User {
        /// As the user spelled it when the key was added.
        login: String,
        /// Hex public key of the user it was added for. Logins can change hands (see
        /// [`super::TokenRecord::user_key`]): the key belongs to this account, never to
        /// whoever holds the login later.
        user_key: String,
    },
    /// A deploy key: it opens one repository only.
    Deploy {
        #[serde(with = "repo_hex")]
        repo: RepoId,
        /// Reading only, unless false.
        read_only: bool,
        /// The admin who added it; a session made with the key acts as them.
        added_by: String,
        /// Hex public key of `added_by`'s account, bound like `user_key`.
        added_by_key: String,
    },
}

/// One claim on an SSH key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKeyRecord {
    /// Random, in `1..2^53`; the API's key id.
    pub id: u64,
    /// Hex of the SHA-256 of the key's wire blob.
    pub fingerprint: String,
    /// Canonical OpenSSH text, `type base64`, without a comment.
    pub key: String,
    pub title: String,
    pub owner: KeyOwner,
    /// Unix seconds.
    pub created_at: u64,
    /// A deleted key's claim stays as a tombstone, so the deletion replicates.
    pub revoked: bool,
    /// Unix milliseconds of the last change; see [`super::UserRecord::updated_ms`].
    pub updated_ms: u64,
}

impl SshKeyRecord {
    /// The fingerprint's bytes, if the stored hex is sound.
    pub fn fingerprint_bytes(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.fingerprint, &mut out).ok()?;
        Some(out)
    }

    /// Which claim owns a fingerprint when several are live: the earliest.
    fn precedence(&self) -> (u64, u64) {
        (self.created_at, self.id)
    }
}

/// A key to add, already parsed and checked by the caller (guts-service).
#[derive(Debug, Clone)]
pub struct NewSshKey {
    pub fingerprint: [u8; 32],
    pub key: String,
    pub title: String,
    pub owner: KeyOwner,
}

mod repo_hex {
    use guts_core::RepoId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(repo: &RepoId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&repo.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RepoId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The [`SSH_KEY_OWNERS`] prefix of an owner's keys.
fn owner_prefix(owner: &KeyOwner) -> String {
    match owner {
        KeyOwner::User { login, .. } => user_prefix(login),
        KeyOwner::Deploy { repo, .. } => repo_prefix(repo),
    }
}

fn user_prefix(login: &str) -> String {
    format!("u/{}/", login.to_ascii_lowercase())
}

fn repo_prefix(repo: &RepoId) -> String {
    format!("r/{repo}/")
}

fn fingerprint_key(fingerprint: &[u8; 32], id: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(fingerprint);
    key[32..].copy_from_slice(&id.to_be_bytes());
    key
}

/// The tables a change of a claim writes, opened once per transaction.
pub(crate) struct KeyTables<'t> {
    keys: Table<'t, u64, &'static [u8]>,
    fingerprints: Table<'t, &'static [u8], ()>,
    owners: Table<'t, &'static str, ()>,
}

impl<'t> KeyTables<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(KeyTables {
            keys: txn.open_table(SSH_KEYS)?,
            fingerprints: txn.open_table(SSH_KEY_FINGERPRINTS)?,
            owners: txn.open_table(SSH_KEY_OWNERS)?,
        })
    }

    /// The stored claim `id`, if it decodes (one that does not is treated as absent, so
    /// a sound version from another node repairs it).
    fn get(&self, id: u64) -> Result<Option<SshKeyRecord>, StoreError> {
        Ok(self
            .keys
            .get(id)?
            .and_then(|v| decode::<SshKeyRecord>("ssh key", v.value()).ok()))
    }

    /// Stores `record` (canonically encoded as `bytes`) over `old`, keeping the indexes
    /// equal to the live claims.
    fn put(
        &mut self,
        old: Option<&SshKeyRecord>,
        record: &SshKeyRecord,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if let Some(old) = old {
            self.unindex(old)?;
        }
        self.keys.insert(record.id, bytes)?;
        if !record.revoked
            && let Some(fingerprint) = record.fingerprint_bytes()
        {
            self.fingerprints
                .insert(fingerprint_key(&fingerprint, record.id).as_slice(), ())?;
            let owner = format!("{}{:016x}", owner_prefix(&record.owner), record.id);
            self.owners.insert(owner.as_str(), ())?;
        }
        Ok(())
    }

    fn unindex(&mut self, record: &SshKeyRecord) -> Result<(), StoreError> {
        if let Some(fingerprint) = record.fingerprint_bytes() {
            self.fingerprints
                .remove(fingerprint_key(&fingerprint, record.id).as_slice())?;
        }
        let owner = format!("{}{:016x}", owner_prefix(&record.owner), record.id);
        self.owners.remove(owner.as_str())?;
        Ok(())
    }

    fn live_claims(&self, fingerprint: &[u8; 32]) -> Result<usize, StoreError> {
        let start = fingerprint_key(fingerprint, 0);
        let end = fingerprint_key(fingerprint, u64::MAX);
        Ok(self
            .fingerprints
            .range::<&[u8]>(start.as_slice()..=end.as_slice())?
            .count())
    }

    fn owned(&self, prefix: &str) -> Result<usize, StoreError> {
        let mut n = 0;
        for entry in self.owners.range::<&str>(prefix..)? {
            let (k, _) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Merges a claim from another node of the cluster: a revoked version beats a live
/// one whatever the clocks say, then the higher `(updated_ms, canonical JSON)`, as for
/// tokens. Returns whether anything changed.
pub(crate) fn merge_claim(
    tables: &mut KeyTables<'_>,
    record: &SshKeyRecord,
    bytes: &[u8],
) -> Result<bool, StoreError> {
    let current = tables.get(record.id)?;
    let wins = match &current {
        None => true,
        Some(current) => {
            let current_bytes = encode(current)?;
            (record.revoked, record.updated_ms, bytes)
                > (
                    current.revoked,
                    current.updated_ms,
                    current_bytes.as_slice(),
                )
        }
    };
    if wins {
        tables.put(current.as_ref(), record, bytes)?;
    }
    Ok(wins)
}

/// Whether a claim from a page is sound on its own (the rest is the merge's business).
pub(crate) fn check_incoming(id_text: &str, record: &SshKeyRecord) -> Result<(), String> {
    let id = u64::from_str_radix(id_text, 16).map_err(|_| "id is not hex".to_string())?;
    if id_text.len() != 16 || id != record.id || id == 0 || id >= ID_LIMIT {
        return Err("id does not match the key".into());
    }
    if record.fingerprint_bytes().is_none() || record.fingerprint.len() != 64 {
        return Err("fingerprint is not 32 bytes of hex".into());
    }
    if record.key.len() > MAX_KEY_TEXT_BYTES || record.title.chars().count() > MAX_KEY_TITLE_CHARS {
        return Err("key or title over its cap".into());
    }
    let (login, key) = match &record.owner {
        KeyOwner::User { login, user_key } => (login, user_key),
        KeyOwner::Deploy {
            added_by,
            added_by_key,
            ..
        } => (added_by, added_by_key),
    };
    guts_core::names::validate_login(login).map_err(|e| e.to_string())?;
    key.parse::<guts_core::PublicKey>()
        .map_err(|_| "owner key is not a public key".to_string())?;
    Ok(())
}

/// The [`super::sync`] record key of claim `id`: hex keeps the table's order.
pub(crate) fn record_key(id: u64) -> String {
    format!("{id:016x}")
}

/// Every claim strictly after `after` (a record key without its prefix), in id order.
pub(crate) fn scan_claims(
    read: &redb::ReadTransaction,
    after: Option<&str>,
    visit: &mut impl FnMut(String, Vec<u8>) -> std::ops::ControlFlow<()>,
) -> Result<std::ops::ControlFlow<()>, AccountError> {
    let table = read.open_table(SSH_KEYS).map_err(StoreError::from)?;
    // A cursor that is no id of ours (never sent by this code) restarts the table,
    // filtered by text, so no record is skipped.
    let parsed = after
        .filter(|a| a.len() == 16)
        .and_then(|a| u64::from_str_radix(a, 16).ok());
    let (range, floor) = match (after, parsed) {
        (None, _) => (table.range::<u64>(..), None),
        (Some(_), Some(id)) => (
            table.range::<u64>((Bound::Excluded(id), Bound::Unbounded)),
            None,
        ),
        (Some(text), None) => (table.range::<u64>(..), Some(text)),
    };
    for entry in range.map_err(StoreError::from)? {
        let (k, v) = entry.map_err(StoreError::from)?;
        let key = record_key(k.value());
        if floor.is_some_and(|floor| key.as_str() <= floor) {
            continue;
        }
        let value = match decode::<SshKeyRecord>("ssh key", v.value()).and_then(|r| encode(&r)) {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(record = %key, error = %e, "skipping an undecodable account record");
                continue;
            }
        };
        if visit(key, value).is_break() {
            return Ok(std::ops::ControlFlow::Break(()));
        }
    }
    Ok(std::ops::ControlFlow::Continue(()))
}

impl Accounts {
    /// Adds a key: refused while any live claim holds its fingerprint
    /// ([`AccountError::SshKeyInUse`]) and beyond [`MAX_KEYS_PER_USER`] or
    /// [`MAX_DEPLOY_KEYS_PER_REPO`]. A user key needs its user to still hold the login
    /// with the key in `user_key`. Durable when it returns.
    pub async fn add_ssh_key(&self, new: NewSshKey) -> Result<SshKeyRecord, AccountError> {
        let outcome = self
            .store
            .write("add_ssh_key", move |txn| {
                if let KeyOwner::User { login, user_key } = &new.owner {
                    let holder = txn
                        .open_table(USERS)?
                        .get(login.to_ascii_lowercase().as_str())?
                        .map(|v| decode::<UserRecord>("user", v.value()))
                        .transpose()?;
                    if holder.is_none_or(|u| u.public_key != *user_key) {
                        return Ok(Err(AccountError::NoSuchUser(login.clone())));
                    }
                }
                let mut tables = KeyTables::open(txn)?;
                if tables.live_claims(&new.fingerprint)? > 0 {
                    return Ok(Err(AccountError::SshKeyInUse));
                }
                let cap = match new.owner {
                    KeyOwner::User { .. } => MAX_KEYS_PER_USER,
                    KeyOwner::Deploy { .. } => MAX_DEPLOY_KEYS_PER_REPO,
                };
                if tables.owned(&owner_prefix(&new.owner))? >= cap {
                    return Ok(Err(AccountError::TooManySshKeys(cap)));
                }
                let id = loop {
                    let id = rand::random::<u64>() % (ID_LIMIT - 1) + 1;
                    if tables.keys.get(id)?.is_none() {
                        break id;
                    }
                };
                let record = SshKeyRecord {
                    id,
                    fingerprint: hex::encode(new.fingerprint),
                    key: new.key.clone(),
                    title: new.title.clone(),
                    owner: new.owner.clone(),
                    created_at: now(),
                    revoked: false,
                    updated_ms: now_ms(),
                };
                tables.put(None, &record, &encode(&record)?)?;
                Ok(Ok(record))
            })
            .await?;
        let record = outcome?;
        self.digest.invalidate();
        Ok(record)
    }

    /// Deletes key `id` if `owned_by` accepts its owner: the claim becomes a tombstone,
    /// which stops it authenticating here at once and, once replicated, everywhere.
    /// An unknown, foreign or already deleted key is [`AccountError::NoSuchSshKey`].
    pub async fn revoke_ssh_key(
        &self,
        id: u64,
        owned_by: impl Fn(&KeyOwner) -> bool + Send + 'static,
    ) -> Result<SshKeyRecord, AccountError> {
        let outcome = self
            .store
            .write("revoke_ssh_key", move |txn| {
                let mut tables = KeyTables::open(txn)?;
                let Some(current) = tables.get(id)? else {
                    return Ok(Err(AccountError::NoSuchSshKey));
                };
                if current.revoked || !owned_by(&current.owner) {
                    return Ok(Err(AccountError::NoSuchSshKey));
                }
                let mut record = current.clone();
                record.revoked = true;
                record.updated_ms = stamp(current.updated_ms);
                tables.put(Some(&current), &record, &encode(&record)?)?;
                Ok(Ok(record))
            })
            .await?;
        let record = outcome?;
        self.digest.invalidate();
        Ok(record)
    }

    /// The live claim that owns `fingerprint` (the earliest, see the module
    /// documentation), or `None`. One prefix read of the fingerprint index and one read
    /// per live claim of it (normally one).
    pub fn ssh_key_by_fingerprint(
        &self,
        fingerprint: &[u8; 32],
    ) -> Result<Option<SshKeyRecord>, AccountError> {
        let read = self.store.read()?;
        let index = read
            .open_table(SSH_KEY_FINGERPRINTS)
            .map_err(StoreError::from)?;
        let keys = read.open_table(SSH_KEYS).map_err(StoreError::from)?;
        let start = fingerprint_key(fingerprint, 0);
        let end = fingerprint_key(fingerprint, u64::MAX);
        let mut owner: Option<SshKeyRecord> = None;
        for entry in index
            .range::<&[u8]>(start.as_slice()..=end.as_slice())
            .map_err(StoreError::from)?
        {
            let (k, _) = entry.map_err(StoreError::from)?;
            let Some(id) = k
                .value()
                .get(32..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            let Some(record) = keys
                .get(id)
                .map_err(StoreError::from)?
                .map(|v| decode::<SshKeyRecord>("ssh key", v.value()))
                .transpose()?
            else {
                continue;
            };
            if !record.revoked
                && owner
                    .as_ref()
                    .is_none_or(|o| record.precedence() < o.precedence())
            {
                owner = Some(record);
            }
        }
        Ok(owner)
    }

    /// Claim `id`, live or not.
    pub fn ssh_key(&self, id: u64) -> Result<Option<SshKeyRecord>, AccountError> {
        let read = self.store.read()?;
        let keys = read.open_table(SSH_KEYS).map_err(StoreError::from)?;
        Ok(keys
            .get(id)
            .map_err(StoreError::from)?
            .map(|v| decode("ssh key", v.value()))
            .transpose()?)
    }

    /// Whether live claim `record` owns its fingerprint (no earlier live claim of the
    /// same key exists). Shadowed claims never authenticate.
    pub fn ssh_key_owns(&self, record: &SshKeyRecord) -> Result<bool, AccountError> {
        let Some(fingerprint) = record.fingerprint_bytes() else {
            return Ok(false);
        };
        Ok(self
            .ssh_key_by_fingerprint(&fingerprint)?
            .is_some_and(|owner| owner.id == record.id))
    }

    /// The live keys added for the account `user` (its login and key), oldest first.
    pub fn user_ssh_keys(&self, user: &UserRecord) -> Result<Vec<SshKeyRecord>, AccountError> {
        let mut keys = self.owned_keys(&user_prefix(&user.login))?;
        keys.retain(
            |k| matches!(&k.owner, KeyOwner::User { user_key, .. } if *user_key == user.public_key),
        );
        Ok(keys)
    }

    /// The live deploy keys of repository `repo`, oldest first.
    pub fn deploy_keys(&self, repo: &RepoId) -> Result<Vec<SshKeyRecord>, AccountError> {
        self.owned_keys(&repo_prefix(repo))
    }

    fn owned_keys(&self, prefix: &str) -> Result<Vec<SshKeyRecord>, AccountError> {
        let read = self.store.read()?;
        let owners = read.open_table(SSH_KEY_OWNERS).map_err(StoreError::from)?;
        let keys = read.open_table(SSH_KEYS).map_err(StoreError::from)?;
        let mut out = Vec::new();
        for entry in owners.range::<&str>(prefix..).map_err(StoreError::from)? {
            let (k, _) = entry.map_err(StoreError::from)?;
            let Some(id) = k
                .value()
                .strip_prefix(prefix)
                .and_then(|id| u64::from_str_radix(id, 16).ok())
            else {
                break;
            };
            if let Some(record) = keys
                .get(id)
                .map_err(StoreError::from)?
                .map(|v| decode::<SshKeyRecord>("ssh key", v.value()))
                .transpose()?
                && !record.revoked
            {
                out.push(record);
            }
        }
        // Oldest first, as GitHub lists them: a live claim's stamp is the millisecond it
        // was added (only a revocation changes it), finer than `created_at`'s second.
        out.sort_by_key(|r| (r.updated_ms, r.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
