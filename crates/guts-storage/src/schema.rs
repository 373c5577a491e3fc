//! The tables of the store and their key/value layouts, in one place so that a reader
//! sees the whole on-disk schema at once.

use redb::{Database, MultimapTableDefinition, ReadableTable as _, TableDefinition};

use crate::error::StoreError;

/// Small node-level values (`schema_version`, the readiness probe).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Signed operations by id: `op id (32 bytes) -> canonical SignedOp encoding`.
pub const OPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ops");

/// Which operations belong to which repository: `repo id -> op id` (multimap).
pub const REPO_OPS: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("repo_ops");

/// What is kept of every repository whether its state is loaded or not:
/// `repo id -> encoded summary` (see `repos::summary`). Derived from the operation
/// log and written in the transactions that append to it; rebuilt if missing.
pub const REPO_SUMMARIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("repo_summaries");

/// Checkpoints of folded state: `repo id -> format, operation count, digest, canonical
/// state encoding` (see `repos::checkpoint`). Derived, never trusted beyond what it
/// proves; a missing or unusable one means a fold of the log.
pub const REPO_CHECKPOINTS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("repo_checkpoints");

/// Thread rows: `repo id ‖ number (big-endian) -> Thread::encode_row` (see
/// `repos::rows`). Derived, written with the operations they reflect.
pub const THREAD_ROWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("thread_rows");

/// Per repository, the version its thread rows were written at (8 bytes, big-endian)
/// followed by its labels (`Collab::encode_labels`).
pub const THREAD_ROWS_AT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("thread_rows_at");

/// Repository names: `lowercase "owner/name" -> repo id`, claimed in the transaction
/// that stores the creating operation, released with the deleting one. GitHub names are
/// case-insensitive; the operation keeps the spelling.
pub const REPO_NAMES: TableDefinition<&str, &[u8]> = TableDefinition::new("repo_names");

/// Accounts: `lowercase login -> JSON UserRecord` (with the sealed custodial key).
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");

/// `public key (32 bytes) -> lowercase login`, to name an operation's author.
pub const USER_KEYS: TableDefinition<&[u8], &str> = TableDefinition::new("user_keys");

/// Personal access tokens: `blake3(token) -> JSON TokenRecord`. The token itself is
/// never stored.
pub const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");

/// Organizations: `lowercase login -> JSON OrgRecord`. Logins are one namespace with
/// [`USERS`]: each creation checks both tables in its write transaction.
pub const ORGS: TableDefinition<&str, &[u8]> = TableDefinition::new("orgs");

/// Organization memberships: `"lowercase org/lowercase user" -> JSON membership record`
/// (login, role, stamp). A removed member keeps a row with a null role (a tombstone), so
/// the removal replicates to the cluster's other nodes instead of being undone by them.
pub const ORG_MEMBERS: TableDefinition<&str, &[u8]> = TableDefinition::new("org_members");

/// Users who lost their login to an earlier account of the same name created
/// concurrently on another node of the cluster: `public key (32 bytes) -> JSON
/// UserRecord`. Kept (with the sealed custodial key) so nothing is lost, but neither
/// replicated nor able to sign in. See [`crate::accounts::sync`].
pub const DISPLACED_USERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("displaced_users");

/// SSH keys (users' keys and deploy keys): `random id -> JSON SshKeyRecord`, one row
/// per claim; a deleted key's row stays as a tombstone. See
/// [`crate::accounts::ssh_keys`].
pub const SSH_KEYS: TableDefinition<u64, &[u8]> = TableDefinition::new("ssh_keys");

/// The live claims of each key: `fingerprint (32 bytes) ++ id (8 bytes, big-endian)`.
/// Derived from [`SSH_KEYS`] in the transaction of every change, so authentication is
/// one prefix read.
pub const SSH_KEY_FINGERPRINTS: TableDefinition<&[u8], ()> =
    TableDefinition::new("ssh_key_fingerprints");

/// The live keys of each owner: `"u/<lowercase login>/<id hex>"` or `"r/<repo id
/// hex>/<id hex>"`. Derived from [`SSH_KEYS`] like [`SSH_KEY_FINGERPRINTS`].
pub const SSH_KEY_OWNERS: TableDefinition<&str, ()> = TableDefinition::new("ssh_key_owners");

/// Operations that failed verification or permission checks: `op id -> JSON reason`.
pub const REJECTED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("rejected");

// The webhook tables (outbox, jobs, delivery log) are declared in `crate::hooks`.

pub const SCHEMA_VERSION: u32 = 1;

/// Creates every table so that readers never meet a missing one, and records the schema
/// version (refusing a database written by a newer, incompatible version).
pub(crate) fn create_tables(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        txn.open_table(OPS)?;
        txn.open_multimap_table(REPO_OPS)?;
        txn.open_table(REPO_NAMES)?;
        txn.open_table(REPO_SUMMARIES)?;
        txn.open_table(REPO_CHECKPOINTS)?;
        txn.open_table(THREAD_ROWS)?;
        txn.open_table(THREAD_ROWS_AT)?;
        txn.open_table(USERS)?;
        txn.open_table(USER_KEYS)?;
        txn.open_table(TOKENS)?;
        txn.open_table(REJECTED)?;
        txn.open_table(ORGS)?;
        txn.open_table(ORG_MEMBERS)?;
        txn.open_table(DISPLACED_USERS)?;
        txn.open_table(SSH_KEYS)?;
        txn.open_table(SSH_KEY_FINGERPRINTS)?;
        txn.open_table(SSH_KEY_OWNERS)?;
        txn.open_table(crate::hooks::HOOK_OUTBOX)?;
        txn.open_table(crate::hooks::HOOK_JOBS)?;
        txn.open_table(crate::hooks::HOOK_DUE)?;
        txn.open_table(crate::hooks::HOOK_STANDBY)?;
        txn.open_table(crate::hooks::HOOK_DELIVERIES)?;
        let existing = meta
            .get("schema_version")?
            .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
            .map(u32::from_be_bytes);
        match existing {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Corrupt(format!(
                    "database schema version {v} is newer than this binary's {SCHEMA_VERSION}"
                )));
            }
            Some(_) => {}
            None => {
                meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}
