//! The guest's stdout and stderr, forwarded write by write as Spin does it.
//!
//! Spin gives each instance `PipedWriteStream`s (spinframework/spin
//! `crates/factor-wasi/src/io.rs`) whose `write` does `self.0.lock().unwrap().write_all(&bytes)`
//! on a `ComponentStdioWriter` (`crates/trigger/src/cli/stdio.rs`), which in turn does
//! `std::io::stderr().write_all(buf)` (and/or writes the log file) for every chunk. Nothing
//! is buffered by line: each WASI `write` / `blocking-write-and-flush` of the guest is one
//! write to the host's stderr, and the guest's stdout goes there too. So a component that
//! writes one log line in several pieces (Rust's `eprintln!` makes one write per formatted
//! piece) can see its lines interleaved with other instances' under load, in Spin and here.
//!
//! Where the writes go is a [`LogSink`] (default: the host's stderr); a [`LogCapture`]
//! keeps them for a test to read.

use std::fmt;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::host_calls::{Call, Counters};

/// What a guest stream may take in one write: Spin's `PipedWriteStream::check_write`
/// answers `Ok(1024 * 1024)`.
const CHECK_WRITE: usize = 1024 * 1024;

/// Where the guest's stdout and stderr writes go, each write as one call with its bytes.
/// The default is the host's stderr (one `write_all` per guest write, like Spin).
#[derive(Clone)]
pub struct LogSink(Arc<SinkFn>);

/// What a [`LogSink`] calls with each write's bytes.
pub type SinkFn = dyn Fn(&[u8]) + Send + Sync;

impl LogSink {
    /// The host process's stderr.
    pub fn stderr() -> LogSink {
        LogSink(Arc::new(|bytes: &[u8]| {
            let _ = std::io::stderr().write_all(bytes);
        }))
    }

    /// Calls `f` with the bytes of every guest write, from whichever thread the instance
    /// runs on.
    pub fn new(f: impl Fn(&[u8]) + Send + Sync + 'static) -> LogSink {
        LogSink(Arc::new(f))
    }

    fn write(&self, bytes: &[u8]) {
        (self.0)(bytes);
    }
}

impl Default for LogSink {
    fn default() -> Self {
        LogSink::stderr()
    }
}

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogSink(..)")
    }
}

impl From<Arc<SinkFn>> for LogSink {
    fn from(f: Arc<SinkFn>) -> Self {
        LogSink(f)
    }
}

/// A [`LogSink`] that keeps everything written, for tests: pass it (or a clone) to
/// `HostBuilder::log_sink` and read it with [`LogCapture::bytes`].
#[derive(Clone, Debug, Default)]
pub struct LogCapture {
    inner: Arc<CaptureInner>,
}

#[derive(Debug, Default)]
struct CaptureInner {
    bytes: Mutex<Vec<u8>>,
    writes: AtomicU64,
}

impl LogCapture {
    /// An empty capture.
    pub fn new() -> LogCapture {
        LogCapture::default()
    }

    /// Everything written so far, in the order the writes arrived.
    pub fn bytes(&self) -> Vec<u8> {
        self.inner
            .bytes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// [`LogCapture::bytes`] as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// How many writes (sink calls) arrived so far.
    pub fn writes(&self) -> u64 {
        self.inner.writes.load(Ordering::SeqCst)
    }

    /// The sink that feeds this capture.
    pub fn sink(&self) -> LogSink {
        let inner = self.inner.clone();
        LogSink::new(move |bytes| {
            inner
                .bytes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            inner.writes.fetch_add(1, Ordering::SeqCst);
        })
    }
}

impl From<LogCapture> for LogSink {
    fn from(capture: LogCapture) -> Self {
        capture.sink()
    }
}

impl From<&LogCapture> for LogSink {
    fn from(capture: &LogCapture) -> Self {
        capture.sink()
    }
}

/// One guest stream (stdout or stderr) of one instance.
#[derive(Clone)]
pub struct GuestOutput {
    sink: LogSink,
    counters: Arc<Counters>,
    call: Call,
}

impl GuestOutput {
    /// The guest's stdout (`Call::Stdout`) or stderr (`Call::Stderr`), writing to `sink` and
    /// counting each write in `counters`.
    pub fn new(sink: LogSink, counters: Arc<Counters>, call: Call) -> GuestOutput {
        GuestOutput {
            sink,
            counters,
            call,
        }
    }

    fn forward(&self, bytes: &[u8]) {
        // A zero-length write (a bare flush) reaches neither the sink nor the count.
        if bytes.is_empty() {
            return;
        }
        self.counters.add(self.call);
        self.sink.write(bytes);
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.forward(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(CHECK_WRITE)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.forward(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use wasmtime_wasi::p2::OutputStream as _;

    use super::{GuestOutput, LogCapture, LogSink};
    use crate::host_calls::{Call, Counters};

    #[test]
    fn each_write_is_forwarded_as_it_comes_without_line_buffering() {
        let calls = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let seen = calls.clone();
        let sink = LogSink::new(move |b| seen.lock().unwrap().push(b.to_vec()));
        let counters = Arc::new(Counters::default());
        let mut stderr = GuestOutput::new(sink, counters.clone(), Call::Stderr);

        stderr.write(Bytes::from_static(b"{\"level\":")).unwrap();
        // Nothing waits for the end of the line.
        assert_eq!(calls.lock().unwrap().len(), 1);
        stderr.write(Bytes::from_static(b"\"info\"}")).unwrap();
        stderr.write(Bytes::new()).unwrap();
        stderr.write(Bytes::from_static(b"\n")).unwrap();
        drop(stderr);

        assert_eq!(
            *calls.lock().unwrap(),
            [
                b"{\"level\":".to_vec(),
                b"\"info\"}".to_vec(),
                b"\n".to_vec()
            ],
            "three writes with bytes, three sink calls, nothing added on drop"
        );
        let counted = counters.snapshot();
        assert_eq!((counted.stderr, counted.stdout), (3, 0));
    }

    #[test]
    fn two_instances_interleave_mid_line_like_spin() {
        let capture = LogCapture::new();
        let counters = Arc::new(Counters::default());
        let mut a = GuestOutput::new(capture.sink(), counters.clone(), Call::Stderr);
        let mut b = GuestOutput::new(capture.sink(), counters.clone(), Call::Stdout);
        a.write(Bytes::from_static(b"a1 ")).unwrap();
        b.write(Bytes::from_static(b"b1 ")).unwrap();
        a.write(Bytes::from_static(b"a2\n")).unwrap();
        b.write(Bytes::from_static(b"b2\n")).unwrap();
        assert_eq!(capture.text(), "a1 b1 a2\nb2\n");
        assert_eq!(capture.writes(), 4);
        let counted = counters.snapshot();
        assert_eq!((counted.stderr, counted.stdout), (2, 2));
    }
}
