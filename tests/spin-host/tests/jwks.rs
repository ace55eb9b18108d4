//! Asymmetric tokens through the real component: `jwt_jwks_url` fetched over Spin's
//! outbound HTTP from a stub identity provider (an in-process HTTP server that counts the
//! requests it receives), cached in Spin's key-value store, refreshed by the core's rules;
//! and a pinned `jwt_jwks`.
//!
//! The host's test clock (`x-test-now-ms`) sets the component's time per request, so the
//! TTL and the one-minute refresh interval are crossed without waiting; tokens are minted
//! at that clock.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use jwt_simple::prelude::*;
use spin_test_host::{Host, RunningHost};
use task_api_core::JwksCache;
use task_api_test_kit::{TempDir, postgres::PgSchema, temp_dir};
use wasmtime_wasi_http::io::TokioIo;

const SECRET: &str = "a JWKS-test secret that is at least thirty-two bytes long";
const JWKS_PATH: &str = "/api/auth/jwks";
const UNKNOWN_KEY: &str = "the token's signing key is not known";
const KEYS_UNAVAILABLE: &str = "the signing keys could not be fetched";
/// The core's interval between fetches outside the TTL schedule, plus a second.
const PAST_INTERVAL_MS: u64 = 61_000;

// ------------------------------------------------------------------------------ fixtures

/// What the stub answers, and what it was asked.
struct StubState {
    status: u16,
    body: String,
    /// `METHOD path` of every request received.
    requests: Vec<String>,
}

/// A stub identity provider: answers every request with the current status and body.
struct Stub {
    addr: SocketAddr,
    state: Arc<Mutex<StubState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    async fn start(status: u16, body: String) -> Stub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(StubState {
            status,
            body,
            requests: Vec::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let state = state.clone();
                    async move {
                        let mut state = state.lock().unwrap();
                        state.requests.push(format!(
                            "{} {}",
                            request.method(),
                            request.uri().path()
                        ));
                        let response = Response::builder()
                            .status(state.status)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(state.body.clone())))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Stub { addr, state, task }
    }

    /// `jwt_jwks_url` for this stub.
    fn url(&self) -> String {
        format!("http://{}{JWKS_PATH}", self.addr)
    }

    /// `jwks_host` for this stub.
    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many fetches it answered; each must have been a GET of the JWKS path.
    fn fetches(&self) -> usize {
        let state = self.state.lock().unwrap();
        for r in &state.requests {
            assert_eq!(r, &format!("GET {JWKS_PATH}"));
        }
        state.requests.len()
    }

    fn serve(&self, status: u16, body: String) {
        let mut state = self.state.lock().unwrap();
        state.status = status;
        state.body = body;
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The component served with the test clock, `variables` and its data in `dir`.
async fn serve<K: Into<String>, V: Into<String>>(
    dir: &TempDir,
    variables: impl IntoIterator<Item = (K, V)>,
) -> (Host, RunningHost) {
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variables(variables)
        .sqlite_dir(dir.path())
        .test_clock(true)
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    (host, running)
}

/// The variables that point the component at `stub`, with the HS256 secret if `secret`.
fn fetching(stub: &Stub, secret: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![("jwt_jwks_url", stub.url()), ("jwks_host", stub.origin())];
    if secret {
        v.push(("jwt_secret", SECRET.to_owned()));
    }
    v
}

/// A time the component can be told: now, to the second.
fn start_ms() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    now.as_secs() * 1000
}

// -------------------------------------------------------------------------------- tokens

/// Claims for `sub`, issued at `now_ms` (the component's clock), valid for an hour.
fn claims(now_ms: u64, sub: &str) -> JWTClaims<NoCustomClaims> {
    let now = now_ms / 1000;
    let mut c = Claims::create(Duration::from_hours(1)).with_subject(sub);
    c.issued_at = Some(Duration::from_secs(now));
    c.invalid_before = Some(Duration::from_secs(now));
    c.expires_at = Some(Duration::from_secs(now + 3600));
    c
}

fn eddsa(key: &Ed25519KeyPair, now_ms: u64) -> String {
    key.sign(claims(now_ms, "ann")).unwrap()
}

fn hs256(now_ms: u64) -> String {
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(claims(now_ms, "ann"))
        .unwrap()
}

/// A JWKS document of these public JWKs.
fn jwks(keys: &[String]) -> String {
    format!(r#"{{"keys":[{}]}}"#, keys.join(","))
}

fn ed25519(kid: &str) -> Ed25519KeyPair {
    Ed25519KeyPair::generate().with_key_id(kid)
}

fn ed25519_jwk(key: &Ed25519KeyPair) -> String {
    key.public_key().to_jwk()
}

// ------------------------------------------------------------------------------ requests

struct Reply {
    status: u16,
    json: serde_json::Value,
    www_authenticate: Option<String>,
}

/// `POST /api/tasks` with `token`, at `now_ms` on the component's clock.
async fn create(running: &RunningHost, token: &str, now_ms: u64) -> Reply {
    let request = Request::post("/api/tasks")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("x-test-now-ms", now_ms.to_string())
        .body(br#"{"title":"Buy milk"}"#.to_vec())
        .unwrap();
    let response = running.send(request).await.unwrap();
    Reply {
        status: response.status,
        json: serde_json::from_slice(&response.body).unwrap_or_default(),
        www_authenticate: response.header("www-authenticate").map(str::to_owned),
    }
}

#[track_caller]
fn assert_created(r: &Reply) {
    assert_eq!(r.status, 201, "{}", r.json);
}

/// A 401 saying `description` in `WWW-Authenticate` and in the problem's `detail`.
#[track_caller]
fn assert_401(r: &Reply, description: &str) {
    assert_eq!(r.status, 401, "{}", r.json);
    let h = r.www_authenticate.as_deref().unwrap_or_default();
    assert!(
        h.contains(&format!("error_description=\"{description}\"")),
        "{h}"
    );
    assert_eq!(r.json["detail"], description);
}

/// The component's key-value entries (key, value as text), from the host's store file.
fn kv_entries(dir: &TempDir) -> Vec<(String, String)> {
    let path = dir.path().join("sqlite_key_value.db");
    if !path.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT key, value FROM spin_key_value WHERE store = 'default' ORDER BY key")
        .unwrap();
    stmt.query_map([], |row| {
        let value: Vec<u8> = row.get(1)?;
        Ok((row.get(0)?, String::from_utf8_lossy(&value).into_owned()))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

// --------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eddsa_token_creates_a_task_and_the_cached_keys_serve_later_requests() {
    eddsa_tokens_create_tasks_and_cached_keys_serve_later_requests(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_an_eddsa_token_creates_a_task_and_the_cached_keys_serve_later_requests() {
    let Some(schema) = PgSchema::create("jwks").await else {
        return;
    };
    eddsa_tokens_create_tasks_and_cached_keys_serve_later_requests(Some(&schema)).await;
}

/// On SQLite, or on PostgreSQL in `schema`.
async fn eddsa_tokens_create_tasks_and_cached_keys_serve_later_requests(schema: Option<&PgSchema>) {
    let k1 = ed25519("k1");
    let p1 = ES256KeyPair::generate().with_key_id("p1");
    let document = jwks(&[ed25519_jwk(&k1), p1.public_key().to_jwk()]);
    let stub = Stub::start(200, document.clone()).await;
    let dir = temp_dir("spin-test-host-jwks");
    let mut vars = fetching(&stub, true);
    if let Some(schema) = schema {
        vars.push(("database_url", schema.component_url()));
        vars.push(("database_host", schema.database_host()));
    }
    let (_host, running) = serve(&dir, vars).await;
    let t0 = start_ms();

    // HS256 traffic never loads the JWKS.
    let by_secret = create(&running, &hs256(t0), t0).await;
    assert_created(&by_secret);
    assert_eq!(stub.fetches(), 0);
    assert!(kv_entries(&dir).is_empty());

    let first = create(&running, &eddsa(&k1, t0), t0).await;
    assert_created(&first);
    assert_eq!(stub.fetches(), 1);
    // The same user as the HS256 token, and a second task in the same store.
    assert_eq!(first.json["data"]["user_id"], "ann", "{}", first.json);
    assert!(first.json["data"]["id"].is_u64(), "{}", first.json);
    assert_ne!(first.json["data"]["id"], by_secret.json["data"]["id"]);

    // The cache (in Spin's key-value store) serves the next requests, of both key types.
    let t1 = t0 + 5_000;
    assert_created(&create(&running, &eddsa(&k1, t1), t1).await);
    let es256 = p1.sign(claims(t1, "ann")).unwrap();
    assert_created(&create(&running, &es256, t1).await);
    assert_eq!(stub.fetches(), 1);

    let entries = kv_entries(&dir);
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let cache_key = format!("task-api:jwks:cache:{}", stub.url());
    let attempt_key = format!("task-api:jwks:attempt:{}", stub.url());
    assert_eq!(keys, [attempt_key.as_str(), cache_key.as_str()]);
    let cache = JwksCache::from_json(&entries[1].1).expect("a JwksCache");
    assert_eq!(cache.fetched_at.as_millis(), t0 as i64);
    assert_eq!(cache.document, document);
    assert_eq!(entries[0].1, t0.to_string());

    // Past the TTL (300 s by default), one refetch.
    let t2 = t0 + 301_000;
    assert_created(&create(&running, &eddsa(&k1, t2), t2).await);
    assert_created(&create(&running, &eddsa(&k1, t2 + 1_000), t2 + 1_000).await);
    assert_eq!(stub.fetches(), 2);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_in_key_works_after_one_refetch() {
    let k1 = ed25519("k1");
    let k2 = ed25519("k2");
    let stub = Stub::start(200, jwks(&[ed25519_jwk(&k1)])).await;
    let dir = temp_dir("spin-test-host-jwks");
    let vars = fetching(&stub, false);
    let (_host, running) = serve(&dir, vars).await;
    let t0 = start_ms();

    assert_created(&create(&running, &eddsa(&k1, t0), t0).await);
    assert_eq!(stub.fetches(), 1);

    // The identity provider rotates: the new key is published next to the old one.
    stub.serve(200, jwks(&[ed25519_jwk(&k2), ed25519_jwk(&k1)]));
    let t1 = t0 + PAST_INTERVAL_MS;
    assert_created(&create(&running, &eddsa(&k2, t1), t1).await);
    assert_eq!(stub.fetches(), 2);
    // Both keys now come from the new copy, with no further fetch.
    let t2 = t1 + 1_000;
    assert_created(&create(&running, &eddsa(&k2, t2), t2).await);
    assert_created(&create(&running, &eddsa(&k1, t2), t2).await);
    assert_eq!(stub.fetches(), 2);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_are_401_and_fetch_at_most_once_a_minute() {
    let k1 = ed25519("k1");
    let stranger = ed25519("made-up");
    let stub = Stub::start(200, jwks(&[ed25519_jwk(&k1)])).await;
    let dir = temp_dir("spin-test-host-jwks");
    let vars = fetching(&stub, false);
    let (_host, running) = serve(&dir, vars).await;
    let t0 = start_ms();

    assert_created(&create(&running, &eddsa(&k1, t0), t0).await);
    assert_eq!(stub.fetches(), 1);

    // Within a minute of the last fetch an unknown kid does not fetch.
    let t1 = t0 + 1_000;
    assert_401(
        &create(&running, &eddsa(&stranger, t1), t1).await,
        UNKNOWN_KEY,
    );
    assert_eq!(stub.fetches(), 1);

    // A burst of ten past the interval: one fetch, then the throttle.
    let t2 = t0 + PAST_INTERVAL_MS;
    for i in 0..10 {
        let t = t2 + i * 100;
        assert_401(
            &create(&running, &eddsa(&stranger, t), t).await,
            UNKNOWN_KEY,
        );
    }
    assert_eq!(stub.fetches(), 2);
    // The known key keeps working meanwhile.
    assert_created(&create(&running, &eddsa(&k1, t2 + 2_000), t2 + 2_000).await);
    assert_eq!(stub.fetches(), 2);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_without_cache_refuses_asymmetric_tokens_but_not_hs256() {
    let k1 = ed25519("k1");
    let stub = Stub::start(500, r#"{"error":"down"}"#.to_owned()).await;
    let dir = temp_dir("spin-test-host-jwks");
    let vars = fetching(&stub, true);
    let (_host, running) = serve(&dir, vars).await;
    let t0 = start_ms();

    assert_401(
        &create(&running, &eddsa(&k1, t0), t0).await,
        KEYS_UNAVAILABLE,
    );
    assert_eq!(stub.fetches(), 1);
    assert_created(&create(&running, &hs256(t0), t0).await);
    // The failed attempt throttles retries; no cache was stored.
    let t1 = t0 + 1_000;
    assert_401(
        &create(&running, &eddsa(&k1, t1), t1).await,
        KEYS_UNAVAILABLE,
    );
    assert_eq!(stub.fetches(), 1);
    let entries = kv_entries(&dir);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].0.starts_with("task-api:jwks:attempt:"));

    // Documents the core refuses are not adopted either.
    let t2 = t0 + PAST_INTERVAL_MS;
    stub.serve(200, "not a JWKS".to_owned());
    assert_401(
        &create(&running, &eddsa(&k1, t2), t2).await,
        KEYS_UNAVAILABLE,
    );
    let t3 = t2 + PAST_INTERVAL_MS;
    let huge = format!(
        r#"{{"keys":[{}],"padding":"{}"}}"#,
        ed25519_jwk(&k1),
        "x".repeat(task_api_core::MAX_JWKS_BYTES)
    );
    stub.serve(200, huge);
    assert_401(
        &create(&running, &eddsa(&k1, t3), t3).await,
        KEYS_UNAVAILABLE,
    );
    assert_eq!(stub.fetches(), 3);
    assert_eq!(kv_entries(&dir).len(), 1);

    // Once the provider answers, the next retry (a minute later) succeeds.
    stub.serve(200, jwks(&[ed25519_jwk(&k1)]));
    let t4 = t3 + PAST_INTERVAL_MS;
    assert_created(&create(&running, &eddsa(&k1, t4), t4).await);
    assert_eq!(stub.fetches(), 4);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_refuses_asymmetric_tokens_but_not_hs256() {
    // A port nobody listens on any more.
    let stub = Stub::start(200, String::new()).await;
    let vars = fetching(&stub, true);
    drop(stub);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let dir = temp_dir("spin-test-host-jwks");
    let (_host, running) = serve(&dir, vars).await;
    let t0 = start_ms();

    assert_401(
        &create(&running, &eddsa(&ed25519("k1"), t0), t0).await,
        KEYS_UNAVAILABLE,
    );
    assert_created(&create(&running, &hs256(t0), t0).await);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_never_answers_is_given_up_on() {
    // Accepts connections and reads nothing, answers nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hanging = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let dir = temp_dir("spin-test-host-jwks");
    let vars = [
        ("jwt_jwks_url", format!("http://{addr}{JWKS_PATH}")),
        ("jwks_host", format!("http://{addr}")),
    ];
    let (_host, running) = serve(&dir, vars).await;
    let t0 = start_ms();

    let started = std::time::Instant::now();
    let reply = create(&running, &eddsa(&ed25519("k1"), t0), t0).await;
    let waited = started.elapsed();
    assert_401(&reply, KEYS_UNAVAILABLE);
    assert!(
        waited >= std::time::Duration::from_secs(4) && waited < std::time::Duration::from_secs(10),
        "{waited:?}"
    );
    // The next request within the minute does not wait.
    let started = std::time::Instant::now();
    let reply = create(&running, &eddsa(&ed25519("k1"), t0 + 1_000), t0 + 1_000).await;
    assert_401(&reply, KEYS_UNAVAILABLE);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    hanging.abort();
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jwks_host_the_fetch_is_not_allowed() {
    let k1 = ed25519("k1");
    let stub = Stub::start(200, jwks(&[ed25519_jwk(&k1)])).await;
    let dir = temp_dir("spin-test-host-jwks");
    let url = stub.url();
    let (_host, running) = serve(&dir, [("jwt_jwks_url", url)]).await;
    let t0 = start_ms();

    assert_401(
        &create(&running, &eddsa(&k1, t0), t0).await,
        KEYS_UNAVAILABLE,
    );
    assert_eq!(stub.fetches(), 0);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_is_used_while_the_provider_is_down() {
    let k1 = ed25519("k1");
    let stub = Stub::start(200, jwks(&[ed25519_jwk(&k1)])).await;
    let dir = temp_dir("spin-test-host-jwks");
    let vars = fetching(&stub, false);
    let (_host, running) = serve(&dir, vars).await;
    let t0 = start_ms();

    assert_created(&create(&running, &eddsa(&k1, t0), t0).await);
    stub.serve(503, String::new());
    // Past the TTL the refetch fails, and the copy is still used (up to a day past it).
    let t1 = t0 + 400_000;
    assert_created(&create(&running, &eddsa(&k1, t1), t1).await);
    assert_eq!(stub.fetches(), 2);
    // More than a day past the TTL it is not.
    let t2 = t0 + (300 + 86_400 + 1) * 1000;
    assert_401(
        &create(&running, &eddsa(&k1, t2), t2).await,
        KEYS_UNAVAILABLE,
    );
    assert_eq!(stub.fetches(), 3);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_jwks_works_without_url_or_secret() {
    let k1 = ed25519("k1");
    let dir = temp_dir("spin-test-host-jwks");
    let document = jwks(&[ed25519_jwk(&k1)]);
    let (_host, running) = serve(&dir, [("jwt_jwks", document)]).await;
    let t0 = start_ms();

    assert_created(&create(&running, &eddsa(&k1, t0), t0).await);
    assert_401(
        &create(&running, &eddsa(&ed25519("k2"), t0), t0).await,
        UNKNOWN_KEY,
    );
    // No secret: HS256 tokens are not accepted.
    assert_eq!(create(&running, &hs256(t0), t0).await.status, 401);
    // Nothing is fetched or cached.
    assert!(kv_entries(&dir).is_empty());
    running.shutdown().await;
}
