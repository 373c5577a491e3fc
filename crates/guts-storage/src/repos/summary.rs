//! What the node keeps of every repository whether its state is loaded or not, and
//! persists with every change of it (`REPO_SUMMARIES`): the header (names, visibility,
//! roles, refs), the DAG's size and heads, the newest timestamp and the issue and pull
//! request counts. Opening the node reads these instead of folding every log.
//!
//! A summary is written in the transaction that stores the operations it counts, so
//! it is never ahead of (or behind) what is durable; opening checks that it counts
//! exactly the operations stored for its repository and otherwise folds the log and
//! rewrites it. It is derived data: deleting it costs one fold at the next start.

use guts_core::codec::{DecodeError, Reader, Writer};
use guts_core::{Hlc, OpId, RepoHeader, RepoState, Thread};

use crate::metrics::StorageMetrics;

/// Version byte leading an encoded summary. Version 1 had no `frontier` (read as
/// empty).
const SUMMARY_FORMAT_VERSION: u8 = 2;
/// The most operations [`Summary::frontier`] keeps.
pub(super) const MAX_FRONTIER: usize = 256;

/// `(is_pull, state)` of the five thread gauges, in [`ThreadCounts`] order.
const SLOTS: [(bool, &str); 5] = [
    (false, "open"),
    (false, "closed"),
    (true, "open"),
    (true, "closed"),
    (true, "merged"),
];

/// `(is_pull, state)` of a thread, as the gauges label it.
pub(super) fn thread_state(thread: &Thread) -> (bool, &'static str) {
    let state = match (&thread.pull, thread.open) {
        (Some(p), _) if p.merged.is_some() => "merged",
        (_, true) => "open",
        (_, false) => "closed",
    };
    (thread.pull.is_some(), state)
}

/// How many issues and pull requests of a repository are in each gauge state (zero
/// for a deleted repository, which the gauges do not count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ThreadCounts([u64; 5]);

impl ThreadCounts {
    /// Issues and pull requests in all.
    pub(super) fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |sum, n| sum.saturating_add(*n))
    }

    /// Counts `state`'s threads. O(threads).
    pub(super) fn of(state: &RepoState) -> ThreadCounts {
        let mut counts = ThreadCounts::default();
        if !state.deleted {
            for thread in state.collab.threads.values() {
                counts.shift(None, Some(thread_state(thread)));
            }
        }
        counts
    }

    /// Moves one thread from `before` to `after` (`None`: not counted).
    pub(super) fn shift(
        &mut self,
        before: Option<(bool, &'static str)>,
        after: Option<(bool, &'static str)>,
    ) {
        let slot = |s: (bool, &str)| SLOTS.iter().position(|x| *x == s);
        if let Some(i) = before.and_then(slot)
            && let Some(n) = self.0.get_mut(i)
        {
            *n = n.saturating_sub(1);
        }
        if let Some(i) = after.and_then(slot)
            && let Some(n) = self.0.get_mut(i)
        {
            *n = n.saturating_add(1);
        }
    }

    /// Adds these counts to the gauges (at open, for repositories not folded).
    pub(super) fn add_to(&self, metrics: &StorageMetrics) {
        for ((pull, state), n) in SLOTS.iter().zip(self.0) {
            if n > 0 {
                metrics.add_threads(*pull, state, n);
            }
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Summary {
    pub header: RepoHeader,
    /// Operations in the DAG.
    pub version: usize,
    /// The DAG's heads, sorted.
    pub heads: Vec<OpId>,
    /// The newest operation's timestamp.
    pub latest: Hlc,
    pub counts: ThreadCounts,
    /// The newest operations, oldest first (at most [`MAX_FRONTIER`]), each folded at
    /// the frontier (see `local`) onto the state the one before left: a checkpoint of
    /// any of the last `frontier.len()` versions, with the operations after it folded
    /// the same way, is the current state. Empty after anything else (a ref update, a
    /// peer's batch), which a checkpoint of the current version must cover.
    pub frontier: Vec<OpId>,
}

impl Summary {
    /// Whether `self` and `folded`, a summary folded from the log, say the same of the
    /// log. The frontier is not compared: it records how the newest operations were
    /// folded, which a fold of the log does not know (it leaves it empty).
    pub(super) fn agrees_with(&self, folded: &Summary) -> bool {
        self.header == folded.header
            && self.version == folded.version
            && self.heads == folded.heads
            && self.latest == folded.latest
            && self.counts == folded.counts
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(SUMMARY_FORMAT_VERSION);
        self.header.encode(&mut w);
        w.long_count(self.version);
        w.long_count(self.heads.len());
        for head in &self.heads {
            w.fixed(head.as_bytes());
        }
        w.hlc(self.latest);
        for n in self.counts.0 {
            w.u64(n);
        }
        w.long_count(self.frontier.len());
        for op in &self.frontier {
            w.fixed(op.as_bytes());
        }
        w.into_bytes()
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Summary, DecodeError> {
        let mut r = Reader::new(bytes);
        let format = r.u8()?;
        if format != SUMMARY_FORMAT_VERSION && format != 1 {
            return Err(DecodeError::UnsupportedVersion(format));
        }
        let header = RepoHeader::decode(&mut r)?;
        let version = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
        let heads = ids(&mut r, "heads")?;
        let latest = r.hlc()?;
        let mut counts = ThreadCounts::default();
        for n in &mut counts.0 {
            *n = r.u64()?;
        }
        let frontier = if format == 1 {
            Vec::new()
        } else {
            ids(&mut r, "frontier")?
        };
        if frontier.len() > MAX_FRONTIER.min(version) {
            return Err(DecodeError::TooManyItems {
                field: "frontier",
                max: MAX_FRONTIER.min(version),
                found: frontier.len(),
            });
        }
        r.finish()?;
        Ok(Summary {
            header,
            version,
            heads,
            latest,
            counts,
            frontier,
        })
    }
}

/// A count and that many operation ids, the count bounded by what is left.
fn ids(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<OpId>, DecodeError> {
    let len = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
    if len.saturating_mul(32) > r.remaining() {
        return Err(DecodeError::TooManyItems {
            field,
            max: r.remaining() / 32,
            found: len,
        });
    }
    let mut ids = Vec::with_capacity(len);
    for _ in 0..len {
        ids.push(OpId::from_bytes(r.array()?));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_round_trip_and_garbage_is_refused() {
        let mut counts = ThreadCounts::default();
        counts.shift(None, Some((false, "open")));
        counts.shift(None, Some((true, "merged")));
        counts.shift(Some((false, "open")), Some((false, "closed")));
        let summary = Summary {
            header: RepoHeader::default(),
            version: 7,
            heads: vec![OpId::from_bytes([3; 32]), OpId::from_bytes([9; 32])],
            latest: Hlc {
                wall_ms: 12,
                counter: 3,
            },
            counts,
            frontier: vec![OpId::from_bytes([9; 32])],
        };
        let bytes = summary.encode();
        assert_eq!(Summary::decode(&bytes).as_ref(), Ok(&summary));
        // A fold of the log leaves the frontier empty and agrees; any other field
        // differing does not.
        let folded = Summary {
            frontier: Vec::new(),
            ..summary.clone()
        };
        assert!(summary.agrees_with(&folded));
        let moved = Summary {
            version: 8,
            ..folded.clone()
        };
        assert!(!summary.agrees_with(&moved));
        let recounted = Summary {
            counts: ThreadCounts::default(),
            ..folded
        };
        assert!(!summary.agrees_with(&recounted));
        for cut in 0..bytes.len() {
            assert!(Summary::decode(&bytes[..cut]).is_err(), "prefix {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Summary::decode(&longer).is_err());
        assert_eq!(counts.0, [0, 1, 0, 0, 1]);
    }
}
