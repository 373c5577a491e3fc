//! Accounts (users and organizations), organization memberships, personal access
//! tokens and SSH keys ([`ssh_keys`]).
//!
//! Every user has an ed25519 key. By default it is custodial: created here, sealed with
//! the cluster secret ([`crate::seal`]) and opened only to sign that user's operations
//! after token authentication. Tokens are random, shown once, stored as their BLAKE3
//! hash, scoped, revocable, and bound to the key of the user they were made for.
//!
//! Every record (user, token, organization, membership, SSH key) carries `updated_ms`, a stamp
//! set by each local change and never lower than the record's previous stamp + 1, and
//! nothing is ever deleted: a revoked token and a removed membership stay as
//! tombstones. That is what lets the nodes of one cluster replicate these records by
//! exchanging them and keeping the greater version ([`sync`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use guts_core::names::{NameError, validate_login};
use guts_core::{Keypair, PublicKey};
use guts_ops::Secret;
use redb::{ReadableTable as _, ReadableTableMetadata as _};
use serde::{Deserialize, Serialize};

use crate::db::Store;
use crate::error::StoreError;
use crate::schema::{ORG_MEMBERS, ORGS, TOKENS, USER_KEYS, USERS};
use crate::seal::{SealError, Sealer};

pub mod org_hooks;
pub mod ssh_keys;
pub mod sync;
mod user_changes;

use sync::{DigestCache, PageError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read and write repositories the user has access to (git and REST).
    Repo,
    /// Everything the user's account may do, including administration for site admins.
    Admin,
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "repo" => Ok(Scope::Repo),
            "admin" => Ok(Scope::Admin),
            other => Err(format!("unknown scope {other:?} (expected repo or admin)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// As the user spelled it; lookups are case-insensitive like GitHub's.
    pub login: String,
    /// GitHub-style numeric id, derived from the public key so every node agrees on it.
    pub id: u64,
    /// Hex of the ed25519 public key.
    pub public_key: String,
    /// Hex of the sealed custodial seed; absent for users who sign their own operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_key: Option<String>,
    pub site_admin: bool,
    pub suspended: bool,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix milliseconds of the last change (0 in records older than replication); the
    /// greater stamp wins when nodes of the cluster merge their copies.
    #[serde(default)]
    pub updated_ms: u64,
    /// The argon2id hash of the user's web password (a PHC string), replicated with the
    /// record so that any node can sign the user in; absent until one is set. Never
    /// rendered by any front end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

impl UserRecord {
    pub fn public_key(&self) -> Result<PublicKey, StoreError> {
        self.public_key
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("user {}: public key: {e}", self.login)))
    }
}

/// A live token with its user, as authentication finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: UserRecord,
    pub token: TokenRecord,
    /// The user's key, parsed from `user.public_key`.
    pub key: PublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Stable id for listing and revoking (derived from the hash, not the token).
    pub id: u64,
    pub login: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: u64,
    /// Revoked tokens are kept (a tombstone), so the revocation replicates.
    pub revoked: bool,
    /// Hex public key of the user the token was made for. Logins can change hands (a
    /// concurrent creation of one login on two nodes keeps only the earlier account), so
    /// a token works only for the account that holds this key, never for whoever holds
    /// its login. Absent only in tokens older than replication, which are bound when the
    /// store is opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_key: Option<String>,
    /// Unix milliseconds of the last change; see [`UserRecord::updated_ms`].
    #[serde(default)]
    pub updated_ms: u64,
    /// A browser session's token (made by signing in, revoked by signing out), not a
    /// personal access token: its text lives only inside a sealed cookie.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub web_session: bool,
}

/// An organization: an account without a key of its own. Its repositories are signed
/// by the members who act on them; its login shares one namespace with users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRecord {
    pub login: String,
    /// GitHub-style numeric id, derived from the lowercase login.
    pub id: u64,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix milliseconds of the last change; see [`UserRecord::updated_ms`].
    #[serde(default)]
    pub updated_ms: u64,
    /// The organization's webhooks (absent when none, so records without them keep
    /// their bytes and digests). See [`org_hooks`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<org_hooks::OrgHook>,
}

/// A member's standing in an organization (GitHub's `admin` and `member`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// Manages memberships, and is made a repository admin of the org's repositories.
    Admin,
    /// May create repositories in the organization.
    Member,
}

/// One membership: the user as they spell their login, and their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub login: String,
    pub role: OrgRole,
}

/// A membership as stored: a removal keeps the row with no role (a tombstone), so that
/// it replicates and outranks the membership it ended. Readers see only live rows, as
/// [`Membership`]. Rows written before replication (`{"login","role"}`) read as live
/// with stamp 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberRecord {
    pub(crate) login: String,
    pub(crate) role: Option<OrgRole>,
    #[serde(default)]
    pub(crate) updated_ms: u64,
}

/// A freshly created token: the only time its text exists outside the client.
#[derive(Debug)]
pub struct NewToken {
    pub token: Secret<String>,
    pub record: TokenRecord,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid login: {0}")]
    InvalidLogin(#[from] NameError),
    #[error("login {0:?} is already taken")]
    LoginTaken(String),
    #[error("no user {0:?}")]
    NoSuchUser(String),
    #[error("no organization {0:?}")]
    NoSuchOrg(String),
    #[error("an organization keeps at least one admin")]
    LastOrgAdmin,
    #[error("the organization already has the maximum of {0} hooks")]
    TooManyHooks(usize),
    #[error("no such hook")]
    NoSuchHook,
    #[error("no such token")]
    NoSuchToken,
    /// A live claim (this user's, another user's or a deploy key) holds the key.
    #[error("key is already in use")]
    SshKeyInUse,
    #[error("no such ssh key")]
    NoSuchSshKey,
    #[error("at most {0} keys")]
    TooManySshKeys(usize),
    #[error("user {0:?} has no custodial key on this node")]
    NotCustodial(String),
    #[error("custodial key: {0}")]
    Seal(#[from] SealError),
    /// A sealed page of account records that is not this cluster's (or not a page):
    /// refused whole, nothing changed. The sender is at fault, not this node.
    #[error("account page refused: {0}")]
    Page(#[from] PageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Prefix of every token, so secret scanners can recognise a leaked one.
pub const TOKEN_PREFIX: &str = "guts_";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix milliseconds now.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The stamp of a change to a record whose current stamp is `current`: now, but never
/// lower than `current + 1`, so a later change on this node always outranks what it
/// replaced even if the clock stepped back.
pub(crate) fn stamp(current: u64) -> u64 {
    now_ms().max(current.saturating_add(1))
}

fn token_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

/// A 48-bit id (safe in JavaScript numbers) from `bytes`; never 0.
pub fn numeric_id(bytes: &[u8]) -> u64 {
    let h = blake3::hash(bytes);
    let mut id = [0u8; 8];
    id[2..].copy_from_slice(&h.as_bytes()[..6]);
    u64::from_be_bytes(id).max(1)
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    what: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// The canonical encoding of a record: what is stored, exported, digested and compared
/// when two versions of a record meet (serde's field order, no whitespace).
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// How long a looked-up token or user is served from memory before the store is read
/// again. Revoking a token or suspending a user on this node empties the caches at
/// once; the window bounds only changes that reach the store some other way.
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Entries a cache holds before it starts over (memory stays bounded).
const CACHE_CAPACITY: usize = 10_000;

/// A small time-bounded cache: every request authenticates and most render a user, and
/// each lookup is two store reads and a JSON decode otherwise.
#[derive(Debug)]
struct Recent<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (value, at) = entries.get(key)?;
        (at.elapsed() < CACHE_TTL).then(|| value.clone())
    }

    fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(key, (value, Instant::now()));
        }
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Accounts {
    pub(crate) store: Store,
    pub(crate) sealer: Arc<Sealer>,
    /// Token hash -> the token's user and record, for live (not revoked, not
    /// suspended) tokens.
    /// Shared, not copied, by every request of the token; the user's key is parsed once
    /// here, not per request (decompressing an ed25519 point costs more than the rest
    /// of an authenticated read).
    sessions: Arc<Recent<[u8; 32], Arc<Session>>>,
    users_by_key: Arc<Recent<PublicKey, UserRecord>>,
    /// The replication digest, until the next write ([`Accounts::replication_digest`]).
    pub(crate) digest: Arc<DigestCache>,
}

impl Accounts {
    /// The cluster's sealer, for other secrets that replicate sealed (hook secrets).
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    pub fn new(store: Store, sealer: Arc<Sealer>) -> Accounts {
        let this = Accounts {
            store,
            sealer,
            sessions: Arc::new(Recent::new()),
            users_by_key: Arc::new(Recent::new()),
            digest: Arc::new(DigestCache::default()),
        };
        match this.bind_legacy_tokens() {
            Ok(0) => {}
            Ok(n) => tracing::info!(tokens = n, "bound older tokens to their user's key"),
            // They keep working here by login, but are not replicated.
            Err(e) => tracing::error!(error = %e, "cannot bind older tokens to their user's key"),
        }
        // The user gauge starts from what is stored, not from zero.
        this.refresh_counts();
        this
    }

    /// Tokens stored before replication name their user by login only. Binds each to
    /// the key of the user holding that login here, now, before any record from another
    /// node can arrive (after that, the login might belong to someone else). A no-op
    /// read when there are none.
    fn bind_legacy_tokens(&self) -> Result<usize, AccountError> {
        let read = self.store.read()?;
        let tokens = read.open_table(TOKENS).map_err(StoreError::from)?;
        let mut unbound = false;
        for entry in tokens.iter().map_err(StoreError::from)? {
            let (_, v) = entry.map_err(StoreError::from)?;
            if decode::<TokenRecord>("token", v.value()).is_ok_and(|t| t.user_key.is_none()) {
                unbound = true;
                break;
            }
        }
        if !unbound {
            return Ok(0);
        }
        drop((tokens, read));
        let bound = self.store.write_blocking(|txn| {
            let users = txn.open_table(USERS)?;
            let mut tokens = txn.open_table(TOKENS)?;
            let mut changes = Vec::new();
            for entry in tokens.iter()? {
                let (k, v) = entry?;
                let Ok(mut record) = decode::<TokenRecord>("token", v.value()) else {
                    continue;
                };
                if record.user_key.is_some() {
                    continue;
                }
                let lower = record.login.to_ascii_lowercase();
                let Some(user) = users
                    .get(lower.as_str())?
                    .map(|v| decode::<UserRecord>("user", v.value()))
                    .transpose()?
                else {
                    continue;
                };
                record.user_key = Some(user.public_key);
                record.updated_ms = stamp(record.updated_ms);
                changes.push((k.value().to_vec(), encode(&record)?));
            }
            for (key, value) in &changes {
                tokens.insert(key.as_slice(), value.as_slice())?;
            }
            Ok(changes.len())
        })?;
        self.digest.invalidate();
        Ok(bound)
    }

    /// Creates a user with a new custodial key. Durable when it returns.
    pub async fn create_user(
        &self,
        login: &str,
        site_admin: bool,
    ) -> Result<UserRecord, AccountError> {
        validate_login(login)?;
        let key = Keypair::generate();
        let sealed = self
            .sealer
            .seal(key.seed_bytes().as_slice(), &login.to_ascii_lowercase())?;
        let public = key.public();
        let record = UserRecord {
            login: login.to_string(),
            id: numeric_id(public.as_bytes()),
            public_key: public.to_string(),
            sealed_key: Some(hex::encode(sealed)),
            site_admin,
            suspended: false,
            created_at: now(),
            updated_ms: now_ms(),
            password_hash: None,
        };
        let bytes = encode(&record)?;
        let lower = login.to_ascii_lowercase();
        let outcome = self
            .store
            .write("create_user", move |txn| {
                let mut users = txn.open_table(USERS)?;
                if users.get(lower.as_str())?.is_some()
                    || txn.open_table(ORGS)?.get(lower.as_str())?.is_some()
                {
                    return Ok(Err(AccountError::LoginTaken(lower.clone())));
                }
                users.insert(lower.as_str(), bytes.as_slice())?;
                txn.open_table(USER_KEYS)?
                    .insert(public.as_bytes().as_slice(), lower.as_str())?;
                Ok(Ok(()))
            })
            .await?;
        outcome?;
        self.digest.invalidate();
        self.refresh_counts();
        Ok(record)
    }

    pub fn user(&self, login: &str) -> Result<Option<UserRecord>, AccountError> {
        let read = self.store.read()?;
        let users = read.open_table(USERS).map_err(StoreError::from)?;
        let found = users
            .get(login.to_ascii_lowercase().as_str())
            .map_err(StoreError::from)?;
        Ok(found.map(|v| decode("user", v.value())).transpose()?)
    }

    pub fn user_by_key(&self, key: &PublicKey) -> Result<Option<UserRecord>, AccountError> {
        if let Some(user) = self.users_by_key.get(key) {
            return Ok(Some(user));
        }
        let read = self.store.read()?;
        let keys = read.open_table(USER_KEYS).map_err(StoreError::from)?;
        let Some(login) = keys
            .get(key.as_bytes().as_slice())
            .map_err(StoreError::from)?
            .map(|v| v.value().to_string())
        else {
            return Ok(None);
        };
        let user = self.user(&login)?;
        if let Some(user) = &user {
            self.users_by_key.put(*key, user.clone());
        }
        Ok(user)
    }

    /// Every user, ordered by lowercase login.
    pub fn users(&self) -> Result<Vec<UserRecord>, AccountError> {
        let read = self.store.read()?;
        let users = read.open_table(USERS).map_err(StoreError::from)?;
        let mut out = Vec::new();
        for entry in users.iter().map_err(StoreError::from)? {
            let (_, v) = entry.map_err(StoreError::from)?;
            out.push(decode("user", v.value())?);
        }
        Ok(out)
    }

    pub fn count(&self) -> Result<u64, AccountError> {
        let read = self.store.read()?;
        let users = read.open_table(USERS).map_err(StoreError::from)?;
        Ok(users.len().map_err(StoreError::from)?)
    }

    /// The signing key of organization `org`: it owns the organization's repositories
    /// and signs what the organization itself decides in them (who has access through
    /// membership). Derived from the cluster secret, see [`Sealer::org_keypair`].
    pub fn org_signing_key(&self, org: &str) -> Keypair {
        self.sealer.org_keypair(org)
    }

    /// Opens the user's custodial key to sign on their behalf.
    pub fn signing_key(&self, user: &UserRecord) -> Result<Keypair, AccountError> {
        let sealed = user
            .sealed_key
            .as_ref()
            .ok_or_else(|| AccountError::NotCustodial(user.login.clone()))?;
        let sealed = hex::decode(sealed)
            .map_err(|e| StoreError::Corrupt(format!("user {}: sealed key: {e}", user.login)))?;
        let seed = self
            .sealer
            .open(&sealed, &user.login.to_ascii_lowercase())?;
        let seed: [u8; 32] = seed
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("user {}: sealed key length", user.login)))?;
        let key = Keypair::from_seed(&seed);
        if key.public().to_string() != user.public_key {
            return Err(
                StoreError::Corrupt(format!("user {}: key does not match", user.login)).into(),
            );
        }
        Ok(key)
    }

    /// Empties the caches, so a revocation or suspension (made here or imported from
    /// another node) takes effect with the next request.
    pub(crate) fn forget_sessions(&self) {
        self.sessions.clear();
        self.users_by_key.clear();
    }

    /// Creates a token for `login`. The returned text is the only copy there will be.
    pub async fn create_token(
        &self,
        login: &str,
        name: &str,
        scopes: Vec<Scope>,
    ) -> Result<NewToken, AccountError> {
        self.new_token(login, name, scopes, false).await
    }

    async fn new_token(
        &self,
        login: &str,
        name: &str,
        scopes: Vec<Scope>,
        web_session: bool,
    ) -> Result<NewToken, AccountError> {
        let user = self
            .user(login)?
            .ok_or_else(|| AccountError::NoSuchUser(login.to_string()))?;
        let random: [u8; 20] = rand::random();
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(random));
        let hash = token_hash(&token);
        let record = TokenRecord {
            id: numeric_id(&hash),
            login: user.login.clone(),
            name: name.to_string(),
            scopes,
            created_at: now(),
            revoked: false,
            user_key: Some(user.public_key.clone()),
            updated_ms: now_ms(),
            web_session,
        };
        let bytes = encode(&record)?;
        self.store
            .write("create_token", move |txn| {
                txn.open_table(TOKENS)?
                    .insert(hash.as_slice(), bytes.as_slice())?;
                Ok(())
            })
            .await?;
        self.digest.invalidate();
        Ok(NewToken {
            token: Secret::new(token),
            record,
        })
    }

    /// The user and token record behind `token`, if it is valid, unrevoked and its user
    /// is not suspended. Costs one hash and two lookups, no write.
    pub fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<(UserRecord, TokenRecord)>, AccountError> {
        Ok(self
            .session(token)?
            .map(|session| (session.user.clone(), session.token.clone())))
    }

    /// [`Accounts::authenticate`] as a shared [`Session`], with the user's public key.
    pub fn session(&self, token: &str) -> Result<Option<Arc<Session>>, AccountError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let hash = token_hash(token);
        if let Some(session) = self.sessions.get(&hash) {
            return Ok(Some(session));
        }
        let read = self.store.read()?;
        let tokens = read.open_table(TOKENS).map_err(StoreError::from)?;
        let Some(record) = tokens
            .get(hash.as_slice())
            .map_err(StoreError::from)?
            .map(|v| decode::<TokenRecord>("token", v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        if record.revoked {
            return Ok(None);
        }
        match self.user(&record.login)? {
            Some(user) if !user.suspended && token_is_for(&record, &user) => {
                let key = user.public_key()?;
                let session = Arc::new(Session {
                    user,
                    token: record,
                    key,
                });
                self.sessions.put(hash, session.clone());
                Ok(Some(session))
            }
            _ => Ok(None),
        }
    }

    /// The tokens of `login` (metadata only), newest first. Tokens made for another
    /// account that once held the login are not theirs and not listed.
    pub fn tokens(&self, login: &str) -> Result<Vec<TokenRecord>, AccountError> {
        let user = self.user(login)?;
        let read = self.store.read()?;
        let tokens = read.open_table(TOKENS).map_err(StoreError::from)?;
        let mut out = Vec::new();
        for entry in tokens.iter().map_err(StoreError::from)? {
            let (_, v) = entry.map_err(StoreError::from)?;
            let record: TokenRecord = decode("token", v.value())?;
            if record.login.eq_ignore_ascii_case(login)
                && user.as_ref().is_none_or(|u| token_is_for(&record, u))
            {
                out.push(record);
            }
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Revokes a token of `login` by id. Revoked tokens stop working at once, here and
    /// (once replicated) on every node of the cluster. The record stays, marked revoked,
    /// so the revocation replicates; a revoked token never comes back.
    pub async fn revoke_token(&self, login: &str, id: u64) -> Result<(), AccountError> {
        let login = login.to_ascii_lowercase();
        let outcome = self
            .store
            .write("revoke_token", move |txn| {
                let user = txn
                    .open_table(USERS)?
                    .get(login.as_str())?
                    .map(|v| decode::<UserRecord>("user", v.value()))
                    .transpose()?;
                let mut tokens = txn.open_table(TOKENS)?;
                let mut found = None;
                for entry in tokens.iter()? {
                    let (k, v) = entry?;
                    let record: TokenRecord = decode("token", v.value())?;
                    if record.id == id
                        && record.login.eq_ignore_ascii_case(&login)
                        && user.as_ref().is_none_or(|u| token_is_for(&record, u))
                    {
                        found = Some((k.value().to_vec(), record));
                        break;
                    }
                }
                let Some((key, mut record)) = found else {
                    return Ok(Err(AccountError::NoSuchToken));
                };
                if record.revoked {
                    return Ok(Ok(()));
                }
                record.revoked = true;
                record.updated_ms = stamp(record.updated_ms);
                tokens.insert(key.as_slice(), encode(&record)?.as_slice())?;
                Ok(Ok(()))
            })
            .await?;
        self.digest.invalidate();
        self.forget_sessions();
        outcome
    }

    /// Creates organization `login` with `admin` (an existing user) as its first admin.
    /// Durable when it returns.
    pub async fn create_org(&self, login: &str, admin: &str) -> Result<OrgRecord, AccountError> {
        validate_login(login)?;
        let lower = login.to_ascii_lowercase();
        let record = OrgRecord {
            login: login.to_string(),
            id: org_id(&lower),
            created_at: now(),
            updated_ms: now_ms(),
            hooks: Vec::new(),
        };
        let bytes = encode(&record)?;
        let admin = admin.to_ascii_lowercase();
        let outcome = self
            .store
            .write("create_org", move |txn| {
                let users = txn.open_table(USERS)?;
                let mut orgs = txn.open_table(ORGS)?;
                if users.get(lower.as_str())?.is_some() || orgs.get(lower.as_str())?.is_some() {
                    return Ok(Err(AccountError::LoginTaken(lower.clone())));
                }
                let Some(user) = users
                    .get(admin.as_str())?
                    .map(|v| decode::<UserRecord>("user", v.value()))
                    .transpose()?
                else {
                    return Ok(Err(AccountError::NoSuchUser(admin.clone())));
                };
                orgs.insert(lower.as_str(), bytes.as_slice())?;
                let mut members = txn.open_table(ORG_MEMBERS)?;
                let key = member_key(&lower, &admin);
                // A row may exist already (a tombstone, or a membership replicated from
                // another node for an org of this name): this change must outrank it.
                let previous = members
                    .get(key.as_str())?
                    .map(|v| decode::<MemberRecord>("membership", v.value()))
                    .transpose()?
                    .map_or(0, |m| m.updated_ms);
                let membership = encode(&MemberRecord {
                    login: user.login,
                    role: Some(OrgRole::Admin),
                    updated_ms: stamp(previous),
                })?;
                members.insert(key.as_str(), membership.as_slice())?;
                Ok(Ok(()))
            })
            .await?;
        outcome?;
        self.digest.invalidate();
        self.refresh_counts();
        Ok(record)
    }

    pub fn org(&self, login: &str) -> Result<Option<OrgRecord>, AccountError> {
        let read = self.store.read()?;
        let orgs = read.open_table(ORGS).map_err(StoreError::from)?;
        let found = orgs
            .get(login.to_ascii_lowercase().as_str())
            .map_err(StoreError::from)?;
        Ok(found.map(|v| decode("org", v.value())).transpose()?)
    }

    /// Every organization, ordered by lowercase login.
    pub fn orgs(&self) -> Result<Vec<OrgRecord>, AccountError> {
        let read = self.store.read()?;
        let orgs = read.open_table(ORGS).map_err(StoreError::from)?;
        let mut out = Vec::new();
        for entry in orgs.iter().map_err(StoreError::from)? {
            let (_, v) = entry.map_err(StoreError::from)?;
            out.push(decode("org", v.value())?);
        }
        Ok(out)
    }

    /// The members of `org`, ordered by lowercase login.
    pub fn members(&self, org: &str) -> Result<Vec<Membership>, AccountError> {
        let read = self.store.read()?;
        let members = read.open_table(ORG_MEMBERS).map_err(StoreError::from)?;
        let prefix = format!("{}/", org.to_ascii_lowercase());
        let mut out = Vec::new();
        for entry in members
            .range::<&str>(prefix.as_str()..)
            .map_err(StoreError::from)?
        {
            let (k, v) = entry.map_err(StoreError::from)?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            let record: MemberRecord = decode("membership", v.value())?;
            if let Some(role) = record.role {
                out.push(Membership {
                    login: record.login,
                    role,
                });
            }
        }
        Ok(out)
    }

    /// `user`'s role in `org`, if they are a member.
    pub fn membership(&self, org: &str, user: &str) -> Result<Option<OrgRole>, AccountError> {
        let read = self.store.read()?;
        let members = read.open_table(ORG_MEMBERS).map_err(StoreError::from)?;
        let key = member_key(&org.to_ascii_lowercase(), &user.to_ascii_lowercase());
        let found = members.get(key.as_str()).map_err(StoreError::from)?;
        Ok(found
            .map(|v| decode::<MemberRecord>("membership", v.value()))
            .transpose()?
            .and_then(|m| m.role))
    }

    /// Adds `user` to `org` with `role`, changes their role, or (`None`) removes them
    /// (leaving a tombstone, so the removal replicates). The last admin can be neither
    /// demoted nor removed here; concurrent demotions on two nodes can still leave an
    /// organization without one, which a site admin repairs.
    pub async fn set_membership(
        &self,
        org: &str,
        user: &str,
        role: Option<OrgRole>,
    ) -> Result<(), AccountError> {
        let org = org.to_ascii_lowercase();
        let user = user.to_ascii_lowercase();
        let outcome = self
            .store
            .write("set_membership", move |txn| {
                if txn.open_table(ORGS)?.get(org.as_str())?.is_none() {
                    return Ok(Err(AccountError::NoSuchOrg(org.clone())));
                }
                let Some(record) = txn
                    .open_table(USERS)?
                    .get(user.as_str())?
                    .map(|v| decode::<UserRecord>("user", v.value()))
                    .transpose()?
                else {
                    return Ok(Err(AccountError::NoSuchUser(user.clone())));
                };
                let mut members = txn.open_table(ORG_MEMBERS)?;
                let key = member_key(&org, &user);
                let current = members
                    .get(key.as_str())?
                    .map(|v| decode::<MemberRecord>("membership", v.value()))
                    .transpose()?;
                let current_role = current.as_ref().and_then(|m| m.role);
                if current_role == role {
                    // Nothing changes; in particular, removing a non-member writes no
                    // tombstone that could outrank a membership this node has not seen.
                    return Ok(Ok(false));
                }
                let was_admin = current_role == Some(OrgRole::Admin);
                if was_admin && role != Some(OrgRole::Admin) {
                    let prefix = format!("{org}/");
                    let mut admins = 0usize;
                    for entry in members.range::<&str>(prefix.as_str()..)? {
                        let (k, v) = entry?;
                        if !k.value().starts_with(&prefix) {
                            break;
                        }
                        let m: MemberRecord = decode("membership", v.value())?;
                        admins += usize::from(m.role == Some(OrgRole::Admin));
                    }
                    if admins <= 1 {
                        return Ok(Err(AccountError::LastOrgAdmin));
                    }
                }
                let value = encode(&MemberRecord {
                    login: record.login,
                    role,
                    updated_ms: stamp(current.map_or(0, |m| m.updated_ms)),
                })?;
                members.insert(key.as_str(), value.as_slice())?;
                Ok(Ok(true))
            })
            .await?;
        if outcome? {
            self.digest.invalidate();
        }
        Ok(())
    }

    /// Users who lost their login to an earlier account of the same name (see
    /// [`crate::accounts::sync`]), kept here with their sealed keys; ordered by key.
    pub fn displaced_users(&self) -> Result<Vec<UserRecord>, AccountError> {
        let read = self.store.read()?;
        let table = read
            .open_table(crate::schema::DISPLACED_USERS)
            .map_err(StoreError::from)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(StoreError::from)? {
            let (_, v) = entry.map_err(StoreError::from)?;
            out.push(decode("displaced user", v.value())?);
        }
        Ok(out)
    }

    pub(crate) fn refresh_counts(&self) {
        if let Ok(read) = self.store.read()
            && let Ok(orgs) = read.open_table(ORGS)
            && let Ok(n) = orgs.len()
        {
            self.store.metrics().organizations.set(n as i64);
        }
        if let Ok(n) = self.count() {
            self.store.metrics().users.set(n as i64);
            self.store
                .metrics()
                .objects
                .get_or_create(&crate::metrics::TypeLabels { r#type: "user" })
                .set(n as i64);
        }
    }
}

/// The membership table's key: orgs' members sort together, so a prefix scan lists them.
pub(crate) fn member_key(org_lower: &str, user_lower: &str) -> String {
    format!("{org_lower}/{user_lower}")
}

/// Whether `author` may hold names under the login `owner` in this cluster: `owner` is
/// the user whose key is `author`, or an organization whose own key
/// ([`Sealer::org_keypair`]) is `author`, or (repositories created before organizations
/// had keys) of which `author`'s user is or was a member (a removal leaves a tombstone,
/// so such a repository keeps its name after they leave). Accounts are cluster data,
/// sealed with the cluster secret, and organization keys derive from it, so a node of
/// another cluster can put neither a user nor a membership here nor sign as one of our
/// organizations: whatever it creates under one of our logins is not bound (see
/// `repos::Index`).
pub(crate) fn holds_name(
    read: &redb::ReadTransaction,
    sealer: &Sealer,
    owner: &str,
    author: &PublicKey,
) -> Result<bool, StoreError> {
    let owner = owner.to_ascii_lowercase();
    if let Some(user) = read.open_table(USERS)?.get(owner.as_str())? {
        let user: UserRecord = decode("user", user.value())?;
        return Ok(user.public_key.eq_ignore_ascii_case(&author.to_string()));
    }
    if read.open_table(ORGS)?.get(owner.as_str())?.is_none() {
        return Ok(false);
    }
    if sealer.org_keypair(&owner).public() == *author {
        return Ok(true);
    }
    let Some(login) = read
        .open_table(USER_KEYS)?
        .get(author.as_bytes().as_slice())?
        .map(|v| v.value().to_ascii_lowercase())
    else {
        return Ok(false);
    };
    let key = member_key(&owner, &login);
    Ok(read.open_table(ORG_MEMBERS)?.get(key.as_str())?.is_some())
}

/// An organization's numeric id, derived from its lowercase login (so the nodes of a
/// cluster agree on it).
pub(crate) fn org_id(lower: &str) -> u64 {
    numeric_id(format!("org:{lower}").as_bytes())
}

/// Whether `token` was made for `user` (the account holding its key, not merely its
/// login). Tokens older than replication that could not be bound name their user by
/// login only.
fn token_is_for(token: &TokenRecord, user: &UserRecord) -> bool {
    token
        .user_key
        .as_ref()
        .is_none_or(|key| *key == user.public_key)
}

#[cfg(test)]
mod tests;
