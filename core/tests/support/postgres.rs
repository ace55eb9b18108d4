//! [`SqlStore`]'s PostgreSQL executor for the tests (`tokio-postgres`) and a fresh schema
//! per test, shared by `store_postgres.rs` and `model.rs`.
//!
//! The database, its fresh schemas and when its tests are skipped are the test kit's
//! (`task_api_test_kit::postgres`: `TEST_DATABASE_URL`, `SKIP_DB_TESTS=1`).
//!
//! The executor binds parameters as strictly as Spin's host does (an `Int` only to `int8`,
//! `Text` only to text types, `Bool` only to `boolean`), and refuses queries that return no
//! rows and transactions across statements, so a statement that would fail in the
//! component fails here too.

use task_api_core::sql::{DbError, Dialect, Executor, SqlStore, SqlValue, migrate};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

pub use task_api_test_kit::postgres::{PgSchema, database_url};

/// An [`Executor`] over one `tokio-postgres` connection.
pub struct PgExecutor {
    pub client: Client,
}

fn db_error(e: tokio_postgres::Error) -> DbError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection broke, or the client refused a value.
        let message = format!("{e}: {:?}", std::error::Error::source(&e));
        return if e.is_closed()
            || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
        {
            DbError::Unavailable(message)
        } else {
            DbError::Other(message)
        };
    };
    let code = code.code();
    let message = match e.as_db_error() {
        Some(db) => format!("{code}: {}", db.message()),
        None => format!("{code}: {e}"),
    };
    DbError::from_sqlstate(code, message)
}

/// Binds values the way Spin's host does: `NULL` to any type, others strictly by type.
fn bind(types: &[Type], params: &[SqlValue]) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, DbError> {
    if types.len() != params.len() {
        return Err(DbError::Other(format!(
            "statement takes {} parameters, {} given",
            types.len(),
            params.len()
        )));
    }
    Ok(types
        .iter()
        .zip(params)
        .map(|(ty, v)| -> Box<dyn ToSql + Sync + Send> {
            match v {
                SqlValue::Null => match *ty {
                    Type::INT2 => Box::new(None::<i16>),
                    Type::INT4 => Box::new(None::<i32>),
                    Type::INT8 => Box::new(None::<i64>),
                    Type::BOOL => Box::new(None::<bool>),
                    _ => Box::new(None::<String>),
                },
                SqlValue::Int(n) => Box::new(*n),
                SqlValue::Text(s) => Box::new(s.clone()),
                SqlValue::Bool(b) => Box::new(*b),
            }
        })
        .collect())
}

fn column(row: &tokio_postgres::Row, i: usize) -> Result<SqlValue, DbError> {
    let ty = row.columns()[i].type_().clone();
    let get_err = |e: tokio_postgres::Error| DbError::Other(format!("column {i}: {e}"));
    Ok(match ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(get_err)?
            .map_or(SqlValue::Null, SqlValue::Bool),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(get_err)?
            .map_or(SqlValue::Null, |n| SqlValue::Int(n.into())),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(get_err)?
            .map_or(SqlValue::Null, |n| SqlValue::Int(n.into())),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(get_err)?
            .map_or(SqlValue::Null, SqlValue::Int),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => row
            .try_get::<_, Option<String>>(i)
            .map_err(get_err)?
            .map_or(SqlValue::Null, SqlValue::Text),
        other => {
            return Err(DbError::Other(format!(
                "column {i}: unsupported type {other}"
            )));
        }
    })
}

impl Executor for PgExecutor {
    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        let stmt = self.client.prepare(sql).await.map_err(db_error)?;
        let args = bind(stmt.params(), params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as _).collect();
        let rows = self.client.query(&stmt, &refs).await.map_err(db_error)?;
        // Spin 4.0.x never answers a query with no rows (spinframework/spin#3671): here,
        // as in the test host's strict mode, such a query is a failure, so that every
        // statement the store sends is shown to return a row.
        if rows.is_empty() {
            return Err(DbError::Other(format!(
                "strict: this query returned no rows, on which Spin 4.0.x hangs: {sql}"
            )));
        }
        rows.iter()
            .map(|row| (0..row.len()).map(|i| column(row, i)).collect())
            .collect()
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        // Spin pools PostgreSQL connections and never rolls back what a request left open,
        // so on PostgreSQL the store opens no transaction across statements: here such a
        // statement is a failure, so that the whole suite shows it.
        let first = sql.split_whitespace().next().unwrap_or("");
        if ["BEGIN", "COMMIT", "ROLLBACK", "START"].contains(&first.to_ascii_uppercase().as_str()) {
            return Err(DbError::Other(format!(
                "strict: a transaction across statements, which Spin's pool never rolls back: {sql}"
            )));
        }
        let stmt = self.client.prepare(sql).await.map_err(db_error)?;
        let args = bind(stmt.params(), params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as _).collect();
        self.client.execute(&stmt, &refs).await.map_err(db_error)
    }
}

pub async fn connect(schema: Option<&str>) -> Result<PgExecutor, String> {
    let url = database_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .map_err(|e| format!("PostgreSQL at `{url}` is unreachable: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    if let Some(schema) = schema {
        // Schema names are made by `PgSchema` (a prefix and digits), never from input.
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(PgExecutor { client })
}

/// An executor working inside `schema`.
pub async fn executor(schema: &PgSchema) -> PgExecutor {
    connect(Some(schema.name())).await.unwrap()
}

/// A migrated store in a fresh schema, or `None` when skipping.
pub async fn fresh() -> Option<(PgSchema, SqlStore<PgExecutor>)> {
    let schema = PgSchema::create("t").await?;
    let exec = executor(&schema).await;
    migrate(&exec, Dialect::Postgres).await.unwrap();
    Some((schema, SqlStore::new(exec, Dialect::Postgres)))
}
