//! A minimal HTTP/1.1 client for tests: one connection per request, whole bodies.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt as _, Full};
use wasmtime::Result;
use wasmtime::error::Context as _;
use wasmtime_wasi_http::io::TokioIo;

/// A response read to the end.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `x-host-calls` header parsed, when the host counts host calls
    /// (`HostBuilder::count_host_calls`) and the header is well formed.
    pub fn host_calls(&self) -> Option<crate::HostCalls> {
        crate::HostCalls::parse(self.header(crate::HOST_CALLS_HEADER)?)
    }
}

/// `GET path` (path and query) on the server at `addr`.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Response> {
    send(addr, Request::get(path).body(Vec::new())?).await
}

/// Sends `request` (its URI is the path and query) to the server at `addr`; a `host`
/// header is added when missing.
pub async fn send(addr: SocketAddr, request: Request<Vec<u8>>) -> Result<Response> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        parts.headers.insert(
            http::header::HOST,
            HeaderValue::from_str(&addr.to_string())?,
        );
    }
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(Bytes::from(body))))
        .await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    drop(sender);
    let _ = driver.await;
    Ok(Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}
