//! Bridges between HTTP bodies and the blocking readers and writers of the git servers,
//! and the pace every git body is held to.
//!
//! - [`Pace`]: a git request body must keep up a minimum transfer rate over every
//!   window (`GUTS_GIT_MIN_TRANSFER_RATE` bytes/s over `GUTS_GIT_MIN_RATE_WINDOW`), must
//!   not stall for the idle timeout, and must be done by the request's deadline
//!   (`GUTS_GIT_REQUEST_DEADLINE`). An idle timeout alone is not enough: one byte every
//!   few seconds resets it forever, which is how 600 trickling clients used to hold a
//!   node. A clone or a push may rightly take minutes, so there is no short
//!   whole-request timeout, only the (long) deadline.
//! - [`buffer_body`]: an upload-pack request (wants and haves, small) read whole on the
//!   async side before any blocking thread is taken, so a slow sender costs a task and
//!   its buffered bytes, never a thread; the bytes buffered by all such requests together
//!   are bounded by a node-wide budget.
//! - [`BodyReader`]: a streamed request body (a pushed pack, possibly gigabytes) read as
//!   `std::io::Read` on the blocking pool, gzip decoded and size capped, under the same
//!   pace; the threads it may hold are bounded per class of work by the caller.
//! - [`ChannelWriter`]: a `std::io::Write` whose bytes become a streamed response body
//!   through a small bounded channel (backpressure: a slow client slows the writer, and
//!   memory holds a few chunks), ended by the idle timeout or the deadline.
//! - [`GitThreads`]: the budgets of blocking threads per class of git work and of
//!   buffered upload-pack bodies, held in the state; and the plain-text answers
//!   ([`text`], [`with_retry_after`]) that git prints as `remote: …`.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use axum::body::BodyDataStream;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse as _, Response};
use futures::StreamExt as _;
use http::{HeaderValue, StatusCode, header};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

/// Bytes gathered before a chunk goes to the client.
const CHUNK: usize = 64 * 1024;

/// Chunks in flight between the writer and the connection.
const CHANNEL_DEPTH: usize = 4;

/// The transfer rules of one git request body: see the module documentation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Bytes per second the body must average over every window.
    pub(crate) min_rate: u64,
    pub(crate) window: Duration,
    /// Longest wait for any byte at all.
    pub(crate) idle: Duration,
    /// When the whole request must be over.
    pub(crate) deadline: Instant,
    /// The configured length of the whole request, which `deadline` ends (for the
    /// message).
    pub(crate) lifetime: Duration,
}

/// Why a body was cut for being slow. Each message says what the client did and which
/// rule it broke, because git prints it to a user who may be on a bad link.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SlowBody {
    #[error(
        "request body too slow: {got} bytes in the last {window_secs} s, below the minimum transfer rate of {min_rate} bytes/s; the request was cut"
    )]
    BelowRate {
        got: u64,
        window_secs: u64,
        min_rate: u64,
    },
    #[error("request body stalled: no data for {idle_secs} s; the request was cut")]
    Stalled { idle_secs: u64 },
    #[error("request exceeded its deadline of {deadline_secs} s; the request was cut")]
    Deadline { deadline_secs: u64 },
}

impl From<SlowBody> for io::Error {
    fn from(e: SlowBody) -> Self {
        io::Error::new(io::ErrorKind::TimedOut, e.to_string())
    }
}

/// One body measured against its [`Pace`]: bytes counted per window, restarted at each
/// window's end.
#[derive(Debug)]
struct Meter {
    pace: Pace,
    window_start: Instant,
    in_window: u64,
    last_progress: Instant,
}

impl Meter {
    fn new(pace: Pace) -> Self {
        let now = Instant::now();
        Meter {
            pace,
            window_start: now,
            in_window: 0,
            last_progress: now,
        }
    }

    /// Until when to wait for the next chunk before [`Meter::check`] must look again.
    fn wake_at(&self) -> Instant {
        (self.window_start + self.pace.window)
            .min(self.last_progress + self.pace.idle)
            .min(self.pace.deadline)
    }

    fn progress(&mut self, bytes: usize, now: Instant) {
        self.in_window = self.in_window.saturating_add(bytes as u64);
        self.last_progress = now;
    }

    /// Whether the body may go on at `now`.
    fn check(&mut self, now: Instant) -> Result<(), SlowBody> {
        if now >= self.pace.deadline {
            return Err(SlowBody::Deadline {
                deadline_secs: self.pace.lifetime.as_secs(),
            });
        }
        if now >= self.last_progress + self.pace.idle {
            return Err(SlowBody::Stalled {
                idle_secs: self.pace.idle.as_secs(),
            });
        }
        if now >= self.window_start + self.pace.window {
            let window_secs = self.pace.window.as_secs().max(1);
            if self.in_window < self.pace.min_rate.saturating_mul(window_secs) {
                return Err(SlowBody::BelowRate {
                    got: self.in_window,
                    window_secs,
                    min_rate: self.pace.min_rate,
                });
            }
            self.window_start = now;
            self.in_window = 0;
        }
        Ok(())
    }
}

/// The next chunk of `stream` under `meter`'s rules: `Ok(None)` at the end of the body.
async fn next_chunk(
    stream: &mut BodyDataStream,
    meter: &mut Meter,
) -> Result<Option<Result<Bytes, axum::Error>>, SlowBody> {
    loop {
        meter.check(Instant::now())?;
        if let Ok(next) = tokio::time::timeout_at(meter.wake_at(), stream.next()).await {
            if let Some(Ok(bytes)) = &next {
                meter.progress(bytes.len(), Instant::now());
            }
            return Ok(next);
        }
    }
}

/// Why a body could not be buffered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BufferError {
    #[error(transparent)]
    Slow(#[from] SlowBody),
    #[error("request body over the limit of {0} bytes")]
    TooLarge(u64),
    /// The node-wide budget of buffered request bytes is spent.
    #[error("too many request bodies are being received; retry shortly")]
    Busy,
    #[error("the request body could not be read: {0}")]
    Broken(String),
}

/// A body read whole, and its share of the node-wide buffer budget (released when the
/// bytes are dropped with it).
#[derive(Debug)]
pub(crate) struct Buffered {
    pub(crate) bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Reads `body` whole on the async side: at most `cap` bytes, at `pace`, each KiB
/// taken from `budget` (one permit per KiB) as it arrives, so that all buffered bodies
/// together stay within the budget's size; without budget left the request is refused
/// rather than queued.
pub(crate) async fn buffer_body(
    body: Body,
    cap: u64,
    pace: Pace,
    budget: &Arc<Semaphore>,
) -> Result<Buffered, BufferError> {
    let mut stream = body.into_data_stream();
    let mut meter = Meter::new(pace);
    let mut buf = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(chunk) = next_chunk(&mut stream, &mut meter).await? {
        let chunk = chunk.map_err(|e| BufferError::Broken(e.to_string()))?;
        let total = (buf.len() + chunk.len()) as u64;
        if total > cap {
            return Err(BufferError::TooLarge(cap));
        }
        let need_kib = total.div_ceil(1024);
        let have_kib = held.as_ref().map_or(0, |p| p.num_permits() as u64);
        if need_kib > have_kib {
            let more =
                u32::try_from(need_kib - have_kib).map_err(|_| BufferError::TooLarge(cap))?;
            let permit = budget
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| BufferError::Busy)?;
            match &mut held {
                Some(p) => p.merge(permit),
                None => held = Some(permit),
            }
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Buffered {
        bytes: Bytes::from(buf),
        _budget: held,
    })
}

/// A request body as a blocking reader. Use only off the async workers (blocking pool).
pub(crate) struct BodyReader {
    stream: BodyDataStream,
    handle: Handle,
    meter: Meter,
    limit: u64,
    read: u64,
    refused: bool,
    chunk: Bytes,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("read", &self.read)
            .field("limit", &self.limit)
            .finish()
    }
}

/// The error a reader reports when the body exceeds its cap.
pub(crate) fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("request body over the limit of {limit} bytes"),
    )
}

impl BodyReader {
    pub(crate) fn new(body: Body, pace: Pace, limit: u64) -> Self {
        BodyReader {
            stream: body.into_data_stream(),
            handle: Handle::current(),
            meter: Meter::new(pace),
            limit,
            read: 0,
            refused: false,
            chunk: Bytes::new(),
        }
    }

    /// Boxed, gzip-decoded when the client said so. The decoder is built on the first
    /// read, because building it reads the gzip header, which must not happen on an
    /// async worker.
    pub(crate) fn boxed(self, gzip: bool) -> Box<dyn Read + Send> {
        if gzip {
            Box::new(LazyGzip::Pending(Some(self)))
        } else {
            Box::new(self)
        }
    }
}

enum LazyGzip {
    Pending(Option<BodyReader>),
    Reading(Box<flate2::read::GzDecoder<BodyReader>>),
}

impl Read for LazyGzip {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let LazyGzip::Pending(body) = self {
            let body = body
                .take()
                .ok_or_else(|| io::Error::other("gzip reader lost its body"))?;
            *self = LazyGzip::Reading(Box::new(flate2::read::GzDecoder::new(body)));
        }
        match self {
            LazyGzip::Reading(decoder) => decoder.read(buf),
            LazyGzip::Pending(_) => Err(io::Error::other("gzip reader not started")),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            let next = self
                .handle
                .block_on(next_chunk(&mut self.stream, &mut self.meter))?;
            match next {
                None => return Ok(0),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(bytes)) => {
                    self.read += bytes.len() as u64;
                    self.chunk = bytes;
                    if self.read > self.limit && !self.refused {
                        // Refused once; later reads pass, so the caller may drain
                        // the rest and answer a client that is still sending.
                        self.refused = true;
                        return Err(too_large(self.limit));
                    }
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        let taken = self.chunk.split_to(n);
        buf.get_mut(..n)
            .ok_or_else(|| io::Error::other("read buffer"))?
            .copy_from_slice(&taken);
        Ok(n)
    }
}

/// A blocking writer feeding a response body. Dropping it ends the body.
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    handle: Handle,
    idle: Duration,
    deadline: Instant,
    buf: Vec<u8>,
}

impl std::fmt::Debug for ChannelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelWriter")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

/// A writer and the response body it feeds. `idle` bounds how long a write may wait
/// for a client that stopped reading, and no write succeeds after `deadline` (the
/// request's end, `GUTS_GIT_REQUEST_DEADLINE`): a client reading slowly holds a thread
/// of its class, so it too is cut.
pub(crate) fn response_channel(idle: Duration, deadline: Instant) -> (ChannelWriter, Body) {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let writer = ChannelWriter {
        tx,
        handle: Handle::current(),
        idle,
        deadline,
        buf: Vec::with_capacity(CHUNK),
    };
    (writer, Body::from_stream(stream))
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let wake = (Instant::now() + self.idle).min(self.deadline);
        let sent = self
            .handle
            .block_on(tokio::time::timeout_at(wake, self.tx.send(Ok(chunk))));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client closed the connection",
            )),
            Err(_) if Instant::now() >= self.deadline => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request exceeded its deadline",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {:?}", self.idle),
            )),
        }
    }

    /// Ends the body with an error, so the client sees a broken transfer rather than
    /// a short one that looks complete.
    pub(crate) fn abort(self, message: &str) {
        let _ = self.tx.try_send(Err(io::Error::other(message.to_owned())));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A writer into memory that can be read back after it was moved away (for the
/// short receive-pack report).
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    pub(crate) fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("report buffer poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Blocking threads that fetches (info/refs advertisements and upload-pack) may hold at
/// once. Tokio's blocking pool has 512; with pushes below, git keeps at most 160 of
/// them, and the rest stays for REST reads (`browse`) and storage.
const FETCH_THREADS: usize = 128;

/// Blocking threads that pushes may hold at once: a push reads its pack on its thread,
/// at the client's speed, so slow pushers are kept to a class of their own.
const PUSH_THREADS: usize = 32;

/// Bytes of upload-pack request bodies buffered at once, node-wide, in KiB (256 MiB):
/// what bounds the memory of many clients buffering at once. Beyond it, 503.
const UPLOAD_BUFFER_KIB: usize = 256 * 1024;

/// The budgets of blocking threads per class of git work, and of buffered upload-pack
/// bodies: see `routes::git`.
#[derive(Debug, Clone)]
pub(crate) struct GitThreads {
    pub(crate) fetch: Arc<Semaphore>,
    pub(crate) push: Arc<Semaphore>,
    pub(crate) upload_buffer: Arc<Semaphore>,
}

impl GitThreads {
    pub(crate) fn new() -> Self {
        Self {
            fetch: Arc::new(Semaphore::new(FETCH_THREADS)),
            push: Arc::new(Semaphore::new(PUSH_THREADS)),
            upload_buffer: Arc::new(Semaphore::new(UPLOAD_BUFFER_KIB)),
        }
    }
}

/// `response` with `Retry-After: secs` (at least 1).
pub(crate) fn with_retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

/// A plain-text answer, which git prints as `remote: …`.
pub(crate) fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(min_rate: u64, window: u64, idle: u64, deadline: u64) -> Pace {
        Pace {
            min_rate,
            window: Duration::from_secs(window),
            idle: Duration::from_secs(idle),
            deadline: Instant::now() + Duration::from_secs(deadline),
            lifetime: Duration::from_secs(deadline),
        }
    }

    /// A body that sends `chunk` every `every`, `times` times, then ends.
    fn paced_body(chunk: &'static [u8], every: Duration, times: usize) -> Body {
        let stream = futures::stream::unfold(0, move |i| async move {
            if i == times {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok::<_, io::Error>(Bytes::from_static(chunk)), i + 1))
        });
        Body::from_stream(stream)
    }

    fn budget() -> Arc<Semaphore> {
        Arc::new(Semaphore::new(1024))
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_below_the_rate_is_cut_at_the_window() {
        let started = Instant::now();
        let body = paced_body(b"x", Duration::from_millis(100), 1000);
        let err = buffer_body(body, 1 << 20, pace(100, 2, 30, 3600), &budget())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                BufferError::Slow(SlowBody::BelowRate {
                    window_secs: 2,
                    min_rate: 100,
                    ..
                })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("minimum transfer rate"), "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_at_the_rate_passes_however_long_it_takes() {
        // 300 bytes/s against 100 bytes/s over 2 s windows, for 10 s.
        let body = paced_body(&[b'y'; 30], Duration::from_millis(100), 100);
        let buffered = buffer_body(body, 1 << 20, pace(100, 2, 30, 3600), &budget())
            .await
            .unwrap();
        assert_eq!(buffered.bytes.len(), 3000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_and_the_deadline_are_cut() {
        let body = paced_body(b"z", Duration::from_secs(40), 2);
        let err = buffer_body(body, 1 << 20, pace(1, 3600, 5, 3600), &budget())
            .await
            .unwrap_err();
        assert!(
            matches!(err, BufferError::Slow(SlowBody::Stalled { idle_secs: 5 })),
            "{err}"
        );

        let body = paced_body(&[b'z'; 100], Duration::from_millis(100), 1000);
        let err = buffer_body(body, 1 << 20, pace(1, 3600, 30, 3), &budget())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                BufferError::Slow(SlowBody::Deadline { deadline_secs: 3 })
            ),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn buffering_is_capped_per_body_and_node_wide() {
        let body = paced_body(&[b'a'; 1000], Duration::from_millis(1), 10);
        let err = buffer_body(body, 5000, pace(1, 60, 30, 3600), &budget())
            .await
            .unwrap_err();
        assert!(matches!(err, BufferError::TooLarge(5000)), "{err}");

        // Two KiB of budget: one body of 1.5 KiB fits, a second one does not while the
        // first is held, and fits again once it is dropped.
        let budget = Arc::new(Semaphore::new(2));
        let body = || paced_body(&[b'b'; 500], Duration::from_millis(1), 3);
        let held = buffer_body(body(), 1 << 20, pace(1, 60, 30, 3600), &budget)
            .await
            .unwrap();
        assert_eq!(budget.available_permits(), 0);
        let err = buffer_body(body(), 1 << 20, pace(1, 60, 30, 3600), &budget)
            .await
            .unwrap_err();
        assert!(matches!(err, BufferError::Busy), "{err}");
        drop(held);
        assert_eq!(budget.available_permits(), 2);
        buffer_body(body(), 1 << 20, pace(1, 60, 30, 3600), &budget)
            .await
            .unwrap();
    }
}
