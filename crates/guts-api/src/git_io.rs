//! Bridges between HTTP bodies and the blocking readers and writers of the git servers:
//! a request body read as `std::io::Read` (gzip decoded, size capped, with an idle
//! timeout instead of a whole-request deadline, since a clone or a push may rightly
//! take minutes), and a `std::io::Write` whose bytes become a streamed response body
//! through a small bounded channel (backpressure: a slow client slows the writer, and
//! memory holds a few chunks).

use std::io::{self, Read, Write};
use std::time::Duration;

use axum::body::BodyDataStream;
use axum::body::{Body, Bytes};
use futures::StreamExt as _;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Bytes gathered before a chunk goes to the client.
const CHUNK: usize = 64 * 1024;

/// Chunks in flight between the writer and the connection.
const CHANNEL_DEPTH: usize = 4;

/// A request body as a blocking reader. Use only off the async workers (blocking pool).
pub(crate) struct BodyReader {
    stream: BodyDataStream,
    handle: Handle,
    idle: Duration,
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
    pub(crate) fn new(body: Body, idle: Duration, limit: u64) -> Self {
        BodyReader {
            stream: body.into_data_stream(),
            handle: Handle::current(),
            idle,
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
                .block_on(tokio::time::timeout(self.idle, self.stream.next()));
            match next {
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no request data for {:?}", self.idle),
                    ));
                }
                Ok(None) => return Ok(0),
                Ok(Some(Err(e))) => return Err(io::Error::other(e)),
                Ok(Some(Ok(bytes))) => {
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
/// for a client that stopped reading.
pub(crate) fn response_channel(idle: Duration) -> (ChannelWriter, Body) {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let writer = ChannelWriter {
        tx,
        handle: Handle::current(),
        idle,
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
        let sent = self
            .handle
            .block_on(tokio::time::timeout(self.idle, self.tx.send(Ok(chunk))));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client closed the connection",
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
