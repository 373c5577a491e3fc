//! Repository webhooks (`Payload::SetHook`): where a repository's events are sent, kept
//! in the folded state like every other setting.
//!
//! A hook is configuration, not delivery: which node sends an event, and when, is the
//! delivering node's business (its outbox); what every node must agree on is which hooks
//! exist and how they are configured, so that any node answers `GET hooks` alike and any
//! node can take over delivery. A hook is named by the id of the operation that created
//! it, as threads are. Its secret travels sealed with the cluster secret (the fold only
//! bounds its size: it cannot and need not read it). Managing hooks needs the admin role,
//! as on GitHub; everything one operation can make the fold hold is bounded by the caps
//! below.

use std::collections::BTreeMap;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::fold::Rejection;
use crate::hlc::Hlc;
use crate::identity::PublicKey;
use crate::ids::OpId;

/// Hooks one repository may have (GitHub allows 20 per event; here, in all).
pub const MAX_HOOKS: usize = 20;
/// Longest target URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Events one hook may subscribe to.
pub const MAX_EVENTS: usize = 64;
/// Longest event name, in bytes.
pub const MAX_EVENT_BYTES: usize = 64;
/// Longest sealed secret, in bytes (a secret of up to 256 bytes plus the seal).
pub const MAX_SEALED_SECRET_BYTES: usize = 512;

/// How a delivery's body is encoded, as GitHub spells it in `config.content_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application/json`: the payload is the body.
    Json,
    /// `application/x-www-form-urlencoded`: the payload is the `payload` field.
    Form,
}

impl ContentType {
    /// GitHub's spelling (`json`, `form`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "json",
            ContentType::Form => "form",
        }
    }

    /// The content type GitHub spells `text`.
    pub fn parse(text: &str) -> Option<ContentType> {
        match text {
            "json" => Some(ContentType::Json),
            "form" => Some(ContentType::Form),
            _ => None,
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            ContentType::Json => 1,
            ContentType::Form => 2,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<ContentType> {
        match tag {
            1 => Some(ContentType::Json),
            2 => Some(ContentType::Form),
            _ => None,
        }
    }
}

/// A hook's configuration as its last writer signed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HookConfig {
    /// Where deliveries go (`http` or `https`; the delivering node applies its
    /// outbound policy again before each delivery).
    pub url: String,
    pub content_type: ContentType,
    /// The secret sealed with the cluster secret, bound to the repository; empty when
    /// the hook has none (deliveries then carry no signature header).
    pub secret: Vec<u8>,
    /// GitHub's `insecure_ssl = "1"`: deliver over TLS without checking the
    /// certificate.
    pub insecure_ssl: bool,
    /// The events it receives (`push`, `pull_request`, …, or `*` for all).
    pub events: Vec<String>,
    /// An inactive hook is kept but receives nothing.
    pub active: bool,
}

impl HookConfig {
    /// Whether this hook receives `event` (`ping` always reaches an active hook).
    pub fn wants(&self, event: &str) -> bool {
        self.active && (event == "ping" || self.events.iter().any(|e| e == "*" || e == event))
    }
}

/// A hook in the folded state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hook {
    pub config: HookConfig,
    pub creator: PublicKey,
    pub created: Hlc,
    pub updated: Hlc,
}

/// A repository's hooks, by the id of the operation that created each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Hooks {
    pub hooks: BTreeMap<OpId, Hook>,
}

/// The bounds of a configuration, checked by the fold and, first, by the API.
pub fn validate(config: &HookConfig) -> Result<(), Rejection> {
    let url = &config.url;
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.len() > MAX_URL_BYTES || url.chars().any(char::is_control) {
        return Err(Rejection::InvalidText { field: "url" });
    }
    if config.secret.len() > MAX_SEALED_SECRET_BYTES {
        return Err(Rejection::InvalidText { field: "secret" });
    }
    if config.events.len() > MAX_EVENTS {
        return Err(Rejection::TooMany { field: "events" });
    }
    let bad_event = |e: &String| {
        e.is_empty()
            || e.len() > MAX_EVENT_BYTES
            || !e
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'*')
    };
    if config.events.iter().any(bad_event) {
        return Err(Rejection::InvalidText { field: "events" });
    }
    Ok(())
}

impl Hooks {
    /// Whether any active hook exists: what makes an operation worth an outbox entry.
    pub fn any_active(&self) -> bool {
        self.hooks.values().any(|h| h.config.active)
    }

    /// The fold's rule for `SetHook` (the caller checked the admin role): `hook`
    /// `None` creates hook `op` with `config`; `Some` replaces that hook's
    /// configuration, or deletes the hook when `config` is `None`.
    pub fn apply(
        &mut self,
        op: OpId,
        author: PublicKey,
        at: Hlc,
        hook: Option<OpId>,
        config: Option<&HookConfig>,
    ) -> Result<(), Rejection> {
        if let Some(config) = config {
            validate(config)?;
        }
        match (hook, config) {
            (None, Some(config)) => {
                if self.hooks.len() >= MAX_HOOKS {
                    return Err(Rejection::TooMany { field: "hooks" });
                }
                self.hooks.insert(
                    op,
                    Hook {
                        config: config.clone(),
                        creator: author,
                        created: at,
                        updated: at,
                    },
                );
                Ok(())
            }
            (Some(id), Some(config)) => {
                let hook = self.hooks.get_mut(&id).ok_or(Rejection::NoSuchHook)?;
                hook.config = config.clone();
                hook.updated = hook.updated.max(at);
                Ok(())
            }
            (Some(id), None) => self
                .hooks
                .remove(&id)
                .map(|_| ())
                .ok_or(Rejection::NoSuchHook),
            (None, None) => Err(Rejection::NoSuchHook),
        }
    }

    /// The canonical encoding, part of the state digest.
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.long_count(self.hooks.len());
        for (id, hook) in &self.hooks {
            w.fixed(id.as_bytes());
            encode_config(w, &hook.config);
            w.fixed(hook.creator.as_bytes());
            w.hlc(hook.created);
            w.hlc(hook.updated);
        }
    }
}

/// A configuration's fields, as the state digest spells them.
fn encode_config(w: &mut Writer, config: &HookConfig) {
    w.long_bytes(config.url.as_bytes());
    w.u8(config.content_type.tag());
    w.long_bytes(&config.secret);
    w.bool(config.insecure_ssl);
    w.long_count(config.events.len());
    for event in &config.events {
        w.long_bytes(event.as_bytes());
    }
    w.bool(config.active);
}

/// `SetHook`'s wire fields (after its tag): the hook, then the configuration.
pub(crate) fn encode_payload(
    w: &mut Writer,
    hook: Option<&OpId>,
    config: Option<&HookConfig>,
) -> Result<(), EncodeError> {
    w.option_tag(hook.is_some());
    if let Some(hook) = hook {
        w.fixed(hook.as_bytes());
    }
    w.option_tag(config.is_some());
    if let Some(config) = config {
        w.str("url", &config.url, MAX_URL_BYTES)?;
        w.u8(config.content_type.tag());
        w.bytes("secret", &config.secret, MAX_SEALED_SECRET_BYTES)?;
        w.bool(config.insecure_ssl);
        w.count("events", config.events.len(), MAX_EVENTS)?;
        for event in &config.events {
            w.str("event", event, MAX_EVENT_BYTES)?;
        }
        w.bool(config.active);
    }
    Ok(())
}

/// The inverse of [`encode_payload`].
pub(crate) fn decode_payload(
    r: &mut Reader<'_>,
) -> Result<(Option<OpId>, Option<HookConfig>), DecodeError> {
    let hook = if r.option_tag()? {
        Some(OpId::from_bytes(r.array()?))
    } else {
        None
    };
    if !r.option_tag()? {
        return Ok((hook, None));
    }
    let url = r.string("url", MAX_URL_BYTES)?;
    let tag = r.u8()?;
    let content_type = ContentType::from_tag(tag).ok_or(DecodeError::UnknownTag {
        field: "content type",
        tag,
    })?;
    let secret = r.bytes("secret", MAX_SEALED_SECRET_BYTES)?.to_vec();
    let insecure_ssl = r.bool()?;
    // Each event is at least its 4-byte length.
    let count = r.count("events", MAX_EVENTS, 4)?;
    let events = (0..count)
        .map(|_| r.string("event", MAX_EVENT_BYTES))
        .collect::<Result<Vec<_>, _>>()?;
    let active = r.bool()?;
    let config = HookConfig {
        url,
        content_type,
        secret,
        insecure_ssl,
        events,
        active,
    };
    Ok((hook, Some(config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn config(url: &str) -> HookConfig {
        HookConfig {
            url: url.to_string(),
            content_type: ContentType::Json,
            secret: Vec::new(),
            insecure_ssl: false,
            events: vec!["push".to_string()],
            active: true,
        }
    }

    #[test]
    fn hooks_are_created_replaced_and_deleted_within_their_bounds() {
        let author = Keypair::generate().public();
        let at = Hlc {
            wall_ms: 1,
            counter: 0,
        };
        let mut hooks = Hooks::default();
        let first = OpId::from_bytes([1; 32]);
        hooks
            .apply(
                first,
                author,
                at,
                None,
                Some(&config("https://ci.example/hook")),
            )
            .unwrap();
        assert!(hooks.any_active());
        assert!(hooks.hooks[&first].config.wants("push"));
        assert!(hooks.hooks[&first].config.wants("ping"));
        assert!(!hooks.hooks[&first].config.wants("issues"));
        let mut off = config("http://ci.example/other");
        off.active = false;
        hooks
            .apply(first, author, at, Some(first), Some(&off))
            .unwrap();
        assert!(!hooks.any_active());
        assert!(!hooks.hooks[&first].config.wants("ping"));
        assert_eq!(
            hooks.apply(first, author, at, Some(OpId::from_bytes([2; 32])), None),
            Err(Rejection::NoSuchHook)
        );
        hooks.apply(first, author, at, Some(first), None).unwrap();
        assert!(hooks.hooks.is_empty());

        for bad in ["ftp://x/", "file:///etc/passwd", "http://a/\n", ""] {
            assert_eq!(
                hooks.apply(first, author, at, None, Some(&config(bad))),
                Err(Rejection::InvalidText { field: "url" }),
                "{bad:?}"
            );
        }
        for n in 0..MAX_HOOKS {
            let id = OpId::from_bytes([n as u8 + 10; 32]);
            hooks
                .apply(id, author, at, None, Some(&config("https://x/")))
                .unwrap();
        }
        assert_eq!(
            hooks.apply(first, author, at, None, Some(&config("https://x/"))),
            Err(Rejection::TooMany { field: "hooks" })
        );
    }
}
