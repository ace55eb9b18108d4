//! The whole JWKS refresh sequence for `jwt_jwks_url`, so that a host only supplies I/O
//! ([`JwksHost`]: a small key-value store and an HTTP GET) and every host refreshes alike:
//! the Spin component over Spin's key-value store and outbound HTTP, an embedder over
//! whatever it has.
//!
//! The sequence, for a request whose bearer token is asymmetric (HS256 requests never get
//! here, so they cost no I/O):
//! 1. read the cached document and the time of the last fetch attempt;
//! 2. decide with [`should_refresh`]: no usable copy, a stale one, or a `kid` the copy
//!    lacks (a rotation), at most once per [`JWKS_REFRESH_INTERVAL_SECS`];
//! 3. record the attempt *before* fetching, so that concurrent and later requests wait the
//!    interval even if this fetch hangs or fails (no record, no fetch: without it nothing
//!    throttles the identity provider's endpoint);
//! 4. fetch, parse ([`JwkSet::parse`]), log the keys it skipped, store the document;
//! 5. on any failure, fall back to the cached copy while [`JwksCache::is_usable`].
//!
//! Failures are logged through [`JwksHost::log`] (one line each, never a token) and never
//! fail the request: asymmetric tokens then get 401 "the signing keys could not be
//! fetched" unless an older copy is still usable.

use http::HeaderMap;

use crate::auth::jwks::{JwkSet, JwksCache, bearer_key_id, bearer_uses_jwks, should_refresh};
use crate::config::load::Config;
use crate::domain::time::Timestamp;

/// The I/O a host gives the JWKS refresh.
///
/// `get` and `set` are a key-value store; instances that share it also share the fetched
/// document and the refresh throttle. Errors are texts for the log (they must hold no
/// secret); a failed `get` reads as absent.
///
/// ```
/// use std::cell::RefCell;
/// use std::collections::HashMap;
/// use task_api_core::JwksHost;
///
/// /// Keys in memory, fetching from a fixed document.
/// struct Fixed(RefCell<HashMap<String, String>>, String);
///
/// impl JwksHost for Fixed {
///     async fn get(&self, key: &str) -> Result<Option<String>, String> {
///         Ok(self.0.borrow().get(key).cloned())
///     }
///     async fn set(&self, key: &str, value: &str) -> Result<(), String> {
///         self.0.borrow_mut().insert(key.to_owned(), value.to_owned());
///         Ok(())
///     }
///     async fn fetch(&self, _url: &str) -> Result<String, String> {
///         Ok(self.1.clone())
///     }
///     fn log(&self, url: &str, message: &str) {
///         eprintln!("jwks {url}: {message}");
///     }
/// }
/// # let _ = Fixed(RefCell::default(), String::new());
/// ```
///
/// As with [`TaskStore`](crate::TaskStore), the futures need not be `Send`; a host whose
/// futures are `Send` gets a `Send` [`prepare_jwks`].
#[allow(async_fn_in_trait)] // Send-ness follows the implementing type; see above
pub trait JwksHost {
    /// The value stored under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<String>, String>;
    /// Stores `value` under `key`.
    async fn set(&self, key: &str, value: &str) -> Result<(), String>;
    /// The document at `url`: a `GET` answered 200, of at most
    /// [`MAX_JWKS_BYTES`](crate::MAX_JWKS_BYTES) of UTF-8, within a timeout the host
    /// chooses (the request that triggered the fetch waits for it).
    async fn fetch(&self, url: &str) -> Result<String, String>;
    /// One line about the JWKS at `url`: a failure, or a key the service skipped.
    fn log(&self, url: &str, message: &str);
}

/// The key names under which a host keeps the refresh's state for one URL: the
/// [`JwksCache`] as JSON, and the last attempt in milliseconds since the epoch.
///
/// ```
/// let (cache, attempt) = task_api_core::jwks_store_keys("https://id.example/jwks");
/// assert_eq!(cache, "task-api:jwks:cache:https://id.example/jwks");
/// assert_eq!(attempt, "task-api:jwks:attempt:https://id.example/jwks");
/// ```
pub fn jwks_store_keys(url: &str) -> (String, String) {
    (
        format!("task-api:jwks:cache:{url}"),
        format!("task-api:jwks:attempt:{url}"),
    )
}

/// `config` ready for this request: unchanged unless it names a `jwt_jwks_url` and the
/// request's bearer token is asymmetric; then with the newest usable key set
/// ([`Config::with_fetched_jwks`]), or marked unavailable
/// ([`Config::with_jwks_unavailable`]). Call it before [`Api::handle`](crate::Api::handle).
pub async fn prepare_jwks<H: JwksHost>(
    config: Config,
    headers: &HeaderMap,
    now: Timestamp,
    host: &H,
) -> Config {
    let Some(url) = config.jwks_url().map(str::to_owned) else {
        return config;
    };
    if !bearer_uses_jwks(headers) {
        return config;
    }
    match key_set(host, &url, config.jwks_ttl_secs(), headers, now).await {
        Some(keys) => config.with_fetched_jwks(keys),
        None => config.with_jwks_unavailable(),
    }
}

/// The newest usable key set for `url`, fetched first if [`should_refresh`] says so.
async fn key_set<H: JwksHost>(
    host: &H,
    url: &str,
    ttl_secs: u64,
    headers: &HeaderMap,
    now: Timestamp,
) -> Option<JwkSet> {
    let (cache_key, attempt_key) = jwks_store_keys(url);
    let cached = read(host, url, &cache_key)
        .await
        .and_then(|json| JwksCache::from_json(&json))
        .and_then(|entry| entry.key_set().ok().map(|set| (entry, set)));
    let last_attempt = read(host, url, &attempt_key)
        .await
        .and_then(|text| text.parse::<i64>().ok())
        .map(Timestamp::from_millis);
    let unknown_kid = match (bearer_key_id(headers), &cached) {
        (Some(kid), Some((_, set))) => !set.contains_kid(&kid),
        _ => false,
    };
    let cached_entry = cached.as_ref().map(|(entry, _)| entry);
    if should_refresh(now, ttl_secs, cached_entry, unknown_kid, last_attempt)
        && let Some(set) = refresh(host, url, &cache_key, &attempt_key, now).await
    {
        return Some(set);
    }
    cached
        .filter(|(entry, _)| entry.is_usable(now, ttl_secs))
        .map(|(_, set)| set)
}

/// Records the attempt, fetches and stores: the fetched key set, or `None` (logged).
async fn refresh<H: JwksHost>(
    host: &H,
    url: &str,
    cache_key: &str,
    attempt_key: &str,
    now: Timestamp,
) -> Option<JwkSet> {
    if let Err(e) = host.set(attempt_key, &now.as_millis().to_string()).await {
        host.log(
            url,
            &format!("not fetching: cannot record the attempt in the key-value store: {e}"),
        );
        return None;
    }
    let document = match host.fetch(url).await {
        Ok(document) => document,
        Err(e) => {
            host.log(url, &e);
            return None;
        }
    };
    let set = match JwkSet::parse(&document) {
        Ok(set) => set,
        Err(e) => {
            host.log(url, &format!("the document is not a usable JWKS: {e}"));
            return None;
        }
    };
    // Once per fetch, not per request: what the service will not use.
    for k in set.skipped() {
        let kid = k.kid.as_deref().unwrap_or("none");
        host.log(
            url,
            &format!("key {} (kid {kid}) skipped: it {}", k.index, k.reason),
        );
    }
    let entry = JwksCache::new(now, document);
    if let Err(e) = host.set(cache_key, &entry.to_json()).await {
        host.log(url, &format!("cannot store the fetched JWKS: {e}"));
    }
    Some(set)
}

/// A stored value as text; a missing key is `None`, and so is an error (logged).
async fn read<H: JwksHost>(host: &H, url: &str, key: &str) -> Option<String> {
    match host.get(key).await {
        Ok(value) => value,
        Err(e) => {
            host.log(url, &format!("cannot read the key-value store: {e}"));
            None
        }
    }
}
