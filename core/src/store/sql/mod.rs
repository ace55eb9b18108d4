//! The PostgreSQL and SQLite stores, written once against a tiny [`Executor`] trait.
//!
//! A host brings the driver: the Spin component implements [`Executor`] over Spin's
//! outbound PostgreSQL and SQLite interfaces, the native tests over `tokio-postgres` and
//! `rusqlite`. Everything else (the statements, their parameters, row decoding, the
//! migrations and their runner) lives here, so the statements tested natively are the very
//! ones the component sends.
//!
//! # Design
//!
//! - **One template, two dialects.** Statements are written once with PostgreSQL's numbered
//!   placeholders, each with an explicit cast (`$1::text`, `$2::bigint`, `$3::boolean`).
//!   For SQLite, [`Dialect::render`] turns `$n::type` into `?n`. The casts matter on
//!   PostgreSQL: a host such as Spin binds an `Int` as `int8` and refuses to bind it to a
//!   parameter PostgreSQL inferred as `int2`, so no parameter type is left to inference. The
//!   few places where the dialects differ (`GREATEST` / `MAX`, `BEGIN` / `BEGIN IMMEDIATE`,
//!   the clock used to stamp migrations) are chosen by [`Dialect`].
//! - **No value is ever formatted into SQL.** Statements are built from fixed fragments and
//!   bound parameters only; search text goes through `LIKE … ESCAPE '\'` with `\`, `%` and
//!   `_` escaped, so they match literally. (PostgreSQL must run with
//!   `standard_conforming_strings = on`, its default since 9.1.)
//! - **Times are integers.** Timestamps are stored as milliseconds since the epoch
//!   (`BIGINT` / `INTEGER`), due dates as `YYYY-MM-DD` text (which sorts like the date),
//!   priorities as their rank 1 to 3, so no host type mapping for dates is involved.
//! - **Sorting and search use stored folds.** `title_fold` and `description_fold` hold
//!   [`crate::Title::folded`] and [`crate::Description::folded`], computed here. On
//!   PostgreSQL `title_fold` is `COLLATE "C"` and on SQLite it uses the default `BINARY`
//!   collation: both compare UTF-8 bytes, which is code point order, the order of Rust's
//!   `String`. So all stores, the [`crate::MemoryStore`] included, sort and match alike.
//!   (SQLite's `LIKE` ignores ASCII case, which changes nothing here because both the folds
//!   and the query text are lower case.)
//! - **One round trip per operation** where SQL allows it: create is `INSERT … RETURNING`,
//!   update, completion and delete are one conditional statement each (`… WHERE id AND
//!   user_id [AND version] RETURNING …`); only when it touches no row does a second query
//!   tell [`StoreError::NotFound`] from [`StoreError::VersionConflict`]. A list is one
//!   query returning the total of every matching task in each row together with a page of
//!   at most `limit + 1` rows (one row of `NULL`s when the page is empty). The filters are
//!   written twice in that query (for the count and for the page) rather than shared through
//!   a `WITH` clause, because PostgreSQL materialises a CTE referenced twice, which would
//!   keep the page from walking an index.
//! - **No transaction outlives a statement on PostgreSQL.** Spin pools PostgreSQL
//!   connections and, when it hands one out again, cleans it (`RESET ALL`,
//!   `pg_advisory_unlock_all()`, …) but never sends `ROLLBACK`: a request that died between a
//!   `BEGIN` and its `COMMIT` would hand its open transaction to the next request. So every
//!   write that must be atomic is one statement there. The idempotent create is one
//!   data-modifying `WITH` (claim the key with the next id of the tasks' sequence, insert the
//!   task only if the key was claimed, else read the earlier request), and migrations are one
//!   `DO` block. On SQLite, where Spin opens a connection per request and closing it rolls
//!   back, the idempotent create is a `BEGIN IMMEDIATE` transaction: the key row, then the
//!   task, then the task id on the key row; a concurrent create with the same key waits on
//!   the write lock, then finds the committed key and replays it. Any error rolls back.
//! - **A replay is the first response.** The key row keeps the request's fingerprint, the
//!   task id and the time of the create; a replay with the same body rebuilds the task as
//!   that create made it ([`crate::Task::create`]), so later changes do not show. A replay
//!   of a task deleted since is [`StoreError::NotFound`]. Keys have no foreign key to tasks.
//! - **Guarded results.** Spin 4.0.x never answers a PostgreSQL query with no rows
//!   (spinframework/spin#3671), so every row-returning statement that can find nothing is
//!   wrapped to return a row, and the store strips it (`query_guarded`).
//! - **Errors.** Executors map driver errors to the four [`DbError`] kinds; the store turns a
//!   [`DbError`] into a [`StoreError`] in exactly one function (`Unavailable` stays
//!   unavailable, everything else is [`StoreError::Other`]). A row that does not decode
//!   through the core's constructors is [`StoreError::Other`] naming the column.
//!
//! # Executors
//!
//! An executor is **one connection**: `BEGIN`, `COMMIT` and `ROLLBACK` are sent as plain
//! statements and must reach the same session as the statements between them, and
//! PostgreSQL's advisory lock taken by [`migrate`] belongs to the session. A pool must hand
//! an executor one connection for its whole life (the Spin component opens one per
//! request). Executors send exactly one statement per call (never a multi-statement
//! string), bind [`SqlValue::Bool`] as `0`/`1` on SQLite, and return every column as a
//! [`SqlValue`] (`int2`/`int4`/`int8` as [`SqlValue::Int`]).
//!
//! [`StoreError`]: crate::StoreError
//! [`StoreError::NotFound`]: crate::StoreError::NotFound
//! [`StoreError::VersionConflict`]: crate::StoreError::VersionConflict
//! [`StoreError::Other`]: crate::StoreError::Other

use std::borrow::Cow;

mod migrate;
mod statements;
mod store;

pub use migrate::{MIGRATION_LOCK, MIGRATIONS, Migration, migrate, schema_is_current};
pub use store::SqlStore;

/// The statement [`SqlStore`] sends to list `query` for `user`, with its parameters: for
/// `EXPLAIN` when checking which index a list uses, and for benchmarks that run the very
/// same SQL without the store.
///
/// ```
/// use task_api_core::sql::{Dialect, list_statement};
/// use task_api_core::{ListQuery, UserId};
/// let query = ListQuery::parse("sort=title&limit=20").unwrap();
/// let (sql, params) = list_statement(Dialect::Postgres, &UserId::parse("u1").unwrap(), &query);
/// assert!(sql.contains("ORDER BY"));
/// assert_eq!(params.last(), Some(&task_api_core::sql::SqlValue::Int(21)));
/// ```
pub fn list_statement(
    dialect: Dialect,
    user: &crate::UserId,
    query: &crate::ListQuery,
) -> (String, Vec<SqlValue>) {
    let st = statements::list(dialect, user, query);
    (st.full_sql(), st.params)
}

/// The statement [`SqlStore`] sends to create `task` with `id` for `user` at `now` (without
/// an idempotency key), with its parameters; see [`list_statement`]. The store passes a
/// [`crate::TaskId::fresh`] id.
pub fn insert_statement(
    dialect: Dialect,
    user: &crate::UserId,
    task: &crate::NewTask,
    id: crate::TaskId,
    now: crate::Timestamp,
) -> (String, Vec<SqlValue>) {
    let st = statements::insert_task(
        dialect,
        user,
        task,
        id,
        now,
        statements::Seq::TAKEN_FOR_BENCH,
    );
    match dialect {
        // As sent: behind the guard against empty results (`query_guarded`), with the
        // change counter's step in the same statement.
        Dialect::Postgres => (guarded_with(&st.ctes, &st.sql), st.params),
        // Without the counter's step: the store sends that first, in the same transaction.
        Dialect::Sqlite => (st.sql, st.params),
    }
}

/// A parameter or column value, as exchanged with an [`Executor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// An integer (`smallint`, `integer` and `bigint` all come back as this).
    Int(i64),
    /// Text.
    Text(String),
    /// A boolean; SQLite has none, so an SQLite executor binds `0`/`1` and returns
    /// [`SqlValue::Int`], which the store accepts for boolean columns.
    Bool(bool),
}

/// What an [`Executor`] can fail with. Executors map their driver's errors to these kinds,
/// through [`DbError::from_sqlstate`] and [`DbError::from_connect_failure`] where the
/// driver gives a SQLSTATE or a connection failure, so that every host classifies alike.
///
/// PostgreSQL, by SQLSTATE: class `08` (connection), `53300` (too many connections) and
/// `57P01` to `57P03` (shutdown, cannot connect now) are [`DbError::Unavailable`], as is a
/// closed connection; `23505` is [`DbError::UniqueViolation`]; `23514` is
/// [`DbError::CheckViolation`]; `42P01` (undefined table), `42703` (undefined column) and
/// `42883` (undefined function) are [`DbError::SchemaMissing`]; `28000` / `28P01` (authentication) and `3D000` (no such
/// database) are [`DbError::Misconfigured`]. SQLite: `SQLITE_BUSY`, `SQLITE_LOCKED` and
/// `SQLITE_CANTOPEN` are unavailable; `SQLITE_CONSTRAINT_UNIQUE` and
/// `SQLITE_CONSTRAINT_PRIMARYKEY` are unique violations; `SQLITE_CONSTRAINT_CHECK` is a check
/// violation; "no such table" and "no such column" are a missing schema. Everything else is
/// [`DbError::Other`].
///
/// The texts these variants carry are for the log only. Build them with [`driver_text`],
/// which keeps a driver's first line and removes URL credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or cannot take the request now.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database refuses this service for good until an operator changes a setting
    /// (TLS handshake, authentication, no such database, address not allowed): retrying
    /// will not help, so this is a 500 `configuration_error`, not a 503.
    #[error(transparent)]
    Misconfigured(crate::store::tasks::Misconfiguration),
    /// A unique or primary key constraint refused a row.
    #[error("unique violation: {0}")]
    UniqueViolation(String),
    /// A check constraint refused a row.
    #[error("check violation: {0}")]
    CheckViolation(String),
    /// A table or column the statement names does not exist: the schema is missing or
    /// behind this crate's migrations.
    #[error("schema missing: {0}")]
    SchemaMissing(String),
    /// A rule of this crate's own SQL refused the statement: PostgreSQL's `task_api_batch`
    /// raises SQLSTATE `T` + kind + the failing operation's 3-digit index (`TN004`: operation
    /// 4 found no task). Carries the SQLSTATE.
    #[error("batch refused: {0}")]
    Rule(String),
    /// Any other failure.
    #[error("database error: {0}")]
    Other(String),
}

/// The hint for a TLS handshake that failed.
const TLS_HINT: &str = "could not be reached over TLS (Spin uses TLS unless the URL says \
     sslmode=disable, and checks the server's certificate against the system's roots): add \
     ?sslmode=disable for a server on the same machine or private network, or give the \
     server a certificate the host trusts";
const AUTH_HINT: &str = "was refused by the server: check its user name and password";
const PRIVILEGE_HINT: &str = "names a role without a privilege the service needs: SELECT, \
     INSERT, UPDATE and DELETE on the tables of the migrations";
const NO_DATABASE_HINT: &str = "names a database that does not exist on the server";
const NOT_ALLOWED_HINT: &str = "is not an allowed outbound host: set database_host to the \
     host:port of database_url";

impl DbError {
    /// The kind of a PostgreSQL error from its SQLSTATE (`state`, five characters), with
    /// `message` (already passed through [`driver_text`]) as its text.
    ///
    /// ```
    /// use task_api_core::sql::DbError;
    /// assert!(matches!(DbError::from_sqlstate("57P01", "shutting down".into()), DbError::Unavailable(_)));
    /// assert!(matches!(DbError::from_sqlstate("28P01", "auth".into()), DbError::Misconfigured(m) if m.setting == "database_url"));
    /// assert!(matches!(DbError::from_sqlstate("22P02", "bad".into()), DbError::Other(_)));
    /// ```
    pub fn from_sqlstate(state: &str, message: String) -> DbError {
        match state {
            s if s.starts_with("08") => DbError::Unavailable(message),
            "53300" | "57P01" | "57P02" | "57P03" => DbError::Unavailable(message),
            "23505" => DbError::UniqueViolation(message),
            "23514" => DbError::CheckViolation(message),
            // An undefined table, column or function (`task_api_batch`).
            "42P01" | "42703" | "42883" => DbError::SchemaMissing(message),
            "28000" | "28P01" => misconfigured("database_url", AUTH_HINT, message),
            "3D000" => misconfigured("database_url", NO_DATABASE_HINT, message),
            "42501" => misconfigured("database_url", PRIVILEGE_HINT, message),
            // A serialization failure, a deadlock, a server gone read-only in a failover:
            // the next try may well succeed.
            "40001" | "40P01" | "25006" => DbError::Unavailable(message),
            s if s.len() == 5
                && matches!(&s[..2], "TN" | "TV" | "TK")
                && s[2..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                DbError::Rule(s.to_owned())
            }
            _ => DbError::Other(message),
        }
    }

    /// The kind of a failure to connect, from the host's whole text (`text`, as the host
    /// gave it: Spin renders an anyhow chain, the message, then `Caused by:` lines, then
    /// perhaps a backtrace): a TLS handshake that failed, a refused login, a database or role
    /// that does not exist or an address the host does not allow is
    /// [`DbError::Misconfigured`]; anything else (refused, reset, timed out) is
    /// [`DbError::Unavailable`]. The decision reads the whole chain, because the first line
    /// is often only `db error` and the server's reason comes below; the text kept is the
    /// chain on one line, through [`driver_text`], without the backtrace.
    ///
    /// ```
    /// use task_api_core::sql::DbError;
    /// let tls = DbError::from_connect_failure("error performing TLS handshake: certificate verify failed");
    /// assert!(matches!(tls, DbError::Misconfigured(m) if m.setting == "database_url"));
    /// let down = DbError::from_connect_failure("Connection refused (os error 111)");
    /// assert!(matches!(down, DbError::Unavailable(_)));
    /// let spin = "Error occurred while creating a new object: db error\n\nCaused by:\n    0: db error\n    \
    ///             1: FATAL: database \"nope\" does not exist\n\nStack backtrace:\n   0: tokio_postgres::connect_tls";
    /// let DbError::Misconfigured(m) = DbError::from_connect_failure(spin) else { panic!() };
    /// assert!(m.hint.contains("does not exist") && m.cause.contains("\"nope\" does not exist"));
    /// assert!(!m.cause.contains("connect_tls"));
    /// ```
    pub fn from_connect_failure(text: &str) -> DbError {
        let chain = error_chain(text);
        let message = driver_text(&chain);
        let lower = chain.to_ascii_lowercase();
        let has = |needle: &str| lower.contains(needle);
        if has("not permitted") || has("not allowed") {
            misconfigured("database_host", NOT_ALLOWED_HINT, message)
        } else if (has("tls") || has("ssl") || has("handshake"))
            && (has("reset") || has("eof") || has("timed out") || has("broken pipe"))
            && !has("certificate")
        {
            // The network failed during the handshake: not a certificate problem.
            DbError::Unavailable(message)
        } else if has("tls") || has("ssl") || has("certificate") || has("handshake") {
            misconfigured("database_url", TLS_HINT, message)
        } else if has("authentication")
            || has("password missing")
            || has("28p01")
            || has("28000")
            || (has("role") && has("does not exist"))
        {
            misconfigured("database_url", AUTH_HINT, message)
        } else if has("3d000") || (has("database") && has("does not exist")) {
            misconfigured("database_url", NO_DATABASE_HINT, message)
        } else {
            DbError::Unavailable(message)
        }
    }
}

/// An anyhow-style rendering (`message`, `Caused by:`, numbered causes, `Stack backtrace:`)
/// on one line: the message and each cause that says something new, joined by `: `, and
/// nothing of the backtrace (whose frames name functions such as `connect_tls` even when no
/// TLS was involved).
fn error_chain(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Stack backtrace:") {
            break;
        }
        if line.is_empty() || line == "Caused by:" {
            continue;
        }
        // `0: cause` → `cause`
        let line = match line.split_once(": ") {
            Some((n, rest)) if n.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => line,
        };
        if !parts.iter().any(|p| p.contains(line)) {
            parts.push(line);
        }
    }
    parts.join(": ")
}

fn misconfigured(setting: &'static str, hint: &'static str, cause: String) -> DbError {
    DbError::Misconfigured(crate::store::tasks::Misconfiguration {
        setting,
        hint,
        cause,
    })
}

/// The most of a driver's text that goes into a [`DbError`]: its first line, without
/// credentials, and at most 300 bytes. Hosts render errors as anyhow chains with
/// backtraces, and some (Spin 3.0 to 3.3) quote the whole database URL, password included,
/// when they refuse an address; neither belongs in a log line.
///
/// ```
/// use task_api_core::sql::driver_text;
/// assert_eq!(
///     driver_text("address postgres://ann:hunter2@db:5432/tasks is not permitted\nStack backtrace: …"),
///     "address postgres://ann:***@db:5432/tasks is not permitted"
/// );
/// assert_eq!(driver_text("x password=hunter2 y"), "x password=*** y");
/// assert_eq!(
///     driver_text("address postgres://ann:hun/t?e#r@2@db:5432/tasks is not permitted"),
///     "address postgres://ann:***@db:5432/tasks is not permitted"
/// );
/// // Erring on the side of the log: a URL with a port and an `@` later on loses the middle.
/// assert_eq!(driver_text("see http://example.com:8080/a@b"), "see http://example.com:***@b");
/// ```
pub fn driver_text(text: &str) -> String {
    const MAX: usize = 300;
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let summary = debug_summary(line);
    let mut out = scrub_credentials(summary.as_deref().unwrap_or(line));
    if out.len() > MAX {
        let mut end = MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// The SQLSTATE and message of a `tokio-postgres` error rendered with `{:?}` (as Spin renders
/// it for the guest), without the rest: the server's `detail` sits on the same line and
/// quotes the row a constraint refused ("Key (email_fold)=(ann@example.com) already exists",
/// "Failing row contains (…, $argon2id$…)"), which holds emails and password hashes.
///
/// ```
/// use task_api_core::sql::driver_text;
/// let spin = r#"Error { kind: Db, cause: Some(DbError { severity: "ERROR", code: SqlState(E23514), message: "new row for relation \"users\" violates check constraint \"users_email_check\"", detail: Some("Failing row contains (u_1, ann@example.com, $argon2id$v=19$…)"), hint: None }) }"#;
/// let text = driver_text(spin);
/// assert_eq!(text, r#"23514: new row for relation "users" violates check constraint "users_email_check""#);
/// ```
fn debug_summary(line: &str) -> Option<String> {
    let start = line.find("message: \"")? + "message: \"".len();
    let mut message = String::new();
    let mut chars = line[start..].chars();
    loop {
        match chars.next()? {
            '\\' => message.push(chars.next()?),
            '"' => break,
            c => message.push(c),
        }
    }
    let code = line
        .find("SqlState(E")
        .and_then(|i| line.get(i + "SqlState(E".len()..i + "SqlState(E".len() + 5));
    Some(match code {
        Some(code) => format!("{code}: {message}"),
        None => message,
    })
}

/// `scheme://user:password@` becomes `scheme://user:***@`, and `password=…` in a key-value
/// connection string becomes `password=***`.
fn scrub_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The URL runs to the next white space. Its password runs from the first `:` to the
        // last `@` in it: a driver takes the user information up to the last `@`, so a
        // password may hold `/`, `?`, `#` or `@` itself.
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let url = &tail[..end];
        match (url.find(':'), url.rfind('@')) {
            (Some(colon), Some(at_sign)) if colon < at_sign => {
                out.push_str(&url[..colon]);
                out.push_str(":***");
                out.push_str(&url[at_sign..]);
            }
            _ => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    let mut scrubbed = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.to_ascii_lowercase().find("password=") {
        let (head, tail) = rest.split_at(at + "password=".len());
        scrubbed.push_str(head);
        scrubbed.push_str("***");
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '&')
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    scrubbed.push_str(rest);
    scrubbed
}

/// `sql` (PostgreSQL) wrapped so that it returns at least one row; see [`query_guarded`].
fn guarded(sql: &str) -> String {
    guarded_with("", sql)
}

/// [`guarded`] for a statement whose common table expressions `ctes` (without `WITH`, may
/// be empty) come before it: data-modifying ones must stay at the top level.
pub(crate) fn guarded_with(ctes: &str, sql: &str) -> String {
    let sep = if ctes.is_empty() { "" } else { ", " };
    format!(
        "WITH {ctes}{sep}guarded AS ({sql}) SELECT g.* FROM (SELECT 1) AS one \
         LEFT JOIN (SELECT true AS present, guarded.* FROM guarded) AS g ON true"
    )
}

/// The rows of a [`guarded`] statement, without the marker and the `NULL` row.
pub(crate) fn unguard(mut rows: Vec<Vec<SqlValue>>) -> Vec<Vec<SqlValue>> {
    rows.retain(|row| matches!(row.first(), Some(SqlValue::Bool(true))));
    for row in &mut rows {
        row.remove(0);
    }
    rows
}

/// Runs a statement that returns rows, such that the statement PostgreSQL sees always
/// returns at least one: Spin 4.0.x never answers a PostgreSQL query whose result has no
/// rows (spinframework/spin#3671, a regression in 4.0.0), and the request, its pooled
/// connection and any lock it holds then stay stuck for ever. So on PostgreSQL the
/// statement is wrapped as
///
/// ```sql
/// WITH guarded AS (<sql>)
/// SELECT g.* FROM (SELECT 1) AS one LEFT JOIN (SELECT true AS present, guarded.* FROM guarded) AS g ON true
/// ```
///
/// which returns the statement's rows behind a `present` column, or one row of `NULL`s
/// when there are none; this function strips the marker and the `NULL` row again. A
/// data-modifying statement (`INSERT`, `UPDATE`, `DELETE … RETURNING`) works inside the
/// `WITH`. Row order is that of the statement (the join's outer side is one row), and no
/// caller relies on it except the list, which already returns a row of its own when the
/// page is empty and does not come through here. SQLite statements run as they are.
pub(crate) async fn query_guarded<E: Executor>(
    executor: &E,
    dialect: Dialect,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<Vec<SqlValue>>, DbError> {
    if dialect == Dialect::Sqlite {
        return executor.query(sql, params).await;
    }
    Ok(unguard(executor.query(&guarded(sql), params).await?))
}

/// One database connection that runs one statement at a time.
///
/// Implementations must use a single connection for their whole life (transactions are
/// plain `BEGIN` / `COMMIT` statements) and send `sql` as exactly one statement with
/// `params` bound in order (`$1`/`?1` is `params[0]`).
///
/// ```
/// use std::cell::RefCell;
/// use task_api_core::TaskStore;
/// use task_api_core::sql::{DbError, Dialect, Executor, SqlStore, SqlValue};
///
/// /// An executor that records what it is asked and answers every query with one row `1`.
/// #[derive(Default)]
/// struct Recorder(RefCell<Vec<String>>);
///
/// impl Executor for Recorder {
///     async fn query(&self, sql: &str, _: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
///         self.0.borrow_mut().push(sql.to_owned());
///         Ok(vec![vec![SqlValue::Int(1)]])
///     }
///     async fn execute(&self, sql: &str, _: &[SqlValue]) -> Result<u64, DbError> {
///         self.0.borrow_mut().push(sql.to_owned());
///         Ok(0)
///     }
/// }
///
/// let store = SqlStore::new(Recorder::default(), Dialect::Sqlite);
/// pollster::block_on(store.ping()).unwrap();
/// assert_eq!(store.executor().0.borrow().as_slice(), ["SELECT 1"]);
/// ```
#[allow(async_fn_in_trait)] // Send-ness follows the implementing type, as for `TaskStore`
pub trait Executor {
    /// Runs a statement that returns rows; each row holds one value per column.
    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError>;

    /// Runs a statement for its effect, returning how many rows it changed.
    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError>;
}

impl<E: Executor + ?Sized> Executor for &E {
    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        (**self).query(sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        (**self).execute(sql, params).await
    }
}

/// Which SQL the statements are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL (12 or later): `$n` placeholders.
    Postgres,
    /// SQLite (3.35 or later, for `RETURNING`): `?n` placeholders.
    Sqlite,
}

impl Dialect {
    /// A statement template (PostgreSQL placeholders with casts) in this dialect: unchanged
    /// for PostgreSQL; for SQLite every `$n::type` and `$n` becomes `?n`.
    ///
    /// ```
    /// use task_api_core::sql::Dialect;
    /// let t = "SELECT id FROM tasks WHERE user_id = $1::text AND id = $12::bigint";
    /// assert_eq!(Dialect::Postgres.render(t), t);
    /// assert_eq!(
    ///     Dialect::Sqlite.render(t),
    ///     "SELECT id FROM tasks WHERE user_id = ?1 AND id = ?12"
    /// );
    /// ```
    pub fn render(self, template: &str) -> Cow<'_, str> {
        if self == Dialect::Postgres || !template.contains('$') {
            return Cow::Borrowed(template);
        }
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            out.push('?');
            out.push_str(&after[..digits]);
            rest = &after[digits..];
            if let Some(cast) = rest.strip_prefix("::") {
                let name = cast
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                rest = &cast[name..];
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_rendering_drops_casts_and_keeps_everything_else() {
        assert_eq!(
            Dialect::Sqlite.render("a = $1::text AND b = $2 AND c = '$x' AND d = $10::boolean)"),
            "a = ?1 AND b = ?2 AND c = '$x' AND d = ?10)"
        );
    }
}
