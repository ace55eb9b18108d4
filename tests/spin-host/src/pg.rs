//! `spin:postgres/postgres@3.0.0` over tokio-postgres, as Spin's outbound Postgres does it
//! (spinframework/spin `crates/factor-outbound-pg/src/{client.rs,host.rs}`):
//!
//! - `open` parses the address as a tokio-postgres connection string, checks every TCP host
//!   against `allowed_outbound_hosts` (scheme `postgres`), then takes a client from a
//!   connection pool kept per address (deadpool, up to 64 connections). A connection goes
//!   back to the pool only when the guest drops it; one left behind by a trap is closed.
//!   A refused address and a failed connection are both `connection-failed`; a failed
//!   connection's text is the `{:?}` of an `anyhow::Error`, as Spin's
//!   `v4::Error::ConnectionFailed(format!("{e:?}"))` of the error from `pool.get().await?`.
//! - TLS as Spin does it: `sslmode=disable` connects in plain text (`NoTls`); anything else
//!   (no `sslmode` means tokio-postgres's `prefer`) goes through native-tls
//!   (`MakeTlsConnector::new(TlsConnector::builder().build()?)`, nothing relaxed), which
//!   checks the server's certificate chain and host name even for `require`. A server that
//!   answers the SSLRequest with `S` and then fails the handshake is an error: tokio-postgres
//!   never retries in plain text. Only a server that answers `N` continues in plain text
//!   (`prefer`) or fails (`require`).
//! - Each statement is prepared once per pooled connection and reused (a host's statement
//!   cache; Spin passes the text to `Client::query`, which prepares it every time), so
//!   PostgreSQL does not parse and plan the same text on every request.
//! - Parameters are bound as the matching Rust types (`int64` as `i64`, `str` as `String`,
//!   …); `db-null` is a NULL that any parameter type accepts.
//! - Result values follow the column's type: BOOL → boolean, INT2/4/8 → int16/32/64,
//!   FLOAT4/8 → floating32/64, TEXT/VARCHAR/BPCHAR → str, BYTEA → binary, DATE → date,
//!   TIME → time, TIMESTAMP → datetime, NULL → db-null, anything else → unsupported.
//!   Like Spin, a TIMESTAMPTZ column is decoded as a TIMESTAMP and so fails the query.
//! - A query that returns no rows returns no columns either (Spin infers the columns from
//!   the first row) — unless strict mode is on (the default), see [`STRICT_ZERO_ROWS`].
//! - Driver errors are `query-failed` with the `{:?}` rendering of the tokio-postgres
//!   error, which carries `SqlState(Exxxxx)` for server errors.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use postgres_native_tls::MakeTlsConnector;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Row};
use wasmtime::component::Resource;

use crate::allowed_hosts::AllowedHosts;
use crate::bindings::spin::postgres3_0_0::postgres as v3;
use crate::host_calls::Call;
use crate::state::State;

/// Connections per address pool, as in Spin.
const POOL_SIZE: usize = 64;

/// What a guest's `query` gets in strict mode when its result has no rows.
///
/// Spin 4.0.x never returns from the synchronous `query` of `spin:postgres/postgres` when
/// the statement matches no rows (spinframework/spin#3671, fixed by #3673 after 4.0.2): the
/// request hangs with no log line. A host that answered such a query normally would hide
/// the hang, so in strict mode (`HostBuilder::strict_postgres`, on by default) the query
/// fails with `query-failed(<this text>)`, the host writes one line to its stderr with the
/// start of the SQL, and the violation is counted (`RunningHost::strict_violations`).
/// `execute` is not affected: Spin runs it straight through `Client::execute`.
pub const STRICT_ZERO_ROWS: &str = "spin-test-host strict mode: this query returned no rows; \
     Spin 4.0.x would hang here (spinframework/spin#3671)";

/// How much of the SQL the strict-mode stderr line shows.
const STRICT_SQL_CHARS: usize = 200;

/// Strict zero-row mode and its violation count.
#[derive(Debug, Default)]
pub struct StrictMode {
    on: bool,
    violations: AtomicU64,
}

impl StrictMode {
    pub fn new(on: bool) -> StrictMode {
        StrictMode {
            on,
            violations: AtomicU64::new(0),
        }
    }

    /// Zero-row queries refused so far.
    pub fn violations(&self) -> u64 {
        self.violations.load(Ordering::SeqCst)
    }

    /// The error for a `query` that returned `rows` rows, if strict mode refuses it.
    fn check(&self, statement: &str, rows: usize) -> Result<(), v3::Error> {
        if !self.on || rows > 0 {
            return Ok(());
        }
        self.violations.fetch_add(1, Ordering::SeqCst);
        // One line: the SQL's whitespace (newlines included) is folded to single spaces.
        let sql: String = statement
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(STRICT_SQL_CHARS)
            .collect();
        eprintln!("{STRICT_ZERO_ROWS}: {sql}");
        Err(v3::Error::QueryFailed(STRICT_ZERO_ROWS.to_owned()))
    }
}

/// One pool per connection string, shared by every request.
#[derive(Default)]
pub struct PgPools {
    pools: Mutex<HashMap<String, Pool>>,
}

impl PgPools {
    fn pool(&self, address: &str) -> anyhow::Result<Pool> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(address) {
            return Ok(pool.clone());
        }
        let config: tokio_postgres::Config = address
            .parse()
            .context("parsing Postgres connection string")?;
        let manager_config = ManagerConfig {
            // Fast: a pooled connection is only checked to be open. Session state
            // cannot leak between requests through it because a connection the guest
            // did not release cleanly is closed rather than pooled (see PgConnection).
            // Spin uses `Clean` (see the README's "Differs from Spin").
            recycling_method: RecyclingMethod::Fast,
        };
        // As Spin's create_connection_pool: plain text only for `sslmode=disable`, else
        // native-tls with its defaults (certificate and host name verified).
        let manager = if config.get_ssl_mode() == SslMode::Disable {
            Manager::from_config(config, NoTls, manager_config)
        } else {
            let connector = MakeTlsConnector::new(native_tls::TlsConnector::builder().build()?);
            Manager::from_config(config, connector, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .context("building Postgres connection pool")?;
        pools.insert(address.to_owned(), pool.clone());
        Ok(pool)
    }

    /// Closes every pooled connection (on shutdown); later requests open new pools.
    pub fn close(&self) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        for (_, pool) in pools.drain() {
            pool.close();
        }
    }
}

/// The host side of a guest's `connection` resource: a pooled client, returned to the
/// pool when the guest drops the resource or the request's store goes away.
pub struct PgConnection {
    client: Option<deadpool_postgres::Object>,
    /// Set when the guest dropped the connection itself. A connection the guest never
    /// released (it trapped, perhaps inside a transaction) is closed, not pooled.
    released: bool,
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        if !self.released
            && let Some(client) = self.client.take()
        {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

/// How the host words its refusal of an address that `allowed_outbound_hosts` does not
/// allow: Spin 3.4 and later name only `postgres://host:port`; Spin 3.0 to 3.3 quoted the
/// whole connection string the guest passed, password included
/// (`address {address} is not permitted`), which a component must not log as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefusalText {
    /// `address postgres://host:port is not permitted`.
    #[default]
    HostAndPort,
    /// `address <the whole connection string> is not permitted`, as Spin 3.0 to 3.3.
    WholeAddress,
}

/// Checks every host of a connection string against the allow-list, as Spin does.
pub fn ensure_allowed(
    allowed: &AllowedHosts,
    address: &str,
    refusal: RefusalText,
) -> Result<(), v3::Error> {
    let config: tokio_postgres::Config = address
        .parse()
        .map_err(|e: tokio_postgres::Error| v3::Error::ConnectionFailed(e.to_string()))?;
    let ports = config.get_ports();
    for (i, host) in config.get_hosts().iter().enumerate() {
        match host {
            tokio_postgres::config::Host::Tcp(host) => {
                let port = ports.get(i).or(if ports.len() == 1 {
                    ports.first()
                } else {
                    None
                });
                if !allowed.allows("postgres", host, port.copied()) {
                    let shown = match port {
                        Some(p) => format!("{host}:{p}"),
                        None => host.clone(),
                    };
                    eprintln!(
                        "spin-test-host: the component tried to connect to postgres://{shown}, \
                         which allowed_outbound_hosts does not allow"
                    );
                    return Err(v3::Error::ConnectionFailed(match refusal {
                        RefusalText::HostAndPort => {
                            format!("address postgres://{shown} is not permitted")
                        }
                        RefusalText::WholeAddress => format!("address {address} is not permitted"),
                    }));
                }
            }
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(_) => {
                return Err(v3::Error::ConnectionFailed(
                    "Unix sockets are not supported on WebAssembly".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Spin's text for a connection that could not be made: `{:?}` of the anyhow error, i.e.
/// the message and then a `Caused by:` list of its sources.
fn connection_failed(e: anyhow::Error) -> v3::Error {
    v3::Error::ConnectionFailed(format!("{e:?}"))
}

/// `open` without the resource table: allow-list, pool, connection.
async fn open_client(
    pools: &PgPools,
    allowed: &AllowedHosts,
    address: &str,
    refusal: RefusalText,
) -> Result<deadpool_postgres::Object, v3::Error> {
    ensure_allowed(allowed, address, refusal)?;
    let pool = pools
        .pool(address)
        .context("establishing PostgreSQL connection pool")
        .map_err(connection_failed)?;
    pool.get()
        .await
        .map_err(|e| connection_failed(anyhow::Error::from(e)))
}

/// `query` on a client.
async fn run_query(
    client: &deadpool_postgres::Object,
    statement: &str,
    params: &[v3::ParameterValue],
    strict: &StrictMode,
) -> Result<v3::RowSet, v3::Error> {
    let params = to_sql_params(params).map_err(v3::Error::BadParameter)?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
    let prepared = client
        .prepare_cached(statement)
        .await
        .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))?;
    let rows = client
        .query(&prepared, &refs)
        .await
        .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))?;
    strict.check(statement, rows.len())?;
    let Some(first) = rows.first() else {
        return Ok(v3::RowSet {
            columns: Vec::new(),
            rows: Vec::new(),
        });
    };
    let columns = first
        .columns()
        .iter()
        .map(|c| v3::Column {
            name: c.name().to_owned(),
            data_type: data_type(c.type_()),
        })
        .collect();
    let rows = rows
        .iter()
        .map(convert_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))?;
    Ok(v3::RowSet { columns, rows })
}

/// `execute` on a client.
async fn run_execute(
    client: &deadpool_postgres::Object,
    statement: &str,
    params: &[v3::ParameterValue],
) -> Result<u64, v3::Error> {
    let params = to_sql_params(params).map_err(v3::Error::ValueConversionFailed)?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
    let prepared = client
        .prepare_cached(statement)
        .await
        .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))?;
    client
        .execute(&prepared, &refs)
        .await
        .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))
}

impl v3::Host for State {}

impl v3::HostConnection for State {
    async fn open(&mut self, address: String) -> Result<Resource<PgConnection>, v3::Error> {
        self.calls.add(Call::PgConnect);
        let client = open_client(
            &self.shared.pg,
            &self.shared.app.allowed_hosts,
            &address,
            self.shared.pg_refusal,
        )
        .await?;
        self.table
            .push(PgConnection {
                client: Some(client),
                released: false,
            })
            .map_err(|_| v3::Error::ConnectionFailed("too many connections".into()))
    }

    async fn query(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> Result<v3::RowSet, v3::Error> {
        self.calls.add(Call::PgQuery);
        let client = self.client(&connection)?;
        run_query(client, &statement, &params, &self.shared.strict_postgres).await
    }

    async fn execute(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> Result<u64, v3::Error> {
        self.calls.add(Call::PgExecute);
        let client = self.client(&connection)?;
        run_execute(client, &statement, &params).await
    }

    async fn drop(&mut self, connection: Resource<PgConnection>) -> wasmtime::Result<()> {
        let mut connection = self.table.delete(connection)?;
        connection.released = true;
        Ok(())
    }
}

impl State {
    fn client(
        &self,
        connection: &Resource<PgConnection>,
    ) -> Result<&deadpool_postgres::Object, v3::Error> {
        self.connection(connection)?
            .client
            .as_ref()
            .ok_or_else(|| v3::Error::ConnectionFailed("the connection is closed".into()))
    }

    fn connection(&self, connection: &Resource<PgConnection>) -> Result<&PgConnection, v3::Error> {
        self.table
            .get(connection)
            .map_err(|_| v3::Error::ConnectionFailed("no connection found".into()))
    }
}

/// The `error` of `spin:postgres/postgres@3.0.0` as the guest receives it, for
/// [`PgProbe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgError {
    /// `connection-failed(string)`.
    ConnectionFailed(String),
    /// `bad-parameter(string)`.
    BadParameter(String),
    /// `query-failed(string)`.
    QueryFailed(String),
    /// `value-conversion-failed(string)`.
    ValueConversionFailed(String),
    /// `other(string)`.
    Other(String),
}

impl From<v3::Error> for PgError {
    fn from(e: v3::Error) -> Self {
        match e {
            v3::Error::ConnectionFailed(s) => PgError::ConnectionFailed(s),
            v3::Error::BadParameter(s) => PgError::BadParameter(s),
            v3::Error::QueryFailed(s) => PgError::QueryFailed(s),
            v3::Error::ValueConversionFailed(s) => PgError::ValueConversionFailed(s),
            v3::Error::Other(s) => PgError::Other(s),
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, text) = match self {
            PgError::ConnectionFailed(s) => ("connection-failed", s),
            PgError::BadParameter(s) => ("bad-parameter", s),
            PgError::QueryFailed(s) => ("query-failed", s),
            PgError::ValueConversionFailed(s) => ("value-conversion-failed", s),
            PgError::Other(s) => ("other", s),
        };
        write!(f, "{kind}: {text}")
    }
}

impl StdError for PgError {}

/// A test hook: the host's outbound-PostgreSQL code — pools, TLS by `sslmode`, the
/// allow-list, strict zero-row mode and Spin's error texts — without a component, so tests
/// can check what a guest would get without building and serving the Wasm.
pub struct PgProbe {
    pools: PgPools,
    allowed: AllowedHosts,
    strict: StrictMode,
}

impl PgProbe {
    /// A probe for a component whose `allowed_outbound_hosts` are `allowed` (e.g.
    /// `["postgres://127.0.0.1:5432"]`), with strict zero-row mode on or off.
    pub fn new<S: AsRef<str>>(allowed: &[S], strict: bool) -> wasmtime::Result<PgProbe> {
        Ok(PgProbe {
            pools: PgPools::default(),
            allowed: AllowedHosts::parse(allowed)?,
            strict: StrictMode::new(strict),
        })
    }

    /// The guest's `connection.open(address)`.
    pub async fn open(&self, address: &str) -> Result<PgProbeConnection<'_>, PgError> {
        let client =
            open_client(&self.pools, &self.allowed, address, RefusalText::default()).await?;
        Ok(PgProbeConnection {
            probe: self,
            client,
        })
    }

    /// Zero-row queries strict mode refused so far.
    pub fn strict_violations(&self) -> u64 {
        self.strict.violations()
    }
}

impl Drop for PgProbe {
    fn drop(&mut self) {
        self.pools.close();
    }
}

/// A connection opened by a [`PgProbe`]; parameters are bound as `str` values.
pub struct PgProbeConnection<'a> {
    probe: &'a PgProbe,
    client: deadpool_postgres::Object,
}

impl PgProbeConnection<'_> {
    /// The guest's `query`: the rows, each value shown as text (`None` for NULL; types
    /// other than text, numbers and booleans as their Debug form).
    pub async fn query(
        &self,
        statement: &str,
        params: &[&str],
    ) -> Result<Vec<Vec<Option<String>>>, PgError> {
        let params: Vec<_> = params
            .iter()
            .map(|p| v3::ParameterValue::Str((*p).to_owned()))
            .collect();
        let rows = run_query(&self.client, statement, &params, &self.probe.strict).await?;
        Ok(rows
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(show).collect())
            .collect())
    }

    /// The guest's `execute`: the number of rows affected.
    pub async fn execute(&self, statement: &str, params: &[&str]) -> Result<u64, PgError> {
        let params: Vec<_> = params
            .iter()
            .map(|p| v3::ParameterValue::Str((*p).to_owned()))
            .collect();
        Ok(run_execute(&self.client, statement, &params).await?)
    }
}

fn show(value: v3::DbValue) -> Option<String> {
    use v3::DbValue as V;
    Some(match value {
        V::DbNull => return None,
        V::Str(s) => s,
        V::Boolean(b) => b.to_string(),
        V::Int8(i) => i.to_string(),
        V::Int16(i) => i.to_string(),
        V::Int32(i) => i.to_string(),
        V::Int64(i) => i.to_string(),
        V::Floating32(f) => f.to_string(),
        V::Floating64(f) => f.to_string(),
        other => format!("{other:?}"),
    })
}

type Param = Box<dyn ToSql + Send + Sync>;

fn to_sql_params(params: &[v3::ParameterValue]) -> Result<Vec<Param>, String> {
    params.iter().map(to_sql).collect()
}

fn to_sql(value: &v3::ParameterValue) -> Result<Param, String> {
    use v3::ParameterValue as P;
    Ok(match value {
        P::Boolean(v) => Box::new(*v),
        P::Int8(v) => Box::new(*v),
        P::Int16(v) => Box::new(*v),
        P::Int32(v) => Box::new(*v),
        P::Int64(v) => Box::new(*v),
        P::Floating32(v) => Box::new(*v),
        P::Floating64(v) => Box::new(*v),
        P::Str(v) => Box::new(v.clone()),
        P::Binary(v) => Box::new(v.clone()),
        P::Date((y, m, d)) => Box::new(date(*y, *m, *d)?),
        P::Time((h, m, s, ns)) => Box::new(time(*h, *m, *s, *ns)?),
        P::Datetime((y, mo, d, h, mi, s, ns)) => Box::new(NaiveDateTime::new(
            date(*y, *mo, *d)?,
            time(*h, *mi, *s, *ns)?,
        )),
        P::Timestamp(secs) => Box::new(
            DateTime::from_timestamp(*secs, 0)
                .ok_or_else(|| format!("invalid epoch timestamp {secs}"))?,
        ),
        P::DbNull => Box::new(PgNull),
    })
}

fn date(y: i32, m: u8, d: u8) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(y, m.into(), d.into())
        .ok_or_else(|| format!("invalid date y={y}, m={m}, d={d}"))
}

fn time(h: u8, m: u8, s: u8, ns: u32) -> Result<NaiveTime, String> {
    NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns)
        .ok_or_else(|| format!("invalid time {h}:{m}:{s}:{ns}"))
}

/// A NULL parameter of whatever type the statement expects.
#[derive(Debug)]
struct PgNull;

impl ToSql for PgNull {
    fn to_sql(
        &self,
        _ty: &Type,
        _out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        Ok(IsNull::Yes)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Any value, undecoded: used to tell NULL from not-NULL for unsupported types.
struct Anything;

impl<'a> FromSql<'a> for Anything {
    fn from_sql(_ty: &Type, _raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Anything)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

fn data_type(ty: &Type) -> v3::DbDataType {
    use v3::DbDataType as D;
    match *ty {
        Type::BOOL => D::Boolean,
        Type::BYTEA => D::Binary,
        Type::FLOAT4 => D::Floating32,
        Type::FLOAT8 => D::Floating64,
        Type::INT2 => D::Int16,
        Type::INT4 => D::Int32,
        Type::INT8 => D::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => D::Str,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => D::Datetime,
        Type::DATE => D::Date,
        Type::TIME => D::Time,
        _ => D::Other,
    }
}

fn convert_row(row: &Row) -> Result<Vec<v3::DbValue>, tokio_postgres::Error> {
    (0..row.len()).map(|i| convert_value(row, i)).collect()
}

fn get<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    f: impl FnOnce(T) -> v3::DbValue,
) -> Result<v3::DbValue, tokio_postgres::Error> {
    Ok(match row.try_get::<_, Option<T>>(i)? {
        Some(v) => f(v),
        None => v3::DbValue::DbNull,
    })
}

fn convert_value(row: &Row, i: usize) -> Result<v3::DbValue, tokio_postgres::Error> {
    use v3::DbValue as V;
    match *row.columns()[i].type_() {
        Type::BOOL => get(row, i, V::Boolean),
        Type::BYTEA => get(row, i, V::Binary),
        Type::FLOAT4 => get(row, i, V::Floating32),
        Type::FLOAT8 => get(row, i, V::Floating64),
        Type::INT2 => get(row, i, V::Int16),
        Type::INT4 => get(row, i, V::Int32),
        Type::INT8 => get(row, i, V::Int64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => get(row, i, V::Str),
        // Spin decodes both as a NaiveDateTime, which tokio-postgres refuses for TIMESTAMPTZ.
        Type::TIMESTAMP | Type::TIMESTAMPTZ => get(row, i, |v: NaiveDateTime| {
            V::Datetime((
                v.year(),
                v.month() as u8,
                v.day() as u8,
                v.hour() as u8,
                v.minute() as u8,
                v.second() as u8,
                v.nanosecond(),
            ))
        }),
        Type::DATE => get(row, i, |v: NaiveDate| {
            V::Date((v.year(), v.month() as u8, v.day() as u8))
        }),
        Type::TIME => get(row, i, |v: NaiveTime| {
            V::Time((
                v.hour() as u8,
                v.minute() as u8,
                v.second() as u8,
                v.nanosecond(),
            ))
        }),
        _ => get(row, i, |_: Anything| V::Unsupported),
    }
}
