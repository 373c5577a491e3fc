//! Replication of accounts between the nodes of one cluster: owns the replicated record
//! set (its keys, order and digest), the sealed page format, and the merge rules.
//!
//! A Kubernetes Service sends a request to any pod, so every node sharing
//! `GUTS_CLUSTER_SECRET` must know every user, token (hash), organization and
//! membership. The p2p layer moves opaque bytes; this module decides what they hold.
//!
//! **Records.** Each record has a key: `k:<16 hex digits of the id>` (an SSH key's
//! claim, see [`super::ssh_keys`]), `m:<org>/<user>` (membership), `o:<org>`,
//! `t:<hex of the token hash>`, `u:<user>` (logins lowercase). Pages list records in
//! key order, so a cursor is simply the last key sent. Tokens older than replication
//! that could not be bound to a user key stay local and are not part of the set.
//!
//! **Merge.** Every record key is a register that keeps the greatest version it has
//! seen under one total order, so nodes that exchange pages in any order, any number of
//! times, end up holding the same records (and digests):
//! - tokens and SSH key claims: a revoked version beats a live one, whatever the clocks
//!   say; then the higher `(updated_ms, canonical JSON)`. Which of several live claims
//!   of one key owns it is derived, not merged: the earliest `(created_at, id)`;
//! - memberships: the higher `(updated_ms, canonical JSON)`; a removal is a tombstone
//!   (`role: null`) with a higher stamp than the membership it ended;
//! - users and organizations share one login namespace, so `u:x` and `o:x` form one
//!   register per login. Within one account (same kind, creation second and, for users,
//!   public key) the higher `(updated_ms, canonical JSON)` wins. Between two accounts
//!   that claimed the login concurrently, the earlier `(created_at, kind, public key)`
//!   keeps it on every node (a user beats an organization created in the same second).
//!
//! **Losing a login.** A user whose login goes to an earlier account is moved to
//! `displaced_users` (keyed by public key, with its sealed custodial key: nothing is
//! lost) on every node that held it (always the node that created it), and a warning is
//! logged. It can no longer sign in (tokens are bound to their user's key, so its tokens
//! never serve the winner), its key no longer names it (`user_keys`: its operations show
//! an unknown author rather than the winner), and it is not replicated further. This is
//! the least surprising choice: dropping it would destroy a custodial key, keeping it
//! under the login would show one person under another's name, and renaming it (DESIGN's
//! suffixed name) would re-seal its key (sealed keys are bound to the login) and give it
//! a name nobody chose. A losing organization is dropped (it has no key); memberships
//! are keyed by login, so those made for it join the winner's organization of that
//! name, if there is one. Logins are checked with the same rules as on creation.
//!
//! **Limits.** A sealed page is at most [`MAX_SEALED_PAGE`] bytes; its JSON is checked
//! record by record and a bad record is skipped with a warning. Two admins demoted
//! concurrently on two nodes can leave an organization without an admin; a
//! membership made for a displaced user passes to the winner of the login.

use std::cmp::Ordering;
use std::ops::{Bound, ControlFlow};
use std::sync::{Arc, Mutex};

use guts_core::PublicKey;
use guts_core::names::validate_login;
use redb::{ReadTransaction, ReadableTable as _, Table, WriteTransaction};

use crate::accounts::ssh_keys::{self, KeyTables, SshKeyRecord};
use crate::accounts::{
    AccountError, Accounts, MemberRecord, OrgRecord, TokenRecord, UserRecord, decode, encode,
    numeric_id, org_id,
};
use crate::error::StoreError;
use crate::schema::{DISPLACED_USERS, ORG_MEMBERS, ORGS, TOKENS, USER_KEYS, USERS};
use crate::seal::{SEAL_OVERHEAD, SealError};

/// First byte of every sealed page; bumped with any change of the page format.
pub const PAGE_VERSION: u8 = 1;
/// Associated data of a sealed page: names the format, so a page never opens as a
/// sealed custodial key or as a future format.
const PAGE_FORMAT: &[u8] = b"guts/accounts-page/v1";
/// Largest sealed page accepted (the p2p wire caps its frames lower still).
pub const MAX_SEALED_PAGE: usize = 8 * 1024 * 1024;
/// Bytes a sealed page adds to its plaintext (version byte, nonce, tag): a page
/// exported with `max_bytes` is at most `max_bytes + PAGE_OVERHEAD` long unless its one
/// record is larger.
pub const PAGE_OVERHEAD: usize = 1 + SEAL_OVERHEAD;
/// Largest page plaintext: what fits in [`MAX_SEALED_PAGE`] once sealed.
const MAX_PAGE_PLAINTEXT: usize = MAX_SEALED_PAGE - PAGE_OVERHEAD;

const SSH_KEY: &str = "k:";
const MEMBER: &str = "m:";
const ORG: &str = "o:";
const TOKEN: &str = "t:";
const USER: &str = "u:";

/// Why a sealed page was refused. Nothing is imported from a refused page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("page of {len} bytes is over the {max}-byte cap")]
    TooLarge { len: usize, max: usize },
    #[error("page format version {0} is not understood")]
    Version(u8),
    /// Another cluster's page (another secret), or bytes that are not a page at all.
    #[error("page is not this cluster's (it does not open with this cluster's secret)")]
    NotOurs,
    /// The page opened, so a node of this cluster sealed it, but its content is not a
    /// list of records.
    #[error("page content is malformed: {0}")]
    Malformed(String),
}

/// The cached replication digest, tagged with the write generation it was computed in:
/// a digest computed from a snapshot older than the last write is never kept.
#[derive(Debug)]
pub(crate) struct DigestCache {
    state: Mutex<(u64, Option<[u8; 32]>)>,
    /// The write generation, for whoever waits for account changes
    /// ([`Accounts::changes`]).
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for DigestCache {
    fn default() -> Self {
        Self {
            state: Mutex::new((0, None)),
            changed: tokio::sync::watch::channel(0).0,
        }
    }
}

impl DigestCache {
    fn get(&self) -> (u64, Option<[u8; 32]>) {
        self.state.lock().map(|s| *s).unwrap_or((u64::MAX, None))
    }

    fn put(&self, generation: u64, digest: [u8; 32]) {
        if let Ok(mut state) = self.state.lock()
            && state.0 == generation
        {
            state.1 = Some(digest);
        }
    }

    /// Forgets the digest; every write to an account record calls it after committing.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.0 = state.0.wrapping_add(1);
            state.1 = None;
            self.changed.send_replace(state.0);
        }
    }
}

impl Accounts {
    /// A receiver that sees a new value after every change of the account records
    /// (local writes and imports alike; bursts coalesce).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.digest.changed.subscribe()
    }

    /// Digest of every replicated account record (users, tokens, orgs, memberships, SSH
    /// keys):
    /// equal on two nodes iff their records are equal. Keyed with the cluster secret,
    /// so it tells a peer of another cluster nothing. Cached until the next write or
    /// import, so it is cheap to ask often.
    pub fn replication_digest(&self) -> Result<[u8; 32], AccountError> {
        let (generation, cached) = self.digest.get();
        if let Some(digest) = cached {
            return Ok(digest);
        }
        let read = self.store.read()?;
        let mut hasher = self.sealer.keyed_hasher();
        scan(&read, None, |key, value| {
            // Length-prefixed, so no two record sets hash the same input.
            for part in [key.as_bytes(), value] {
                hasher.update(&(part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
            ControlFlow::Continue(())
        })?;
        let digest = *hasher.finalize().as_bytes();
        self.digest.put(generation, digest);
        Ok(digest)
    }

    /// One page of records in key order strictly after `after`, with at most about
    /// `max_bytes` of plaintext (always at least one record, and never more than a page
    /// may hold), sealed with the cluster's page key. Returns the sealed page and the
    /// cursor of the next one (`None` on the last).
    pub fn export_sealed(
        &self,
        after: Option<&str>,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, Option<String>), AccountError> {
        let budget = max_bytes.min(MAX_PAGE_PLAINTEXT);
        let read = self.store.read()?;
        let mut page = vec![b'['];
        let mut last: Option<String> = None;
        let mut more = false;
        scan(&read, after, |key, value| {
            let entry = page_entry(&key, value);
            if entry.len() + 2 > MAX_PAGE_PLAINTEXT {
                tracing::warn!(
                    record = %key,
                    bytes = entry.len(),
                    "account record too large to replicate"
                );
                return ControlFlow::Continue(());
            }
            if last.is_some() {
                // Comma, entry, closing bracket.
                if page.len() + 1 + entry.len() + 1 > budget {
                    more = true;
                    return ControlFlow::Break(());
                }
                page.push(b',');
            }
            page.extend_from_slice(&entry);
            last = Some(key);
            ControlFlow::Continue(())
        })?;
        page.push(b']');
        let mut sealed = vec![PAGE_VERSION];
        sealed.extend(self.sealer.seal_page(&page, PAGE_FORMAT)?);
        Ok((sealed, last.filter(|_| more)))
    }

    /// Opens a page sealed by a node of this cluster and merges its records (see the
    /// module documentation for the rules). A page that does not open is
    /// [`AccountError::Page`] and changes nothing. Returns how many records changed.
    pub async fn import_sealed(&self, sealed: &[u8]) -> Result<usize, AccountError> {
        let plain = open_page(&self.sealer, sealed)?;
        let records = parse_page(&plain)?;
        if records.is_empty() {
            return Ok(0);
        }
        let records = Arc::new(records);
        let outcome = self
            .store
            .write("import_accounts", move |txn| merge_all(txn, &records))
            .await?;
        for note in &outcome.displaced {
            tracing::warn!("{note}");
        }
        if outcome.changed > 0 {
            self.digest.invalidate();
            self.forget_sessions();
            self.refresh_counts();
        }
        Ok(outcome.changed)
    }
}

fn open_page(
    sealer: &crate::seal::Sealer,
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, PageError> {
    if sealed.len() > MAX_SEALED_PAGE {
        return Err(PageError::TooLarge {
            len: sealed.len(),
            max: MAX_SEALED_PAGE,
        });
    }
    let Some((&version, body)) = sealed.split_first() else {
        return Err(PageError::NotOurs);
    };
    if version != PAGE_VERSION {
        return Err(PageError::Version(version));
    }
    sealer
        .open_page(body, PAGE_FORMAT)
        .map_err(|e: SealError| match e {
            SealError::Truncated | SealError::WrongSecret | SealError::Seal => PageError::NotOurs,
        })
}

/// `{"k":<key>,"v":<canonical record>}`: the record's canonical bytes are embedded as
/// they are, so importer and exporter compare exactly what was digested.
fn page_entry(key: &str, value: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(key.len() + value.len() + 16);
    entry.extend_from_slice(b"{\"k\":");
    // A string always serialises; the fallback is never taken.
    entry.extend(serde_json::to_vec(key).unwrap_or_else(|_| b"\"\"".to_vec()));
    entry.extend_from_slice(b",\"v\":");
    entry.extend_from_slice(value);
    entry.push(b'}');
    entry
}

/// Where a scan of one table starts, given the cursor.
enum Start<'a> {
    All,
    /// Strictly after this table key (the cursor without its prefix).
    After(&'a str),
    /// The cursor is past this table.
    Nothing,
}

fn start<'a>(after: Option<&'a str>, prefix: &str) -> Start<'a> {
    match after {
        None => Start::All,
        Some(cursor) => match cursor.strip_prefix(prefix) {
            Some(rest) => Start::After(rest),
            // Not in this table's range: wholly before it or wholly after it.
            None if cursor < prefix => Start::All,
            None => Start::Nothing,
        },
    }
}

/// Visits every replicated record strictly after `after`, in key order, as its key and
/// canonical JSON. Records that do not decode are skipped with a warning (the same way
/// for the digest and for pages, so both describe one set).
fn scan(
    read: &ReadTransaction,
    after: Option<&str>,
    mut visit: impl FnMut(String, &[u8]) -> ControlFlow<()>,
) -> Result<(), AccountError> {
    let from = match start(after, SSH_KEY) {
        Start::Nothing => None,
        Start::All => Some(None),
        Start::After(id) => Some(Some(id)),
    };
    if let Some(from) = from
        && ssh_keys::scan_claims(read, from, &mut |key, value| {
            visit(format!("{SSH_KEY}{key}"), &value)
        })?
        .is_break()
    {
        return Ok(());
    }
    for (prefix, def) in [(MEMBER, ORG_MEMBERS), (ORG, ORGS)] {
        if scan_by_login(read, prefix, def, after, &mut visit)?.is_break() {
            return Ok(());
        }
    }
    if scan_tokens(read, after, &mut visit)?.is_continue() {
        // The last table: whether the visitor stopped early changes nothing here.
        let _ = scan_by_login(read, USER, USERS, after, &mut visit)?;
    }
    Ok(())
}

fn scan_by_login(
    read: &ReadTransaction,
    prefix: &str,
    def: redb::TableDefinition<&str, &[u8]>,
    after: Option<&str>,
    visit: &mut impl FnMut(String, &[u8]) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, AccountError> {
    let table = read.open_table(def).map_err(StoreError::from)?;
    let range = match start(after, prefix) {
        Start::Nothing => return Ok(ControlFlow::Continue(())),
        Start::All => table.range::<&str>(..),
        Start::After(key) => table.range::<&str>((Bound::Excluded(key), Bound::Unbounded)),
    }
    .map_err(StoreError::from)?;
    for entry in range {
        let (k, v) = entry.map_err(StoreError::from)?;
        let key = format!("{prefix}{}", k.value());
        let canonical = match prefix {
            MEMBER => canonical::<MemberRecord>(&key, v.value()),
            ORG => canonical::<OrgRecord>(&key, v.value()),
            _ => canonical::<UserRecord>(&key, v.value()),
        };
        if let Some(value) = canonical
            && visit(key, &value).is_break()
        {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

fn scan_tokens(
    read: &ReadTransaction,
    after: Option<&str>,
    visit: &mut impl FnMut(String, &[u8]) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, AccountError> {
    let table = read.open_table(TOKENS).map_err(StoreError::from)?;
    // Hex preserves byte order, so a cursor that is hex resumes with a range; any other
    // cursor inside the token range is compared as text.
    let (range, floor) = match start(after, TOKEN) {
        Start::Nothing => return Ok(ControlFlow::Continue(())),
        Start::All => (table.range::<&[u8]>(..), None),
        Start::After(rest) => match hex::decode(rest) {
            Ok(bytes) => (
                table.range::<&[u8]>((Bound::Excluded(bytes.as_slice()), Bound::Unbounded)),
                None,
            ),
            Err(_) => (table.range::<&[u8]>(..), Some(rest)),
        },
    };
    for entry in range.map_err(StoreError::from)? {
        let (k, v) = entry.map_err(StoreError::from)?;
        let hash = hex::encode(k.value());
        if floor.is_some_and(|floor| hash.as_str() <= floor) {
            continue;
        }
        let key = format!("{TOKEN}{hash}");
        let value = match decode::<TokenRecord>(&key, v.value()) {
            // Not yet bound to a user key: stays on this node (`TokenRecord::user_key`).
            Ok(token) if token.user_key.is_none() => continue,
            Ok(token) => encode(&token),
            Err(e) => Err(e),
        };
        let value = match value {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(record = %key, error = %e, "skipping an undecodable account record");
                continue;
            }
        };
        if visit(key, &value).is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// The canonical encoding of a stored record (older records gain their default fields).
fn canonical<T>(key: &str, stored: &[u8]) -> Option<Vec<u8>>
where
    T: serde::Serialize + for<'de> serde::Deserialize<'de>,
{
    match decode::<T>(key, stored).and_then(|record| encode(&record)) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!(record = %key, error = %e, "skipping an undecodable account record");
            None
        }
    }
}

/// A record from a page, checked and re-encoded canonically.
#[derive(Debug)]
enum Incoming {
    User {
        lower: String,
        record: UserRecord,
        bytes: Vec<u8>,
    },
    Org {
        lower: String,
        record: OrgRecord,
        bytes: Vec<u8>,
    },
    Token {
        hash: Vec<u8>,
        record: TokenRecord,
        bytes: Vec<u8>,
    },
    Member {
        key: String,
        record: MemberRecord,
        bytes: Vec<u8>,
    },
    SshKey {
        record: SshKeyRecord,
        bytes: Vec<u8>,
    },
}

/// Parses a page's plaintext: a JSON array of `{"k","v"}` entries. The array must parse;
/// each entry is then checked alone and skipped with a warning if it is bad.
fn parse_page(plain: &[u8]) -> Result<Vec<Incoming>, PageError> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(plain).map_err(|e| PageError::Malformed(e.to_string()))?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        match parse_entry(entry) {
            Ok(record) => out.push(record),
            Err(reason) => tracing::warn!(%reason, "skipping a bad record of an account page"),
        }
    }
    Ok(out)
}

fn parse_entry(entry: serde_json::Value) -> Result<Incoming, String> {
    let serde_json::Value::Object(mut entry) = entry else {
        return Err("entry is not an object".into());
    };
    let Some(serde_json::Value::String(key)) = entry.remove("k") else {
        return Err("entry has no key".into());
    };
    let value = entry
        .remove("v")
        .ok_or_else(|| format!("{key}: no value"))?;
    let bad = |what: &str| format!("{key}: {what}");
    let login_ok = |login: &str| validate_login(login).map_err(|e| bad(&e.to_string()));
    if let Some(lower) = key.strip_prefix(USER) {
        let record: UserRecord = serde_json::from_value(value).map_err(|e| bad(&e.to_string()))?;
        login_ok(&record.login)?;
        if record.login.to_ascii_lowercase() != lower {
            return Err(bad("login does not match the key"));
        }
        let public: PublicKey = record
            .public_key
            .parse()
            .map_err(|_| bad("bad public key"))?;
        if record.id != numeric_id(public.as_bytes()) {
            return Err(bad("id does not match the key"));
        }
        if let Some(sealed) = &record.sealed_key
            && hex::decode(sealed).is_err()
        {
            return Err(bad("sealed key is not hex"));
        }
        let bytes = encode(&record).map_err(|e| bad(&e.to_string()))?;
        Ok(Incoming::User {
            lower: lower.to_string(),
            record,
            bytes,
        })
    } else if let Some(lower) = key.strip_prefix(ORG) {
        let record: OrgRecord = serde_json::from_value(value).map_err(|e| bad(&e.to_string()))?;
        login_ok(&record.login)?;
        if record.login.to_ascii_lowercase() != lower || record.id != org_id(lower) {
            return Err(bad("login or id does not match the key"));
        }
        if !super::org_hooks::valid(&record.hooks) {
            return Err(bad("hooks out of bounds"));
        }
        let bytes = encode(&record).map_err(|e| bad(&e.to_string()))?;
        Ok(Incoming::Org {
            lower: lower.to_string(),
            record,
            bytes,
        })
    } else if let Some(hash) = key.strip_prefix(TOKEN) {
        let hash = hex::decode(hash).map_err(|_| bad("hash is not hex"))?;
        if hash.len() != 32 {
            return Err(bad("hash is not 32 bytes"));
        }
        let record: TokenRecord = serde_json::from_value(value).map_err(|e| bad(&e.to_string()))?;
        login_ok(&record.login)?;
        if record.id != numeric_id(&hash) {
            return Err(bad("id does not match the hash"));
        }
        // An unbound token could end up serving whoever holds its login.
        match &record.user_key {
            Some(key) if key.parse::<PublicKey>().is_ok() => {}
            _ => return Err(bad("token is not bound to a user key")),
        }
        let bytes = encode(&record).map_err(|e| bad(&e.to_string()))?;
        Ok(Incoming::Token {
            hash,
            record,
            bytes,
        })
    } else if let Some(id) = key.strip_prefix(SSH_KEY) {
        let record: SshKeyRecord =
            serde_json::from_value(value).map_err(|e| bad(&e.to_string()))?;
        ssh_keys::check_incoming(id, &record).map_err(|e| bad(&e))?;
        let bytes = encode(&record).map_err(|e| bad(&e.to_string()))?;
        Ok(Incoming::SshKey { record, bytes })
    } else if let Some(rest) = key.strip_prefix(MEMBER) {
        let record: MemberRecord =
            serde_json::from_value(value).map_err(|e| bad(&e.to_string()))?;
        let (org, user) = rest.split_once('/').ok_or_else(|| bad("no org/user"))?;
        login_ok(org)?;
        login_ok(&record.login)?;
        if org != org.to_ascii_lowercase() || user != record.login.to_ascii_lowercase() {
            return Err(bad("login does not match the key"));
        }
        let bytes = encode(&record).map_err(|e| bad(&e.to_string()))?;
        Ok(Incoming::Member {
            key: rest.to_string(),
            record,
            bytes,
        })
    } else {
        Err(bad("unknown record kind"))
    }
}

/// What an import did, reported once its commit is durable (a write may run twice, so
/// it logs nothing itself).
#[derive(Debug, Default)]
struct MergeOutcome {
    changed: usize,
    /// One line per account that lost (or could not take) its login.
    displaced: Vec<String>,
}

type StrTable<'t> = Table<'t, &'static str, &'static [u8]>;
type BytesTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// The tables an import writes, opened once (redb refuses to open one twice at once).
struct Tables<'t> {
    users: StrTable<'t>,
    orgs: StrTable<'t>,
    keys: Table<'t, &'static [u8], &'static str>,
    tokens: BytesTable<'t>,
    members: StrTable<'t>,
    displaced: BytesTable<'t>,
    ssh_keys: KeyTables<'t>,
}

fn merge_all(txn: &WriteTransaction, records: &[Incoming]) -> Result<MergeOutcome, StoreError> {
    let mut t = Tables {
        users: txn.open_table(USERS)?,
        orgs: txn.open_table(ORGS)?,
        keys: txn.open_table(USER_KEYS)?,
        tokens: txn.open_table(TOKENS)?,
        members: txn.open_table(ORG_MEMBERS)?,
        displaced: txn.open_table(DISPLACED_USERS)?,
        ssh_keys: KeyTables::open(txn)?,
    };
    let mut outcome = MergeOutcome::default();
    for record in records {
        let changed = match record {
            Incoming::User {
                lower,
                record,
                bytes,
            } => merge_login(
                &mut t,
                lower,
                Claim::User(record.clone(), bytes.clone()),
                &mut outcome,
            )?,
            Incoming::Org {
                lower,
                record,
                bytes,
            } => merge_login(
                &mut t,
                lower,
                Claim::Org(record.clone(), bytes.clone()),
                &mut outcome,
            )?,
            Incoming::Token {
                hash,
                record,
                bytes,
            } => merge_token(&mut t.tokens, hash, record, bytes)?,
            Incoming::Member { key, record, bytes } => {
                merge_member(&mut t.members, key, record, bytes)?
            }
            Incoming::SshKey { record, bytes } => {
                ssh_keys::merge_claim(&mut t.ssh_keys, record, bytes)?
            }
        };
        outcome.changed += usize::from(changed);
    }
    Ok(outcome)
}

/// A claim on a login: a user or an organization, with its canonical encoding.
#[derive(Debug, Clone)]
enum Claim {
    User(UserRecord, Vec<u8>),
    Org(OrgRecord, Vec<u8>),
}

impl Claim {
    /// Which account this is: the earlier identity keeps a contested login. Users sort
    /// before organizations created in the same second (a user has a key to lose).
    fn identity(&self) -> (u64, u8, &str) {
        match self {
            Claim::User(u, _) => (u.created_at, 0, u.public_key.as_str()),
            Claim::Org(o, _) => (o.created_at, 1, ""),
        }
    }

    fn version(&self) -> (u64, &[u8]) {
        match self {
            Claim::User(u, bytes) => (u.updated_ms, bytes),
            Claim::Org(o, bytes) => (o.updated_ms, bytes),
        }
    }

    /// The total order of a login's register: the earlier identity, then the later
    /// version of the same account.
    fn beats(&self, other: &Claim) -> bool {
        match self.identity().cmp(&other.identity()) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.version() > other.version(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Claim::User(u, _) => format!("user {} (key {})", u.login, u.public_key),
            Claim::Org(o, _) => format!("organization {}", o.login),
        }
    }
}

/// The current holder of `lower`, if any. A stored record that does not decode is
/// treated as absent, so a valid version from another node repairs it.
fn holder(t: &Tables<'_>, lower: &str) -> Result<Option<Claim>, StoreError> {
    if let Some(v) = t.users.get(lower)? {
        if let Ok(user) = decode::<UserRecord>("user", v.value())
            && let Ok(bytes) = encode(&user)
        {
            return Ok(Some(Claim::User(user, bytes)));
        }
        return Ok(None);
    }
    if let Some(v) = t.orgs.get(lower)?
        && let Ok(org) = decode::<OrgRecord>("org", v.value())
        && let Ok(bytes) = encode(&org)
    {
        return Ok(Some(Claim::Org(org, bytes)));
    }
    Ok(None)
}

fn key_bytes(user: &UserRecord) -> Result<[u8; 32], StoreError> {
    Ok(*user.public_key()?.as_bytes())
}

/// Merges a claim on login `lower` into the namespace register shared by users and
/// organizations; keeps `user_keys` pointing at the holder and displaces a losing user.
fn merge_login(
    t: &mut Tables<'_>,
    lower: &str,
    incoming: Claim,
    outcome: &mut MergeOutcome,
) -> Result<bool, StoreError> {
    let current = holder(t, lower)?;
    if let Some(current) = &current
        && !incoming.beats(current)
    {
        if current.identity() != incoming.identity() {
            if let Claim::User(user, _) = &incoming {
                displace(t, user)?;
            }
            outcome.displaced.push(format!(
                "login {lower}: kept by {}, which was created earlier; {} is displaced",
                current.describe(),
                incoming.describe()
            ));
        }
        return Ok(false);
    }
    if let Claim::User(user, _) = &incoming {
        // One key names one account. Two logins with one key cannot arise from honest
        // nodes (keys are random); refuse rather than re-point the key.
        let key = key_bytes(user)?;
        if let Some(other) = t.keys.get(key.as_slice())?.map(|v| v.value().to_string())
            && other != lower
        {
            outcome.displaced.push(format!(
                "login {lower}: {} refused, its key already names {other}",
                incoming.describe()
            ));
            return Ok(false);
        }
    }
    // Another account held the login: it goes (a user into `displaced_users`).
    if let Some(current) = &current
        && current.identity() != incoming.identity()
    {
        if let Claim::User(old, _) = current {
            t.keys.remove(key_bytes(old)?.as_slice())?;
            displace(t, old)?;
        }
        outcome.displaced.push(format!(
            "login {lower}: taken by {}, which was created earlier; {} is displaced",
            incoming.describe(),
            current.describe()
        ));
    }
    // Whatever the other table holds under this login goes too (a row that no longer
    // decodes included), so the login stays in exactly one table.
    match &incoming {
        Claim::User(user, bytes) => {
            t.orgs.remove(lower)?;
            t.users.insert(lower, bytes.as_slice())?;
            t.keys.insert(key_bytes(user)?.as_slice(), lower)?;
        }
        Claim::Org(_, bytes) => {
            t.users.remove(lower)?;
            t.orgs.insert(lower, bytes.as_slice())?;
        }
    }
    Ok(true)
}

/// Keeps a user who lost their login under their key (the newer version if the table
/// already holds one).
fn displace(t: &mut Tables<'_>, user: &UserRecord) -> Result<(), StoreError> {
    let key = key_bytes(user)?;
    let bytes = encode(user)?;
    let keep = match t.displaced.get(key.as_slice())? {
        Some(v) => match decode::<UserRecord>("displaced user", v.value()) {
            Ok(old) => (user.updated_ms, bytes.as_slice()) > (old.updated_ms, v.value()),
            Err(_) => true,
        },
        None => true,
    };
    if keep {
        t.displaced.insert(key.as_slice(), bytes.as_slice())?;
    }
    Ok(())
}

/// A revoked token beats a live one; then the later version.
fn merge_token(
    tokens: &mut BytesTable<'_>,
    hash: &[u8],
    record: &TokenRecord,
    bytes: &[u8],
) -> Result<bool, StoreError> {
    let rank = |t: &TokenRecord| (t.revoked, t.updated_ms);
    let wins = match tokens.get(hash)? {
        None => true,
        Some(v) => match decode::<TokenRecord>("token", v.value()).and_then(|t| {
            let current = encode(&t)?;
            Ok((rank(&t), current))
        }) {
            Ok((current_rank, current)) => {
                (rank(record), bytes) > (current_rank, current.as_slice())
            }
            Err(_) => true,
        },
    };
    if wins {
        tokens.insert(hash, bytes)?;
    }
    Ok(wins)
}

/// The later version of a membership (or its tombstone) wins.
fn merge_member(
    members: &mut StrTable<'_>,
    key: &str,
    record: &MemberRecord,
    bytes: &[u8],
) -> Result<bool, StoreError> {
    let wins = match members.get(key)? {
        None => true,
        Some(v) => match decode::<MemberRecord>("membership", v.value()).and_then(|m| {
            let current = encode(&m)?;
            Ok((m.updated_ms, current))
        }) {
            Ok((stamp, current)) => (record.updated_ms, bytes) > (stamp, current.as_slice()),
            Err(_) => true,
        },
    };
    if wins {
        members.insert(key, bytes)?;
    }
    Ok(wins)
}

#[cfg(test)]
mod tests;
