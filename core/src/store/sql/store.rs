//! [`SqlStore`]: the [`TaskStore`] and [`AccountStore`] over an [`Executor`], for PostgreSQL
//! and SQLite.

use super::statements::{self, Statement};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use super::migrate::{migrate, schema_is_current};
use super::statements::{Seq, Times};
use super::{DbError, Dialect, Executor, SqlValue, guarded_with, unguard};
use crate::domain::account::{Email, User};
use crate::domain::ids::{TaskId, UserId, Version};
use crate::domain::listing::ListQuery;
use crate::domain::task::{Completion, NewTask, Task, TaskPatch};
use crate::domain::time::Timestamp;
use crate::store::accounts::{AccountStore, ThrottleKey};
use crate::store::changes::{Changes, Clock, FeedPosition, Imported, ImportedTask};
use crate::store::tasks::{
    BatchFailure, BatchOp, BatchResult, Created, Idempotency, Page, StoreError, TaskStore,
};

/// An imported task's own times.
fn import_times(t: &ImportedTask) -> Times {
    Times {
        created_at: t.created_at,
        updated_at: t.updated_at,
        completed_at: t.completed_at,
    }
}

/// The results of `task_api_batch`, one row per operation in order.
fn batch_results(
    ops: &[BatchOp],
    rows: &[Vec<SqlValue>],
) -> Result<Vec<BatchResult>, BatchFailure> {
    if rows.len() != ops.len() {
        return Err(StoreError::Other(format!(
            "task_api_batch returned {} rows for {} operations",
            rows.len(),
            ops.len()
        ))
        .into());
    }
    ops.iter()
        .zip(rows)
        .map(|(op, row)| {
            let (replayed, task) = match row.as_slice() {
                [_, replayed, _, task @ ..] => (*replayed == SqlValue::Bool(true), task),
                _ => return Err(StoreError::Other("undecodable batch row".into()).into()),
            };
            Ok(match op {
                BatchOp::Create { .. } => BatchResult::Created(Created {
                    task: statements::decode_task(task)?,
                    replayed,
                }),
                BatchOp::Update { .. } => BatchResult::Updated(statements::decode_task(task)?),
                BatchOp::Delete { id, .. } => BatchResult::Deleted(*id),
            })
        })
        .collect()
}

/// A [`TaskStore`] and [`AccountStore`] in a PostgreSQL or SQLite database reached through `E`.
///
/// The schema must be current (see [`super::migrate`]), or the store must be told to bring
/// it up to date itself ([`SqlStore::with_auto_migrate`]). The store holds nothing besides
/// the executor and a flag, so it is as cheap to create per request as the executor is.
#[derive(Debug)]
pub struct SqlStore<E> {
    executor: E,
    dialect: Dialect,
    auto_migrate: bool,
    /// Set when a statement found a table or column missing; read by `migrating!`.
    schema_missing: AtomicBool,
}

/// The one mapping from executor errors to store errors: an unreachable database is
/// [`StoreError::Unavailable`] (503), a misconfigured one [`StoreError::Misconfigured`]
/// (500 naming the setting), anything else [`StoreError::Other`] (500). No operation
/// expects a constraint violation: conflicts are handled in SQL (`ON CONFLICT`, conditional
/// updates), so a violation means a bug and is reported as one.
fn store_error(e: DbError) -> StoreError {
    // (A missing schema is seen in `SqlStore::run` before it gets here.)
    match e {
        DbError::Unavailable(m) => StoreError::Unavailable(m),
        DbError::Misconfigured(m) => StoreError::Misconfigured(m),
        other => StoreError::Other(other.to_string()),
    }
}

impl<E: Executor> SqlStore<E> {
    /// A store over `executor`, speaking `dialect`.
    pub fn new(executor: E, dialect: Dialect) -> Self {
        SqlStore {
            executor,
            dialect,
            auto_migrate: false,
            schema_missing: AtomicBool::new(false),
        }
    }

    /// With `on`, the store applies pending migrations itself: when a statement finds a
    /// table or column missing, it migrates and runs the operation once more, and
    /// [`TaskStore::ping`] (readiness) checks that every migration is applied and applies
    /// the missing ones. So a fresh database works with no manual step and costs nothing
    /// per request once the schema is there.
    ///
    /// ```
    /// # use task_api_core::sql::{DbError, Dialect, Executor, SqlStore, SqlValue};
    /// # struct Nothing;
    /// # impl Executor for Nothing {
    /// #     async fn query(&self, _: &str, _: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> { Ok(vec![]) }
    /// #     async fn execute(&self, _: &str, _: &[SqlValue]) -> Result<u64, DbError> { Ok(0) }
    /// # }
    /// let store = SqlStore::new(Nothing, Dialect::Sqlite).with_auto_migrate(true);
    /// # let _ = store;
    /// ```
    pub fn with_auto_migrate(mut self, on: bool) -> Self {
        self.auto_migrate = on;
        self
    }

    /// Whether an operation that just failed should run again after migrating: it failed
    /// on a missing schema, and auto-migration is on. Clears the flag.
    fn migration_due(&self) -> bool {
        self.auto_migrate && self.schema_missing.swap(false, Relaxed)
    }

    async fn migrate_now(&self) -> Result<(), StoreError> {
        migrate(&self.executor, self.dialect)
            .await
            .map(drop)
            .map_err(store_error)
    }

    fn seen(&self, e: DbError) -> StoreError {
        if matches!(e, DbError::SchemaMissing(_)) {
            self.schema_missing.store(true, Relaxed);
        }
        store_error(e)
    }

    /// The executor, e.g. to run [`super::migrate`] on the same connection.
    pub fn executor(&self) -> &E {
        &self.executor
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Gives the executor back.
    pub fn into_executor(self) -> E {
        self.executor
    }

    /// Sends a row-returning statement, behind the guard against empty results unless it
    /// always returns a row.
    async fn rows(&self, st: &Statement) -> Result<Vec<Vec<SqlValue>>, DbError> {
        if st.always_returns_a_row || self.dialect == Dialect::Sqlite {
            self.executor.query(&st.full_sql(), &st.params).await
        } else {
            let sql = guarded_with(&st.ctes, &st.sql);
            Ok(unguard(self.executor.query(&sql, &st.params).await?))
        }
    }

    async fn query(&self, st: Statement) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        self.rows(&st).await.map_err(|e| self.seen(e))
    }

    async fn execute(&self, st: Statement) -> Result<u64, StoreError> {
        self.executor
            .execute(&st.full_sql(), &st.params)
            .await
            .map_err(|e| self.seen(e))
    }

    async fn plain(&self, sql: &str) -> Result<u64, StoreError> {
        self.executor
            .execute(sql, &[])
            .await
            .map_err(|e| self.seen(e))
    }

    /// The one task a statement returned.
    fn one_task(rows: Vec<Vec<SqlValue>>) -> Result<Option<Task>, StoreError> {
        match rows.as_slice() {
            [] => Ok(None),
            [row] => statements::decode_task(row).map(Some),
            _ => Err(StoreError::Other(format!(
                "expected at most one task row, got {}",
                rows.len()
            ))),
        }
    }

    /// After a conditional statement touched no row: does the task exist (then the version
    /// did not match) or not? Only on this failure path is the second query sent.
    async fn missing(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
    ) -> Result<StoreError, StoreError> {
        if expected.is_none() {
            return Ok(StoreError::NotFound);
        }
        let rows = self
            .query(statements::select_version(self.dialect, user, id))
            .await?;
        Ok(if rows.is_empty() {
            StoreError::NotFound
        } else {
            StoreError::VersionConflict
        })
    }

    /// Runs a conditional `UPDATE … RETURNING` of task `id`: the task as changed, or why no
    /// row was touched.
    async fn changed_task(
        &self,
        st: Statement,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
    ) -> Result<Task, StoreError> {
        match Self::one_task(self.query(st).await?)? {
            Some(task) => Ok(task),
            None => Err(self.missing(user, id, expected).await?),
        }
    }

    /// Runs a statement that inserts a task with a fresh id: the rows it returned, or
    /// [`Insert::IdTaken`] when a task already has that id (the statement changed nothing).
    async fn insert_query(&self, st: Statement) -> Result<Insert<Vec<Vec<SqlValue>>>, StoreError> {
        match self.rows(&st).await {
            Ok(rows) => Ok(Insert::Done(rows)),
            // The only unique constraint these statements can break is the task's primary
            // key: the key's conflicts are `ON CONFLICT` clauses.
            Err(DbError::UniqueViolation(_)) => Ok(Insert::IdTaken),
            Err(e) => Err(self.seen(e)),
        }
    }

    /// The idempotent create on PostgreSQL: one statement
    /// ([`statements::create_with_key_postgres`]), run a second time only when a concurrent
    /// create with the same key committed while the first waited.
    async fn create_with_key_postgres(
        &self,
        user: &UserId,
        task: &NewTask,
        idem: &Idempotency,
        id: TaskId,
        now: Timestamp,
    ) -> Result<Insert<Created>, StoreError> {
        for _ in 0..2 {
            let st = statements::create_with_key_postgres(user, task, idem, id, now);
            let Insert::Done(rows) = self.insert_query(st).await? else {
                return Ok(Insert::IdTaken);
            };
            let row = rows
                .first()
                .ok_or_else(|| StoreError::Other("the create returned no row".into()))?;
            let (earlier, created) = row.split_at(4);
            if !statements::is_null_task(created) {
                return Ok(Insert::Done(Created {
                    task: statements::decode_task(created)?,
                    replayed: false,
                }));
            }
            if earlier.first() != Some(&SqlValue::Null) {
                return statements::decode_earlier(earlier, user, task, idem).map(|task| {
                    Insert::Done(Created {
                        task,
                        replayed: true,
                    })
                });
            }
        }
        Err(StoreError::Other(
            "an idempotency key was neither claimed nor found twice".into(),
        ))
    }
}

/// What a create with a fresh id came to.
enum Insert<T> {
    Done(T),
    /// Another task has the id; nothing was written, and a new id may be drawn.
    IdTaken,
}

/// How many fresh ids a create draws before it reports the collisions as an error. Two
/// draws in a row collide with odds below 10^-20 for a table of a million tasks, so a third
/// failure is not chance: an id source that repeats itself is a bug to report.
const ID_DRAWS: usize = 3;

// The operations, each run once; `TaskStore` runs them through `migrating!`.
impl<E: Executor> SqlStore<E> {
    /// Starts a write. On SQLite: `BEGIN IMMEDIATE`, then the user's next change number
    /// (pruning the user's tombstones from before `prune_before`, when given), which is
    /// returned; the write's statements then use it ([`Seq::Taken`]) and
    /// [`SqlStore::end_write`] commits. On PostgreSQL nothing: each write is one statement
    /// that takes its number itself ([`Seq::Counter`]).
    async fn begin_write(
        &self,
        user: &UserId,
        prune_before: Option<Timestamp>,
    ) -> Result<Option<i64>, StoreError> {
        let d = self.dialect;
        if d == Dialect::Postgres {
            return Ok(None);
        }
        self.plain(statements::begin(d)).await?;
        let taken = async {
            let rows = self.query(statements::bump(d, user, prune_before)).await?;
            let seq = match rows.first().and_then(|r| r.first()) {
                Some(SqlValue::Int(n)) => *n,
                _ => return Err(StoreError::Other("undecodable task_feeds row".into())),
            };
            if let Some(cut) = prune_before {
                self.execute(statements::prune_tombstones(d, user, cut))
                    .await?;
            }
            Ok(seq)
        }
        .await;
        match taken {
            Ok(seq) => Ok(Some(seq)),
            Err(e) => {
                let _ = self.plain("ROLLBACK").await;
                Err(e)
            }
        }
    }

    /// On SQLite, the user's next change number inside an open transaction (for a
    /// tombstone).
    async fn take_number(&self, user: &UserId) -> Result<i64, StoreError> {
        let rows = self
            .query(statements::bump(self.dialect, user, None))
            .await?;
        match rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Int(n)) => Ok(*n),
            _ => Err(StoreError::Other("undecodable task_feeds row".into())),
        }
    }

    /// On SQLite, `BEGIN IMMEDIATE` for a write of several statements whose rows take their
    /// numbers from the triggers; `Some(0)` then, for [`SqlStore::end_write`].
    async fn begin_tx(&self) -> Result<Option<i64>, StoreError> {
        if self.dialect == Dialect::Postgres {
            return Ok(None);
        }
        self.plain(statements::begin(self.dialect)).await?;
        Ok(Some(0))
    }

    /// Ends a write [`SqlStore::begin_write`] or [`SqlStore::begin_tx`] started: commits
    /// its outcome, or rolls back.
    async fn end_write<T>(
        &self,
        taken: Option<i64>,
        outcome: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if taken.is_none() {
            return outcome;
        }
        match outcome {
            Ok(v) => match self.plain("COMMIT").await {
                Ok(_) => Ok(v),
                Err(e) => {
                    let _ = self.plain("ROLLBACK").await;
                    Err(e)
                }
            },
            Err(e) => {
                // Never leave half-written rows; the original error is the one to report.
                let _ = self.plain("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn create_once(
        &self,
        user: &UserId,
        task: &NewTask,
        idempotency: Option<&Idempotency>,
        now: Timestamp,
    ) -> Result<Created, StoreError> {
        // A create without a key is one statement (on SQLite, its number from the trigger).
        let taken = match idempotency {
            Some(_) => self.begin_tx().await?,
            None => None,
        };
        let seq = Seq::of_rows(self.dialect);
        let outcome = match (self.dialect, idempotency) {
            (Dialect::Postgres, Some(idem)) => {
                self.create_with_key_postgres_drawing(user, task, idem, now)
                    .await
            }
            (_, Some(idem)) => {
                self.create_with_key_sqlite(user, task, idem, now, seq)
                    .await
            }
            (_, None) => {
                self.insert_drawing(user, task, Times::new(task.completed, now), seq)
                    .await
            }
        };
        self.end_write(taken, outcome).await
    }

    /// Inserts `task` under fresh ids until one is free (at most [`ID_DRAWS`]).
    async fn insert_drawing(
        &self,
        user: &UserId,
        task: &NewTask,
        times: Times,
        seq: Seq,
    ) -> Result<Created, StoreError> {
        for _ in 0..ID_DRAWS {
            let st =
                statements::insert_task_at(self.dialect, user, task, TaskId::fresh(), times, seq);
            if let Insert::Done(rows) = self.insert_query(st).await? {
                let task = Self::one_task(rows)?
                    .ok_or_else(|| StoreError::Other("INSERT returned no row".into()))?;
                return Ok(Created {
                    task,
                    replayed: false,
                });
            }
        }
        Err(StoreError::Other(format!(
            "{ID_DRAWS} fresh task ids in a row were taken"
        )))
    }

    async fn create_with_key_postgres_drawing(
        &self,
        user: &UserId,
        task: &NewTask,
        idem: &Idempotency,
        now: Timestamp,
    ) -> Result<Created, StoreError> {
        for _ in 0..ID_DRAWS {
            if let Insert::Done(created) = self
                .create_with_key_postgres(user, task, idem, TaskId::fresh(), now)
                .await?
            {
                return Ok(created);
            }
        }
        Err(StoreError::Other(format!(
            "{ID_DRAWS} fresh task ids in a row were taken"
        )))
    }

    /// The idempotent create on SQLite, inside the write's transaction: claim the key, or
    /// replay it; insert; record the task on the key. A concurrent create with the same key
    /// waits on the write lock, then finds the committed key and replays it.
    async fn create_with_key_sqlite(
        &self,
        user: &UserId,
        task: &NewTask,
        idem: &Idempotency,
        now: Timestamp,
        seq: Seq,
    ) -> Result<Created, StoreError> {
        let d = self.dialect;
        let claimed = self
            .execute(statements::claim_key(d, user, idem, now))
            .await?;
        if claimed == 0 {
            // A live key: replay it, or refuse a different body.
            let rows = self.query(statements::select_key(d, user, idem)).await?;
            let row = rows
                .first()
                .ok_or_else(|| StoreError::Other("idempotency key vanished".into()))?;
            return statements::decode_earlier(row, user, task, idem).map(|task| Created {
                task,
                replayed: true,
            });
        }
        let created = self
            .insert_drawing(user, task, Times::new(task.completed, now), seq)
            .await?;
        self.execute(statements::set_key_task(d, user, idem, created.task.id))
            .await?;
        Ok(created)
    }

    async fn get_once(&self, user: &UserId, id: TaskId) -> Result<Task, StoreError> {
        let rows = self
            .query(statements::select_task(self.dialect, user, id))
            .await?;
        Self::one_task(rows)?.ok_or(StoreError::NotFound)
    }

    async fn list_once(&self, user: &UserId, query: &ListQuery) -> Result<Page, StoreError> {
        let rows = self
            .query(statements::list(self.dialect, user, query))
            .await?;
        let mut total = 0;
        let mut tasks = Vec::with_capacity(rows.len());
        for row in &rows {
            total = match row.first() {
                Some(SqlValue::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => return Err(StoreError::Other("undecodable list total".into())),
            };
            if !statements::is_null_task(&row[1..]) {
                tasks.push(statements::decode_task(&row[1..])?);
            }
        }
        let limit = query.limit() as usize;
        let has_more = tasks.len() > limit;
        tasks.truncate(limit);
        Ok(Page {
            tasks,
            total,
            has_more,
        })
    }

    async fn update_once(
        &self,
        user: &UserId,
        id: TaskId,
        patch: &TaskPatch,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let seq = Seq::of_rows(self.dialect);
        let st = statements::update_task(self.dialect, user, id, patch, expected, now, seq);
        self.changed_task(st, user, id, expected).await
    }

    async fn set_completion_once(
        &self,
        user: &UserId,
        id: TaskId,
        completion: Completion,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let seq = Seq::of_rows(self.dialect);
        let st = statements::set_completion(self.dialect, user, id, completion, expected, now, seq);
        self.changed_task(st, user, id, expected).await
    }

    async fn delete_once(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
        clock: Clock,
    ) -> Result<(), StoreError> {
        let taken = self.begin_write(user, Some(clock.prune_before)).await?;
        let outcome = self.delete_in(user, id, expected, clock, taken).await;
        self.end_write(taken, outcome).await
    }

    /// Deletes one task inside a write (with its tombstone).
    async fn delete_in(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
        clock: Clock,
        taken: Option<i64>,
    ) -> Result<(), StoreError> {
        let seq = Seq::of(self.dialect, taken);
        let rows = self
            .query(statements::delete_task(
                self.dialect,
                user,
                id,
                expected,
                clock,
                seq,
            ))
            .await?;
        if rows.is_empty() {
            return Err(self.missing(user, id, expected).await?);
        }
        if let Some(n) = taken {
            self.execute(statements::insert_tombstone(
                self.dialect,
                user,
                id,
                n,
                clock.now,
            ))
            .await?;
        }
        Ok(())
    }

    async fn clear_completed_once(&self, user: &UserId, clock: Clock) -> Result<u64, StoreError> {
        let taken = self.begin_write(user, Some(clock.prune_before)).await?;
        let outcome = async {
            let seq = Seq::of(self.dialect, taken);
            let rows = self
                .query(statements::clear_completed(self.dialect, user, clock, seq))
                .await?;
            if let Some(n) = taken {
                for row in &rows {
                    let id = statements::decode_id(row)?;
                    self.execute(statements::insert_tombstone(
                        self.dialect,
                        user,
                        id,
                        n,
                        clock.now,
                    ))
                    .await?;
                }
            }
            Ok(rows.len() as u64)
        }
        .await;
        self.end_write(taken, outcome).await
    }

    async fn changes_once(
        &self,
        user: &UserId,
        after: FeedPosition,
        limit: u32,
        horizon: Timestamp,
    ) -> Result<Changes, StoreError> {
        let rows = self
            .query(statements::changes(
                self.dialect,
                user,
                after,
                limit,
                horizon,
            ))
            .await?;
        let mut page = statements::decode_changes(&rows)?;
        page.has_more = page.changes.len() > limit as usize;
        page.changes.truncate(limit as usize);
        Ok(page)
    }

    async fn export_once(
        &self,
        user: &UserId,
        after: Option<(Timestamp, TaskId)>,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        let rows = self
            .query(statements::export_page(self.dialect, user, after, limit))
            .await?;
        rows.iter().map(|r| statements::decode_task(r)).collect()
    }

    /// A batch on PostgreSQL: one call of `task_api_batch`, drawn again when a fresh id was
    /// taken.
    async fn batch_postgres(
        &self,
        user: &UserId,
        ops: &[BatchOp],
        clock: Clock,
    ) -> Result<Vec<BatchResult>, BatchFailure> {
        for _ in 0..ID_DRAWS {
            let json: Vec<serde_json::Value> = ops
                .iter()
                .map(|op| match op {
                    BatchOp::Create { task, idempotency } => statements::create_json(
                        task,
                        TaskId::fresh(),
                        Times::new(task.completed, clock.now),
                        idempotency.as_ref(),
                        false,
                    ),
                    BatchOp::Update {
                        id,
                        patch,
                        expected,
                    } => statements::update_json(*id, patch, *expected),
                    BatchOp::Delete { id, expected } => statements::delete_json(*id, *expected),
                })
                .collect();
            let st = statements::call_batch(user, serde_json::Value::from(json).to_string(), clock);
            match self.rows(&st).await {
                Ok(rows) => return batch_results(ops, &rows),
                Err(DbError::UniqueViolation(_)) => continue,
                Err(e) => return Err(self.refused(e)),
            }
        }
        Err(StoreError::Other(format!("{ID_DRAWS} fresh task ids in a row were taken")).into())
    }

    /// A failure of `task_api_batch`: the operation it names, or the store's error.
    fn refused(&self, e: DbError) -> BatchFailure {
        let DbError::Rule(state) = &e else {
            return self.seen(e).into();
        };
        let error = match &state[..2] {
            "TN" => StoreError::NotFound,
            "TV" => StoreError::VersionConflict,
            _ => StoreError::IdempotencyKeyReused,
        };
        BatchFailure {
            index: state[2..].parse().ok(),
            error,
        }
    }

    /// A batch on SQLite: the operations one by one in one write transaction.
    async fn batch_sqlite(
        &self,
        user: &UserId,
        ops: &[BatchOp],
        clock: Clock,
    ) -> Result<Vec<BatchResult>, BatchFailure> {
        // The first number prunes the user's old tombstones; each create and update then
        // takes its number from the triggers, and each delete one of its own, so that the
        // batch's changes are consecutive in the feed.
        let taken = self.begin_write(user, Some(clock.prune_before)).await?;
        let seq = Seq::of_rows(self.dialect);
        let mut results = Vec::with_capacity(ops.len());
        let mut failed = None;
        for (index, op) in ops.iter().enumerate() {
            let outcome = match op {
                BatchOp::Create { task, idempotency } => match idempotency {
                    Some(idem) => {
                        self.create_with_key_sqlite(user, task, idem, clock.now, seq)
                            .await
                    }
                    None => {
                        self.insert_drawing(user, task, Times::new(task.completed, clock.now), seq)
                            .await
                    }
                }
                .map(BatchResult::Created),
                BatchOp::Update {
                    id,
                    patch,
                    expected,
                } => {
                    let st = statements::update_task(
                        self.dialect,
                        user,
                        *id,
                        patch,
                        *expected,
                        clock.now,
                        seq,
                    );
                    self.changed_task(st, user, *id, *expected)
                        .await
                        .map(BatchResult::Updated)
                }
                BatchOp::Delete { id, expected } => match self.take_number(user).await {
                    Ok(n) => self
                        .delete_in(user, *id, *expected, clock, Some(n))
                        .await
                        .map(|()| BatchResult::Deleted(*id)),
                    Err(e) => Err(e),
                },
            };
            match outcome {
                Ok(r) => results.push(r),
                Err(error) => {
                    failed = Some(BatchFailure {
                        index: Some(index),
                        error,
                    });
                    break;
                }
            }
        }
        match failed {
            None => Ok(self.end_write(taken, Ok(results)).await?),
            Some(f) => {
                let _ = self.end_write(taken, Err::<(), _>(f.error.clone())).await;
                Err(f)
            }
        }
    }

    async fn import_once(
        &self,
        user: &UserId,
        tasks: &[ImportedTask],
        idempotency: Option<&Idempotency>,
        now: Timestamp,
    ) -> Result<Imported, StoreError> {
        let count = tasks.len() as u64;
        if self.dialect == Dialect::Postgres {
            return self.import_postgres(user, tasks, idempotency, now).await;
        }
        let taken = self.begin_tx().await?;
        let seq = Seq::of_rows(self.dialect);
        let outcome = async {
            if let Some(idem) = idempotency {
                let d = self.dialect;
                if self
                    .execute(statements::claim_import_key(d, user, idem, count, now))
                    .await?
                    == 0
                {
                    let rows = self
                        .query(statements::select_import_key(d, user, idem))
                        .await?;
                    let row = rows
                        .first()
                        .ok_or_else(|| StoreError::Other("idempotency key vanished".into()))?;
                    return match statements::decode_import_key(row, idem)? {
                        Some(count) => Ok(Imported {
                            count,
                            replayed: true,
                        }),
                        None => Err(StoreError::IdempotencyKeyReused),
                    };
                }
            }
            for t in tasks {
                self.insert_drawing(user, &t.task, import_times(t), seq)
                    .await?;
            }
            Ok(Imported {
                count,
                replayed: false,
            })
        }
        .await;
        self.end_write(taken, outcome).await
    }

    /// An import on PostgreSQL: one call of `task_api_batch` with quiet creates.
    async fn import_postgres(
        &self,
        user: &UserId,
        tasks: &[ImportedTask],
        idempotency: Option<&Idempotency>,
        now: Timestamp,
    ) -> Result<Imported, StoreError> {
        let count = tasks.len() as u64;
        for _ in 0..ID_DRAWS {
            let mut json = Vec::with_capacity(tasks.len() + 1);
            if let Some(idem) = idempotency {
                json.push(serde_json::json!({
                    "op": "import_key",
                    "key": idem.key.as_str(),
                    "fingerprint": idem.fingerprint,
                    "count": count,
                }));
            }
            json.extend(tasks.iter().map(|t| {
                statements::create_json(&t.task, TaskId::fresh(), import_times(t), None, true)
            }));
            // An import deletes nothing: no tombstone is old enough to prune.
            let clock = Clock {
                now,
                prune_before: Timestamp::from_millis(i64::MIN),
            };
            let st = statements::call_batch(user, serde_json::Value::from(json).to_string(), clock);
            match self.rows(&st).await {
                Ok(rows) => {
                    let replayed = rows.iter().find_map(|r| match r.as_slice() {
                        [SqlValue::Int(-1), _, SqlValue::Int(n), ..] => Some(*n),
                        _ => None,
                    });
                    return Ok(match replayed {
                        Some(n) => Imported {
                            count: u64::try_from(n).unwrap_or(0),
                            replayed: true,
                        },
                        None => Imported {
                            count,
                            replayed: false,
                        },
                    });
                }
                Err(DbError::UniqueViolation(_)) => continue,
                Err(e) => return Err(self.refused(e).error),
            }
        }
        Err(StoreError::Other(format!(
            "{ID_DRAWS} fresh task ids in a row were taken"
        )))
    }

    async fn create_user_once(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let rows = self
            .query(statements::insert_user(self.dialect, user, password_hash))
            .await?;
        // `ON CONFLICT (email_fold) DO NOTHING` returns no row for a taken email.
        if rows.is_empty() {
            Err(StoreError::EmailTaken)
        } else {
            Ok(())
        }
    }

    async fn one_user(&self, st: Statement) -> Result<Option<(User, String)>, StoreError> {
        let rows = self.query(st).await?;
        match rows.as_slice() {
            [] => Ok(None),
            [row] => statements::decode_user(row).map(Some),
            _ => Err(StoreError::Other(format!(
                "expected at most one user row, got {}",
                rows.len()
            ))),
        }
    }
}

/// Runs a `*_once` operation; if it failed on a missing schema and auto-migration is on,
/// migrates and runs it once more. (A macro rather than a function taking an async closure,
/// so that the futures stay `Send` whenever the executor's are.) Operations roll back their
/// own transactions on error, so the migration starts on a clean session.
macro_rules! migrating {
    ($store:ident, $op:expr) => {
        match $op.await {
            Err(_) if $store.migration_due() => {
                $store.migrate_now().await?;
                $op.await
            }
            done => done,
        }
    };
}

impl<E: Executor> TaskStore for SqlStore<E> {
    async fn create(
        &self,
        user: &UserId,
        task: NewTask,
        idempotency: Option<Idempotency>,
        now: Timestamp,
    ) -> Result<Created, StoreError> {
        migrating!(
            self,
            self.create_once(user, &task, idempotency.as_ref(), now)
        )
    }

    async fn get(&self, user: &UserId, id: TaskId) -> Result<Task, StoreError> {
        migrating!(self, self.get_once(user, id))
    }

    async fn list(&self, user: &UserId, query: &ListQuery) -> Result<Page, StoreError> {
        migrating!(self, self.list_once(user, query))
    }

    async fn update(
        &self,
        user: &UserId,
        id: TaskId,
        patch: &TaskPatch,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        migrating!(self, self.update_once(user, id, patch, expected, now))
    }

    async fn set_completion(
        &self,
        user: &UserId,
        id: TaskId,
        completion: Completion,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        migrating!(
            self,
            self.set_completion_once(user, id, completion, expected, now)
        )
    }

    async fn delete(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
        clock: Clock,
    ) -> Result<(), StoreError> {
        migrating!(self, self.delete_once(user, id, expected, clock))
    }

    async fn clear_completed(&self, user: &UserId, clock: Clock) -> Result<u64, StoreError> {
        migrating!(self, self.clear_completed_once(user, clock))
    }

    async fn changes(
        &self,
        user: &UserId,
        after: FeedPosition,
        limit: u32,
        horizon: Timestamp,
    ) -> Result<Changes, StoreError> {
        migrating!(self, self.changes_once(user, after, limit, horizon))
    }

    async fn batch(
        &self,
        user: &UserId,
        ops: &[BatchOp],
        clock: Clock,
    ) -> Result<Vec<BatchResult>, BatchFailure> {
        match self.dialect {
            Dialect::Postgres => migrating!(self, self.batch_postgres(user, ops, clock)),
            Dialect::Sqlite => migrating!(self, self.batch_sqlite(user, ops, clock)),
        }
    }

    async fn import(
        &self,
        user: &UserId,
        tasks: &[ImportedTask],
        idempotency: Option<Idempotency>,
        now: Timestamp,
    ) -> Result<Imported, StoreError> {
        migrating!(
            self,
            self.import_once(user, tasks, idempotency.as_ref(), now)
        )
    }

    async fn export_page(
        &self,
        user: &UserId,
        after: Option<(Timestamp, TaskId)>,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        migrating!(self, self.export_once(user, after, limit))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.ping_once().await
    }
}

impl<E: Executor> AccountStore for SqlStore<E> {
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        migrating!(self, self.create_user_once(user, password_hash))
    }

    async fn login_record(&self, email: &Email) -> Result<Option<(User, String)>, StoreError> {
        migrating!(
            self,
            self.one_user(statements::select_user_by_email(self.dialect, email))
        )
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let found = migrating!(
            self,
            self.one_user(statements::select_user(self.dialect, id))
        )?;
        Ok(found.map(|(user, _)| user))
    }

    async fn count_attempt(
        &self,
        key: &ThrottleKey,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        migrating!(self, self.count_attempt_once(key, expires_at, now))
    }

    async fn forgive_attempt(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        migrating!(
            self,
            self.execute(statements::forgive_attempt(self.dialect, key))
        )
        .map(drop)
    }
}

impl<E: Executor> SqlStore<E> {
    async fn count_attempt_once(
        &self,
        key: &ThrottleKey,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        if self.dialect == Dialect::Sqlite {
            self.execute(statements::prune_attempts(self.dialect, now))
                .await?;
        }
        let rows = self
            .query(statements::count_attempt(
                self.dialect,
                key,
                expires_at,
                now,
            ))
            .await?;
        match rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Int(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            _ => Err(StoreError::Other("undecodable login_attempts row".into())),
        }
    }
}

impl<E: Executor> SqlStore<E> {
    /// `SELECT 1`; with auto-migration, the check that every migration is applied (one
    /// query), applying the missing ones.
    async fn ping_once(&self) -> Result<(), StoreError> {
        if !self.auto_migrate {
            return self
                .executor
                .query("SELECT 1", &[])
                .await
                .map(drop)
                .map_err(store_error);
        }
        if !schema_is_current(&self.executor, self.dialect)
            .await
            .map_err(store_error)?
        {
            migrate(&self.executor, self.dialect)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }
}
