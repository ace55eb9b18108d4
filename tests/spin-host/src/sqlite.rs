//! `fermyon:spin/sqlite@2.0.0` over rusqlite, as Spin 3's in-process SQLite does it:
//!
//! - only the `default` database exists, in `<sqlite_dir>/sqlite_db.db`; a component may
//!   open it only if it lists it in `sqlite_databases` (`access-denied` otherwise, checked
//!   first; any other name is `no-such-database`);
//! - every `open` is a NEW connection (Spin's connection creators must not reuse one), so
//!   a request's `BEGIN` … `COMMIT` and `changes()` see only its own statements; the file
//!   itself is opened on the first `execute`, with rusqlite's defaults (5 s busy timeout);
//! - `execute` prepares one statement (cached per connection), binds the parameters and
//!   returns the column names and every row, on a blocking thread; every failure is
//!   `io(<rusqlite error text>)`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::types::{Value as SqlValue, ValueRef};
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin2_0_0::sqlite as v2;
use crate::host_calls::Call;
use crate::state::State;

/// The application's default database.
pub struct SqliteDatabase {
    path: PathBuf,
}

impl SqliteDatabase {
    /// The database file at `path` (created when first written).
    pub fn new(path: PathBuf) -> Self {
        SqliteDatabase { path }
    }
}

/// The host side of a guest's `connection` resource: its own rusqlite connection,
/// opened on first use.
pub struct SqliteConnection {
    path: PathBuf,
    connection: Arc<Mutex<Option<rusqlite::Connection>>>,
}

impl v2::Host for State {}

impl v2::HostConnection for State {
    async fn open(&mut self, database: String) -> Result<Resource<SqliteConnection>, v2::Error> {
        self.calls.add(Call::SqliteOpen);
        if !self.shared.app.sqlite_databases.contains(&database) {
            return Err(v2::Error::AccessDenied);
        }
        if database != "default" {
            return Err(v2::Error::NoSuchDatabase);
        }
        let path = self.shared.sqlite.path.clone();
        if let Some(parent) = path.parent() {
            // Spin creates the directory here and reports a failure as `invalid-connection`.
            std::fs::create_dir_all(parent).map_err(|_| v2::Error::InvalidConnection)?;
        }
        self.table
            .push(SqliteConnection {
                path,
                connection: Arc::default(),
            })
            .map_err(|_| v2::Error::Io("too many connections opened".into()))
    }

    async fn execute(
        &mut self,
        connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<v2::Value>,
    ) -> Result<v2::QueryResult, v2::Error> {
        self.calls.add(Call::SqliteExecute);
        let connection = self
            .table
            .get(&connection)
            .map_err(|_| v2::Error::InvalidConnection)?;
        let (path, connection) = (connection.path.clone(), connection.connection.clone());
        tokio::task::spawn_blocking(move || {
            let mut guard = connection.lock().unwrap_or_else(|e| e.into_inner());
            let conn = match &mut *guard {
                Some(conn) => conn,
                empty => empty.insert(
                    rusqlite::Connection::open(&path).map_err(|e| v2::Error::Io(e.to_string()))?,
                ),
            };
            execute(conn, &statement, parameters)
        })
        .await
        .map_err(|e| v2::Error::Io(format!("internal runtime error: {e}")))?
    }

    async fn drop(&mut self, connection: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

fn execute(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<v2::Value>,
) -> Result<v2::QueryResult, v2::Error> {
    let io = |e: rusqlite::Error| v2::Error::Io(e.to_string());
    let mut stmt = conn.prepare_cached(statement).map_err(io)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = columns.len();
    let params = parameters.into_iter().map(|v| match v {
        v2::Value::Integer(i) => SqlValue::Integer(i),
        v2::Value::Real(r) => SqlValue::Real(r),
        v2::Value::Text(t) => SqlValue::Text(t),
        v2::Value::Blob(b) => SqlValue::Blob(b),
        v2::Value::Null => SqlValue::Null,
    });
    let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(io)?;
    let mut result = Vec::new();
    while let Some(row) = rows.next().map_err(io)? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i).map_err(io)? {
                ValueRef::Null => v2::Value::Null,
                ValueRef::Integer(i) => v2::Value::Integer(i),
                ValueRef::Real(r) => v2::Value::Real(r),
                ValueRef::Text(t) => v2::Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => v2::Value::Blob(b.to_vec()),
            });
        }
        result.push(v2::RowResult { values });
    }
    Ok(v2::QueryResult {
        columns,
        rows: result,
    })
}
