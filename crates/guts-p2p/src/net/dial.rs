//! Which bootstrap addresses to dial when: exponential backoff with jitter per address,
//! the address parsed again at each attempt (the DNS transport resolves it at each
//! dial, so a restarted pod is found at its new IP), addresses of this node skipped.
//!
//! Pure state, driven by the swarm task with the current time, so it is tested without
//! sockets or sleeps.

use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};

use super::NetError;

/// How often a failing address is reported at `warn` (the rest go to `debug`): a
/// bootstrap peer that is down for an hour should not write 120 warnings.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// One bootstrap address and where its dialing stands.
#[derive(Debug)]
struct Entry {
    /// As configured; parsed again for every dial.
    text: String,
    /// The `/p2p/<id>` suffix, if the address has one.
    declared: Option<PeerId>,
    /// Who answered at this address last time (for addresses without `/p2p/`), so that a
    /// connection to it is recognised whoever opened it.
    learned: Option<PeerId>,
    state: State,
    /// The delay before the next retry after a failure (before jitter).
    backoff: Duration,
    failures: u32,
    last_warn: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not connected; dial at `next`.
    Waiting {
        next: Instant,
    },
    Dialing(ConnectionId),
    Connected(PeerId),
    /// The address is this node's own: never dialed again.
    Myself,
}

impl Entry {
    fn peer(&self) -> Option<PeerId> {
        self.declared.or(self.learned)
    }
}

/// A dial the swarm task should make now.
#[derive(Debug)]
pub(crate) struct Due {
    pub(crate) index: usize,
    pub(crate) addr: Multiaddr,
    /// Dial with this peer id (the `/p2p/` suffix) or, when `None`, by address alone.
    pub(crate) peer: Option<PeerId>,
}

/// A failed attempt, for the caller to log.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) addr: String,
    pub(crate) attempt: u32,
    pub(crate) retry_in: Duration,
    /// Log at `warn` (else `debug`): the first failure, then at most once a minute.
    pub(crate) warn: bool,
}

/// The bootstrap addresses of one node.
#[derive(Debug)]
pub(crate) struct Bootstrap {
    entries: Vec<Entry>,
    min: Duration,
    max: Duration,
    /// Spreads retries of many nodes (a whole StatefulSet restarting) apart.
    jitter: fn(Duration) -> Duration,
    /// Some address was connected once (readiness: latched, see
    /// [`super::NetHandle::bootstrap_reached`]).
    reached: bool,
}

/// "Equal jitter": half the delay fixed, half random, so retries spread out but never
/// come sooner than half the backoff.
pub(crate) fn equal_jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(rand::random_range(0..=nanos))
}

/// Parses one configured multiaddr; `/dns4/…` stays a name until dial time.
pub(crate) fn parse_addr(text: &str) -> Result<Multiaddr, NetError> {
    text.trim()
        .parse::<Multiaddr>()
        .map_err(|source| NetError::InvalidAddr {
            addr: text.to_string(),
            source,
        })
}

/// The `/p2p/<id>` suffix of an address, if any.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|protocol| match protocol {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

impl Bootstrap {
    /// Checks every address once (a typo fails start-up, not every retry); the first
    /// dials are due at once.
    pub(crate) fn new(
        addrs: &[String],
        local: PeerId,
        min: Duration,
        max: Duration,
        jitter: fn(Duration) -> Duration,
        now: Instant,
    ) -> Result<Self, NetError> {
        let entries = addrs
            .iter()
            .map(|text| {
                let declared = peer_of(&parse_addr(text)?);
                let state = if declared == Some(local) {
                    State::Myself
                } else {
                    State::Waiting { next: now }
                };
                Ok(Entry {
                    text: text.trim().to_string(),
                    declared,
                    learned: None,
                    state,
                    backoff: min,
                    failures: 0,
                    last_warn: None,
                })
            })
            .collect::<Result<Vec<_>, NetError>>()?;
        Ok(Self {
            entries,
            min,
            max,
            jitter,
            reached: false,
        })
    }

    /// True when there is nothing to reach (no addresses, or only this node's own) or
    /// some address was connected once.
    pub(crate) fn reached(&self) -> bool {
        self.reached || self.entries.iter().all(|e| e.state == State::Myself)
    }

    /// Peers named by `/p2p/` suffixes, with their addresses, for Kademlia to know
    /// before the first dial succeeds.
    pub(crate) fn declared(&self) -> impl Iterator<Item = (PeerId, Multiaddr)> + '_ {
        self.entries.iter().filter_map(|e| {
            let peer = e.declared?;
            let addr = parse_addr(&e.text).ok()?;
            (e.state != State::Myself).then_some((peer, addr))
        })
    }

    /// The dials due at `now`. Entries whose peer is already connected (it dialed us)
    /// are marked connected instead of dialed.
    pub(crate) fn due(&mut self, now: Instant, is_connected: impl Fn(&PeerId) -> bool) -> Vec<Due> {
        let mut due = Vec::new();
        for (index, entry) in self.entries.iter_mut().enumerate() {
            let State::Waiting { next } = entry.state else {
                continue;
            };
            if let Some(peer) = entry.peer().filter(|peer| is_connected(peer)) {
                entry.state = State::Connected(peer);
                continue;
            }
            if next > now {
                continue;
            }
            // Parsed again: checked at start, so this only fails if the text changed,
            // which it cannot; such an entry simply waits.
            match parse_addr(&entry.text) {
                Ok(addr) => due.push(Due {
                    index,
                    addr,
                    peer: entry.declared,
                }),
                Err(_) => {
                    entry.state = State::Waiting {
                        next: now + self.max,
                    }
                }
            }
        }
        due
    }

    /// The dial for `index` was started as `connection`.
    pub(crate) fn dialing(&mut self, index: usize, connection: ConnectionId) {
        if let Some(entry) = self.entries.get_mut(index) {
            entry.state = State::Dialing(connection);
        }
    }

    /// The swarm declined to start the dial because the peer is already connected or
    /// being dialed: look again after the shortest delay.
    pub(crate) fn not_dialed(&mut self, index: usize, now: Instant) {
        if let Some(entry) = self.entries.get_mut(index) {
            entry.state = State::Waiting {
                next: now + self.min,
            };
        }
    }

    /// A connection was established. Returns whether it is a bootstrap dial's (or a
    /// connection to a bootstrap peer), i.e. whether a bootstrap address is reached.
    pub(crate) fn established(&mut self, connection: ConnectionId, peer: PeerId) -> bool {
        let mut hit = false;
        for entry in &mut self.entries {
            let ours = entry.state == State::Dialing(connection);
            if ours && entry.declared.is_none() {
                entry.learned = Some(peer);
            }
            if ours || (entry.peer() == Some(peer) && entry.state != State::Myself) {
                entry.state = State::Connected(peer);
                entry.backoff = self.min;
                entry.failures = 0;
                entry.last_warn = None;
                hit = true;
            }
        }
        self.reached |= hit;
        hit
    }

    /// The dial `connection` failed; `myself` when the address turned out to be this
    /// node's own (it is then never dialed again). `None` when the connection is not a
    /// bootstrap dial.
    pub(crate) fn failed(
        &mut self,
        connection: ConnectionId,
        myself: bool,
        now: Instant,
    ) -> Option<Failure> {
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.state == State::Dialing(connection))?;
        if myself {
            entry.state = State::Myself;
            return None;
        }
        entry.failures = entry.failures.saturating_add(1);
        let retry_in = (self.jitter)(entry.backoff);
        entry.backoff = entry.backoff.saturating_mul(2).min(self.max);
        entry.state = State::Waiting {
            next: now + retry_in,
        };
        let warn = entry
            .last_warn
            .is_none_or(|at| now.saturating_duration_since(at) >= WARN_EVERY);
        if warn {
            entry.last_warn = Some(now);
        }
        Some(Failure {
            addr: entry.text.clone(),
            attempt: entry.failures,
            retry_in,
            warn,
        })
    }

    /// `peer` has no connection left: dial its entries again soon (a restarted pod
    /// comes back at a new address under the same name).
    pub(crate) fn disconnected(&mut self, peer: PeerId, now: Instant) {
        for entry in &mut self.entries {
            if entry.state == State::Connected(peer) {
                entry.state = State::Waiting {
                    next: now + (self.jitter)(self.min),
                };
                entry.backoff = self.min;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    fn no_jitter(d: Duration) -> Duration {
        d
    }

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn bootstrap(addrs: &[String], local: PeerId, now: Instant) -> Bootstrap {
        Bootstrap::new(addrs, local, MIN, MAX, no_jitter, now).unwrap()
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_on_success() {
        let now = Instant::now();
        let mut b = bootstrap(&["/dns4/guts-0.guts-headless/tcp/9000".into()], peer(), now);
        assert!(!b.reached());
        let mut t = now;
        let mut delays = Vec::new();
        for n in 0..7u32 {
            let due = b.due(t, |_| false);
            assert_eq!(due.len(), 1, "attempt {n}");
            assert!(due[0].peer.is_none());
            // Nothing is due again before the retry time.
            let conn = ConnectionId::new_unchecked(n as usize);
            b.dialing(0, conn);
            assert!(b.due(t, |_| false).is_empty());
            let failure = b.failed(conn, false, t).unwrap();
            assert_eq!(failure.attempt, n + 1);
            // Warned on the first failure, then not again until a minute later
            // (the seventh failure comes 61 s after the first).
            assert_eq!(failure.warn, n == 0 || n == 6, "attempt {n}");
            delays.push(failure.retry_in.as_secs());
            assert!(
                b.due(t + failure.retry_in - Duration::from_millis(1), |_| false)
                    .is_empty()
            );
            t += failure.retry_in;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);

        let due = b.due(t, |_| false);
        let conn = ConnectionId::new_unchecked(100);
        b.dialing(due[0].index, conn);
        let remote = peer();
        assert!(b.established(conn, remote));
        assert!(b.reached());
        // Connected: nothing to dial, even long after.
        assert!(b.due(t + MAX * 10, |_| true).is_empty());
        b.disconnected(remote, t);
        let due = b.due(t + MIN, |_| false);
        assert_eq!(due.len(), 1);
        let conn = ConnectionId::new_unchecked(101);
        b.dialing(0, conn);
        assert_eq!(b.failed(conn, false, t + MIN).unwrap().retry_in, MIN);
        // Latched: a lost bootstrap peer does not make the node unready.
        assert!(b.reached());
    }

    #[test]
    fn own_addresses_are_never_dialed() {
        let now = Instant::now();
        let local = peer();
        let own = format!("/ip4/127.0.0.1/tcp/9000/p2p/{local}");
        // Only this node's own address: nothing to reach, ready at once.
        let mut b = bootstrap(&[own], local, now);
        assert!(b.reached());
        assert!(b.due(now, |_| false).is_empty());

        // An address without /p2p that turns out to be ours (the dial fails with
        // LocalPeerId) is dropped, and then only the others count.
        let other = peer();
        let mut b = bootstrap(
            &[
                "/dns4/guts-0.guts-headless/tcp/9000".into(),
                format!("/ip4/10.0.0.2/tcp/9000/p2p/{other}"),
            ],
            local,
            now,
        );
        let due = b.due(now, |_| false);
        assert_eq!(due.len(), 2);
        assert_eq!(due[1].peer, Some(other));
        let (c0, c1) = (
            ConnectionId::new_unchecked(0),
            ConnectionId::new_unchecked(1),
        );
        b.dialing(0, c0);
        b.dialing(1, c1);
        assert!(b.failed(c0, true, now).is_none());
        assert!(!b.reached());
        b.failed(c1, false, now).unwrap();
        assert_eq!(b.due(now + MAX, |_| false).len(), 1, "self never again");
    }

    #[test]
    fn a_bootstrap_peer_that_dialed_us_counts_as_reached() {
        let now = Instant::now();
        let other = peer();
        let mut b = bootstrap(
            &[format!("/ip4/10.0.0.2/tcp/9000/p2p/{other}")],
            peer(),
            now,
        );
        assert!(b.established(ConnectionId::new_unchecked(7), other));
        assert!(b.reached());
        assert!(b.due(now, |_| true).is_empty());
        assert_eq!(b.declared().count(), 1);
    }

    #[test]
    fn bad_addresses_fail_start_up() {
        let err = Bootstrap::new(
            &["not an addr".into()],
            peer(),
            MIN,
            MAX,
            no_jitter,
            Instant::now(),
        )
        .unwrap_err();
        assert!(matches!(err, NetError::InvalidAddr { .. }), "{err}");
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        for _ in 0..100 {
            let d = equal_jitter(Duration::from_secs(8));
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(8),
                "{d:?}"
            );
        }
    }
}
