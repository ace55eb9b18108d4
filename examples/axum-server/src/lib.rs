//! `task-api-axum`: the task API as a native server, linking `task-api-core` the way any
//! Rust program can. axum accepts the connections; every request goes whole to
//! [`Api::handle`], so routing, authentication, validation and every answer are the core's,
//! exactly as in the Spin component. What this crate adds is only the host's part:
//!
//! - settings from the environment, under the names `spin up` reads (`SPIN_VARIABLE_` and
//!   the setting's name in capitals), read once at start;
//! - PostgreSQL through a `deadpool-postgres` pool of `tokio-postgres` connections with
//!   cached prepared statements ([`postgres`]), or SQLite through `rusqlite` ([`sqlite`]);
//! - the host's randomness (`getrandom`) for request ids and the accounts' salts, the
//!   client's address from the socket, the clock;
//! - the JWKS refresh's I/O (a process-wide cache and `reqwest`), the sequence being the
//!   core's ([`task_api_core::prepare_jwks`]);
//! - one JSON log line per request on stderr, from the core's [`RequestLog`].
//!
//! ```no_run
//! # async fn run() -> Result<(), String> {
//! let settings = task_api_axum::Settings::from_env()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.map_err(|e| e.to_string())?;
//! task_api_axum::serve(listener, settings).await
//! # }
//! ```

pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use http_body_util::BodyExt as _;
use task_api_core::sql::{Dialect, SqlStore, migrate};
use task_api_core::{
    Api, Config, ConfigError, JwksHost, MAX_JWKS_BYTES, RequestContext, RequestLog, Timestamp,
    max_body_bytes, prepare_jwks,
};

use crate::postgres::PgPool;
use crate::sqlite::SqliteDb;

/// Where tasks are stored.
#[derive(Clone)]
pub enum Database {
    /// PostgreSQL at this URL (`database_url`).
    Postgres(String),
    /// SQLite in this file (`database_url` empty; `SQLITE_PATH`, default `tasks.sqlite`).
    Sqlite(PathBuf),
}

/// What the server is started with: the core's settings and the database's.
pub struct Settings {
    /// The core's configuration, or every problem with it (then task routes answer 500
    /// naming the settings, as in the component, and `/health` still answers).
    pub config: Result<Config, ConfigError>,
    /// Where tasks are stored.
    pub database: Database,
    /// Whether to apply pending migrations at start (`auto_migrate`, default true).
    pub auto_migrate: bool,
}

impl Settings {
    /// The settings from `lookup`, which gives a setting's value by its name
    /// (`jwt_secret`, `database_url`, …).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let url = lookup("database_url").unwrap_or_default();
        let database = match url.trim() {
            "" => Database::Sqlite(
                lookup("sqlite_path")
                    .filter(|p| !p.trim().is_empty())
                    .unwrap_or_else(|| "tasks.sqlite".into())
                    .into(),
            ),
            u if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Database::Postgres(u.to_owned())
            }
            _ => return Err("database_url must be empty (SQLite) or a postgres:// URL".into()),
        };
        let auto_migrate = match lookup("auto_migrate").as_deref().map(str::trim) {
            None | Some("") | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err("auto_migrate must be true or false".into()),
        };
        Ok(Settings {
            config: Config::from_lookup(&lookup),
            database,
            auto_migrate,
        })
    }

    /// The settings from the environment: `SPIN_VARIABLE_JWT_SECRET` for `jwt_secret`, and
    /// so on, the names `spin up` reads, so one `.env` serves both hosts.
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_lookup(|name| {
            std::env::var(format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())).ok()
        })
    }
}

/// The state every request shares.
struct App {
    config: Result<Config, ConfigError>,
    backend: Backend,
    auto_migrate: bool,
    jwks: NativeJwksHost,
}

enum Backend {
    Postgres(PgPool),
    Sqlite(SqliteDb),
}

/// Serves the API on `listener` until the process is interrupted (Ctrl-C).
pub async fn serve(listener: tokio::net::TcpListener, settings: Settings) -> Result<(), String> {
    serve_until(listener, settings, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests in
/// flight (for tests and benchmarks that run the server in their own process).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let router = router(settings).await?;
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| format!("the server stopped: {e}"))
}

/// The application as an axum [`axum::Router`] (serve it with connect info, as [`serve`]
/// does, so that the core sees the client's address). Opens the database and, with
/// `auto_migrate`, migrates it.
pub async fn router(settings: Settings) -> Result<axum::Router, String> {
    let backend = match &settings.database {
        Database::Postgres(url) => Backend::Postgres(PgPool::new(url)?),
        Database::Sqlite(path) => Backend::Sqlite(SqliteDb::open(path)?),
    };
    if settings.auto_migrate {
        // At start, so that no request pays for it; a database that cannot be reached now
        // is migrated by the first request that finds the schema missing.
        let migrated = match &backend {
            Backend::Postgres(pool) => migrate(pool, Dialect::Postgres).await,
            Backend::Sqlite(db) => migrate(&db.checkout().await, Dialect::Sqlite).await,
        };
        if let Err(e) = migrated {
            log_line(
                serde_json::json!({"level": "warn", "event": "migrate", "error": e.to_string()}),
            );
        }
    }
    let app = App {
        config: settings.config,
        backend,
        auto_migrate: settings.auto_migrate,
        jwks: NativeJwksHost::new()?,
    };
    Ok(axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(app)))
}

/// Every request: read the body, prepare the configuration, hand both to the core.
async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: http::Request<Body>,
) -> http::Response<Body> {
    let started = Instant::now();
    let now = Timestamp::from_system_time(SystemTime::now());
    let (parts, body) = request.into_parts();
    let (body, complete) = read_body(body, max_body_bytes(parts.uri.path())).await;
    let request = http::Request::from_parts(parts, body);
    let method = request.method().clone();
    let config = match &app.config {
        Ok(config) => Ok(prepare_jwks(config.clone(), request.headers(), now, &app.jwks).await),
        Err(e) => Err(e.clone()),
    };
    let mut context =
        RequestContext::new(now, fresh_request_id()).with_client_addr(peer.to_string());
    if let Some(entropy) = random_bytes() {
        context = context.with_entropy(entropy);
    }
    if !complete {
        context = context.with_incomplete_body();
    }
    match &app.backend {
        Backend::Postgres(pool) => {
            let store =
                SqlStore::new(pool.clone(), Dialect::Postgres).with_auto_migrate(app.auto_migrate);
            let (response, more) = Api::with_config_result(store, config)
                .into_streaming(request, context)
                .await;
            log_request(&method, &response, started.elapsed());
            streamed!(response, more)
        }
        Backend::Sqlite(db) => {
            let store = SqlStore::new(db.checkout().await, Dialect::Sqlite)
                .with_auto_migrate(app.auto_migrate);
            let (response, more) = Api::with_config_result(store, config)
                .into_streaming(request, context)
                .await;
            log_request(&method, &response, started.elapsed());
            streamed!(response, more)
        }
    }
}

/// The response, with an export's further pages streamed after its first: one page in
/// memory at a time. A store failure part-way ends the stream with an error, which hyper
/// turns into a broken response (never a shorter, complete-looking export). A macro, not a
/// generic function, so that each store's futures are known to be `Send`.
macro_rules! streamed {
    ($response:expr, $more:expr) => {{
        let (parts, first) = $response.into_parts();
        let rest = futures::stream::unfold($more, |mut more| async move {
            match more.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), more)),
                Ok(None) => None,
                // The next call finds no cursor and ends the stream.
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), more)),
            }
        });
        let first = futures::stream::iter([Ok::<_, std::io::Error>(first)]);
        let body = futures::StreamExt::chain(first, rest);
        http::Response::from_parts(parts, Body::from_stream(body))
    }};
}
use streamed;

/// The body, read up to one frame past the route's limit (so an oversized body costs no
/// more memory than that, and the core answers 413), and whether it arrived whole: a stream
/// that fails part-way must not be taken for the body (the core answers 400).
async fn read_body(mut body: Body, limit: usize) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                    if bytes.len() > limit {
                        break;
                    }
                }
            }
            Err(_) => return (Vec::new(), false),
        }
    }
    (bytes, true)
}

/// 32 bytes of the operating system's randomness, for the accounts' salts and user ids.
/// Should the OS have none to give, the core answers registrations 500 (it never makes up a
/// salt), and everything else works.
fn random_bytes() -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok().map(|()| bytes)
}

/// 128 random bits, in hex; from the clock and a counter should the OS have no randomness
/// (a request id needs to be unique, not secret).
fn fresh_request_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One JSON line per request; only what [`RequestLog`] carries (never a token or a body).
fn log_request(method: &http::Method, response: &http::Response<Vec<u8>>, elapsed: Duration) {
    let log = response.extensions().get::<RequestLog>();
    let status = response.status().as_u16();
    log_line(serde_json::json!({
        "level": if status >= 500 { "error" } else { "info" },
        "request_id": log.map(|l| l.request_id.as_str()),
        "method": method.as_str(),
        "route": log.map(|l| l.route.as_str()),
        "status": status,
        "duration_ms": (elapsed.as_secs_f64() * 1e6).round() / 1e3,
        "user_id": log.and_then(|l| l.user_id.as_ref()).map(|u| u.as_str()),
        "error": log.and_then(|l| l.error.as_deref()),
        "warnings": log.map(|l| l.warnings.as_slice()).filter(|w| !w.is_empty()),
    }));
}

fn log_line(line: serde_json::Value) {
    use std::io::Write as _;
    // One write per line, so that lines of concurrent requests never interleave.
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// How long a JWKS fetch may take, from sending the request to the end of the body.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The JWKS refresh's I/O in a native process: the cache and the attempt times live in
/// the process (every request of this server shares them), fetches go through `reqwest`.
struct NativeJwksHost {
    values: Mutex<HashMap<String, String>>,
    client: reqwest::Client,
}

impl NativeJwksHost {
    fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(NativeJwksHost {
            values: Mutex::default(),
            client,
        })
    }
}

impl JwksHost for NativeJwksHost {
    async fn get(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }

    async fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn fetch(&self, url: &str) -> Result<String, String> {
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("the request failed: {e}"))?;
        if response.status() != 200 {
            return Err(format!(
                "the answer's status is {}, not 200",
                response.status()
            ));
        }
        let too_large = || format!("the document is larger than {MAX_JWKS_BYTES} bytes");
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the document failed: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(too_large());
            }
        }
        String::from_utf8(body).map_err(|_| "the document is not UTF-8".to_owned())
    }

    fn log(&self, url: &str, message: &str) {
        log_line(
            serde_json::json!({"level": "warn", "event": "jwks", "jwks_url": url, "error": message}),
        );
    }
}
