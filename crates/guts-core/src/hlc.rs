//! Hybrid logical clock timestamps for operations.
//!
//! An operation's timestamp orders concurrent operations in the fold (ties broken by
//! id), so it must respect causality: an operation made after seeing another carries a
//! larger timestamp. A hybrid logical clock gives that while staying close to wall time,
//! which keeps "the later push wins" meaningful to people. Core never reads a clock: the
//! caller passes `now_ms` in, which keeps this module deterministic and testable.

use std::fmt;

/// How far ahead of our wall clock a remote timestamp may be before we refuse to adopt
/// it, and before storage refuses the operation that carries it. Adopting a timestamp
/// from the far future would drag every later local operation there too, and with it
/// the outcome of every later ref conflict. Ten minutes: far more than synchronised
/// clocks disagree by, far less than what would let a skewed author win conflicts for
/// long; an operation refused for it is pulled again once our clock has caught up.
pub const MAX_CLOCK_DRIFT_MS: u64 = 10 * 60 * 1000;

/// A hybrid logical clock reading: milliseconds since the Unix epoch, then a counter
/// that orders events within one millisecond. Ordered by `(wall_ms, counter)` (the
/// field order, which the derive follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    pub wall_ms: u64,
    pub counter: u32,
}

impl Hlc {
    /// The smallest timestamp.
    pub const ZERO: Hlc = Hlc {
        wall_ms: 0,
        counter: 0,
    };

    /// The next timestamp after `self`, carrying into `wall_ms` when the counter is
    /// exhausted. Saturates at the maximum, half a billion years away.
    fn successor(self) -> Hlc {
        match self.counter.checked_add(1) {
            Some(counter) => Hlc {
                wall_ms: self.wall_ms,
                counter,
            },
            None => Hlc {
                wall_ms: self.wall_ms.saturating_add(1),
                counter: 0,
            },
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.wall_ms, self.counter)
    }
}

/// Why a remote timestamp was not adopted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The remote clock is more than [`MAX_CLOCK_DRIFT_MS`] ahead of ours.
    #[error(
        "remote timestamp {remote_ms} ms is more than 10 minutes ahead of local time {now_ms} ms"
    )]
    TooFarAhead { remote_ms: u64, now_ms: u64 },
}

/// A hybrid logical clock: the last timestamp issued or observed.
///
/// One per node (or per signing identity); the node persists nothing here, because
/// after a restart it observes the timestamps of the operations it loads.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    last: Hlc,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The latest timestamp issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A timestamp for a new local event at wall time `now_ms`: strictly greater than
    /// every timestamp issued or observed before, even if the wall clock went back.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        self.last = if now_ms > self.last.wall_ms {
            Hlc {
                wall_ms: now_ms,
                counter: 0,
            }
        } else {
            self.last.successor()
        };
        self.last
    }

    /// Merges a timestamp seen on a remote operation, so that the next [`tick`] is
    /// after it (the receive rule of a hybrid logical clock; the receive event itself
    /// needs no timestamp of its own here, because only operations carry one).
    ///
    /// A remote wall time more than 24 h ahead of `now_ms` is refused rather than
    /// adopted; the clock is unchanged and the caller decides what to do with the
    /// sender.
    ///
    /// [`tick`]: Clock::tick
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Result<(), ClockError> {
        if remote.wall_ms > now_ms.saturating_add(MAX_CLOCK_DRIFT_MS) {
            return Err(ClockError::TooFarAhead {
                remote_ms: remote.wall_ms,
                now_ms,
            });
        }
        self.last = self.last.max(remote);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hlc(wall_ms: u64, counter: u32) -> Hlc {
        Hlc { wall_ms, counter }
    }

    #[test]
    fn tick_follows_the_wall_clock_and_survives_it_going_back() {
        let mut clock = Clock::new();
        assert_eq!(clock.tick(100), hlc(100, 0));
        assert_eq!(clock.tick(100), hlc(100, 1));
        assert_eq!(clock.tick(90), hlc(100, 2));
        assert_eq!(clock.tick(101), hlc(101, 0));
    }

    #[test]
    fn counter_overflow_carries_into_wall_time() {
        let mut clock = Clock::new();
        clock.observe(hlc(100, u32::MAX), 100).unwrap();
        assert_eq!(clock.tick(50), hlc(101, 0));
    }

    #[test]
    fn observe_moves_the_clock_past_remote_events() {
        let mut clock = Clock::new();
        clock.tick(100);
        clock.observe(hlc(200, 7), 100).unwrap();
        assert_eq!(clock.last(), hlc(200, 7));
        assert_eq!(clock.tick(150), hlc(200, 8));
        // An older remote timestamp changes nothing.
        clock.observe(hlc(10, 99), 150).unwrap();
        assert_eq!(clock.tick(150), hlc(200, 9));
        // Once the wall clock passes it, wall time takes over again.
        assert_eq!(clock.tick(300), hlc(300, 0));
    }

    #[test]
    fn observe_refuses_timestamps_far_in_the_future() {
        let mut clock = Clock::new();
        clock.tick(1_000);
        let far = hlc(1_000 + MAX_CLOCK_DRIFT_MS + 1, 0);
        assert_eq!(
            clock.observe(far, 1_000),
            Err(ClockError::TooFarAhead {
                remote_ms: far.wall_ms,
                now_ms: 1_000
            })
        );
        assert_eq!(clock.last(), hlc(1_000, 0));
        // Exactly at the limit is still accepted.
        clock
            .observe(hlc(1_000 + MAX_CLOCK_DRIFT_MS, 0), 1_000)
            .unwrap();
        // And the check does not overflow near the end of time.
        clock.observe(hlc(u64::MAX, 0), u64::MAX).unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn ticks_are_strictly_increasing(
            events in proptest::collection::vec(
                (any::<bool>(), 0u64..1_000, 0u32..4, 0u64..1_000),
                1..64,
            )
        ) {
            let mut clock = Clock::new();
            let mut previous = Hlc::ZERO;
            let mut seen = Hlc::ZERO;
            for (remote, wall, counter, now) in events {
                if remote {
                    let at = hlc(wall, counter);
                    clock.observe(at, now).unwrap();
                    seen = seen.max(at);
                } else {
                    let at = clock.tick(now);
                    prop_assert!(at > previous);
                    prop_assert!(at > seen);
                    prop_assert!(at.wall_ms >= now);
                    previous = at;
                    seen = at;
                }
            }
        }
    }
}
