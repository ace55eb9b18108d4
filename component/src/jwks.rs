//! The host side of `jwt_jwks_url`: the I/O of the core's refresh sequence
//! ([`task_api_core::prepare_jwks`]). Spin's key-value store holds the fetched JWKS and the
//! time of the last fetch attempt, Spin's outbound HTTP fetches it. Every decision (when to
//! fetch, whether a copy is still usable, whether a document is a usable key set) is the
//! core's.
//!
//! Only requests whose bearer token is asymmetric (EdDSA, ES256, RS256) touch the store or
//! the network, so HS256 traffic pays nothing: the store is opened on first use.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::future::{Either, select};
use http::HeaderMap;
use spin_sdk::http::{IncomingResponse, Request};
use spin_sdk::key_value::Store;
use task_api_core::{Config, JwksHost, MAX_JWKS_BYTES, Timestamp};

use crate::log;

/// How long one fetch may take, from sending the request to the end of the body. The
/// request that triggers a fetch waits for it; others within the core's refresh interval
/// do not fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// `config` ready for this request (see [`task_api_core::prepare_jwks`]).
pub async fn prepare(config: Config, headers: &HeaderMap, now: Timestamp) -> Config {
    task_api_core::prepare_jwks(config, headers, now, &SpinHost::default()).await
}

/// Spin's default key-value store, opened when first asked, and outbound HTTP.
#[derive(Default)]
struct SpinHost {
    store: OnceCell<Result<Store, String>>,
}

impl SpinHost {
    fn store(&self) -> Result<&Store, String> {
        self.store
            .get_or_init(|| {
                Store::open_default().map_err(|e| format!("cannot open the key-value store: {e}"))
            })
            .as_ref()
            .map_err(String::clone)
    }
}

impl JwksHost for SpinHost {
    async fn get(&self, key: &str) -> Result<Option<String>, String> {
        let value = self.store()?.get(key).map_err(|e| e.to_string())?;
        // A value that is not UTF-8 was not written by this service: absent.
        Ok(value.and_then(|bytes| String::from_utf8(bytes).ok()))
    }

    async fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.store()?
            .set(key, value.as_bytes())
            .map_err(|e| e.to_string())
    }

    async fn fetch(&self, url: &str) -> Result<String, String> {
        fetch(url).await
    }

    fn log(&self, url: &str, message: &str) {
        log::jwks(url, message);
    }
}

/// The document at `url`: a GET answered 200 with at most [`MAX_JWKS_BYTES`] of UTF-8,
/// within [`FETCH_TIMEOUT`].
async fn fetch(url: &str) -> Result<String, String> {
    let fetching = Box::pin(fetch_without_timeout(url));
    match select(fetching, Deadline::after(FETCH_TIMEOUT)).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(format!(
            "no complete answer within {} s",
            FETCH_TIMEOUT.as_secs()
        )),
    }
}

async fn fetch_without_timeout(url: &str) -> Result<String, String> {
    let request = Request::get(url)
        .header("accept", "application/json")
        .build();
    let response: IncomingResponse = spin_sdk::http::send(request)
        .await
        .map_err(|e| format!("the request failed: {e}"))?;
    let status = response.status();
    if status != 200 {
        return Err(format!("the answer's status is {status}, not 200"));
    }
    let too_large = || format!("the document is larger than {MAX_JWKS_BYTES} bytes");
    let declared = response
        .headers()
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = response.take_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading the document failed: {e}"))?;
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(too_large());
        }
    }
    String::from_utf8(body).map_err(|_| "the document is not UTF-8".to_owned())
}

/// A future ready once the monotonic clock passes an instant, on Spin's executor (the
/// SDK's `send` takes no timeout). Its registration with the executor is cancelled when it
/// is polled again or dropped, so an abandoned deadline leaves nothing behind.
struct Deadline {
    at: u64,
    registration: Option<spin_executor::CancelOnDropToken>,
}

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        Deadline {
            at: wasi::clocks::monotonic_clock::now().saturating_add(nanos),
            registration: None,
        }
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.registration = None;
        if wasi::clocks::monotonic_clock::now() >= self.at {
            return Poll::Ready(());
        }
        let pollable = wasi::clocks::monotonic_clock::subscribe_instant(self.at);
        let token = spin_executor::push_waker_and_get_token(pollable, cx.waker().clone());
        self.registration = Some(token.into());
        Poll::Pending
    }
}
