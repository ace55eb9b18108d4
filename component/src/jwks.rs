//! The host side of `jwt_jwks_url`: Spin's key-value store holds the fetched JWKS and the
//! time of the last fetch attempt, Spin's outbound HTTP fetches it. Every decision (when to
//! fetch, whether a copy is still usable, whether a document is a usable key set) is the
//! core's; this module only does the I/O.
//!
//! Only requests whose bearer token is asymmetric (EdDSA, ES256, RS256) touch the store or
//! the network, so HS256 traffic pays nothing. A failure is logged (one line, never the
//! token) and the request goes on: asymmetric tokens are then answered 401 "the signing
//! keys could not be fetched" unless a usable older copy exists, HS256 tokens as usual.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::future::{Either, select};
use http::HeaderMap;
use spin_sdk::http::{IncomingResponse, Request};
use spin_sdk::key_value::Store;
use task_api_core::{
    Config, JwkSet, JwksCache, MAX_JWKS_BYTES, Timestamp, bearer_key_id, bearer_uses_jwks,
    should_refresh,
};

use crate::log;

/// How long one fetch may take, from sending the request to the end of the body. The
/// request that triggers a fetch waits for it; others within the core's refresh interval
/// do not fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// `config` ready for this request: unchanged unless it names a `jwt_jwks_url` and the
/// request's bearer token is asymmetric; then with the newest usable key set, or marked
/// unavailable.
pub async fn prepare(config: Config, headers: &HeaderMap, now: Timestamp) -> Config {
    let Some(url) = config.jwks_url().map(str::to_owned) else {
        return config;
    };
    if !bearer_uses_jwks(headers) {
        return config;
    }
    match key_set(&url, config.jwks_ttl_secs(), headers, now).await {
        Some(keys) => config.with_fetched_jwks(keys),
        None => config.with_jwks_unavailable(),
    }
}

/// The store's keys for one JWKS URL.
struct Keys {
    /// The [`JwksCache`], as JSON.
    cache: String,
    /// The last fetch attempt, in milliseconds since the epoch, as decimal text.
    attempt: String,
}

impl Keys {
    fn for_url(url: &str) -> Keys {
        Keys {
            cache: format!("task-api:jwks:cache:{url}"),
            attempt: format!("task-api:jwks:attempt:{url}"),
        }
    }
}

/// The newest usable key set for `url`, fetching it first if the core says so.
async fn key_set(url: &str, ttl_secs: u64, headers: &HeaderMap, now: Timestamp) -> Option<JwkSet> {
    let store = match Store::open_default() {
        Ok(store) => store,
        Err(e) => {
            log::jwks(url, &format!("cannot open the key-value store: {e}"));
            return None;
        }
    };
    let keys = Keys::for_url(url);
    let cached = read(&store, url, &keys.cache)
        .and_then(|json| JwksCache::from_json(&json))
        .and_then(|entry| entry.key_set().ok().map(|set| (entry, set)));
    let last_attempt = read(&store, url, &keys.attempt)
        .and_then(|text| text.parse::<i64>().ok())
        .map(Timestamp::from_millis);
    let unknown_kid = match (bearer_key_id(headers), &cached) {
        (Some(kid), Some((_, set))) => !set.contains_kid(&kid),
        _ => false,
    };
    let refresh = should_refresh(
        now,
        ttl_secs,
        cached.as_ref().map(|(entry, _)| entry),
        unknown_kid,
        last_attempt,
    );
    if refresh {
        // The attempt is recorded first, so that concurrent and later requests wait the
        // core's interval even if this fetch hangs or fails. Without that record there is no
        // throttle, so no fetch either.
        match store.set(&keys.attempt, now.as_millis().to_string().as_bytes()) {
            Err(e) => log::jwks(
                url,
                &format!("not fetching: cannot record the attempt in the key-value store: {e}"),
            ),
            Ok(()) => match fetch(url).await.and_then(|document| {
                let set = JwkSet::parse(&document)
                    .map_err(|e| format!("the document is not a usable JWKS: {e}"))?;
                // Once per fetch, not per request: what the service will not use.
                for k in set.skipped() {
                    let kid = k.kid.as_deref().unwrap_or("none");
                    log::jwks(
                        url,
                        &format!("key {} (kid {kid}) skipped: it {}", k.index, k.reason),
                    );
                }
                Ok((document, set))
            }) {
                Ok((document, set)) => {
                    let entry = JwksCache::new(now, document);
                    if let Err(e) = store.set(&keys.cache, entry.to_json().as_bytes()) {
                        log::jwks(url, &format!("cannot store the fetched JWKS: {e}"));
                    }
                    return Some(set);
                }
                Err(e) => log::jwks(url, &e),
            },
        }
    }
    cached
        .filter(|(entry, _)| entry.is_usable(now, ttl_secs))
        .map(|(_, set)| set)
}

/// A value of the store as text; a missing key, an error (logged) or non-UTF-8 is `None`.
fn read(store: &Store, url: &str, key: &str) -> Option<String> {
    match store.get(key) {
        Ok(value) => value.and_then(|bytes| String::from_utf8(bytes).ok()),
        Err(e) => {
            log::jwks(url, &format!("cannot read the key-value store: {e}"));
            None
        }
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
