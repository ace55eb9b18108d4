//! Fixtures shared by the tests that serve the component: temporary directories, a fresh
//! PostgreSQL schema per test, and the conventions for reaching the test database.
//!
//! PostgreSQL is `TEST_DATABASE_URL`, by default `postgres://postgres@127.0.0.1:5432/test`.
//! When it cannot be reached the test fails, unless `SKIP_DB_TESTS=1`, which skips it with
//! a message (CI never sets it).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The test database when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database's URL.
pub fn database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// Whether PostgreSQL tests may be skipped (`SKIP_DB_TESTS=1`).
pub fn skipping_db() -> bool {
    std::env::var("SKIP_DB_TESTS").is_ok_and(|v| v == "1")
}

/// A name no other test of any process uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A directory removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory.
    pub fn new(prefix: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `host:port` of a `postgres://` URL, as the manifest's `database_host` wants it.
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// A schema of its own in the test database, dropped with everything in it when dropped.
#[derive(Debug)]
pub struct PgSchema {
    name: String,
    url: String,
}

impl PgSchema {
    /// A new empty schema, or `None` when PostgreSQL is unreachable and skipping is allowed.
    /// Panics with a clear message when it is unreachable otherwise.
    pub async fn create(prefix: &str) -> Option<PgSchema> {
        let url = database_url();
        let client = match connect(&url).await {
            Ok(c) => c,
            Err(e) if skipping_db() => {
                eprintln!("skipping a PostgreSQL test (SKIP_DB_TESTS=1): {e}");
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL at {url} is unreachable: {e}\nStart it (or set TEST_DATABASE_URL), or set SKIP_DB_TESTS=1 to skip these tests."
            ),
        };
        let name = unique(prefix);
        // The name is made here from a prefix, digits and underscores, never from input.
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("CREATE SCHEMA");
        Some(PgSchema { name, url })
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `database_url` for the component that works inside this schema.
    pub fn component_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.url, self.name)
    }

    /// The `database_host` that allows the component to reach it.
    pub fn database_host(&self) -> String {
        host_port(&self.url)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop may run outside a runtime or while unwinding: clean up on a thread of its own.
        let (name, url) = (self.name.clone(), self.url.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(client) = connect(&url).await {
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}
