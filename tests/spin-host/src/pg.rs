//! `spin:postgres/postgres@3.0.0` over tokio-postgres, as Spin's outbound Postgres does it:
//!
//! - `open` parses the address as a tokio-postgres connection string, checks every TCP host
//!   against `allowed_outbound_hosts` (scheme `postgres`), then takes a client from a
//!   connection pool kept per address (deadpool, up to 64 connections). A connection goes
//!   back to the pool only when the guest drops it; one left behind by a trap is closed.
//!   A refused address and a failed connection are both `connection-failed`.
//! - Each statement is prepared once per pooled connection and reused (a host's statement
//!   cache; Spin's own caching may differ), so PostgreSQL does not parse and plan the same
//!   text on every request.
//! - Parameters are bound as the matching Rust types (`int64` as `i64`, `str` as `String`,
//!   …); `db-null` is a NULL that any parameter type accepts.
//! - Result values follow the column's type: BOOL → boolean, INT2/4/8 → int16/32/64,
//!   FLOAT4/8 → floating32/64, TEXT/VARCHAR/BPCHAR → str, BYTEA → binary, DATE → date,
//!   TIME → time, TIMESTAMP → datetime, NULL → db-null, anything else → unsupported.
//!   Like Spin, a TIMESTAMPTZ column is decoded as a TIMESTAMP and so fails the query.
//! - A query that returns no rows returns no columns either (Spin infers the columns from
//!   the first row).
//! - Driver errors are `query-failed` with the `{:?}` rendering of the tokio-postgres
//!   error, which carries `SqlState(Exxxxx)` for server errors.
//!
//! TLS is not implemented: an address with `sslmode=require` fails to connect.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::Mutex;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Row};
use wasmtime::component::Resource;

use crate::allowed_hosts::AllowedHosts;
use crate::bindings::spin::postgres3_0_0::postgres as v3;
use crate::state::State;

/// Connections per address pool, as in Spin.
const POOL_SIZE: usize = 64;

/// One pool per connection string, shared by every request.
#[derive(Default)]
pub struct PgPools {
    pools: Mutex<HashMap<String, Pool>>,
}

impl PgPools {
    fn pool(&self, address: &str) -> Result<Pool, String> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(address) {
            return Ok(pool.clone());
        }
        let config: tokio_postgres::Config = address
            .parse()
            .map_err(|e| format!("parsing Postgres connection string: {e:?}"))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // Fast: a pooled connection is only checked to be open. Session state
                // cannot leak between requests through it because a connection the guest
                // did not release cleanly is closed rather than pooled (see PgConnection).
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| format!("building Postgres connection pool: {e:?}"))?;
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

/// Checks every host of a connection string against the allow-list, as Spin does.
pub fn ensure_allowed(allowed: &AllowedHosts, address: &str) -> Result<(), v3::Error> {
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
                    return Err(v3::Error::ConnectionFailed(format!(
                        "address postgres://{shown} is not permitted"
                    )));
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

impl v3::Host for State {}

impl v3::HostConnection for State {
    async fn open(&mut self, address: String) -> Result<Resource<PgConnection>, v3::Error> {
        ensure_allowed(&self.shared.app.allowed_hosts, &address)?;
        let pool = self
            .shared
            .pg
            .pool(&address)
            .map_err(v3::Error::ConnectionFailed)?;
        let client = pool
            .get()
            .await
            .map_err(|e| v3::Error::ConnectionFailed(format!("{e:?}")))?;
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
        let client = self.client(&connection)?;
        let params = to_sql_params(&params).map_err(v3::Error::BadParameter)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let prepared = client
            .prepare_cached(&statement)
            .await
            .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))?;
        let rows = client
            .query(&prepared, &refs)
            .await
            .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))?;
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

    async fn execute(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<v3::ParameterValue>,
    ) -> Result<u64, v3::Error> {
        let client = self.client(&connection)?;
        let params = to_sql_params(&params).map_err(v3::Error::ValueConversionFailed)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as _).collect();
        let prepared = client
            .prepare_cached(&statement)
            .await
            .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))?;
        client
            .execute(&prepared, &refs)
            .await
            .map_err(|e| v3::Error::QueryFailed(format!("{e:?}")))
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
