//! Retrying a fallible async operation with exponential backoff and full jitter.
//!
//! Full jitter (a uniform delay in `[0, ceiling]`) rather than a fixed exponential delay:
//! when many nodes lose the same peer at once, fixed delays make them all come back at
//! the same instants; random ones spread the load (see "Exponential Backoff And Jitter",
//! AWS Architecture Blog).

use std::future::Future;
use std::time::Duration;

use super::ResilienceMetrics;

/// How often and how patiently [`retry`] tries. `Copy` so one policy from the config can
/// be handed to every call site.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Total attempts, the first one included; 0 behaves as 1 (the operation always runs
    /// at least once).
    pub max_attempts: u32,
    /// Ceiling of the delay before the first retry; doubled for each further retry.
    pub base: Duration,
    /// No delay ever exceeds this, however many retries.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// `max_attempts` attempts (`GUTS_RETRY_MAX_ATTEMPTS`), with delays starting below
    /// 100 ms and never above 5 s: short enough for an interactive push, long enough for a
    /// peer that is restarting.
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }

    /// The largest delay [`RetryPolicy::delay`] may return before retry `retry` (1-based):
    /// `min(max_delay, base * 2^(retry - 1))`, saturating instead of overflowing.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.max(1) - 1;
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max_delay)
    }

    /// Delay before retry `retry` (1-based; 0 behaves as 1): uniform in
    /// `[0, self.ceiling(retry)]`.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=nanos))
    }
}

/// Runs `op` up to `policy.max_attempts` times and returns its first success, or the last
/// error.
///
/// Only errors for which `is_transient` is true are retried: retrying a refusal or a
/// malformed answer only repeats it and delays the caller's error. Each retry is counted
/// in `guts_retries_total{operation}` before the jittered sleep (`tokio::time::sleep`, so
/// tests with paused time do not wait). Cancelling the returned future cancels the
/// attempt or the sleep in progress; nothing runs in the background.
pub async fn retry<T, E, F, Fut>(
    policy: RetryPolicy,
    metrics: &ResilienceMetrics,
    operation: &'static str,
    is_transient: impl Fn(&E) -> bool,
    mut op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < attempts && is_transient(&error) => {
                metrics.count_retry(operation);
                let delay = policy.delay(attempt);
                tracing::debug!(operation, attempt, ?delay, "transient failure, retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use prometheus_client::registry::Registry;
    use tokio::time::Instant;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Failure {
        Transient,
        Permanent,
    }

    fn setup() -> (Registry, ResilienceMetrics) {
        let mut registry = Registry::with_prefix("guts");
        let metrics = ResilienceMetrics::register(&mut registry);
        (registry, metrics)
    }

    fn encode(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    fn is_transient(e: &Failure) -> bool {
        *e == Failure::Transient
    }

    #[tokio::test(start_paused = true)]
    async fn stops_after_max_attempts_and_returns_the_last_error() {
        let (registry, metrics) = setup();
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy::new(3);
        let start = Instant::now();
        let result: Result<(), Failure> = retry(policy, &metrics, "fetch", is_transient, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Failure::Transient) }
        })
        .await;
        assert_eq!(result, Err(Failure::Transient));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Two sleeps, each within its ceiling (paused time: no real waiting).
        assert!(start.elapsed() <= policy.ceiling(1) + policy.ceiling(2));
        assert!(encode(&registry).contains("guts_retries_total{operation=\"fetch\"} 2\n"));
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_permanent_errors() {
        let (registry, metrics) = setup();
        let calls = AtomicU32::new(0);
        let result: Result<(), Failure> =
            retry(RetryPolicy::new(5), &metrics, "fetch", is_transient, || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(Failure::Permanent) }
            })
            .await;
        assert_eq!(result, Err(Failure::Permanent));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!encode(&registry).contains("guts_retries_total{"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_then_permanent_error_stops_at_the_permanent_one() {
        let (_registry, metrics) = setup();
        let calls = AtomicU32::new(0);
        let result: Result<(), Failure> =
            retry(RetryPolicy::new(5), &metrics, "fetch", is_transient, || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    Err(if n == 0 {
                        Failure::Transient
                    } else {
                        Failure::Permanent
                    })
                }
            })
            .await;
        assert_eq!(result, Err(Failure::Permanent));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn returns_the_first_success_and_counts_each_retry_per_operation() {
        let (registry, metrics) = setup();
        let calls = AtomicU32::new(0);
        let result = retry(
            RetryPolicy::new(5),
            &metrics,
            "announce",
            is_transient,
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Err(Failure::Transient)
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(2));
        let once: Result<u32, Failure> = retry(
            RetryPolicy::new(5),
            &metrics,
            "fetch",
            is_transient,
            || async { Ok(7) },
        )
        .await;
        assert_eq!(once, Ok(7));
        let text = encode(&registry);
        assert!(text.contains("guts_retries_total{operation=\"announce\"} 2\n"));
        // A first-time success is not a retry: no series for "fetch".
        assert!(!text.contains("operation=\"fetch\""));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_max_attempts_still_runs_once() {
        let (_registry, metrics) = setup();
        let calls = AtomicU32::new(0);
        let result: Result<(), Failure> =
            retry(RetryPolicy::new(0), &metrics, "fetch", is_transient, || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(Failure::Transient) }
            })
            .await;
        assert_eq!(result, Err(Failure::Transient));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn delays_grow_and_stay_within_zero_and_the_cap() {
        let policy = RetryPolicy::new(10);
        let ceilings: Vec<Duration> = (1..=8).map(|n| policy.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000].map(Duration::from_millis)
        );
        // Far beyond 2^32 doublings the ceiling saturates at the cap instead of panicking.
        assert_eq!(policy.ceiling(u32::MAX), policy.max_delay);
        assert_eq!(policy.ceiling(0), policy.base);

        let mut previous_mean = Duration::ZERO;
        for retry in 1..=6 {
            let samples: Vec<Duration> = (0..2000).map(|_| policy.delay(retry)).collect();
            assert!(samples.iter().all(|d| *d <= policy.ceiling(retry)));
            // Jitter: the delays differ from one another.
            assert!(samples.iter().any(|d| *d != samples[0]));
            // Full jitter: the mean is about half the ceiling, and grows with each retry.
            let mean = samples.iter().sum::<Duration>() / 2000;
            let half = policy.ceiling(retry) / 2;
            assert!(
                mean > half.mul_f64(0.8) && mean < half.mul_f64(1.2),
                "{mean:?}"
            );
            assert!(mean > previous_mean);
            previous_mean = mean;
        }
        // The cap holds for late retries too.
        assert!((0..2000).all(|_| policy.delay(40) <= policy.max_delay));
    }
}
