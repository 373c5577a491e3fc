//! Downloading a pack from a peer into the scratch directory. The first chunk is asked
//! for alone (the responder generates the pack for it, and its answer tells the pack's
//! length); then up to [`PACK_WINDOW`] chunk requests are in flight at once, so the
//! transfer runs at the link's speed rather than at one round trip per chunk (1 MiB
//! per round trip is 20 MB/s at a 50 ms round trip). Chunks are appended in order, each
//! checked to start where the file ends, so memory holds at most the window's chunks,
//! never a pack. Which offsets to ask for is decided by [`Window`], kept free of I/O so
//! it is tested on its own.

use std::collections::VecDeque;
use std::path::PathBuf;

use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use guts_core::{ObjectId, RepoId};
use libp2p::PeerId;

use super::pack::Download;
use super::{PullError, SyncService, unexpected};
use crate::replica::Replica;
use crate::wire::{self, MAX_CHUNK_BYTES, Request, Response};

/// Chunk requests in flight per download: at most 4 MiB on the way, 80 MB/s at a 50 ms
/// round trip. Small enough that the pull workers' downloads from one peer (4 × 4)
/// stay well within the streams one connection may carry (32), leaving room for the
/// other requests, and within the responder's serve queue.
pub(super) const PACK_WINDOW: usize = 4;
/// Times a download starts over because the responder's pack changed under it.
const MAX_RESTARTS: usize = 3;

/// Which chunk offsets to ask for next. Offsets are asked in increasing order and
/// answered in the same order; before the pack's length is known only one request is
/// out (the first answer states it), after it up to [`PACK_WINDOW`].
#[derive(Debug)]
pub(super) struct Window {
    /// The pack's length, from the first chunk that states it.
    total: Option<u64>,
    /// The offsets asked for and not yet answered, oldest first.
    asked: VecDeque<u64>,
    /// The offset the next request asks for.
    next: u64,
}

/// What to do with an answer, as [`Window::answered`] sees it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// Append the chunk: it starts where the file ends.
    Append,
    /// The pack's length changed between two answers: the responder regenerated it, and
    /// the bytes so far belong to another pack.
    Changed,
}

impl Window {
    /// A window for a download whose file already holds `reached` bytes.
    pub(super) fn new(reached: u64) -> Self {
        Self {
            total: None,
            asked: VecDeque::new(),
            next: reached,
        }
    }

    /// The offsets to ask for now, given that the file holds `reached` bytes.
    pub(super) fn fill(&mut self, reached: u64) -> Vec<u64> {
        if self.asked.is_empty() {
            self.next = reached;
        }
        let width = if self.total.is_some() { PACK_WINDOW } else { 1 };
        let mut ask = Vec::new();
        while self.asked.len() < width
            && (self.asked.is_empty() || self.total.is_some_and(|t| self.next < t))
        {
            ask.push(self.next);
            self.asked.push_back(self.next);
            self.next = self.next.saturating_add(MAX_CHUNK_BYTES as u64);
        }
        ask
    }

    /// The offset the oldest request asked for, now answered.
    pub(super) fn take_oldest(&mut self) -> Option<u64> {
        self.asked.pop_front()
    }

    /// Checks an answer's stated length against what earlier answers stated.
    pub(super) fn answered(&mut self, total: Option<u64>) -> Answer {
        match (self.total, total) {
            (Some(known), Some(stated)) if known != stated => Answer::Changed,
            _ => {
                self.total = self.total.or(total);
                Answer::Append
            }
        }
    }

    /// A chunk shorter than asked for: the responder chunks differently, so what is in
    /// flight asked for the wrong offsets. Forgets it; the caller drops those requests.
    pub(super) fn reset(&mut self) {
        self.asked.clear();
    }
}

/// How one pass over the pack ended.
enum Pass {
    Complete,
    /// The responder no longer has the pack the reached offset refers to.
    Changed,
}

impl<R: Replica> SyncService<R> {
    /// Downloads the pack of `wants` minus `haves` from `peer`; the caller removes the
    /// returned file after use. A transient failure of one request is retried at its
    /// offset (see [`SyncService::request`]); a changed pack is downloaded again from 0.
    pub(super) async fn download_pack(
        &self,
        repo: RepoId,
        peer: PeerId,
        wants: &[ObjectId],
        haves: &[ObjectId],
    ) -> Result<PathBuf, PullError> {
        let mut download = self.inner.packs.download()?;
        let mut restarts = 0;
        loop {
            match self
                .download_pass(repo, peer, wants, haves, &mut download)
                .await?
            {
                Pass::Complete => return Ok(download.finish().await?),
                Pass::Changed if restarts < MAX_RESTARTS => {
                    restarts += 1;
                    download.restart().await?;
                }
                Pass::Changed => {
                    return Err(PullError::Refused(
                        "its pack changed during every download".to_owned(),
                    ));
                }
            }
        }
    }

    /// Requests chunks from the end of `download` on until the last one arrives.
    async fn download_pass(
        &self,
        repo: RepoId,
        peer: PeerId,
        wants: &[ObjectId],
        haves: &[ObjectId],
        download: &mut Download,
    ) -> Result<Pass, PullError> {
        let max_pack = self.inner.config.max_pack_bytes;
        let ask = |offset: u64| {
            let request = Request::Pack {
                repo,
                wants: wants.to_vec(),
                haves: haves.to_vec(),
                offset,
            };
            async move { self.request(peer, request).await }
        };
        let mut window = Window::new(download.len());
        let mut inflight = FuturesOrdered::new();
        loop {
            for offset in window.fill(download.len()) {
                inflight.push_back(ask(offset));
            }
            let (Some(response), Some(offset)) = (inflight.next().await, window.take_oldest())
            else {
                // Unreachable: `fill` always leaves a request out.
                return Err(PullError::Refused("no pack request in flight".to_owned()));
            };
            let chunk = match response? {
                Response::PackChunk(chunk) if chunk.repo == repo && chunk.offset == offset => chunk,
                Response::Error {
                    code: wire::ErrorCode::PackChanged,
                    ..
                } => return Ok(Pass::Changed),
                other => return Err(unexpected(&other)),
            };
            if chunk.total.unwrap_or(0) > max_pack
                || offset.saturating_add(chunk.data.len() as u64) > max_pack
            {
                return Err(PullError::Refused(format!(
                    "a pack larger than {max_pack} bytes"
                )));
            }
            if chunk.data.is_empty() && !chunk.last {
                return Err(PullError::Misbehaved("an empty pack chunk".to_owned()));
            }
            if window.answered(chunk.total) == Answer::Changed {
                return Ok(Pass::Changed);
            }
            if offset != download.len() {
                // Cannot happen: answers come in order, and a short chunk drops what
                // was asked after it. Never append out of place.
                return Err(PullError::Misbehaved(
                    "a pack chunk out of place".to_owned(),
                ));
            }
            download.append(&chunk.data).await?;
            if chunk.last {
                return Ok(Pass::Complete);
            }
            if chunk.data.len() < MAX_CHUNK_BYTES {
                window.reset();
                inflight = FuturesOrdered::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = MAX_CHUNK_BYTES as u64;

    #[test]
    fn one_request_until_the_length_is_known_then_a_full_window() {
        let mut w = Window::new(0);
        assert_eq!(w.fill(0), vec![0]);
        assert_eq!(
            w.fill(0),
            Vec::<u64>::new(),
            "length unknown: one at a time"
        );
        assert_eq!(w.take_oldest(), Some(0));
        assert_eq!(w.answered(Some(20 * MIB)), Answer::Append);
        let asked = w.fill(MIB);
        let width = PACK_WINDOW as u64;
        assert_eq!(asked, (1..=width).map(|i| i * MIB).collect::<Vec<_>>());
        // One answered, one more asked: the window stays full and in order.
        assert_eq!(w.take_oldest(), Some(MIB));
        assert_eq!(w.answered(Some(20 * MIB)), Answer::Append);
        assert_eq!(w.fill(2 * MIB), vec![(width + 1) * MIB]);
    }

    #[test]
    fn never_asks_past_the_end() {
        // Fewer chunks than the window is wide.
        let total = 3 * MIB + 5;
        let mut w = Window::new(0);
        w.fill(0);
        w.take_oldest();
        w.answered(Some(total));
        assert_eq!(w.fill(MIB), vec![MIB, 2 * MIB, 3 * MIB]);
        for reached in [2 * MIB, 3 * MIB] {
            w.take_oldest();
            assert_eq!(w.answered(Some(total)), Answer::Append);
            assert!(w.fill(reached).is_empty());
        }
    }

    #[test]
    fn a_resumed_download_starts_where_the_file_ends() {
        let mut w = Window::new(5 * MIB);
        assert_eq!(w.fill(5 * MIB), vec![5 * MIB]);
    }

    #[test]
    fn a_short_chunk_restarts_the_window_at_the_files_end() {
        let mut w = Window::new(0);
        w.fill(0);
        w.take_oldest();
        w.answered(Some(10 * MIB));
        w.fill(MIB);
        // The answer at 1 MiB was half a chunk: what was asked after it is dropped.
        w.take_oldest();
        w.answered(Some(10 * MIB));
        w.reset();
        let reached = MIB + MIB / 2;
        let asked = w.fill(reached);
        assert_eq!(asked.first(), Some(&reached));
        assert_eq!(asked.len(), PACK_WINDOW);
    }

    #[test]
    fn a_changed_length_is_a_changed_pack() {
        let mut w = Window::new(0);
        w.fill(0);
        w.take_oldest();
        assert_eq!(w.answered(Some(4 * MIB)), Answer::Append);
        w.fill(MIB);
        w.take_oldest();
        assert_eq!(w.answered(Some(5 * MIB)), Answer::Changed);
        // A responder that does not state the length keeps the known one.
        assert_eq!(w.answered(None), Answer::Append);
    }

    #[test]
    fn an_empty_pack_asks_once() {
        let mut w = Window::new(0);
        assert_eq!(w.fill(0), vec![0]);
        w.take_oldest();
        assert_eq!(w.answered(Some(0)), Answer::Append);
        assert_eq!(
            w.fill(0),
            vec![0],
            "nothing out: ask again where the file ends"
        );
    }
}
