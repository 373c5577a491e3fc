//! Blocking `Read` and `Write` over an SSH channel, for git's serving code (blocking, on
//! tokio's blocking pool). The channel itself is async: two small bounded queues of
//! byte chunks sit between the two, so a slow client holds at most a few chunks in
//! memory and backpressure reaches the other side (a git writer waits while the
//! client's window is full; the client's data waits in its SSH window while git is
//! busy).

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks in flight each way.
pub(crate) const DEPTH: usize = 8;
/// Bytes gathered before a write is handed to the channel.
const CHUNK: usize = 64 * 1024;

/// Why the pump stopped passing the client's data on before its EOF (too slow), so
/// that the reader reports it rather than a plain end of stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cut(Arc<Mutex<Option<String>>>);

impl Cut {
    pub(crate) fn set(&self, why: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the client sent on the channel, until its EOF (or the session's end), and at
/// most `limit` bytes of it (a push's size cap): past it, or once the pump was cut,
/// reading fails with an error that says why, which git's serving code reports to the
/// client.
pub(crate) struct Input {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
    limit: Option<u64>,
    total: u64,
    cut: Cut,
}

impl Input {
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>, limit: Option<u64>, cut: Cut) -> Input {
        Input {
            rx,
            current: Bytes::new(),
            limit,
            total: 0,
            cut,
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.total += chunk.len() as u64;
                    if let Some(limit) = self.limit.filter(|l| self.total > *l) {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("push over the limit of {limit} bytes"),
                        ));
                    }
                    self.current = chunk;
                }
                None => {
                    return match self.cut.get() {
                        Some(why) => Err(io::Error::new(io::ErrorKind::TimedOut, why)),
                        None => Ok(0),
                    };
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// What git writes, in chunks of up to [`CHUNK`] bytes, sent on `flush` or when full.
pub(crate) struct Output {
    tx: mpsc::Sender<Bytes>,
    pending: Vec<u8>,
}

impl Output {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>) -> Output {
        Output {
            tx,
            pending: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the SSH channel closed"))
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.pending.len();
        let n = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        // What was written and not flushed still goes out (git's writers flush, but a
        // report written by a `Box<dyn Write>` may be dropped right after).
        let _ = self.send();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_in_order_and_end_at_eof() {
        let (tx, rx) = mpsc::channel(DEPTH);
        let writer = std::thread::spawn(move || {
            let mut out = Output::new(tx);
            for i in 0..1000u32 {
                out.write_all(format!("{i},").as_bytes()).unwrap();
            }
            out.flush().unwrap();
            out.write_all(b"end").unwrap();
        });
        let mut input = Input::new(rx, None, Cut::default());
        let mut all = String::new();
        input.read_to_string(&mut all).unwrap();
        writer.join().unwrap();
        let want: String = (0..1000u32).map(|i| format!("{i},")).collect::<String>() + "end";
        assert_eq!(all, want);
    }

    #[test]
    fn reading_past_the_limit_fails_and_says_why() {
        let (tx, rx) = mpsc::channel(DEPTH);
        tx.try_send(Bytes::from_static(b"0123456789")).unwrap();
        tx.try_send(Bytes::from_static(b"abc")).unwrap();
        drop(tx);
        let mut input = Input::new(rx, Some(12), Cut::default());
        let mut buf = [0u8; 64];
        assert_eq!(input.read(&mut buf).unwrap(), 10);
        let e = input.read(&mut buf).unwrap_err();
        assert!(e.to_string().contains("limit of 12 bytes"), "{e}");
    }

    #[test]
    fn a_cut_stream_says_why_instead_of_ending() {
        let (tx, rx) = mpsc::channel(DEPTH);
        let cut = Cut::default();
        cut.set("too slow".into());
        drop(tx);
        let e = Input::new(rx, None, cut).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.to_string(), "too slow");
    }

    #[test]
    fn a_closed_channel_is_a_broken_pipe() {
        let (tx, rx) = mpsc::channel(DEPTH);
        drop(rx);
        let mut out = Output::new(tx);
        out.write_all(b"x").unwrap();
        assert_eq!(out.flush().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
