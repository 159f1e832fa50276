//! The plugin's stdout and stderr: forwarded to the log line by line, capped, never
//! to the host's own stdout.
//!
//! A plugin may write without limit; the host must not buffer it or pass it all on.
//! Each stream forwards at most [`BYTES_PER_CALL`] bytes per call into the plugin
//! (longer lines cut at [`MAX_LINE`]), then silently discards the rest while still
//! accepting writes, so a chatty plugin is neither killed nor able to flood the log.
//! The last stderr line is kept for error messages (a panic message, typically).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How many bytes of a stream are forwarded to the log per call.
pub const BYTES_PER_CALL: usize = 16 * 1024;
/// The longest line forwarded, in bytes.
pub const MAX_LINE: usize = 1024;

pub use crate::text::one_line;

/// Which stream a [`LogStream`] captures.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum StreamName {
    /// The plugin's stdout.
    Stdout,
    /// The plugin's stderr.
    Stderr,
}

/// A capped, line-buffered stream into `tracing`. Clones share state.
#[derive(Clone)]
pub struct LogStream {
    inner: Arc<Shared>,
}

struct Shared {
    /// Whether anything was written since the last [`LogStream::end_call`]: most calls
    /// write nothing, and then neither end of the call takes the lock.
    written: AtomicBool,
    state: Mutex<Inner>,
}

struct Inner {
    provider: Arc<str>,
    name: StreamName,
    partial: Vec<u8>,
    forwarded: usize,
    dropped: usize,
    last_line: Option<String>,
}

impl LogStream {
    /// A stream for `provider`'s `name` stream.
    pub fn new(provider: Arc<str>, name: StreamName) -> Self {
        LogStream {
            inner: Arc::new(Shared {
                written: AtomicBool::new(false),
                state: Mutex::new(Inner {
                    provider,
                    name,
                    partial: Vec::new(),
                    forwarded: 0,
                    dropped: 0,
                    last_line: None,
                }),
            }),
        }
    }

    /// Starts a new call: resets the per-call budget and forgets the last line.
    pub fn begin_call(&self) {
        if self.inner.written.load(Ordering::Acquire) {
            self.reset(&mut self.lock());
        }
    }

    /// Ends a call: flushes a partial line and reports what was discarded. Returns the
    /// last non-empty line written during the call.
    pub fn end_call(&self) -> Option<String> {
        if !self.inner.written.load(Ordering::Acquire) {
            return None;
        }
        let mut inner = self.lock();
        inner.flush_partial();
        if inner.dropped > 0 {
            tracing::warn!(
                provider = %inner.provider,
                stream = ?inner.name,
                "plugin output over {BYTES_PER_CALL} bytes in one call; {} bytes discarded",
                inner.dropped
            );
        }
        let last_line = inner.last_line.take();
        self.reset(&mut inner);
        last_line
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a log line was lost; keep going.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resets the state, locked, and clears `written` under the same lock (so a
    /// concurrent write cannot be reset and still leave the flag set, or the reverse).
    fn reset(&self, inner: &mut Inner) {
        inner.reset();
        self.inner.written.store(false, Ordering::Release);
    }

    fn write_bytes(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        // Set under the lock, so a concurrent reset cannot clear it after this write.
        self.inner.written.store(true, Ordering::Release);
        let room = BYTES_PER_CALL.saturating_sub(inner.forwarded);
        let (kept, dropped) = bytes.split_at(bytes.len().min(room));
        inner.forwarded += kept.len();
        inner.dropped += dropped.len();
        for &byte in kept {
            if byte == b'\n' {
                inner.flush_partial();
            } else if inner.partial.len() < MAX_LINE {
                inner.partial.push(byte);
            }
        }
    }
}

impl Inner {
    /// Back to the state of a call that wrote nothing.
    fn reset(&mut self) {
        self.forwarded = 0;
        self.dropped = 0;
        self.partial.clear();
        self.last_line = None;
    }

    fn flush_partial(&mut self) {
        if self.partial.is_empty() {
            return;
        }
        let line = one_line(String::from_utf8_lossy(&self.partial).trim_end(), MAX_LINE);
        self.partial.clear();
        if line.is_empty() {
            return;
        }
        tracing::debug!(provider = %self.provider, stream = ?self.name, "plugin: {line}");
        // Rust's panic hook ends with a hint about backtraces; the panic message before
        // it is the line worth showing.
        if !line.starts_with("note: run with `RUST_BACKTRACE") {
            self.last_line = Some(line);
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: writes beyond the budget are accepted and discarded.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_line_and_caps_the_rest() {
        let stream = LogStream::new("p".into(), StreamName::Stderr);
        stream.begin_call();
        stream.write_bytes(b"first\nsecond line\npartial");
        assert_eq!(stream.end_call().as_deref(), Some("partial"));

        stream.begin_call();
        stream.write_bytes(&vec![b'x'; 10 * BYTES_PER_CALL]);
        let inner = stream.lock();
        assert_eq!(inner.forwarded, BYTES_PER_CALL);
        assert_eq!(inner.dropped, 9 * BYTES_PER_CALL);
        assert!(inner.partial.len() <= MAX_LINE);
    }

    #[test]
    fn a_call_that_writes_nothing_reports_nothing_from_an_earlier_one() {
        let stream = LogStream::new("p".into(), StreamName::Stderr);
        stream.begin_call();
        stream.write_bytes(b"panicked: first call");
        assert_eq!(stream.end_call().as_deref(), Some("panicked: first call"));

        // Nothing written: no stale line.
        stream.begin_call();
        assert_eq!(stream.end_call(), None);

        // A call over its budget leaves the next one its whole budget.
        stream.begin_call();
        stream.write_bytes(&vec![b'x'; 2 * BYTES_PER_CALL]);
        assert!(stream.end_call().is_some());
        stream.begin_call();
        stream.write_bytes(b"second");
        assert_eq!(stream.lock().forwarded, 6);
        assert_eq!(stream.end_call().as_deref(), Some("second"));

        // Written between calls (no call open): forgotten when the next call begins.
        stream.write_bytes(b"between calls\n");
        stream.begin_call();
        assert_eq!(stream.end_call(), None);
    }
}
