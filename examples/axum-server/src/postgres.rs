//! The core's [`Executor`] over a `deadpool-postgres` pool: every statement takes a pooled
//! connection and runs as a cached prepared statement.
//!
//! A statement per checkout is safe because the PostgreSQL store never opens a transaction
//! across statements (each atomic write is one statement; see `task_api_core::sql`), so no
//! two statements of a request need the same connection, and no connection goes back to
//! the pool inside a transaction.

use std::error::Error as _;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use task_api_core::sql::{DbError, Executor, SqlValue, driver_text};
use tokio_postgres::types::{ToSql, Type};

/// Connections kept open at most; requests beyond that wait for one.
const POOL_SIZE: usize = 16;

/// A pool of connections to the database at one URL.
#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
}

impl PgPool {
    /// A pool for `url` (a `postgres://` URL). No connection is made until the first
    /// statement. TLS is negotiated as the URL's `sslmode` says (tokio-postgres's default,
    /// `prefer`, falls back to plain text: add `sslmode=require` for a managed server).
    pub fn new(url: &str) -> Result<PgPool, String> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|_| "database_url is not a valid PostgreSQL URL".to_owned())?;
        let tls = native_tls::TlsConnector::new().map_err(|e| format!("cannot set up TLS: {e}"))?;
        let manager = Manager::from_config(
            config,
            postgres_native_tls::MakeTlsConnector::new(tls),
            ManagerConfig {
                // A connection back from a request is checked with a round trip before it is
                // reused, so one the server closed meanwhile is replaced, not handed out.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| format!("cannot build the connection pool: {e}"))?;
        Ok(PgPool { pool })
    }
}

/// The whole error chain on one line: tokio-postgres's own text is often only `db error`,
/// and the server's reason is in the source.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The one mapping from this driver's errors to the core's kinds.
fn db_error(e: &tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        // The server's SQLSTATE and message, never its `detail` (which quotes the refused
        // row: an email, a password hash).
        Some(db) => DbError::from_sqlstate(
            db.code().code(),
            driver_text(&format!("{}: {}", db.code().code(), db.message())),
        ),
        None if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) => {
            DbError::Unavailable(driver_text(&chain(e)))
        }
        None => DbError::Other(driver_text(&chain(e))),
    }
}

fn pool_error(e: PoolError) -> DbError {
    match e {
        // Connecting failed: the core reads the whole text for a refused password, a
        // missing database or a TLS failure (500 naming database_url), else 503.
        PoolError::Backend(e) => match e.as_db_error() {
            Some(_) => db_error(&e),
            None => DbError::from_connect_failure(&chain(&e)),
        },
        other => DbError::Unavailable(driver_text(&other.to_string())),
    }
}

/// Binds each value to its parameter's type, as Spin's host does: every placeholder of the
/// core's statements carries a cast, so the types are `int8`, `text` and `boolean`, and a
/// `NULL` takes the parameter's type.
fn bind(types: &[Type], params: &[SqlValue]) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, DbError> {
    if types.len() != params.len() {
        return Err(DbError::Other(format!(
            "the statement takes {} parameters, {} were given",
            types.len(),
            params.len()
        )));
    }
    Ok(types
        .iter()
        .zip(params)
        .map(|(ty, value)| -> Box<dyn ToSql + Sync + Send> {
            match value {
                SqlValue::Null if *ty == Type::INT8 => Box::new(None::<i64>),
                SqlValue::Null if *ty == Type::BOOL => Box::new(None::<bool>),
                SqlValue::Null => Box::new(None::<String>),
                SqlValue::Int(n) => Box::new(*n),
                SqlValue::Text(s) => Box::new(s.clone()),
                SqlValue::Bool(b) => Box::new(*b),
            }
        })
        .collect())
}

/// Column `i` of `row` as the core reads it.
fn column(row: &tokio_postgres::Row, i: usize) -> Result<SqlValue, DbError> {
    let unreadable = |e: tokio_postgres::Error| DbError::Other(format!("column {i}: {e}"));
    let ty = row.columns()[i].type_();
    Ok(if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)
            .map_err(unreadable)?
            .map_or(SqlValue::Null, SqlValue::Bool)
    } else if *ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)
            .map_err(unreadable)?
            .map_or(SqlValue::Null, |n| SqlValue::Int(n.into()))
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)
            .map_err(unreadable)?
            .map_or(SqlValue::Null, |n| SqlValue::Int(n.into()))
    } else if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)
            .map_err(unreadable)?
            .map_or(SqlValue::Null, SqlValue::Int)
    } else {
        row.try_get::<_, Option<String>>(i)
            .map_err(unreadable)?
            .map_or(SqlValue::Null, SqlValue::Text)
    })
}

impl Executor for PgPool {
    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client.prepare_cached(sql).await.map_err(|e| db_error(&e))?;
        let values = bind(statement.params(), params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
        let rows = client
            .query(&statement, &refs)
            .await
            .map_err(|e| db_error(&e))?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| column(row, i)).collect())
            .collect()
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client.prepare_cached(sql).await.map_err(|e| db_error(&e))?;
        let values = bind(statement.params(), params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
        client
            .execute(&statement, &refs)
            .await
            .map_err(|e| db_error(&e))
    }
}
