//! Token buckets: a rate limiter's state (per token or per client IP, refilling
//! continuously over an hour), apart from the front ends that spend from it: REST
//! and git over HTTP (guts-api's `rate_limit` and `git_edge`) and git over SSH
//! (guts-ssh), which share one git limiter, so a client's git budget is one budget
//! whatever the transport.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// GitHub's limits are per hour; so are ours.
const WINDOW: Duration = Duration::from_secs(3600);

/// Buckets kept at most. A full bucket is the same as no bucket, so idle keys are
/// dropped first; beyond that a tenth of the map is evicted at random (those clients
/// get a fresh bucket, which is the price of bounded memory under a flood of keys).
const MAX_KEYS: usize = 100_000;

/// Requests per hour for each kind of caller (`GUTS_RATE_LIMIT_*_PER_HOUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub anonymous_per_hour: u32,
    pub authenticated_per_hour: u32,
}

impl Default for RateLimits {
    /// GitHub's own numbers.
    fn default() -> Self {
        Self {
            anonymous_per_hour: 60,
            authenticated_per_hour: 5000,
        }
    }
}

/// Who a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A token, by its owner and stable id (never its text).
    Token {
        login: String,
        id: u64,
    },
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One caller's standing after a request, as the headers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_in: u64,
    /// Seconds until the next request would be allowed (0 when one is).
    pub retry_after: u64,
}

impl Status {
    pub fn used(&self) -> u32 {
        self.limit.saturating_sub(self.remaining)
    }

    /// The reset as epoch seconds, which is how GitHub sends it.
    pub fn reset_epoch(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_add(self.reset_in)
    }
}

/// Keyed token buckets refilling continuously at `limit` per hour, with room for
/// `limit` at once (a fresh caller may spend the whole hour's allowance immediately,
/// then one request every `3600 / limit` seconds).
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    /// A std mutex: the critical section is a hash lookup and some arithmetic, never
    /// held across an await.
    buckets: Mutex<HashMap<Key, Bucket>>,
    max_keys: usize,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self::with_capacity(limits, MAX_KEYS)
    }

    fn with_capacity(limits: RateLimits, max_keys: usize) -> Self {
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
            max_keys: max_keys.max(10),
        }
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    fn limit_for(&self, key: &Key) -> u32 {
        match key {
            Key::Token { .. } => self.limits.authenticated_per_hour,
            Key::Ip(_) => self.limits.anonymous_per_hour,
        }
        .max(1)
    }

    /// Spends one request from `key`'s bucket if it has one; `Err` carries the status
    /// of a caller who is over the limit.
    pub fn check(&self, key: &Key, now: Instant) -> Result<Status, Status> {
        self.visit(key, now, true)
    }

    /// Gives back one request spent from `key`'s bucket (a `304 Not Modified`, which
    /// GitHub does not count), never past the bucket's capacity.
    pub fn refund(&self, key: &Key) {
        let capacity = f64::from(self.limit_for(key));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(key) {
            bucket.tokens = (bucket.tokens + 1.0).min(capacity);
        }
    }

    /// The caller's standing, spending nothing.
    pub fn peek(&self, key: &Key, now: Instant) -> Status {
        self.visit(key, now, false).unwrap_or_else(|s| s)
    }

    fn visit(&self, key: &Key, now: Instant, spend: bool) -> Result<Status, Status> {
        let limit = self.limit_for(key);
        let capacity = f64::from(limit);
        let per_sec = capacity / WINDOW.as_secs_f64();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut bucket = match buckets.get(key) {
            Some(b) => {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                Bucket {
                    tokens: (b.tokens + elapsed * per_sec).min(capacity),
                    at: now,
                }
            }
            None => Bucket {
                tokens: capacity,
                at: now,
            },
        };
        let allowed = bucket.tokens >= 1.0;
        if allowed && spend {
            bucket.tokens -= 1.0;
        }
        if spend {
            if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
                evict(&mut buckets, now, self.limits, self.max_keys);
            }
            buckets.insert(key.clone(), bucket);
        }
        drop(buckets);
        let status = Status {
            limit,
            remaining: bucket.tokens.floor().clamp(0.0, capacity) as u32,
            reset_in: ((capacity - bucket.tokens) / per_sec).ceil().max(0.0) as u64,
            retry_after: if bucket.tokens >= 1.0 {
                0
            } else {
                ((1.0 - bucket.tokens) / per_sec).ceil().max(1.0) as u64
            },
        };
        if allowed { Ok(status) } else { Err(status) }
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.buckets.lock().map_or(0, |b| b.len())
    }
}

/// Drops the buckets that have refilled (idle callers: a full bucket is the same as
/// none), then, if the map is still at its cap, an arbitrary tenth of it. Runs once per
/// `max_keys / 10` new keys at most, so its O(n) cost is a constant per request.
fn evict(buckets: &mut HashMap<Key, Bucket>, now: Instant, limits: RateLimits, max_keys: usize) {
    buckets.retain(|key, b| {
        let limit = f64::from(match key {
            Key::Token { .. } => limits.authenticated_per_hour,
            Key::Ip(_) => limits.anonymous_per_hour,
        });
        let per_sec = limit.max(1.0) / WINDOW.as_secs_f64();
        let refilled = b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec;
        refilled < limit
    });
    if buckets.len() >= max_keys {
        let target = max_keys - max_keys / 10;
        let excess = buckets.len().saturating_sub(target);
        let victims: Vec<Key> = buckets.keys().take(excess).cloned().collect();
        for key in victims {
            buckets.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn limiter(anonymous: u32, authenticated: u32) -> RateLimiter {
        RateLimiter::new(RateLimits {
            anonymous_per_hour: anonymous,
            authenticated_per_hour: authenticated,
        })
    }

    fn ip(last: u8) -> Key {
        Key::Ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[test]
    fn spends_down_to_zero_then_refuses_with_retry_after() {
        let l = limiter(3, 10);
        let t = Instant::now();
        let s = l.check(&ip(1), t).unwrap();
        assert_eq!((s.limit, s.remaining, s.used()), (3, 2, 1));
        assert_eq!(s.retry_after, 0);
        l.check(&ip(1), t).unwrap();
        let s = l.check(&ip(1), t).unwrap();
        assert_eq!(s.remaining, 0);
        let refused = l.check(&ip(1), t).unwrap_err();
        assert_eq!(refused.remaining, 0);
        // One token comes back every 3600 / 3 = 1200 s.
        assert_eq!(refused.retry_after, 1200);
        assert_eq!(refused.reset_in, 3600);
        // Another caller is unaffected.
        assert_eq!(l.check(&ip(2), t).unwrap().remaining, 2);
    }

    #[test]
    fn refills_over_time_and_caps_at_the_limit() {
        let l = limiter(2, 10);
        let t = Instant::now();
        l.check(&ip(1), t).unwrap();
        l.check(&ip(1), t).unwrap();
        assert!(l.check(&ip(1), t).is_err());
        let later = t + Duration::from_secs(1800);
        assert_eq!(l.check(&ip(1), later).unwrap().remaining, 0);
        let much_later = later + Duration::from_secs(10 * 3600);
        assert_eq!(l.peek(&ip(1), much_later).remaining, 2);
    }

    #[test]
    fn tokens_get_the_authenticated_limit_and_peek_spends_nothing() {
        let l = limiter(1, 5000);
        let t = Instant::now();
        let key = Key::Token {
            login: "alice".into(),
            id: 7,
        };
        assert_eq!(l.peek(&key, t).remaining, 5000);
        assert_eq!(l.peek(&key, t).remaining, 5000);
        let s = l.check(&key, t).unwrap();
        assert_eq!((s.limit, s.remaining, s.used()), (5000, 4999, 1));
        assert_eq!(l.keys(), 1);
    }

    #[test]
    fn memory_stays_bounded_and_idle_keys_go_first() {
        let l = RateLimiter::with_capacity(
            RateLimits {
                anonymous_per_hour: 10,
                authenticated_per_hour: 10,
            },
            100,
        );
        let t = Instant::now();
        for i in 0..100u8 {
            l.check(&ip(i), t).unwrap();
        }
        assert_eq!(l.keys(), 100);
        // An hour later every bucket is full again: all of them are idle and go.
        let later = t + WINDOW;
        l.check(&ip(200), later).unwrap();
        assert_eq!(l.keys(), 1);
        // A flood of new keys never grows the map beyond its cap.
        for i in 0..=255u8 {
            l.check(&Key::Ip(IpAddr::V4(Ipv4Addr::new(10, 1, 0, i))), later)
                .unwrap();
        }
        assert!(l.keys() <= 100, "{}", l.keys());
    }
}
