//! Every statement the SQL store sends, built from fixed fragments and bound parameters,
//! and the decoding of the rows they return.
//!
//! Templates are written in PostgreSQL form with a cast on every placeholder and rendered
//! for the dialect at the end ([`Dialect::render`]).

use std::fmt::{self, Write as _};

use super::{Dialect, SqlValue};
use crate::domain::account::{Email, User};
use crate::domain::ids::{TaskId, UserId, Version};
use crate::domain::listing::{Direction, ListQuery, SortKey, SortValue, StatusFilter};
use crate::domain::task::{Completion, Description, NewTask, Priority, Task, TaskPatch, Title};
use crate::domain::time::{DueDate, Timestamp};
use crate::store::accounts::ThrottleKey;
use crate::store::tasks::{IDEMPOTENCY_TTL_MS, Idempotency, StoreError};

/// The columns of a task, in the order [`decode_task`] reads them.
const TASK_COLUMNS: [&str; 11] = [
    "id",
    "user_id",
    "title",
    "description",
    "completed",
    "priority",
    "due_date",
    "created_at",
    "updated_at",
    "completed_at",
    "version",
];

/// The PostgreSQL type a parameter is cast to.
#[derive(Clone, Copy)]
enum Ty {
    BigInt,
    Text,
    Bool,
}

/// A bound parameter, written into the SQL as `$n::type`.
#[derive(Clone, Copy)]
struct Param(usize, Ty);

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = match self.1 {
            Ty::BigInt => "bigint",
            Ty::Text => "text",
            Ty::Bool => "boolean",
        };
        write!(f, "${}::{ty}", self.0)
    }
}

/// A statement ready to send.
#[derive(Debug)]
pub(crate) struct Statement {
    /// The SQL in the target dialect.
    pub sql: String,
    /// The parameters, `$1` first.
    pub params: Vec<SqlValue>,
    /// Whether the statement returns a row even when it finds nothing (the list does), so
    /// that it needs no guard against hosts that hang on an empty result
    /// ([`super::query_guarded`]).
    pub always_returns_a_row: bool,
}

/// Builds a statement: fixed fragments and placeholders go into the text, values into the
/// parameter list only.
struct Builder {
    dialect: Dialect,
    sql: String,
    params: Vec<SqlValue>,
}

impl Builder {
    fn new(dialect: Dialect) -> Self {
        Builder {
            dialect,
            sql: String::with_capacity(256),
            params: Vec::new(),
        }
    }

    /// Appends a fixed fragment (or text made only of fixed fragments and placeholders).
    fn sql(&mut self, fragment: &str) -> &mut Self {
        self.sql.push_str(fragment);
        self
    }

    /// Binds a value without writing its placeholder (for placeholders used more than once).
    fn bind(&mut self, value: SqlValue, ty: Ty) -> Param {
        self.params.push(value);
        Param(self.params.len(), ty)
    }

    /// Writes a placeholder already bound.
    fn put(&mut self, p: Param) -> &mut Self {
        let _ = write!(self.sql, "{p}");
        self
    }

    /// Binds a value and writes its placeholder.
    fn arg(&mut self, value: SqlValue, ty: Ty) -> &mut Self {
        let p = self.bind(value, ty);
        self.put(p)
    }

    fn columns(&mut self, prefix: &str) -> &mut Self {
        for (i, c) in TASK_COLUMNS.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push_str(prefix);
            self.sql.push_str(c);
        }
        self
    }

    fn finish(self) -> Statement {
        Statement {
            sql: self.dialect.render(&self.sql).into_owned(),
            params: self.params,
            always_returns_a_row: false,
        }
    }
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn opt_text(s: Option<impl AsRef<str>>) -> SqlValue {
    s.map_or(SqlValue::Null, |s| SqlValue::Text(s.as_ref().to_owned()))
}

fn greatest(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "GREATEST",
        Dialect::Sqlite => "MAX",
    }
}

/// `BEGIN` for a transaction that will write. On SQLite it takes the write lock at once, so
/// two writers never both read and then fail to upgrade.
pub(crate) fn begin(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "BEGIN",
        Dialect::Sqlite => "BEGIN IMMEDIATE",
    }
}

/// `INSERT` of a new task `id` at `now`, returning it. A taken `id` is a unique violation
/// (the store draws another). The id is the first parameter, here and in
/// [`create_with_key_postgres`].
///
/// `OVERRIDING SYSTEM VALUE` lets the statement run on a PostgreSQL schema from before
/// migration 0005, where `id` was still an identity column, and changes nothing after it.
pub(crate) fn insert_task(
    dialect: Dialect,
    user: &UserId,
    new: &NewTask,
    id: TaskId,
    now: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("INSERT INTO tasks (id, ")
        .sql(INSERT_COLUMNS)
        .sql(match dialect {
            Dialect::Postgres => ") OVERRIDING SYSTEM VALUE VALUES (",
            Dialect::Sqlite => ") VALUES (",
        });
    b.arg(SqlValue::Int(id.get()), Ty::BigInt).sql(", ");
    task_values(&mut b, user, new, now);
    b.sql(") RETURNING ").columns("");
    b.finish()
}

/// The columns [`task_values`] gives values for, in order.
const INSERT_COLUMNS: &str = "user_id, title, title_fold, description, description_fold, \
     completed, priority, due_date, created_at, updated_at, completed_at, version";

/// The values of a new task at `now`, comma-separated, every one bound.
fn task_values(b: &mut Builder, user: &UserId, new: &NewTask, now: Timestamp) {
    b.arg(text(user.as_str()), Ty::Text).sql(", ");
    b.arg(text(new.title.as_str()), Ty::Text).sql(", ");
    b.arg(SqlValue::Text(new.title.folded()), Ty::Text)
        .sql(", ");
    b.arg(
        opt_text(new.description.as_ref().map(Description::as_str)),
        Ty::Text,
    )
    .sql(", ");
    b.arg(
        opt_text(new.description.as_ref().map(Description::folded)),
        Ty::Text,
    )
    .sql(", ");
    b.arg(SqlValue::Bool(new.completed), Ty::Bool).sql(", ");
    b.arg(SqlValue::Int(new.priority.rank().into()), Ty::BigInt)
        .sql(", ");
    b.arg(opt_text(new.due_date.map(|d| d.to_string())), Ty::Text)
        .sql(", ");
    let now_p = b.bind(SqlValue::Int(now.as_millis()), Ty::BigInt);
    b.put(now_p).sql(", ").put(now_p).sql(", ");
    b.arg(
        if new.completed {
            SqlValue::Int(now.as_millis())
        } else {
            SqlValue::Null
        },
        Ty::BigInt,
    );
    b.sql(", 1");
}

/// PostgreSQL's idempotent create in one statement, so that no transaction can outlive the
/// request (Spin's pool never sends `ROLLBACK` for a connection a dead request left in
/// one). It claims the key (a new row, or one whose 24 hours are over) for task `id`; inserts the task only if the key was claimed; and
/// otherwise reads the key's earlier request. One row always comes back:
/// `fingerprint, task_id, created_at, present` of the earlier request (all `NULL` when the
/// key was claimed), then the new task's columns (all `NULL` when it was not).
///
/// Both `NULL`: a concurrent create with the same key committed while this statement waited
/// on the key's row, after the statement's snapshot was taken, so the earlier request is not
/// visible yet; running the statement again sees it.
pub(crate) fn create_with_key_postgres(
    user: &UserId,
    new: &NewTask,
    idem: &Idempotency,
    id: TaskId,
    now: Timestamp,
) -> Statement {
    let mut b = Builder::new(Dialect::Postgres);
    // The id is `$1`, as in `insert_task` (tests rely on finding it there).
    let id = b.bind(SqlValue::Int(id.get()), Ty::BigInt);
    let u = b.bind(text(user.as_str()), Ty::Text);
    let k = b.bind(text(idem.key.as_str()), Ty::Text);
    let cutoff = b.bind(
        SqlValue::Int(now.as_millis().saturating_sub(IDEMPOTENCY_TTL_MS)),
        Ty::BigInt,
    );
    b.sql("WITH claimed AS (INSERT INTO idempotency_keys (user_id, key, fingerprint, task_id, created_at) VALUES (")
        .put(u)
        .sql(", ")
        .put(k)
        .sql(", ")
        .arg(text(&idem.fingerprint), Ty::Text)
        .sql(", ")
        .put(id)
        .sql(", ")
        .arg(SqlValue::Int(now.as_millis()), Ty::BigInt)
        .sql(
            ") ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
             task_id = excluded.task_id, created_at = excluded.created_at \
             WHERE idempotency_keys.created_at <= ",
        )
        .put(cutoff)
        .sql(" RETURNING task_id), inserted AS (INSERT INTO tasks (id, ")
        .sql(INSERT_COLUMNS)
        .sql(") OVERRIDING SYSTEM VALUE SELECT claimed.task_id, ");
    task_values(&mut b, user, new, now);
    b.sql(" FROM claimed RETURNING ")
        .columns("")
        .sql(
            "), earlier AS (SELECT k.fingerprint, k.task_id, k.created_at, \
             EXISTS (SELECT 1 FROM tasks t WHERE t.id = k.task_id AND t.user_id = k.user_id) AS present \
             FROM idempotency_keys k WHERE k.user_id = ",
        )
        .put(u)
        .sql(" AND k.key = ")
        .put(k)
        // Only a live key is an earlier request: when two creates take over the same
        // expired key at once, the one that waited must not read the expired row that its
        // snapshot still shows (both NULL then, and the statement runs again).
        .sql(" AND k.created_at > ")
        .put(cutoff)
        .sql(
            " AND NOT EXISTS (SELECT 1 FROM claimed)) \
             SELECT earlier.fingerprint, earlier.task_id, earlier.created_at, earlier.present, ",
        )
        .columns("ins.")
        .sql(
            " FROM (SELECT 1) AS one LEFT JOIN inserted AS ins ON true \
             LEFT JOIN earlier ON true",
        );
    Statement {
        always_returns_a_row: true,
        ..b.finish()
    }
}
/// The task `id` of `user`.
pub(crate) fn select_task(dialect: Dialect, user: &UserId, id: TaskId) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("SELECT ").columns("").sql(" FROM tasks WHERE id = ");
    b.arg(SqlValue::Int(id.get()), Ty::BigInt)
        .sql(" AND user_id = ")
        .arg(text(user.as_str()), Ty::Text);
    b.finish()
}

/// Whether task `id` of `user` exists: one row (its version) or none. Used only after a
/// conditional statement touched no row, to tell "not found" from "version conflict".
pub(crate) fn select_version(dialect: Dialect, user: &UserId, id: TaskId) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("SELECT version FROM tasks WHERE id = ");
    b.arg(SqlValue::Int(id.get()), Ty::BigInt)
        .sql(" AND user_id = ")
        .arg(text(user.as_str()), Ty::Text);
    b.finish()
}

/// `WHERE id = … AND user_id = … [AND version = …]`
fn where_task(b: &mut Builder, user: &UserId, id: TaskId, expected: Option<Version>) {
    b.sql(" WHERE id = ")
        .arg(SqlValue::Int(id.get()), Ty::BigInt)
        .sql(" AND user_id = ")
        .arg(text(user.as_str()), Ty::Text);
    if let Some(v) = expected {
        b.sql(" AND version = ")
            .arg(SqlValue::Int(v.get()), Ty::BigInt);
    }
}

/// The `SET` items that every change ends with: `completed_at` for a new completion state
/// (SET expressions see the old row), `updated_at` that never goes backwards, the version.
fn set_completion_and_touch(b: &mut Builder, completed: Option<Completion>, now: Param) {
    match completed {
        None => {}
        Some(Completion::Set(true)) => {
            b.sql("completed = TRUE, completed_at = CASE WHEN completed THEN completed_at ELSE ")
                .put(now)
                .sql(" END, ");
        }
        Some(Completion::Set(false)) => {
            b.sql("completed = FALSE, completed_at = NULL, ");
        }
        Some(Completion::Toggle) => {
            b.sql("completed = NOT completed, completed_at = CASE WHEN completed THEN NULL ELSE ")
                .put(now)
                .sql(" END, ");
        }
    }
    let greatest = greatest(b.dialect);
    b.sql("updated_at = ")
        .sql(greatest)
        .sql("(updated_at, ")
        .put(now)
        .sql("), version = version + 1");
}

/// One `UPDATE` applying `patch` (only the columns it holds), returning the task.
pub(crate) fn update_task(
    dialect: Dialect,
    user: &UserId,
    id: TaskId,
    patch: &TaskPatch,
    expected: Option<Version>,
    now: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("UPDATE tasks SET ");
    if let Some(title) = patch.title() {
        b.sql("title = ")
            .arg(text(title.as_str()), Ty::Text)
            .sql(", title_fold = ")
            .arg(SqlValue::Text(title.folded()), Ty::Text)
            .sql(", ");
    }
    if let Some(description) = patch.description() {
        b.sql("description = ")
            .arg(opt_text(description.map(Description::as_str)), Ty::Text)
            .sql(", description_fold = ")
            .arg(opt_text(description.map(Description::folded)), Ty::Text)
            .sql(", ");
    }
    if let Some(priority) = patch.priority() {
        b.sql("priority = ")
            .arg(SqlValue::Int(priority.rank().into()), Ty::BigInt)
            .sql(", ");
    }
    if let Some(due) = patch.due_date() {
        b.sql("due_date = ")
            .arg(opt_text(due.map(|d| d.to_string())), Ty::Text)
            .sql(", ");
    }
    let now = b.bind(SqlValue::Int(now.as_millis()), Ty::BigInt);
    set_completion_and_touch(&mut b, patch.completed().map(Completion::Set), now);
    where_task(&mut b, user, id, expected);
    b.sql(" RETURNING ").columns("");
    b.finish()
}

/// One `UPDATE` toggling or setting `completed` atomically, returning the task.
pub(crate) fn set_completion(
    dialect: Dialect,
    user: &UserId,
    id: TaskId,
    completion: Completion,
    expected: Option<Version>,
    now: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("UPDATE tasks SET ");
    let now = b.bind(SqlValue::Int(now.as_millis()), Ty::BigInt);
    set_completion_and_touch(&mut b, Some(completion), now);
    where_task(&mut b, user, id, expected);
    b.sql(" RETURNING ").columns("");
    b.finish()
}

/// `DELETE` of one task, returning its id.
pub(crate) fn delete_task(
    dialect: Dialect,
    user: &UserId,
    id: TaskId,
    expected: Option<Version>,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("DELETE FROM tasks");
    where_task(&mut b, user, id, expected);
    b.sql(" RETURNING id");
    b.finish()
}

/// `DELETE` of every completed task of `user` (run with `execute`, which counts them).
pub(crate) fn clear_completed(dialect: Dialect, user: &UserId) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("DELETE FROM tasks WHERE user_id = ")
        .arg(text(user.as_str()), Ty::Text)
        .sql(" AND completed");
    b.finish()
}

/// Claims an idempotency key for `user`: inserts it, or takes over an expired row. Run with
/// `execute`: 1 if the key is now ours, 0 if a live row holds it.
pub(crate) fn claim_key(
    dialect: Dialect,
    user: &UserId,
    idem: &Idempotency,
    now: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("INSERT INTO idempotency_keys (user_id, key, fingerprint, task_id, created_at) VALUES (")
        .arg(text(user.as_str()), Ty::Text)
        .sql(", ")
        .arg(text(idem.key.as_str()), Ty::Text)
        .sql(", ")
        .arg(text(&idem.fingerprint), Ty::Text)
        .sql(", NULL, ")
        .arg(SqlValue::Int(now.as_millis()), Ty::BigInt)
        .sql(
            ") ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
             task_id = NULL, created_at = excluded.created_at \
             WHERE idempotency_keys.created_at <= ",
        )
        .arg(
            SqlValue::Int(now.as_millis().saturating_sub(IDEMPOTENCY_TTL_MS)),
            Ty::BigInt,
        );
    b.finish()
}

/// Records the task a claimed key created.
pub(crate) fn set_key_task(
    dialect: Dialect,
    user: &UserId,
    idem: &Idempotency,
    id: TaskId,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("UPDATE idempotency_keys SET task_id = ")
        .arg(SqlValue::Int(id.get()), Ty::BigInt)
        .sql(" WHERE user_id = ")
        .arg(text(user.as_str()), Ty::Text)
        .sql(" AND key = ")
        .arg(text(idem.key.as_str()), Ty::Text);
    b.finish()
}

/// The earlier request of a live key: `fingerprint, task_id, created_at, present` (whether
/// the task it created still exists), read by [`decode_earlier`].
pub(crate) fn select_key(dialect: Dialect, user: &UserId, idem: &Idempotency) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql(
        "SELECT k.fingerprint, k.task_id, k.created_at, \
         EXISTS (SELECT 1 FROM tasks t WHERE t.id = k.task_id AND t.user_id = k.user_id) \
         FROM idempotency_keys k WHERE k.user_id = ",
    )
    .arg(text(user.as_str()), Ty::Text)
    .sql(" AND k.key = ")
    .arg(text(idem.key.as_str()), Ty::Text);
    b.finish()
}
/// The columns of a user with the password hash, in the order [`decode_user`] reads them.
const USER_COLUMNS: &str = "id, email, created_at, password_hash";

/// `INSERT` of a new account; returns its id, or no row when the folded email is taken
/// (`ON CONFLICT (email_fold) DO NOTHING`), so no error needs matching.
pub(crate) fn insert_user(dialect: Dialect, user: &User, password_hash: &str) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("INSERT INTO users (id, email, email_fold, password_hash, created_at) VALUES (")
        .arg(text(user.id.as_str()), Ty::Text)
        .sql(", ")
        .arg(text(user.email.as_str()), Ty::Text)
        .sql(", ")
        .arg(text(user.email.folded()), Ty::Text)
        .sql(", ")
        .arg(text(password_hash), Ty::Text)
        .sql(", ")
        .arg(SqlValue::Int(user.created_at.as_millis()), Ty::BigInt)
        .sql(") ON CONFLICT (email_fold) DO NOTHING RETURNING id");
    b.finish()
}

/// The account with this folded email: [`USER_COLUMNS`].
/// Counts one attempt under `key` (a new row until `expires_at`, or one more on the
/// window's row), returning the count. On PostgreSQL the same statement deletes the rows of
/// windows that are over (`now`); SQLite has no data-modifying `WITH`, so
/// [`prune_attempts`] does that there. Always returns one row.
pub(crate) fn count_attempt(
    dialect: Dialect,
    key: &ThrottleKey,
    expires_at: Timestamp,
    now: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    if dialect == Dialect::Postgres {
        // At most 100 dead rows per count, skipping rows another count holds: a window's end
        // never makes one login delete (and lock) the whole previous window.
        b.sql(
            "WITH pruned AS (DELETE FROM login_attempts WHERE key IN (SELECT key FROM \
             login_attempts WHERE expires_at <= ",
        )
        .arg(SqlValue::Int(now.as_millis()), Ty::BigInt)
        .sql(" LIMIT 100 FOR UPDATE SKIP LOCKED)) ");
    }
    b.sql("INSERT INTO login_attempts (key, attempts, expires_at) VALUES (")
        .arg(text(key.as_str()), Ty::Text)
        .sql(", 1, ")
        .arg(SqlValue::Int(expires_at.as_millis()), Ty::BigInt)
        .sql(
            ") ON CONFLICT (key) DO UPDATE SET attempts = login_attempts.attempts + 1 \
             RETURNING attempts",
        );
    Statement {
        always_returns_a_row: true,
        ..b.finish()
    }
}

/// Deletes the counts of windows that are over (SQLite's half of [`count_attempt`]).
pub(crate) fn prune_attempts(dialect: Dialect, now: Timestamp) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("DELETE FROM login_attempts WHERE key IN (SELECT key FROM login_attempts WHERE expires_at <= ")
        .arg(SqlValue::Int(now.as_millis()), Ty::BigInt)
        .sql(" LIMIT 100)");
    b.finish()
}

/// Takes back one attempt under `key` (run with `execute`).
pub(crate) fn forgive_attempt(dialect: Dialect, key: &ThrottleKey) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("UPDATE login_attempts SET attempts = attempts - 1 WHERE key = ")
        .arg(text(key.as_str()), Ty::Text)
        .sql(" AND attempts > 0");
    b.finish()
}

pub(crate) fn select_user_by_email(dialect: Dialect, email: &Email) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("SELECT ")
        .sql(USER_COLUMNS)
        .sql(" FROM users WHERE email_fold = ")
        .arg(text(email.folded()), Ty::Text);
    b.finish()
}

/// The account `id`: [`USER_COLUMNS`].
pub(crate) fn select_user(dialect: Dialect, id: &UserId) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("SELECT ")
        .sql(USER_COLUMNS)
        .sql(" FROM users WHERE id = ")
        .arg(text(id.as_str()), Ty::Text);
    b.finish()
}

/// Escapes `LIKE` metacharacters for `ESCAPE '\'` and wraps the text in `%…%`.
fn like_contains(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn sort_column(key: SortKey) -> &'static str {
    match key {
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::Title => "title_fold",
        SortKey::Priority => "priority",
        SortKey::DueDate => "due_date",
    }
}

/// `ORDER BY` items equal to [`crate::Sort::compare`]: the key in the sort's direction
/// (missing due dates last either way), then the id in the same direction.
fn order_by(query: &ListQuery, prefix: &str) -> String {
    let sort = query.sort();
    let dir = match sort.direction {
        Direction::Asc => "ASC",
        Direction::Desc => "DESC",
    };
    let col = sort_column(sort.key);
    let nulls_last = if sort.key == SortKey::DueDate {
        format!("({prefix}{col} IS NULL) ASC, ")
    } else {
        String::new()
    };
    format!("{nulls_last}{prefix}{col} {dir}, {prefix}id {dir}")
}

/// One page of `user`'s tasks after the query's cursor (`limit + 1` rows, to tell whether
/// more follow) and, in every row, the number of tasks matching the filters: `total, <task
/// columns>`. When the page is empty there is still one row, with `NULL` task columns.
pub(crate) fn list(dialect: Dialect, user: &UserId, query: &ListQuery) -> Statement {
    let mut b = Builder::new(dialect);

    // The filters, bound once and written twice (count and page).
    let mut filter = String::new();
    let u = b.bind(text(user.as_str()), Ty::Text);
    let _ = write!(filter, "user_id = {u}");
    match query.status() {
        StatusFilter::All => {}
        StatusFilter::Pending => filter.push_str(" AND NOT completed"),
        StatusFilter::Completed => filter.push_str(" AND completed"),
    }
    if !query.priorities().is_empty() && query.priorities().len() < Priority::ALL.len() {
        filter.push_str(" AND priority IN (");
        for (i, p) in query.priorities().iter().enumerate() {
            let p = b.bind(SqlValue::Int(p.rank().into()), Ty::BigInt);
            let sep = if i > 0 { ", " } else { "" };
            let _ = write!(filter, "{sep}{p}");
        }
        filter.push(')');
    }
    if let Some(s) = query.search() {
        let p = b.bind(SqlValue::Text(like_contains(s)), Ty::Text);
        let _ = write!(
            filter,
            " AND (title_fold LIKE {p} ESCAPE '\\' OR description_fold LIKE {p} ESCAPE '\\')"
        );
    }
    if let Some(d) = query.due_after() {
        let p = b.bind(SqlValue::Text(d.to_string()), Ty::Text);
        let _ = write!(filter, " AND due_date >= {p}");
    }
    if let Some(d) = query.due_before() {
        let p = b.bind(SqlValue::Text(d.to_string()), Ty::Text);
        let _ = write!(filter, " AND due_date <= {p}");
    }

    // The keyset condition: strictly after the cursor in the query's order.
    let mut keyset = String::new();
    if let Some(pos) = query.after() {
        let sort = query.sort();
        let cmp = match sort.direction {
            Direction::Asc => ">",
            Direction::Desc => "<",
        };
        let id = b.bind(SqlValue::Int(pos.id.get()), Ty::BigInt);
        let col = sort_column(sort.key);
        let value = match &pos.value {
            SortValue::Time(t) => Some(b.bind(SqlValue::Int(t.as_millis()), Ty::BigInt)),
            SortValue::Text(s) => Some(b.bind(text(s), Ty::Text)),
            SortValue::Rank(r) => Some(b.bind(SqlValue::Int((*r).into()), Ty::BigInt)),
            SortValue::Date(Some(d)) => Some(b.bind(SqlValue::Text(d.to_string()), Ty::Text)),
            SortValue::Date(None) => None,
        };
        let _ = match (sort.key, value) {
            // Undated tasks come last: after an undated one, only undated ones with a
            // later id (in the sort direction) follow.
            (SortKey::DueDate, None) => write!(keyset, " AND due_date IS NULL AND id {cmp} {id}"),
            (SortKey::DueDate, Some(v)) => write!(
                keyset,
                " AND (due_date IS NULL OR due_date {cmp} {v} OR (due_date = {v} AND id {cmp} {id}))"
            ),
            (_, Some(v)) => write!(keyset, " AND ({col}, id) {cmp} ({v}, {id})"),
            // A cursor's value always has the sort key's kind; a date-less value for
            // another key cannot be decoded from a cursor.
            (_, None) => write!(keyset, " AND id {cmp} {id}"),
        };
    }
    let limit = b.bind(SqlValue::Int(i64::from(query.limit()) + 1), Ty::BigInt);

    b.sql("SELECT (SELECT count(*) FROM tasks WHERE ")
        .sql(&filter)
        .sql(") AS total, ")
        .columns("page.")
        .sql(" FROM (SELECT 1 AS one) AS one LEFT JOIN (SELECT ")
        .columns("")
        .sql(", title_fold FROM tasks WHERE ")
        .sql(&filter)
        .sql(&keyset)
        .sql(" ORDER BY ")
        .sql(&order_by(query, ""))
        .sql(" LIMIT ")
        .put(limit)
        .sql(") AS page ON 1 = 1 ORDER BY ")
        .sql(&order_by(query, "page."));
    Statement {
        always_returns_a_row: true,
        ..b.finish()
    }
}

// ---- decoding ----

fn bad_row(column: &str, what: &str) -> StoreError {
    StoreError::Other(format!("undecodable task row: column {column} {what}"))
}

fn int(v: &SqlValue, column: &str) -> Result<i64, StoreError> {
    match v {
        SqlValue::Int(n) => Ok(*n),
        other => Err(bad_row(
            column,
            &format!("is not an integer ({})", kind(other)),
        )),
    }
}

fn opt_int(v: &SqlValue, column: &str) -> Result<Option<i64>, StoreError> {
    match v {
        SqlValue::Null => Ok(None),
        v => int(v, column).map(Some),
    }
}

fn string<'a>(v: &'a SqlValue, column: &str) -> Result<&'a str, StoreError> {
    match v {
        SqlValue::Text(s) => Ok(s),
        other => Err(bad_row(column, &format!("is not text ({})", kind(other)))),
    }
}

fn opt_string<'a>(v: &'a SqlValue, column: &str) -> Result<Option<&'a str>, StoreError> {
    match v {
        SqlValue::Null => Ok(None),
        v => string(v, column).map(Some),
    }
}

fn boolean(v: &SqlValue, column: &str) -> Result<bool, StoreError> {
    match v {
        SqlValue::Bool(b) => Ok(*b),
        SqlValue::Int(0) => Ok(false),
        SqlValue::Int(1) => Ok(true),
        other => Err(bad_row(
            column,
            &format!("is not a boolean ({})", kind(other)),
        )),
    }
}

fn kind(v: &SqlValue) -> &'static str {
    match v {
        SqlValue::Null => "null",
        SqlValue::Int(_) => "integer",
        SqlValue::Text(_) => "text",
        SqlValue::Bool(_) => "boolean",
    }
}

/// Whether the task columns starting at `row[0]` are all `NULL` (an outer join found no task).
/// What an earlier request with the same key (`fingerprint, task_id, created_at, present`,
/// from [`select_key`] or [`create_with_key_postgres`]) means for this one, whose body is
/// `new`: the same body replays the task as that request created it (the contract's "same
/// body": a replay does not show later changes); another body is
/// [`StoreError::IdempotencyKeyReused`]; a task deleted since is [`StoreError::NotFound`].
pub(crate) fn decode_earlier(
    row: &[SqlValue],
    user: &UserId,
    new: &NewTask,
    idem: &Idempotency,
) -> Result<Task, StoreError> {
    let [fingerprint, task_id, created_at, present] = row else {
        return Err(StoreError::Other("undecodable idempotency key row".into()));
    };
    if string(fingerprint, "fingerprint")? != idem.fingerprint {
        return Err(StoreError::IdempotencyKeyReused);
    }
    if !boolean(present, "present")? {
        return Err(StoreError::NotFound);
    }
    let id = TaskId::new(int(task_id, "task_id")?)
        .ok_or_else(|| bad_row("task_id", "is not a task id"))?;
    let at = Timestamp::from_millis(int(created_at, "created_at")?);
    Ok(Task::create(id, user.clone(), new.clone(), at))
}

pub(crate) fn is_null_task(row: &[SqlValue]) -> bool {
    row.first().is_none_or(|v| *v == SqlValue::Null)
}

/// A task from its columns ([`TASK_COLUMNS`], in order), through the core's constructors.
pub(crate) fn decode_task(row: &[SqlValue]) -> Result<Task, StoreError> {
    if row.len() < TASK_COLUMNS.len() {
        return Err(StoreError::Other(format!(
            "undecodable task row: {} columns, expected {}",
            row.len(),
            TASK_COLUMNS.len()
        )));
    }
    let id = TaskId::new(int(&row[0], "id")?).ok_or_else(|| bad_row("id", "is not positive"))?;
    let user_id = UserId::parse(string(&row[1], "user_id")?)
        .ok_or_else(|| bad_row("user_id", "is not a valid user id"))?;
    let title = string(&row[2], "title")?;
    let title = Title::parse(title)
        .ok()
        .filter(|t| t.as_str() == title)
        .ok_or_else(|| bad_row("title", "is not a valid title"))?;
    let description = match opt_string(&row[3], "description")? {
        None => None,
        Some(d) => Some(
            Description::parse(d)
                .ok()
                .flatten()
                .filter(|x| x.as_str() == d)
                .ok_or_else(|| bad_row("description", "is not a valid description"))?,
        ),
    };
    let completed = boolean(&row[4], "completed")?;
    let priority = Priority::from_rank(int(&row[5], "priority")?)
        .ok_or_else(|| bad_row("priority", "is not a rank from 1 to 3"))?;
    let due_date = match opt_string(&row[6], "due_date")? {
        None => None,
        Some(d) => {
            Some(DueDate::parse(d).ok_or_else(|| bad_row("due_date", "is not a YYYY-MM-DD date"))?)
        }
    };
    let created_at = Timestamp::from_millis(int(&row[7], "created_at")?);
    let updated_at = Timestamp::from_millis(int(&row[8], "updated_at")?);
    let completed_at = opt_int(&row[9], "completed_at")?.map(Timestamp::from_millis);
    if completed != completed_at.is_some() {
        return Err(bad_row("completed_at", "disagrees with completed"));
    }
    let version = int(&row[10], "version")?;
    if version < 1 {
        return Err(bad_row("version", "is below 1"));
    }
    Ok(Task {
        id,
        user_id,
        title,
        description,
        completed,
        priority,
        due_date,
        created_at,
        updated_at,
        completed_at,
        version: Version::new(version),
    })
}

fn bad_user(column: &str, what: &str) -> StoreError {
    StoreError::Other(format!("undecodable user row: column {column} {what}"))
}

/// A user and its password hash from [`USER_COLUMNS`], through the core's constructors.
pub(crate) fn decode_user(row: &[SqlValue]) -> Result<(User, String), StoreError> {
    let [id, email, created_at, hash, ..] = row else {
        return Err(StoreError::Other(format!(
            "undecodable user row: {} columns, expected 4",
            row.len()
        )));
    };
    let text_of = |v: &SqlValue, column: &str| match v {
        SqlValue::Text(s) => Ok(s.clone()),
        other => Err(bad_user(column, &format!("is not text ({})", kind(other)))),
    };
    let id =
        UserId::parse(&text_of(id, "id")?).ok_or_else(|| bad_user("id", "is not a user id"))?;
    let raw = text_of(email, "email")?;
    let email = Email::parse(&raw)
        .filter(|e| e.as_str() == raw)
        .ok_or_else(|| bad_user("email", "is not a valid email"))?;
    let created_at = match created_at {
        SqlValue::Int(n) => Timestamp::from_millis(*n),
        other => {
            return Err(bad_user(
                "created_at",
                &format!("is not an integer ({})", kind(other)),
            ));
        }
    };
    let user = User {
        id,
        email,
        created_at,
    };
    Ok((user, text_of(hash, "password_hash")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(like_contains(r"50%_a\b"), r"%50\%\_a\\b%");
    }

    #[test]
    fn every_value_is_a_parameter() {
        let user = UserId::parse("o'brien; --").unwrap();
        let mut new = NewTask::new(Title::parse("x'); DROP TABLE tasks; --").unwrap());
        new.description = Description::parse("100%_").unwrap();
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            let id = TaskId::new(7).unwrap();
            let st = insert_task(dialect, &user, &new, id, Timestamp::from_millis(5));
            assert!(
                !st.sql.contains("brien") && !st.sql.contains("DROP"),
                "{}",
                st.sql
            );
            assert_eq!(st.params.len(), 11);
            assert_eq!(st.params[0], SqlValue::Int(7), "the id is $1");
            if dialect == Dialect::Postgres {
                let idem = Idempotency {
                    key: crate::store::tasks::IdempotencyKey::parse("k").unwrap(),
                    fingerprint: new.fingerprint(),
                };
                let st =
                    create_with_key_postgres(&user, &new, &idem, id, Timestamp::from_millis(5));
                assert_eq!(st.params[0], SqlValue::Int(7), "the id is $1");
            }
            let q = ListQuery::parse("q=%25_%27&priority=low,high&sort=-due_date").unwrap();
            let st = list(dialect, &user, &q);
            assert!(
                !st.sql.contains("brien") && !st.sql.contains("'%"),
                "{}",
                st.sql
            );
        }
    }

    #[test]
    fn account_statements_bind_every_value() {
        let user = User {
            id: UserId::parse("u_0123456789abcdef01234567").unwrap(),
            email: Email::parse("O'Brien@Example.com").unwrap(),
            created_at: Timestamp::from_millis(5),
        };
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            for st in [
                insert_user(dialect, &user, "$argon2id$x"),
                select_user_by_email(dialect, &user.email),
                select_user(dialect, &user.id),
            ] {
                assert!(
                    !st.sql.contains("Brien") && !st.sql.contains("u_01"),
                    "{}",
                    st.sql
                );
                assert_eq!(
                    st.sql.contains("::"),
                    dialect == Dialect::Postgres,
                    "{}",
                    st.sql
                );
            }
        }
        let st = insert_user(Dialect::Postgres, &user, "h");
        assert!(st.sql.contains("$3::text") && st.sql.contains("$5::bigint"));
        assert_eq!(st.params[2], text("o'brien@example.com"));
        let row = vec![
            text("u_0123456789abcdef01234567"),
            text("O'Brien@Example.com"),
            SqlValue::Int(5),
            text("h"),
        ];
        assert_eq!(decode_user(&row).unwrap(), (user, "h".to_owned()));
    }

    #[test]
    fn sqlite_statements_have_no_casts() {
        let user = UserId::parse("u").unwrap();
        let q = ListQuery::parse("status=pending&q=x&due_after=2026-01-01").unwrap();
        let st = list(Dialect::Sqlite, &user, &q);
        assert!(
            !st.sql.contains('$') && !st.sql.contains("::"),
            "{}",
            st.sql
        );
        assert!(st.sql.contains("?1"));
    }

    #[test]
    fn a_row_that_breaks_a_rule_is_an_error_naming_the_column() {
        let row = vec![
            SqlValue::Int(1),
            text("u"),
            text(""),
            SqlValue::Null,
            SqlValue::Int(0),
            SqlValue::Int(2),
            SqlValue::Null,
            SqlValue::Int(0),
            SqlValue::Int(0),
            SqlValue::Null,
            SqlValue::Int(1),
        ];
        let err = decode_task(&row).unwrap_err();
        assert!(err.to_string().contains("title"), "{err}");
    }
}
