//! SSH public keys: a user's own keys and a repository's deploy keys (added, listed,
//! deleted), the rules of what a key may be, and [`Service::ssh_caller`], which the SSH
//! front end asks who a key offered on the wire is.
//!
//! Keys are replicated account data (guts-storage `accounts::ssh_keys`): a key is held
//! by one live claim across the cluster, and deleting one stops it at once on this
//! node and, as soon as the deletion replicates, everywhere (the same path as a token's
//! revocation). Of two claims two nodes accepted before syncing, the earliest owns the
//! key; the other is *shadowed* ([`SshKey::active`] false) and never authenticates.

use base64::Engine as _;
use guts_core::{RepoId, Role};
use guts_storage::accounts::ssh_keys::{MAX_KEY_TEXT_BYTES, MAX_KEY_TITLE_CHARS};
use guts_storage::{AccountError, KeyOwner, NewSshKey, Scope, SshKeyRecord, UserRecord};
use sha2::{Digest as _, Sha256};
use ssh_key::public::KeyData;

use crate::Service;
use crate::caller::Authed;
use crate::error::{FieldCode, ServiceError};
use crate::repos::RepoAccess;

/// Longest key input accepted, in bytes, before any parsing.
pub const MAX_SSH_KEY_INPUT_BYTES: usize = MAX_KEY_TEXT_BYTES;
/// Longest key title, in characters.
pub const MAX_SSH_KEY_TITLE_CHARS: usize = MAX_KEY_TITLE_CHARS;
/// Smallest RSA modulus accepted, in bits (what OpenSSH itself requires since 9.x
/// is 1024; GitHub and NIST ask for 2048).
pub const MIN_RSA_BITS: u32 = 2048;

/// Why a pasted key is refused; the text is what the user reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("key is empty")]
    Empty,
    #[error("key is over {MAX_SSH_KEY_INPUT_BYTES} bytes")]
    TooLong,
    #[error("this is a private key: paste the public key (the .pub file) instead")]
    PrivateKey,
    #[error("only one key may be added at a time")]
    MultipleKeys,
    #[error("certificates are not accepted: add the public key itself")]
    Certificate,
    #[error("DSA keys are not accepted (insecure): use ed25519")]
    Dsa,
    #[error("RSA keys must be at least {MIN_RSA_BITS} bits, this one is {0}")]
    RsaTooSmall(u32),
    #[error("key type {0:?} is not supported: use ed25519, ecdsa or rsa")]
    Unsupported(String),
    #[error("key is invalid: it must be in OpenSSH public key format (`ssh-ed25519 AAAA…`)")]
    Malformed,
}

/// An accepted public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// The key's wire blob, as SSH sends it.
    pub blob: Vec<u8>,
    /// `type base64`, without the comment (what GitHub stores and shows).
    pub text: String,
    /// SHA-256 of `blob`.
    pub fingerprint: [u8; 32],
}

/// A key as its owner or a repository admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    pub record: SshKeyRecord,
    /// Whether this claim owns its key. False for a claim shadowed by an earlier claim
    /// of the same key accepted concurrently on another node: it never authenticates,
    /// and is shown so that its owner can delete it.
    pub active: bool,
}

/// Who an SSH key is: the user it belongs to, or the repository a deploy key opens.
#[derive(Debug, Clone)]
pub struct SshCaller {
    /// The user the key acts as: its owner, or for a deploy key the user who added it.
    pub authed: Authed,
    pub key_id: u64,
    /// `SHA256:…` as OpenSSH prints it, for audit logs.
    pub fingerprint: String,
    /// `Some` for a deploy key: it opens only this repository, and only for reading unless `read_only` is false.
    pub deploy: Option<DeployLimit>,
}

/// What a deploy key may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployLimit {
    pub repo: RepoId,
    pub read_only: bool,
}

/// `SHA256:<base64 without padding>` of a key's wire blob, as OpenSSH prints it.
pub fn ssh_fingerprint_text(blob: &[u8]) -> String {
    let digest = Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// Parses one OpenSSH public key as a user pastes it (`type base64 [comment]`) and
/// checks it is a kind Guts accepts: ed25519, ECDSA on NIST P-256/384/521, RSA of at
/// least [`MIN_RSA_BITS`].
pub fn parse_public_key(input: &str) -> Result<ParsedKey, KeyRefusal> {
    if input.len() > MAX_SSH_KEY_INPUT_BYTES {
        return Err(KeyRefusal::TooLong);
    }
    let text = input.trim();
    if text.is_empty() {
        return Err(KeyRefusal::Empty);
    }
    if text.contains("PRIVATE KEY") || text.starts_with("-----BEGIN") {
        return Err(KeyRefusal::PrivateKey);
    }
    if text.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        return Err(KeyRefusal::MultipleKeys);
    }
    let mut words = text.split_whitespace();
    let algorithm = words.next().unwrap_or_default();
    if algorithm.ends_with("-cert-v01@openssh.com") {
        return Err(KeyRefusal::Certificate);
    }
    if algorithm == "ssh-dss" {
        return Err(KeyRefusal::Dsa);
    }
    let key = ssh_key::PublicKey::from_openssh(text).map_err(|_| KeyRefusal::Malformed)?;
    // Two keys on one line: the second would pass as the first's comment.
    let _base64 = words.next();
    if words.any(|w| w.starts_with("AAAA") && w.len() > 40) {
        return Err(KeyRefusal::MultipleKeys);
    }
    match key.key_data() {
        KeyData::Ed25519(_) | KeyData::Ecdsa(_) => {}
        KeyData::Rsa(rsa) if rsa.key_size() < MIN_RSA_BITS => {
            return Err(KeyRefusal::RsaTooSmall(rsa.key_size()));
        }
        KeyData::Rsa(_) => {}
        KeyData::Dsa(_) => return Err(KeyRefusal::Dsa),
        KeyData::Certificate(_) => return Err(KeyRefusal::Certificate),
        other => {
            return Err(KeyRefusal::Unsupported(
                other.algorithm().as_str().to_string(),
            ));
        }
    }
    let blob = key.to_bytes().map_err(|_| KeyRefusal::Malformed)?;
    let text = format!(
        "{} {}",
        key.algorithm().as_str(),
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    Ok(ParsedKey {
        fingerprint: Sha256::digest(&blob).into(),
        blob,
        text,
    })
}

/// A refusal as the field error GitHub answers (422 on the `key` field).
fn refused(refusal: KeyRefusal) -> ServiceError {
    ServiceError::invalid(
        "PublicKey",
        "key",
        FieldCode::Custom,
        Some(refusal.to_string()),
    )
}

/// The key and title of an add, checked: the key is required, the title capped.
fn checked(title: Option<&str>, key: Option<&str>) -> Result<(String, ParsedKey), ServiceError> {
    let Some(key) = key else {
        return Err(ServiceError::invalid(
            "PublicKey",
            "key",
            FieldCode::MissingField,
            None,
        ));
    };
    let title = title.unwrap_or_default().trim();
    if title.chars().count() > MAX_SSH_KEY_TITLE_CHARS {
        return Err(ServiceError::invalid(
            "PublicKey",
            "title",
            FieldCode::Invalid,
            Some(format!(
                "is too long (maximum is {MAX_SSH_KEY_TITLE_CHARS} characters)"
            )),
        ));
    }
    Ok((title.to_string(), parse_public_key(key).map_err(refused)?))
}

/// Whether `owner` is the account `user` (its login and key).
fn is_users(owner: &KeyOwner, user: &UserRecord) -> bool {
    matches!(owner, KeyOwner::User { login, user_key }
        if login.eq_ignore_ascii_case(&user.login) && *user_key == user.public_key)
}

fn is_repos(owner: &KeyOwner, repo: RepoId) -> bool {
    matches!(owner, KeyOwner::Deploy { repo: r, .. } if *r == repo)
}

impl Service {
    /// Stores a new claim. A key still held by a deploy key of a repository that has
    /// since been deleted is released first (its claim deleted): the repository is gone
    /// for good, so nobody could delete that key through it any more, and it would
    /// otherwise be in use forever.
    async fn claim(&self, new: NewSshKey) -> Result<SshKeyRecord, ServiceError> {
        match self.accounts.add_ssh_key(new.clone()).await {
            Err(AccountError::SshKeyInUse) if self.release_orphans(&new.fingerprint).await? => {
                Ok(self.accounts.add_ssh_key(new).await?)
            }
            other => Ok(other?),
        }
    }

    /// Deletes the live claims of `fingerprint` that are deploy keys of deleted
    /// repositories, owner first; whether the key is free then. A repository this node
    /// has not heard of yet is not deleted.
    async fn release_orphans(&self, fingerprint: &[u8; 32]) -> Result<bool, ServiceError> {
        while let Some(owner) = self.accounts.ssh_key_by_fingerprint(fingerprint)? {
            let KeyOwner::Deploy { repo, .. } = owner.owner else {
                return Ok(false);
            };
            if !self.repos.get(repo).is_some_and(|v| v.state.deleted) {
                return Ok(false);
            }
            match self
                .accounts
                .revoke_ssh_key(owner.id, move |o| is_repos(o, repo))
                .await
            {
                Ok(_) | Err(AccountError::NoSuchSshKey) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(id = owner.id, %repo, "deploy key of a deleted repository released");
        }
        Ok(true)
    }

    /// Marks each claim with whether it owns its key.
    fn with_activity(&self, records: Vec<SshKeyRecord>) -> Result<Vec<SshKey>, ServiceError> {
        records
            .into_iter()
            .map(|record| {
                let active = self.accounts.ssh_key_owns(&record)?;
                Ok(SshKey { record, active })
            })
            .collect()
    }

    /// Adds a key for the caller: the `repo` scope (a key acts with it), a key no live
    /// claim holds, at most 100 keys a user.
    pub async fn add_own_ssh_key(
        &self,
        who: &Authed,
        title: Option<&str>,
        key: Option<&str>,
    ) -> Result<SshKey, ServiceError> {
        who.require(Scope::Repo)?;
        let (title, parsed) = checked(title, key)?;
        let record = self
            .claim(NewSshKey {
                fingerprint: parsed.fingerprint,
                key: parsed.text,
                title,
                owner: KeyOwner::User {
                    login: who.user.login.clone(),
                    user_key: who.user.public_key.clone(),
                },
            })
            .await?;
        tracing::info!(
            login = %who.user.login,
            id = record.id,
            fingerprint = %ssh_fingerprint_text(&parsed.blob),
            "ssh key added"
        );
        Ok(SshKey {
            record,
            active: true,
        })
    }

    /// The caller's live keys, oldest first.
    pub fn own_ssh_keys(&self, who: &Authed) -> Result<Vec<SshKey>, ServiceError> {
        who.require(Scope::Repo)?;
        let records = self.accounts.user_ssh_keys(&who.user)?;
        self.with_activity(records)
    }

    /// One of the caller's live keys; anyone else's is [`ServiceError::NotFound`].
    pub fn own_ssh_key(&self, who: &Authed, id: u64) -> Result<SshKey, ServiceError> {
        who.require(Scope::Repo)?;
        let record = self
            .accounts
            .ssh_key(id)?
            .filter(|r| !r.revoked && is_users(&r.owner, &who.user))
            .ok_or(ServiceError::NotFound)?;
        let active = self.accounts.ssh_key_owns(&record)?;
        Ok(SshKey { record, active })
    }

    /// Deletes one of the caller's keys, cluster-wide; anyone else's is
    /// [`ServiceError::NotFound`].
    pub async fn delete_own_ssh_key(&self, who: &Authed, id: u64) -> Result<(), ServiceError> {
        who.require(Scope::Repo)?;
        let user = who.user.clone();
        self.accounts
            .revoke_ssh_key(id, move |owner| is_users(owner, &user))
            .await?;
        tracing::info!(login = %who.user.login, id, "ssh key deleted");
        Ok(())
    }

    /// The keys that authenticate as `login` (anyone may ask, as on GitHub): live claims
    /// that own their key; [`ServiceError::NotFound`] for no such user.
    pub fn public_ssh_keys(&self, login: &str) -> Result<Vec<SshKeyRecord>, ServiceError> {
        let user = self.user(login)?;
        let keys = self.with_activity(self.accounts.user_ssh_keys(&user)?)?;
        Ok(keys
            .into_iter()
            .filter(|k| k.active)
            .map(|k| k.record)
            .collect())
    }

    /// Whether `who` may manage `access`'s deploy keys: the `repo` scope and the admin
    /// role. Others get `NotFound`, as on GitHub.
    fn may_manage_deploy_keys(
        &self,
        who: &Authed,
        access: &RepoAccess,
    ) -> Result<(), ServiceError> {
        if access.role.is_none_or(|r| r < Role::Admin) {
            return Err(ServiceError::NotFound);
        }
        who.require(Scope::Repo)
    }

    /// Adds a deploy key to a repository, for an admin; read-only unless `read_only`
    /// is `Some(false)`. At most 100 a repository.
    pub async fn add_deploy_key(
        &self,
        who: &Authed,
        access: &RepoAccess,
        title: Option<&str>,
        key: Option<&str>,
        read_only: Option<bool>,
    ) -> Result<SshKey, ServiceError> {
        self.may_manage_deploy_keys(who, access)?;
        let (title, parsed) = checked(title, key)?;
        let record = self
            .claim(NewSshKey {
                fingerprint: parsed.fingerprint,
                key: parsed.text,
                title,
                owner: KeyOwner::Deploy {
                    repo: access.view.id,
                    read_only: read_only.unwrap_or(true),
                    added_by: who.user.login.clone(),
                    added_by_key: who.user.public_key.clone(),
                },
            })
            .await?;
        tracing::info!(
            login = %who.user.login,
            repo = %access.view.id,
            id = record.id,
            fingerprint = %ssh_fingerprint_text(&parsed.blob),
            "deploy key added"
        );
        Ok(SshKey {
            record,
            active: true,
        })
    }

    /// The repository's live deploy keys, oldest first, for an admin.
    pub fn deploy_keys(
        &self,
        who: &Authed,
        access: &RepoAccess,
    ) -> Result<Vec<SshKey>, ServiceError> {
        self.may_manage_deploy_keys(who, access)?;
        let records = self.accounts.deploy_keys(&access.view.id)?;
        self.with_activity(records)
    }

    /// One live deploy key of the repository, for an admin.
    pub fn deploy_key(
        &self,
        who: &Authed,
        access: &RepoAccess,
        id: u64,
    ) -> Result<SshKey, ServiceError> {
        self.may_manage_deploy_keys(who, access)?;
        let record = self
            .accounts
            .ssh_key(id)?
            .filter(|r| !r.revoked && is_repos(&r.owner, access.view.id))
            .ok_or(ServiceError::NotFound)?;
        let active = self.accounts.ssh_key_owns(&record)?;
        Ok(SshKey { record, active })
    }

    /// Deletes a deploy key of the repository, cluster-wide, for an admin.
    pub async fn delete_deploy_key(
        &self,
        who: &Authed,
        access: &RepoAccess,
        id: u64,
    ) -> Result<(), ServiceError> {
        self.may_manage_deploy_keys(who, access)?;
        let repo = access.view.id;
        self.accounts
            .revoke_ssh_key(id, move |owner| is_repos(owner, repo))
            .await?;
        tracing::info!(login = %who.user.login, %repo, id, "deploy key deleted");
        Ok(())
    }

    /// The caller an SSH public key (its wire blob) authenticates, or `None` for an unknown, revoked or shadowed key, a suspended/displaced user, or a deploy key whose adder no longer exists.
    ///
    /// Also `None` for a deploy key of a repository this node does not hold or that was
    /// deleted. Nothing is cached: one index read and one user read, so a deletion (or
    /// a suspension) takes effect with the next connection.
    pub fn ssh_caller(&self, key_blob: &[u8]) -> Result<Option<SshCaller>, ServiceError> {
        let fingerprint: [u8; 32] = Sha256::digest(key_blob).into();
        let Some(record) = self.accounts.ssh_key_by_fingerprint(&fingerprint)? else {
            return Ok(None);
        };
        if let KeyOwner::Deploy { repo, .. } = &record.owner
            && self.repos.get(*repo).is_none_or(|v| v.state.deleted)
        {
            // A deploy key opens its repository only: none here, nothing to open.
            return Ok(None);
        }
        let (login, user_key, deploy) = match &record.owner {
            KeyOwner::User { login, user_key } => (login, user_key, None),
            KeyOwner::Deploy {
                repo,
                read_only,
                added_by,
                added_by_key,
            } => (
                added_by,
                added_by_key,
                Some(DeployLimit {
                    repo: *repo,
                    read_only: *read_only,
                }),
            ),
        };
        // The login may have changed hands since the key was added: the key belongs to
        // the account it was added for, never to the login's next holder.
        let Some(user) = self
            .accounts
            .user(login)?
            .filter(|u| !u.suspended && u.public_key == *user_key)
        else {
            return Ok(None);
        };
        let key = user.public_key().map_err(|e| {
            tracing::error!(error = %e, "stored user key unreadable");
            ServiceError::Internal
        })?;
        let text = ssh_fingerprint_text(key_blob);
        Ok(Some(SshCaller {
            authed: Authed::for_ssh_key(user, key, &record, &text),
            key_id: record.id,
            fingerprint: text,
            deploy,
        }))
    }
}

#[cfg(test)]
mod tests;
