//! SSH metrics: `guts_ssh_*` families. Git's own (`guts_git_*`, labelled
//! `transport="ssh"`) are counted by the git serving code. Every label value is a
//! fixed word.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: &'static str,
}

/// How a public-key authentication attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthOutcome {
    /// A user key or a deploy key of a live account.
    Accepted,
    /// A key nobody holds here: unknown, revoked, or its owner suspended.
    Unknown,
    /// The key lookup failed (storage).
    Error,
}

impl AuthOutcome {
    fn label(self) -> &'static str {
        match self {
            AuthOutcome::Accepted => "accepted",
            AuthOutcome::Unknown => "unknown_key",
            AuthOutcome::Error => "error",
        }
    }
}

/// What happened to an incoming TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionOutcome {
    Accepted,
    /// Over the node's or the client address's share of connections.
    Refused,
    /// Not authenticated within the grace time.
    AuthTimeout,
}

impl ConnectionOutcome {
    fn label(self) -> &'static str {
        match self {
            ConnectionOutcome::Accepted => "accepted",
            ConnectionOutcome::Refused => "refused",
            ConnectionOutcome::AuthTimeout => "auth_timeout",
        }
    }
}

/// The SSH server's metrics; cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct SshMetrics {
    sessions: Gauge,
    connections: Family<OutcomeLabels, Counter>,
    auth: Family<OutcomeLabels, Counter>,
}

impl SshMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self {
            sessions: Gauge::default(),
            connections: Family::default(),
            auth: Family::default(),
        };
        let ssh = registry.sub_registry_with_prefix("ssh");
        ssh.register(
            "sessions_active",
            "SSH connections open now, authenticated or not",
            this.sessions.clone(),
        );
        ssh.register(
            "connections",
            "Incoming SSH connections by outcome (accepted, refused, auth_timeout)",
            this.connections.clone(),
        );
        ssh.register(
            "auth",
            "SSH public-key authentications by outcome (accepted, unknown_key, error)",
            this.auth.clone(),
        );
        this
    }

    pub(crate) fn auth(&self, outcome: AuthOutcome) {
        self.auth
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    pub(crate) fn connection(&self, outcome: ConnectionOutcome) {
        self.connections
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Counts a session as open until the returned guard is dropped.
    pub(crate) fn open(&self) -> SessionGuard {
        self.sessions.inc();
        SessionGuard(self.sessions.clone())
    }
}

/// One open session in `guts_ssh_sessions_active`, for as long as it lives.
#[derive(Debug)]
pub(crate) struct SessionGuard(Gauge);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
