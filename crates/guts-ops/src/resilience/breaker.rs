//! Circuit breakers per key (a peer id's text): after `threshold` consecutive failures a
//! peer is refused for `cooldown`, then probed by a single trial call.
//!
//! Without a breaker, a node whose peer is down keeps paying a connection timeout on
//! every sync round and keeps retrying into it; with one, calls to that peer fail at once
//! until the cooldown has passed, and one call decides whether the peer is back.
//!
//! States and transitions (the gauge `guts_circuit_breaker_state{peer}` follows every
//! one of them, under the same lock):
//!
//! ```text
//! Closed   --`threshold` consecutive failures-->  Open
//! Open     --cooldown passed (observed lazily)--> HalfOpen (one trial permit at a time)
//! HalfOpen --trial succeeds-->                    Closed
//! HalfOpen --trial fails-->                       Open (a fresh cooldown)
//! HalfOpen --trial permit dropped unreported-->   HalfOpen (the slot is free again)
//! ```
//!
//! Time is `tokio::time::Instant`, so tests drive the cooldown with paused time. The
//! Open → HalfOpen transition has no timer behind it: it is observed lazily when
//! [`Breakers::permit`] or [`Breakers::state`] is called for the key, so the gauge keeps
//! showing 1 (open) after the cooldown until a call asks for that peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::ResilienceMetrics;

/// Keys a [`Breakers`] made with [`Breakers::new`] remembers at most: far above the
/// node's connection limit, small enough that a flood of peer ids cannot grow memory or
/// the metric's label set without bound.
pub const MAX_KEYS: usize = 10_000;

/// A breaker's state as callers and the gauge see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls pass; consecutive failures are counted.
    Closed,
    /// Calls are refused until the cooldown has passed.
    Open,
    /// The cooldown has passed: one trial call at a time decides between closed and open.
    HalfOpen,
}

impl BreakerState {
    /// The value `guts_circuit_breaker_state` shows: 0 closed, 1 open, 2 half-open.
    pub fn gauge_value(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// [`Breakers::permit`] refused the call: the key's breaker is open, or half-open with
/// its one trial call already in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open, retry after {retry_after:?}")]
pub struct BreakerOpen {
    /// When open: the rest of the cooldown. When half-open with a trial in flight: one
    /// cooldown, a hint only (the trial's outcome decides when calls pass again).
    pub retry_after: Duration,
}

/// One breaker per key, behind one lock. Cloning is cheap and clones share the breakers.
///
/// The lock is a std `Mutex`, never held across an await: every critical section is a
/// hash lookup and a few assignments, which is cheaper than an async lock's bookkeeping.
#[derive(Clone)]
pub struct Breakers {
    shared: Arc<Shared>,
}

struct Shared {
    /// Consecutive failures that open a closed breaker (at least 1).
    threshold: u32,
    cooldown: Duration,
    max_keys: usize,
    metrics: Arc<ResilienceMetrics>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<Arc<str>, Entry>,
    /// Source of [`Entry::generation`]: unique across all keys and over time, so a permit
    /// never matches a key that was forgotten or evicted and then created again.
    generations: u64,
}

struct Entry {
    /// The same `Arc` as the map's key, handed to permits without allocating.
    key: Arc<str>,
    phase: Phase,
    /// Changes on every state transition. A permit carries the generation it was issued
    /// in and its outcome counts only if the breaker is still in that generation: a slow
    /// success started before the breaker opened must not close it, a late failure must
    /// not extend the cooldown — only the half-open trial decides.
    generation: u64,
    /// Last time a call asked for or reported on this key: eviction drops the least
    /// recently used.
    last_used: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

impl Phase {
    fn state(self) -> BreakerState {
        match self {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Success,
    Failure,
    /// The permit was dropped without a report: the call was cancelled.
    Cancelled,
}

impl std::fmt::Debug for Breakers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breakers")
            .field("threshold", &self.shared.threshold)
            .field("cooldown", &self.shared.cooldown)
            .field("max_keys", &self.shared.max_keys)
            .finish_non_exhaustive()
    }
}

impl Breakers {
    /// Breakers that open after `threshold` consecutive failures (0 behaves as 1) and stay
    /// open for `cooldown`, remembering at most [`MAX_KEYS`] keys.
    pub fn new(threshold: u32, cooldown: Duration, metrics: Arc<ResilienceMetrics>) -> Self {
        Self::with_max_keys(threshold, cooldown, MAX_KEYS, metrics)
    }

    /// As [`Breakers::new`], remembering at most `max_keys` keys (0 behaves as 1).
    pub fn with_max_keys(
        threshold: u32,
        cooldown: Duration,
        max_keys: usize,
        metrics: Arc<ResilienceMetrics>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                threshold: threshold.max(1),
                cooldown,
                max_keys: max_keys.max(1),
                metrics,
                table: Mutex::new(Table::default()),
            }),
        }
    }

    /// `Ok` if a call may go to `key` now; report its outcome on the [`Permit`]. `Err`
    /// while the breaker is open, or half-open with its one trial call in flight.
    ///
    /// An unknown key starts closed. When the table is full, a new key makes room by
    /// dropping a closed key (the least recently used), or if every key is open or
    /// half-open, the least recently used of them: memory stays bounded at the price of
    /// forgetting one peer's failures. Finding the victim scans the table, which happens
    /// only when a new key arrives at a full table.
    pub fn permit(&self, key: &str) -> Result<Permit, BreakerOpen> {
        let now = Instant::now();
        let shared = &self.shared;
        let (result, entered) = {
            let mut table = shared.lock();
            let Table {
                entries,
                generations,
            } = &mut *table;
            if let Some(entry) = entries.get_mut(key) {
                shared.admit(entry, now, generations)
            } else {
                while entries.len() >= shared.max_keys {
                    shared.evict_one(entries);
                }
                let key: Arc<str> = Arc::from(key);
                *generations += 1;
                let entry = entries.entry(key.clone()).or_insert(Entry {
                    key,
                    phase: Phase::Closed { failures: 0 },
                    generation: *generations,
                    last_used: now,
                });
                shared.metrics.set_state(&entry.key, BreakerState::Closed);
                shared.admit(entry, now, generations)
            }
        };
        log_transition(key, entered);
        result
    }

    /// The key's state now (closed for an unknown key). Observes a passed cooldown, so
    /// an open breaker whose cooldown is over reports (and its gauge shows) half-open.
    pub fn state(&self, key: &str) -> BreakerState {
        let now = Instant::now();
        let (state, entered) = {
            let mut table = self.shared.lock();
            let Table {
                entries,
                generations,
            } = &mut *table;
            match entries.get_mut(key) {
                Some(entry) => {
                    let entered = self.shared.observe_cooldown(entry, now, generations);
                    (entry.phase.state(), entered)
                }
                None => (BreakerState::Closed, None),
            }
        };
        log_transition(key, entered);
        state
    }

    /// Forgets `key` and removes its gauge label: call it when a peer is gone for good.
    /// Outstanding permits for the key become no-ops; a later call starts closed.
    pub fn forget(&self, key: &str) {
        let mut table = self.shared.lock();
        table.entries.remove(key);
        // Under the lock, so a concurrent permit for the same key cannot have its fresh
        // label removed.
        self.shared.metrics.forget_peer(key);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shared.lock().entries.len()
    }
}

impl Shared {
    /// A panic while the lock is held cannot leave the table half-updated (each change
    /// is a single assignment), so a poisoned lock is used as is rather than turning
    /// every later call into a panic.
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides a call for an existing entry. Returns the state entered, if any, for the
    /// log line written after the lock is released.
    fn admit(
        self: &Arc<Self>,
        entry: &mut Entry,
        now: Instant,
        generations: &mut u64,
    ) -> (Result<Permit, BreakerOpen>, Option<BreakerState>) {
        entry.last_used = now;
        let entered = self.observe_cooldown(entry, now, generations);
        let result = match entry.phase {
            Phase::Closed { .. } => Ok(self.issue(entry)),
            Phase::Open { until } => Err(BreakerOpen {
                retry_after: until.saturating_duration_since(now),
            }),
            Phase::HalfOpen {
                trial_in_flight: true,
            } => Err(BreakerOpen {
                retry_after: self.cooldown,
            }),
            Phase::HalfOpen {
                trial_in_flight: false,
            } => {
                entry.phase = Phase::HalfOpen {
                    trial_in_flight: true,
                };
                Ok(self.issue(entry))
            }
        };
        (result, entered)
    }

    fn issue(self: &Arc<Self>, entry: &Entry) -> Permit {
        Permit {
            shared: Arc::clone(self),
            key: Arc::clone(&entry.key),
            generation: entry.generation,
            settled: false,
        }
    }

    /// Open → HalfOpen once the cooldown has passed (the lazy transition).
    fn observe_cooldown(
        &self,
        entry: &mut Entry,
        now: Instant,
        generations: &mut u64,
    ) -> Option<BreakerState> {
        match entry.phase {
            Phase::Open { until } if now >= until => {
                let phase = Phase::HalfOpen {
                    trial_in_flight: false,
                };
                self.transition(entry, phase, generations);
                Some(BreakerState::HalfOpen)
            }
            _ => None,
        }
    }

    /// Every state change goes through here: new generation, new phase, gauge.
    fn transition(&self, entry: &mut Entry, phase: Phase, generations: &mut u64) {
        *generations += 1;
        entry.generation = *generations;
        entry.phase = phase;
        self.metrics.set_state(&entry.key, phase.state());
    }

    fn settle(&self, key: &str, generation: u64, outcome: Outcome) -> Option<BreakerState> {
        let now = Instant::now();
        let mut table = self.lock();
        let Table {
            entries,
            generations,
        } = &mut *table;
        // Forgotten, evicted, or moved on since the permit was issued: nothing to report.
        let entry = entries.get_mut(key)?;
        if entry.generation != generation {
            return None;
        }
        entry.last_used = now;
        let open = Phase::Open {
            until: now + self.cooldown,
        };
        match (entry.phase, outcome) {
            (Phase::Closed { .. }, Outcome::Success) => {
                entry.phase = Phase::Closed { failures: 0 };
                None
            }
            (Phase::Closed { failures }, Outcome::Failure) => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    self.transition(entry, open, generations);
                    Some(BreakerState::Open)
                } else {
                    entry.phase = Phase::Closed { failures };
                    None
                }
            }
            // In half-open, only the trial holds a permit of the current generation.
            (Phase::HalfOpen { .. }, Outcome::Success) => {
                self.transition(entry, Phase::Closed { failures: 0 }, generations);
                Some(BreakerState::Closed)
            }
            (Phase::HalfOpen { .. }, Outcome::Failure) => {
                self.transition(entry, open, generations);
                Some(BreakerState::Open)
            }
            (Phase::HalfOpen { .. }, Outcome::Cancelled) => {
                entry.phase = Phase::HalfOpen {
                    trial_in_flight: false,
                };
                None
            }
            // A cancelled call in closed state says nothing about the peer; an open
            // breaker issues no permits, and opening changed the generation.
            (Phase::Closed { .. }, Outcome::Cancelled) | (Phase::Open { .. }, _) => None,
        }
    }

    /// Drops one key to make room: closed keys first, least recently used first.
    fn evict_one(&self, entries: &mut HashMap<Arc<str>, Entry>) {
        let victim = entries
            .values()
            .min_by_key(|e| (!matches!(e.phase, Phase::Closed { .. }), e.last_used))
            .map(|e| Arc::clone(&e.key));
        if let Some(victim) = victim {
            entries.remove(&victim);
            self.metrics.forget_peer(&victim);
        }
    }
}

fn log_transition(key: &str, entered: Option<BreakerState>) {
    match entered {
        Some(BreakerState::Open) => tracing::info!(peer = key, "circuit breaker opened"),
        Some(BreakerState::Closed) => tracing::info!(peer = key, "circuit breaker closed"),
        Some(BreakerState::HalfOpen) => {
            tracing::debug!(
                peer = key,
                "circuit breaker half-open: next call is a trial"
            )
        }
        None => {}
    }
}

/// Leave to make one call to a key. Report the call's outcome with
/// [`Permit::success`] or [`Permit::failure`].
///
/// Dropping a permit without reporting (the call was cancelled, e.g. by a timeout around
/// the whole operation or a shutdown) counts as neither success nor failure, but if it
/// was the half-open trial it frees the trial slot, so the next call becomes the trial
/// instead of the breaker staying half-open forever.
#[must_use = "report the call's outcome with success() or failure()"]
pub struct Permit {
    shared: Arc<Shared>,
    key: Arc<str>,
    generation: u64,
    settled: bool,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("key", &self.key)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Permit {
    /// The call succeeded: resets a closed breaker's failure count, closes a half-open one.
    pub fn success(mut self) {
        self.settle(Outcome::Success);
    }

    /// The call failed: counts towards opening a closed breaker, re-opens a half-open one
    /// for another cooldown.
    pub fn failure(mut self) {
        self.settle(Outcome::Failure);
    }

    fn settle(&mut self, outcome: Outcome) {
        if self.settled {
            return;
        }
        self.settled = true;
        let entered = self.shared.settle(&self.key, self.generation, outcome);
        log_transition(&self.key, entered);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.settle(Outcome::Cancelled);
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(30);

    fn setup(threshold: u32) -> (Registry, Breakers) {
        setup_bounded(threshold, MAX_KEYS)
    }

    fn setup_bounded(threshold: u32, max_keys: usize) -> (Registry, Breakers) {
        let mut registry = Registry::with_prefix("guts");
        let metrics = Arc::new(ResilienceMetrics::register(&mut registry));
        let breakers = Breakers::with_max_keys(threshold, COOLDOWN, max_keys, metrics);
        (registry, breakers)
    }

    fn encode(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    fn gauge(registry: &Registry, peer: &str) -> Option<i64> {
        let prefix = format!("guts_circuit_breaker_state{{peer=\"{peer}\"}} ");
        encode(registry)
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|value| value.parse().unwrap())
    }

    fn fail(breakers: &Breakers, key: &str) {
        breakers.permit(key).unwrap().failure();
    }

    #[test]
    fn handles_are_shareable_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Breakers>();
        send_sync::<Permit>();
        send_sync::<BreakerOpen>();
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_consecutive_failures() {
        let (_registry, breakers) = setup(3);
        fail(&breakers, "peer");
        fail(&breakers, "peer");
        assert_eq!(breakers.state("peer"), BreakerState::Closed);
        fail(&breakers, "peer");
        assert_eq!(breakers.state("peer"), BreakerState::Open);
        // Other keys are independent.
        assert_eq!(breakers.state("other"), BreakerState::Closed);
        assert!(breakers.permit("other").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_failure_count() {
        let (_registry, breakers) = setup(3);
        fail(&breakers, "peer");
        fail(&breakers, "peer");
        breakers.permit("peer").unwrap().success();
        fail(&breakers, "peer");
        fail(&breakers, "peer");
        assert_eq!(breakers.state("peer"), BreakerState::Closed);
        fail(&breakers, "peer");
        assert_eq!(breakers.state("peer"), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_while_open_with_the_rest_of_the_cooldown() {
        let (_registry, breakers) = setup(1);
        fail(&breakers, "peer");
        let refused = breakers.permit("peer").unwrap_err();
        assert_eq!(refused.retry_after, COOLDOWN);
        tokio::time::advance(Duration::from_secs(10)).await;
        let refused = breakers.permit("peer").unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        tokio::time::advance(Duration::from_secs(19)).await;
        assert!(breakers.permit("peer").is_err());
        assert_eq!(breakers.state("peer"), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_after_cooldown_allows_exactly_one_trial() {
        let (_registry, breakers) = setup(1);
        fail(&breakers, "peer");
        tokio::time::advance(COOLDOWN).await;
        assert_eq!(breakers.state("peer"), BreakerState::HalfOpen);
        let trial = breakers.permit("peer").unwrap();
        let refused = breakers.permit("peer").unwrap_err();
        assert_eq!(refused.retry_after, COOLDOWN);
        assert!(breakers.permit("peer").is_err());
        assert_eq!(breakers.state("peer"), BreakerState::HalfOpen);
        trial.success();
        assert!(breakers.permit("peer").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_successful_trial_closes() {
        let (_registry, breakers) = setup(2);
        fail(&breakers, "peer");
        fail(&breakers, "peer");
        tokio::time::advance(COOLDOWN).await;
        breakers.permit("peer").unwrap().success();
        assert_eq!(breakers.state("peer"), BreakerState::Closed);
        // Closed afresh: the failure count starts from zero again.
        fail(&breakers, "peer");
        assert_eq!(breakers.state("peer"), BreakerState::Closed);
        let a = breakers.permit("peer").unwrap();
        let b = breakers.permit("peer").unwrap();
        a.success();
        b.success();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens_for_another_cooldown() {
        let (_registry, breakers) = setup(1);
        fail(&breakers, "peer");
        tokio::time::advance(COOLDOWN + Duration::from_secs(5)).await;
        breakers.permit("peer").unwrap().failure();
        assert_eq!(breakers.state("peer"), BreakerState::Open);
        assert_eq!(breakers.permit("peer").unwrap_err().retry_after, COOLDOWN);
        tokio::time::advance(COOLDOWN).await;
        assert!(breakers.permit("peer").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trial_frees_the_slot_and_counts_as_nothing() {
        let (_registry, breakers) = setup(1);
        fail(&breakers, "peer");
        tokio::time::advance(COOLDOWN).await;
        drop(breakers.permit("peer").unwrap());
        assert_eq!(breakers.state("peer"), BreakerState::HalfOpen);
        let trial = breakers.permit("peer").unwrap();
        assert!(breakers.permit("peer").is_err());
        trial.success();
        assert_eq!(breakers.state("peer"), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_closed_permit_counts_as_nothing() {
        let (_registry, breakers) = setup(2);
        fail(&breakers, "peer");
        drop(breakers.permit("peer").unwrap());
        // Not a success (the count was not reset) and not a failure (still closed).
        assert_eq!(breakers.state("peer"), BreakerState::Closed);
        fail(&breakers, "peer");
        assert_eq!(breakers.state("peer"), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_of_calls_started_before_a_transition_are_ignored() {
        let (_registry, breakers) = setup(1);
        let slow_success = breakers.permit("peer").unwrap();
        let slow_failure = breakers.permit("peer").unwrap();
        fail(&breakers, "peer");
        // Started while closed, finished after the breaker opened: only a trial decides.
        slow_success.success();
        assert_eq!(breakers.state("peer"), BreakerState::Open);
        tokio::time::advance(COOLDOWN - Duration::from_secs(1)).await;
        // A late failure does not extend the cooldown.
        slow_failure.failure();
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(breakers.state("peer"), BreakerState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn gauge_shows_closed_open_and_half_open() {
        let (registry, breakers) = setup(1);
        assert_eq!(gauge(&registry, "peer"), None);
        breakers.permit("peer").unwrap().success();
        assert_eq!(gauge(&registry, "peer"), Some(0));
        fail(&breakers, "peer");
        assert_eq!(gauge(&registry, "peer"), Some(1));
        tokio::time::advance(COOLDOWN).await;
        // Lazy: still 1 until a call asks after the cooldown.
        assert_eq!(gauge(&registry, "peer"), Some(1));
        let trial = breakers.permit("peer").unwrap();
        assert_eq!(gauge(&registry, "peer"), Some(2));
        trial.failure();
        assert_eq!(gauge(&registry, "peer"), Some(1));
        tokio::time::advance(COOLDOWN).await;
        assert_eq!(breakers.state("peer"), BreakerState::HalfOpen);
        assert_eq!(gauge(&registry, "peer"), Some(2));
        breakers.permit("peer").unwrap().success();
        assert_eq!(gauge(&registry, "peer"), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn forget_removes_the_key_and_its_label() {
        let (registry, breakers) = setup(1);
        let stale = breakers.permit("peer").unwrap();
        fail(&breakers, "peer");
        assert_eq!(gauge(&registry, "peer"), Some(1));
        breakers.forget("peer");
        assert_eq!(gauge(&registry, "peer"), None);
        assert!(!encode(&registry).contains("peer=\"peer\""));
        assert_eq!(breakers.tracked(), 0);
        // A permit from before forget reports into nothing, even once the key is back.
        let fresh = breakers.permit("peer").unwrap();
        stale.failure();
        assert_eq!(breakers.state("peer"), BreakerState::Closed);
        assert_eq!(gauge(&registry, "peer"), Some(0));
        fresh.success();
        // Forgetting an unknown key is harmless.
        breakers.forget("never-seen");
    }

    #[tokio::test(start_paused = true)]
    async fn key_count_is_bounded_dropping_closed_keys_first() {
        let (registry, breakers) = setup_bounded(1, 3);
        fail(&breakers, "a");
        tokio::time::advance(Duration::from_secs(1)).await;
        breakers.permit("b").unwrap().success();
        tokio::time::advance(Duration::from_secs(1)).await;
        breakers.permit("c").unwrap().success();
        tokio::time::advance(Duration::from_secs(1)).await;
        // Full: "d" displaces the least recently used closed key, "b", not the open "a".
        breakers.permit("d").unwrap().success();
        assert_eq!(breakers.tracked(), 3);
        assert_eq!(breakers.state("a"), BreakerState::Open);
        assert_eq!(gauge(&registry, "b"), None);
        assert_eq!(gauge(&registry, "c"), Some(0));
        assert_eq!(gauge(&registry, "d"), Some(0));

        // With every key open, the least recently used open key goes.
        fail(&breakers, "c");
        fail(&breakers, "d");
        tokio::time::advance(Duration::from_secs(1)).await;
        breakers.permit("e").unwrap().success();
        assert_eq!(breakers.tracked(), 3);
        assert_eq!(gauge(&registry, "a"), None);
        assert_eq!(breakers.state("a"), BreakerState::Closed);
        assert_eq!(breakers.state("c"), BreakerState::Open);
        assert_eq!(breakers.state("d"), BreakerState::Open);
        let series = encode(&registry)
            .lines()
            .filter(|l| l.starts_with("guts_circuit_breaker_state{"))
            .count();
        assert_eq!(series, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn new_is_bounded_by_max_keys() {
        let (_registry, breakers) = {
            let mut registry = Registry::with_prefix("guts");
            let metrics = Arc::new(ResilienceMetrics::register(&mut registry));
            (registry, Breakers::new(5, COOLDOWN, metrics))
        };
        for i in 0..MAX_KEYS + 10 {
            breakers.permit(&format!("peer-{i}")).unwrap().success();
        }
        assert_eq!(breakers.tracked(), MAX_KEYS);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_threshold_behaves_as_one() {
        let (_registry, breakers) = setup(0);
        assert!(breakers.permit("peer").is_ok());
        fail(&breakers, "peer");
        assert_eq!(breakers.state("peer"), BreakerState::Open);
    }
}
