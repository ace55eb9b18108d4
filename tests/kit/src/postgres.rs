//! The test database, for every suite: where it is, when its tests may be skipped, and a
//! fresh schema per test.
//!
//! PostgreSQL is `TEST_DATABASE_URL`, by default [`DEFAULT_DATABASE_URL`]. When it cannot be
//! reached a test fails, unless `SKIP_DB_TESTS=1`, which skips it with a message (CI never
//! sets it): see [`skip_or_panic`].
//!
//! Every URL handed out here carries `sslmode=disable` (added when `TEST_DATABASE_URL` has
//! no `sslmode`; an explicit one is kept): the test host, like Spin, uses TLS for any other
//! `sslmode` and verifies the certificate, which a local server's self-signed (snakeoil)
//! certificate fails.

use std::sync::atomic::{AtomicU32, Ordering};

/// The test database when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

/// The test database's URL, with `sslmode=disable` unless `TEST_DATABASE_URL` names an
/// `sslmode` itself.
pub fn database_url() -> String {
    let url =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    if sslmode(&url).is_some() {
        url
    } else {
        with_sslmode(&url, Some("disable"))
    }
}

/// Whether `url` is a key=value connection string (`host=… user=…`) rather than a URL.
fn is_key_value(url: &str) -> bool {
    !url.starts_with("postgres://") && !url.starts_with("postgresql://")
}

/// The `sslmode` a connection string names, if any (URL or key=value form).
pub fn sslmode(url: &str) -> Option<String> {
    if is_key_value(url) {
        url.split_whitespace()
            .find_map(|kv| kv.strip_prefix("sslmode="))
            .map(str::to_owned)
    } else {
        let (_, query) = url.split_once('?')?;
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("sslmode="))
            .map(str::to_owned)
    }
}

/// `url` with its `sslmode` set to `mode`, or removed with `None` (URL or key=value form).
pub fn with_sslmode(url: &str, mode: Option<&str>) -> String {
    let setting = mode.map(|m| format!("sslmode={m}"));
    if is_key_value(url) {
        let mut parts: Vec<String> = url
            .split_whitespace()
            .filter(|kv| !kv.starts_with("sslmode="))
            .map(str::to_owned)
            .collect();
        parts.extend(setting);
        return parts.join(" ");
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<String> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("sslmode="))
        .map(str::to_owned)
        .collect();
    params.extend(setting);
    if params.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", params.join("&"))
    }
}

/// Whether PostgreSQL tests may be skipped (`SKIP_DB_TESTS=1`).
pub fn skipping_db() -> bool {
    std::env::var("SKIP_DB_TESTS").is_ok_and(|v| v == "1")
}

/// What a test does when the test database cannot be reached (`error` says why): `None`,
/// after a message, when skipping is allowed; otherwise it panics saying how to fix it.
/// In a function returning an `Option`: `Err(e) => match skip_or_panic(&e)? {}`.
pub fn skip_or_panic(error: &str) -> Option<std::convert::Infallible> {
    if skipping_db() {
        eprintln!("skipping a PostgreSQL test (SKIP_DB_TESTS=1): {error}");
        return None;
    }
    panic!(
        "PostgreSQL at {} is unreachable: {error}\nStart it (or set TEST_DATABASE_URL), or set SKIP_DB_TESTS=1 to skip these tests.",
        database_url()
    )
}

/// A name no other test of any process uses.
pub fn unique(prefix: &str) -> String {
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
            Err(e) => match skip_or_panic(&e.to_string())? {},
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

/// The fixtures' own connection: plain text for `sslmode=disable`, else TLS with a
/// verified certificate as the host (and Spin) would connect.
pub async fn connect(
    url: &str,
) -> Result<tokio_postgres::Client, Box<dyn std::error::Error + Send + Sync>> {
    if sslmode(url).as_deref() == Some("disable") {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        return Ok(client);
    }
    let tls = native_tls::TlsConnector::builder().build()?;
    let (client, connection) =
        tokio_postgres::connect(url, postgres_native_tls::MakeTlsConnector::new(tls)).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Whether the test database answers, for a suite that must skip with a message rather
/// than fail under `SKIP_DB_TESTS=1` (it panics otherwise, as [`skip_or_panic`] does). Its
/// own runtime, so that it can run before the suite starts one.
pub fn reachable() -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        match connect(&database_url()).await {
            Ok(_) => true,
            Err(e) => match skip_or_panic(&e.to_string()) {
                None => false,
                Some(never) => match never {},
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{database_url, host_port, sslmode, with_sslmode};

    #[test]
    fn urls_carry_sslmode_disable() {
        // Whatever TEST_DATABASE_URL is, the URL names an sslmode (disable unless it says).
        assert!(sslmode(&database_url()).is_some());
        assert_eq!(
            with_sslmode("postgres://u@h:5432/db", Some("disable")),
            "postgres://u@h:5432/db?sslmode=disable"
        );
        assert_eq!(
            with_sslmode(
                "postgres://u@h/db?options=-cx%3D1&sslmode=require",
                Some("disable")
            ),
            "postgres://u@h/db?options=-cx%3D1&sslmode=disable"
        );
        assert_eq!(
            with_sslmode("postgres://u@h/db?sslmode=disable", None),
            "postgres://u@h/db"
        );
        assert_eq!(
            with_sslmode("host=h user=u sslmode=prefer", Some("disable")),
            "host=h user=u sslmode=disable"
        );
        assert_eq!(
            sslmode("host=h sslmode=require").as_deref(),
            Some("require")
        );
        assert_eq!(sslmode("postgres://u@h/db"), None);
        assert_eq!(host_port("postgres://u@h/db?sslmode=disable"), "h:5432");
    }
}
