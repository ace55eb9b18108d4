//! The guest's stdout and stderr, written to the host's stderr a whole line at a time.
//!
//! Rust's `eprintln!` in a component makes one WASI write per formatted piece, so lines
//! of concurrent instances would interleave mid-line (breaking the component's JSON log
//! lines). Each stream keeps its partial line and writes complete lines in one go; what
//! is left when the instance ends is written then.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A partial line longer than this is written out anyway.
const MAX_PENDING: usize = 64 * 1024;

/// One guest stream (stdout or stderr) of one instance.
#[derive(Clone, Default)]
pub struct GuestOutput {
    pending: Arc<Mutex<Pending>>,
}

#[derive(Default)]
struct Pending(Vec<u8>);

impl Pending {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        let end = if self.0.len() > MAX_PENDING {
            self.0.len()
        } else {
            match self.0.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => return,
            }
        };
        let _ = std::io::stderr().lock().write_all(&self.0[..end]);
        self.0.drain(..end);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&self.0);
            let _ = stderr.write_all(b"\n");
        }
    }
}

impl GuestOutput {
    fn push(&self, bytes: &[u8]) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bytes);
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
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_PENDING)
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
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
