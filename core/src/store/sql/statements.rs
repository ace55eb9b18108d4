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
use crate::store::changes::{Change, Changes, Clock, FeedPosition};
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
    /// Common table expressions the statement starts with, without `WITH` (empty for
    /// none): kept apart so that the guard against empty results can add its own at the
    /// same level (PostgreSQL allows data-modifying ones only at the top).
    pub ctes: String,
    /// The SQL in the target dialect, after the common table expressions.
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
    ctes: String,
    sql: String,
    params: Vec<SqlValue>,
}

impl Statement {
    /// The whole statement, as sent when it needs no guard.
    pub(crate) fn full_sql(&self) -> String {
        if self.ctes.is_empty() {
            self.sql.clone()
        } else {
            format!("WITH {} {}", self.ctes, self.sql)
        }
    }
}

/// Where a write takes its change number from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Seq {
    /// PostgreSQL: the counter's step `c`, a common table expression of the same statement,
    /// which every write runs before it touches a task (so that writers lock the counter
    /// first, and never deadlock).
    Counter,
    /// SQLite: the number the transaction took first ([`bump`]), for a tombstone.
    Taken(i64),
    /// SQLite: the number migration 0006's triggers give each row the statement inserts or
    /// changes (the statement writes a placeholder 0).
    Trigger,
}

impl Seq {
    /// What [`super::insert_statement`] shows for SQLite.
    pub(crate) const TAKEN_FOR_BENCH: Seq = Seq::Trigger;

    /// The change number of a task a statement inserts or changes in `dialect`.
    pub(crate) fn of_rows(dialect: Dialect) -> Seq {
        match dialect {
            Dialect::Postgres => Seq::Counter,
            Dialect::Sqlite => Seq::Trigger,
        }
    }

    /// The change number of a delete in `dialect`, once taken (`None` on PostgreSQL,
    /// whose statements take it themselves).
    pub(crate) fn of(dialect: Dialect, taken: Option<i64>) -> Seq {
        match (dialect, taken) {
            (Dialect::Sqlite, Some(n)) => Seq::Taken(n),
            _ => Seq::Counter,
        }
    }
}

impl Builder {
    fn new(dialect: Dialect) -> Self {
        Builder {
            dialect,
            ctes: String::new(),
            sql: String::with_capacity(256),
            params: Vec::new(),
        }
    }

    /// Adds the common table expression `name AS (…)`, its text written by `body`.
    fn with(&mut self, name: &str, body: impl FnOnce(&mut Builder)) -> &mut Self {
        let outer = std::mem::take(&mut self.sql);
        body(self);
        let inner = std::mem::replace(&mut self.sql, outer);
        if !self.ctes.is_empty() {
            self.ctes.push_str(", ");
        }
        let _ = write!(self.ctes, "{name} AS ({inner})");
        self
    }

    /// The change number: the counter's step, or the number taken.
    fn seq(&mut self, seq: Seq) -> &mut Self {
        match seq {
            Seq::Counter => self.sql("(SELECT seq FROM c)"),
            Seq::Taken(n) => self.arg(SqlValue::Int(n), Ty::BigInt),
            Seq::Trigger => self.sql("0"),
        }
    }

    /// On PostgreSQL, the counter's step `c` of `user` (pruning the user's tombstones from
    /// before `prune_before`, when given, into `pruned`): see [`Seq::Counter`].
    fn counter(&mut self, seq: Seq, user: Param, prune_before: Option<Timestamp>) -> &mut Self {
        if !matches!(seq, Seq::Counter) {
            return self;
        }
        let cut = prune_before.map(|t| self.bind(SqlValue::Int(t.as_millis()), Ty::BigInt));
        self.with("c", |b| bump_text(b, user, cut));
        if let Some(cut) = cut {
            self.with("pruned", |b| {
                b.sql("DELETE FROM task_tombstones WHERE user_id = ")
                    .put(user)
                    .sql(" AND deleted_at < ")
                    .put(cut)
                    .sql(" AND (SELECT seq FROM c) IS NOT NULL");
            });
        }
        self
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
            ctes: self.dialect.render(&self.ctes).into_owned(),
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

/// The counter's step for `user`: its next number (1 for a user's first write), and, with
/// `cut`, the highest number of the tombstones older than `cut` recorded as pruned.
/// Returns `seq`.
fn bump_text(b: &mut Builder, user: Param, cut: Option<Param>) {
    // The epoch is drawn for the user's first write only (`Changes::epoch`).
    b.sql("INSERT INTO task_feeds (user_id, seq, epoch) VALUES (")
        .put(user)
        .sql(", 1, ")
        .arg(SqlValue::Int(TaskId::fresh().get()), Ty::BigInt)
        .sql(") ON CONFLICT (user_id) DO UPDATE SET seq = task_feeds.seq + 1");
    if let Some(cut) = cut {
        let greatest = greatest(b.dialect);
        b.sql(", pruned_seq = ")
            .sql(greatest)
            .sql(
                "(task_feeds.pruned_seq, COALESCE((SELECT max(d.seq) FROM task_tombstones d \
                 WHERE d.user_id = ",
            )
            .put(user)
            .sql(" AND d.deleted_at < ")
            .put(cut)
            .sql("), 0))");
    }
    b.sql(" RETURNING seq");
}

/// SQLite: the user's next change number, taken first in a write's transaction (one row:
/// `seq`), recording the tombstones from before `prune_before` as pruned.
pub(crate) fn bump(dialect: Dialect, user: &UserId, prune_before: Option<Timestamp>) -> Statement {
    let mut b = Builder::new(dialect);
    let u = b.bind(text(user.as_str()), Ty::Text);
    let cut = prune_before.map(|t| b.bind(SqlValue::Int(t.as_millis()), Ty::BigInt));
    bump_text(&mut b, u, cut);
    Statement {
        always_returns_a_row: true,
        ..b.finish()
    }
}

/// SQLite: deletes `user`'s tombstones from before `prune_before` (after [`bump`] recorded
/// them as pruned).
pub(crate) fn prune_tombstones(
    dialect: Dialect,
    user: &UserId,
    prune_before: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("DELETE FROM task_tombstones WHERE user_id = ")
        .arg(text(user.as_str()), Ty::Text)
        .sql(" AND deleted_at < ")
        .arg(SqlValue::Int(prune_before.as_millis()), Ty::BigInt);
    b.finish()
}

/// SQLite: the tombstone of task `id`, deleted at `now` as change `seq`.
pub(crate) fn insert_tombstone(
    dialect: Dialect,
    user: &UserId,
    id: TaskId,
    seq: i64,
    now: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("INSERT INTO task_tombstones (user_id, seq, task_id, deleted_at) VALUES (")
        .arg(text(user.as_str()), Ty::Text)
        .sql(", ")
        .arg(SqlValue::Int(seq), Ty::BigInt)
        .sql(", ")
        .arg(SqlValue::Int(id.get()), Ty::BigInt)
        .sql(", ")
        .arg(SqlValue::Int(now.as_millis()), Ty::BigInt)
        .sql(") ON CONFLICT DO NOTHING");
    b.finish()
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
    seq: Seq,
) -> Statement {
    let times = Times::new(new.completed, now);
    insert_task_at(dialect, user, new, id, times, seq)
}

/// A new task's times: all `now`, or an import's own.
#[derive(Clone, Copy)]
pub(crate) struct Times {
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) completed_at: Option<Timestamp>,
}

impl Times {
    pub(crate) fn new(completed: bool, now: Timestamp) -> Times {
        Times {
            created_at: now,
            updated_at: now,
            completed_at: completed.then_some(now),
        }
    }
}

/// [`insert_task`] with the given times.
pub(crate) fn insert_task_at(
    dialect: Dialect,
    user: &UserId,
    new: &NewTask,
    id: TaskId,
    times: Times,
    seq: Seq,
) -> Statement {
    let mut b = Builder::new(dialect);
    // The id is `$1` (tests rely on finding it there), the user `$2`.
    let id_p = b.bind(SqlValue::Int(id.get()), Ty::BigInt);
    let u = b.bind(text(user.as_str()), Ty::Text);
    b.counter(seq, u, None);
    b.sql("INSERT INTO tasks (id, ")
        .sql(INSERT_COLUMNS)
        .sql(match dialect {
            Dialect::Postgres => ", change_seq) OVERRIDING SYSTEM VALUE VALUES (",
            Dialect::Sqlite => ", change_seq) VALUES (",
        });
    b.put(id_p).sql(", ");
    task_values(&mut b, u, new, times);
    b.sql(", ").seq(seq).sql(") RETURNING ").columns("");
    b.finish()
}

/// The columns [`task_values`] gives values for, in order.
const INSERT_COLUMNS: &str = "user_id, title, title_fold, description, description_fold, \
     completed, priority, due_date, created_at, updated_at, completed_at, version";

/// The values of a new task with `times`, comma-separated, every one bound.
fn task_values(b: &mut Builder, user: Param, new: &NewTask, times: Times) {
    b.put(user).sql(", ");
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
    b.arg(SqlValue::Int(times.created_at.as_millis()), Ty::BigInt)
        .sql(", ")
        .arg(SqlValue::Int(times.updated_at.as_millis()), Ty::BigInt)
        .sql(", ")
        .arg(
            times
                .completed_at
                .map_or(SqlValue::Null, |t| SqlValue::Int(t.as_millis())),
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
    // The counter first (every writer locks it before anything else), then the key, which
    // reads from it so that it runs after it.
    b.counter(Seq::Counter, u, None);
    b.with("claimed", |b| {
        b.sql(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, task_id, created_at) SELECT ",
        )
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
            " FROM c ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
                 task_id = excluded.task_id, created_at = excluded.created_at, imported = NULL \
                 WHERE idempotency_keys.created_at <= ",
        )
        .put(cutoff)
        .sql(" RETURNING task_id");
    });
    b.with("inserted", |b| {
        b.sql("INSERT INTO tasks (id, ")
            .sql(INSERT_COLUMNS)
            .sql(", change_seq) OVERRIDING SYSTEM VALUE SELECT claimed.task_id, ");
        task_values(b, u, new, Times::new(new.completed, now));
        b.sql(", (SELECT seq FROM c) FROM claimed RETURNING ")
            .columns("");
    });
    b.with("earlier", |b| {
        b.sql(
            "SELECT k.fingerprint, k.task_id, k.created_at, \
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
        .sql(" AND NOT EXISTS (SELECT 1 FROM claimed)");
    });
    b.sql("SELECT earlier.fingerprint, earlier.task_id, earlier.created_at, earlier.present, ")
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

/// `WHERE id = … AND user_id = … [AND version = …]`, after the counter's step on
/// PostgreSQL (a one-time filter, so the counter is locked before the task).
fn where_task(b: &mut Builder, user: Param, id: Param, expected: Option<Version>, seq: Seq) {
    b.sql(" WHERE ");
    if matches!(seq, Seq::Counter) {
        b.sql("(SELECT seq FROM c) IS NOT NULL AND ");
    }
    b.sql("id = ").put(id).sql(" AND user_id = ").put(user);
    if let Some(v) = expected {
        b.sql(" AND version = ")
            .arg(SqlValue::Int(v.get()), Ty::BigInt);
    }
}

/// The `SET` items that every change ends with: `completed_at` for a new completion state
/// (SET expressions see the old row), `updated_at` that never goes backwards, the version.
fn set_completion_and_touch(b: &mut Builder, completed: Option<Completion>, now: Param, seq: Seq) {
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
    if !matches!(seq, Seq::Trigger) {
        b.sql(", change_seq = ").seq(seq);
    }
}

/// One `UPDATE` applying `patch` (only the columns it holds), returning the task.
pub(crate) fn update_task(
    dialect: Dialect,
    user: &UserId,
    id: TaskId,
    patch: &TaskPatch,
    expected: Option<Version>,
    now: Timestamp,
    seq: Seq,
) -> Statement {
    let mut b = Builder::new(dialect);
    let (u, id) = task_params(&mut b, user, id);
    b.counter(seq, u, None);
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
    set_completion_and_touch(&mut b, patch.completed().map(Completion::Set), now, seq);
    where_task(&mut b, u, id, expected, seq);
    b.sql(" RETURNING ").columns("");
    b.finish()
}

/// Binds the user and the task id, which the counter and the condition share.
fn task_params(b: &mut Builder, user: &UserId, id: TaskId) -> (Param, Param) {
    let id = b.bind(SqlValue::Int(id.get()), Ty::BigInt);
    let u = b.bind(text(user.as_str()), Ty::Text);
    (u, id)
}

/// One `UPDATE` toggling or setting `completed` atomically, returning the task.
pub(crate) fn set_completion(
    dialect: Dialect,
    user: &UserId,
    id: TaskId,
    completion: Completion,
    expected: Option<Version>,
    now: Timestamp,
    seq: Seq,
) -> Statement {
    let mut b = Builder::new(dialect);
    let (u, id) = task_params(&mut b, user, id);
    b.counter(seq, u, None);
    b.sql("UPDATE tasks SET ");
    let now = b.bind(SqlValue::Int(now.as_millis()), Ty::BigInt);
    set_completion_and_touch(&mut b, Some(completion), now, seq);
    where_task(&mut b, u, id, expected, seq);
    b.sql(" RETURNING ").columns("");
    b.finish()
}

/// `DELETE` of one task, returning its id. On PostgreSQL the same statement takes the
/// counter's step, prunes the user's tombstones from before `clock.prune_before` and leaves
/// the task's own; on SQLite the store does those in the transaction ([`insert_tombstone`],
/// [`prune_tombstones`]).
pub(crate) fn delete_task(
    dialect: Dialect,
    user: &UserId,
    id: TaskId,
    expected: Option<Version>,
    clock: Clock,
    seq: Seq,
) -> Statement {
    let mut b = Builder::new(dialect);
    let (u, id) = task_params(&mut b, user, id);
    b.counter(seq, u, Some(clock.prune_before));
    let gone = |b: &mut Builder| {
        b.sql("DELETE FROM tasks");
        where_task(b, u, id, expected, seq);
        b.sql(" RETURNING id");
    };
    if matches!(seq, Seq::Counter) {
        b.with("gone", gone);
        tombstones_of_gone(&mut b, u, clock.now);
        b.sql("SELECT id FROM gone");
    } else {
        gone(&mut b);
    }
    b.finish()
}

/// PostgreSQL: the tombstones of the tasks in `gone`, at `now` (a common table expression).
fn tombstones_of_gone(b: &mut Builder, u: Param, now: Timestamp) {
    b.with("tomb", |b| {
        b.sql("INSERT INTO task_tombstones (user_id, seq, task_id, deleted_at) SELECT ")
            .put(u)
            .sql(", (SELECT seq FROM c), id, ")
            .arg(SqlValue::Int(now.as_millis()), Ty::BigInt)
            .sql(" FROM gone");
    });
}

/// `DELETE` of every completed task of `user`, returning their ids (on PostgreSQL with the
/// counter's step and the tombstones, as [`delete_task`]).
pub(crate) fn clear_completed(
    dialect: Dialect,
    user: &UserId,
    clock: Clock,
    seq: Seq,
) -> Statement {
    let mut b = Builder::new(dialect);
    let u = b.bind(text(user.as_str()), Ty::Text);
    b.counter(seq, u, Some(clock.prune_before));
    let gone = |b: &mut Builder| {
        b.sql("DELETE FROM tasks WHERE ");
        if matches!(seq, Seq::Counter) {
            b.sql("(SELECT seq FROM c) IS NOT NULL AND ");
        }
        b.sql("user_id = ")
            .put(u)
            .sql(" AND completed RETURNING id");
    };
    if matches!(seq, Seq::Counter) {
        b.with("gone", gone);
        tombstones_of_gone(&mut b, u, clock.now);
        b.sql("SELECT id FROM gone");
    } else {
        gone(&mut b);
    }
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
             task_id = NULL, created_at = excluded.created_at, imported = NULL \
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

/// The task id a `… RETURNING id` row holds.
pub(crate) fn decode_id(row: &[SqlValue]) -> Result<TaskId, StoreError> {
    row.first()
        .map(|v| int(v, "id"))
        .transpose()?
        .and_then(TaskId::new)
        .ok_or_else(|| bad_row("id", "is not a task id"))
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

/// The change feed of `user` after `after`: one statement, always one row or more. Each row
/// is `head, pruned_seq, epoch` (the user's counter, `NULL` before any write), then a change or
/// `NULL`s: `kind` (0 upsert, 1 delete), `seq`, `deleted_at`, and the task's columns (only
/// `id` for a delete). At most `limit` changes in feed order, tombstones from before
/// `horizon` left out. Read by [`decode_changes`].
///
/// Each half is ordered and limited on its own first, so that each walks its index
/// (`tasks_user_change`, the tombstones' primary key) from `after` and reads at most `limit`
/// rows, whatever the number of tasks.
pub(crate) fn changes(
    dialect: Dialect,
    user: &UserId,
    after: FeedPosition,
    limit: u32,
    horizon: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    let u = b.bind(text(user.as_str()), Ty::Text);
    let s = b.bind(SqlValue::Int(after.seq), Ty::BigInt);
    let i = b.bind(SqlValue::Int(after.id), Ty::BigInt);
    let n = b.bind(SqlValue::Int(i64::from(limit) + 1), Ty::BigInt);
    b.sql("SELECT f.seq, f.pruned_seq, f.epoch, ch.kind, ch.seq, ch.deleted_at, ")
        .columns("ch.")
        .sql(" FROM (SELECT 1) AS one LEFT JOIN task_feeds f ON f.user_id = ")
        .put(u)
        .sql(" LEFT JOIN (SELECT * FROM (SELECT * FROM (SELECT 0 AS kind, t.change_seq AS seq, CAST(NULL AS BIGINT) AS deleted_at, ")
        .columns("t.")
        .sql(" FROM tasks t WHERE t.user_id = ")
        .put(u)
        .sql(" AND (t.change_seq, t.id) > (")
        .put(s)
        .sql(", ")
        .put(i)
        .sql(") ORDER BY t.change_seq, t.id LIMIT ")
        .put(n)
        .sql(") AS up UNION ALL SELECT * FROM (SELECT 1, d.seq, d.deleted_at, d.task_id, ")
        // Typed: PostgreSQL reads an untyped NULL of a subquery as text.
        .sql(
            "CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS BOOLEAN), \
             CAST(NULL AS SMALLINT), CAST(NULL AS TEXT), CAST(NULL AS BIGINT), \
             CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)",
        );
    b.sql(" FROM task_tombstones d WHERE d.user_id = ")
        .put(u)
        .sql(" AND d.deleted_at >= ")
        .arg(SqlValue::Int(horizon.as_millis()), Ty::BigInt)
        .sql(" AND (d.seq, d.task_id) > (")
        .put(s)
        .sql(", ")
        .put(i)
        .sql(") ORDER BY d.seq, d.task_id LIMIT ")
        .put(n)
        .sql(") AS down) AS both_halves ORDER BY seq, id LIMIT ")
        .put(n)
        .sql(") AS ch ON true ORDER BY ch.seq, ch.id");
    Statement {
        always_returns_a_row: true,
        ..b.finish()
    }
}

/// The rows of [`changes`] (`has_more` not yet decided: the caller asked for one more).
pub(crate) fn decode_changes(rows: &[Vec<SqlValue>]) -> Result<Changes, StoreError> {
    let mut out = Changes::default();
    for row in rows {
        let [h, p, e, kind, seq, deleted_at, task @ ..] = row.as_slice() else {
            return Err(bad_row("changes", "has too few columns"));
        };
        out.head = opt_int(h, "task_feeds.seq")?.unwrap_or(0);
        out.pruned_through = opt_int(p, "task_feeds.pruned_seq")?.unwrap_or(0);
        out.epoch = opt_int(e, "task_feeds.epoch")?.unwrap_or(0);
        let Some(kind) = opt_int(kind, "kind")? else {
            continue;
        };
        let seq = int(seq, "seq")?;
        let change = if kind == 0 {
            Change::Upsert(decode_task(task)?)
        } else {
            let id = task
                .first()
                .map(|v| int(v, "task_id"))
                .transpose()?
                .and_then(TaskId::new)
                .ok_or_else(|| bad_row("task_tombstones.task_id", "is not a task id"))?;
            let at = int(deleted_at, "deleted_at")?;
            Change::Delete {
                id,
                deleted_at: Timestamp::from_millis(at),
            }
        };
        let position = FeedPosition {
            seq,
            id: change.task_id().get(),
        };
        out.changes.push((position, change));
    }
    Ok(out)
}

/// A page of `user`'s tasks for an export: in creation order, after `after`.
pub(crate) fn export_page(
    dialect: Dialect,
    user: &UserId,
    after: Option<(Timestamp, TaskId)>,
    limit: u32,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("SELECT ")
        .columns("")
        .sql(" FROM tasks WHERE user_id = ")
        .arg(text(user.as_str()), Ty::Text);
    if let Some((created_at, id)) = after {
        b.sql(" AND (created_at, id) > (")
            .arg(SqlValue::Int(created_at.as_millis()), Ty::BigInt)
            .sql(", ")
            .arg(SqlValue::Int(id.get()), Ty::BigInt)
            .sql(")");
    }
    b.sql(" ORDER BY created_at, id LIMIT ")
        .arg(SqlValue::Int(i64::from(limit)), Ty::BigInt);
    b.finish()
}

/// PostgreSQL: one call of `task_api_batch` (migration 0006) with the operations as JSON
/// ([`batch_json`]). Rows: `r_ord, r_replayed, r_imported`, then a task's columns.
pub(crate) fn call_batch(user: &UserId, ops: String, clock: Clock) -> Statement {
    let mut b = Builder::new(Dialect::Postgres);
    b.sql("SELECT * FROM task_api_batch(")
        .arg(text(user.as_str()), Ty::Text)
        .sql(", (")
        .arg(SqlValue::Text(ops), Ty::Text)
        .sql(")::jsonb, ")
        .arg(SqlValue::Int(clock.now.as_millis()), Ty::BigInt)
        .sql(", ")
        .arg(SqlValue::Int(clock.prune_before.as_millis()), Ty::BigInt)
        .sql(", ")
        .arg(
            SqlValue::Int(clock.now.as_millis().saturating_sub(IDEMPOTENCY_TTL_MS)),
            Ty::BigInt,
        )
        .sql(", ")
        .arg(SqlValue::Int(TaskId::fresh().get()), Ty::BigInt)
        .sql(")");
    b.finish()
}

/// One operation for `task_api_batch`: a create of `new` under `id` with `times`.
pub(crate) fn create_json(
    new: &NewTask,
    id: TaskId,
    times: Times,
    key: Option<&Idempotency>,
    quiet: bool,
) -> serde_json::Value {
    let mut o = serde_json::json!({
        "op": "create",
        "id": id.get(),
        "title": new.title.as_str(),
        "title_fold": new.title.folded(),
        "description": new.description.as_ref().map(Description::as_str),
        "description_fold": new.description.as_ref().map(Description::folded),
        "completed": new.completed,
        "priority": new.priority.rank(),
        "due_date": new.due_date.map(|d| d.to_string()),
        "created_at": times.created_at.as_millis(),
        "updated_at": times.updated_at.as_millis(),
        "completed_at": times.completed_at.map(Timestamp::as_millis),
    });
    if let Some(idem) = key {
        o["key"] = idem.key.as_str().into();
        o["fingerprint"] = idem.fingerprint.as_str().into();
    }
    if quiet {
        o["quiet"] = true.into();
    }
    o
}

/// One operation for `task_api_batch`: an update (only the fields the patch holds).
pub(crate) fn update_json(
    id: TaskId,
    patch: &TaskPatch,
    expected: Option<Version>,
) -> serde_json::Value {
    let mut o = serde_json::json!({ "op": "update", "id": id.get() });
    if let Some(v) = expected {
        o["expected"] = v.get().into();
    }
    if let Some(title) = patch.title() {
        o["title"] = title.as_str().into();
        o["title_fold"] = title.folded().into();
    }
    if let Some(description) = patch.description() {
        o["description"] = description.map(Description::as_str).into();
        o["description_fold"] = description.map(Description::folded).into();
    }
    if let Some(priority) = patch.priority() {
        o["priority"] = priority.rank().into();
    }
    if let Some(due) = patch.due_date() {
        o["due_date"] = due.map(|d| d.to_string()).into();
    }
    if let Some(completed) = patch.completed() {
        o["completed"] = completed.into();
    }
    o
}

/// One operation for `task_api_batch`: a delete.
pub(crate) fn delete_json(id: TaskId, expected: Option<Version>) -> serde_json::Value {
    let mut o = serde_json::json!({ "op": "delete", "id": id.get() });
    if let Some(v) = expected {
        o["expected"] = v.get().into();
    }
    o
}

/// SQLite: claims an import's idempotency key (as [`claim_key`], remembering the count).
pub(crate) fn claim_import_key(
    dialect: Dialect,
    user: &UserId,
    idem: &Idempotency,
    count: u64,
    now: Timestamp,
) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("INSERT INTO idempotency_keys (user_id, key, fingerprint, task_id, created_at, imported) VALUES (")
        .arg(text(user.as_str()), Ty::Text)
        .sql(", ")
        .arg(text(idem.key.as_str()), Ty::Text)
        .sql(", ")
        .arg(text(&idem.fingerprint), Ty::Text)
        .sql(", NULL, ")
        .arg(SqlValue::Int(now.as_millis()), Ty::BigInt)
        .sql(", ")
        .arg(SqlValue::Int(i64::try_from(count).unwrap_or(i64::MAX)), Ty::BigInt)
        .sql(
            ") ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, \
             task_id = NULL, created_at = excluded.created_at, imported = excluded.imported \
             WHERE idempotency_keys.created_at <= ",
        )
        .arg(
            SqlValue::Int(now.as_millis().saturating_sub(IDEMPOTENCY_TTL_MS)),
            Ty::BigInt,
        );
    b.finish()
}

/// SQLite: the earlier import of a live key: `fingerprint, task_id, imported`.
pub(crate) fn select_import_key(dialect: Dialect, user: &UserId, idem: &Idempotency) -> Statement {
    let mut b = Builder::new(dialect);
    b.sql("SELECT fingerprint, task_id, imported FROM idempotency_keys WHERE user_id = ")
        .arg(text(user.as_str()), Ty::Text)
        .sql(" AND key = ")
        .arg(text(idem.key.as_str()), Ty::Text);
    b.finish()
}

/// Whether an earlier import (`fingerprint, task_id, imported`) is a replay of `idem`: its
/// count, or `None` when the key was used for something else.
pub(crate) fn decode_import_key(
    row: &[SqlValue],
    idem: &Idempotency,
) -> Result<Option<u64>, StoreError> {
    let [fp, task, imported, ..] = row else {
        return Err(bad_row("idempotency_keys", "has too few columns"));
    };
    let same = string(fp, "fingerprint")? == idem.fingerprint && matches!(task, SqlValue::Null);
    Ok(match (same, opt_int(imported, "imported")?) {
        (true, Some(n)) => Some(u64::try_from(n).unwrap_or(0)),
        _ => None,
    })
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
            let seq = Seq::of_rows(dialect);
            let st = insert_task(dialect, &user, &new, id, Timestamp::from_millis(5), seq);
            let sql = st.full_sql();
            assert!(!sql.contains("brien") && !sql.contains("DROP"), "{sql}");
            // The id, the user, the ten values of a task (the times apart); the change
            // number comes from the counter in the statement (PostgreSQL, with its epoch
            // for a first write) or from the trigger (SQLite).
            let expected = if dialect == Dialect::Sqlite { 12 } else { 13 };
            assert_eq!(st.params.len(), expected);
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
