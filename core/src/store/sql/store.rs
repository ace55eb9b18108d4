//! [`SqlStore`]: the [`TaskStore`] and [`AccountStore`] over an [`Executor`], for PostgreSQL
//! and SQLite.

use super::statements::{self, Statement};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;

use super::migrate::{migrate, schema_is_current};
use super::{DbError, Dialect, Executor, SqlValue, query_guarded};
use crate::domain::account::{Email, User};
use crate::domain::ids::{TaskId, UserId, Version};
use crate::domain::listing::ListQuery;
use crate::domain::task::{Completion, NewTask, Task, TaskPatch};
use crate::domain::time::Timestamp;
use crate::store::accounts::{AccountStore, ThrottleKey};
use crate::store::tasks::{Created, Idempotency, Page, StoreError, TaskStore};

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
        if st.always_returns_a_row {
            self.executor.query(&st.sql, &st.params).await
        } else {
            query_guarded(&self.executor, self.dialect, &st.sql, &st.params).await
        }
    }

    async fn query(&self, st: Statement) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        self.rows(&st).await.map_err(|e| self.seen(e))
    }

    async fn execute(&self, st: Statement) -> Result<u64, StoreError> {
        self.executor
            .execute(&st.sql, &st.params)
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

    /// The idempotent create on SQLite, inside a `BEGIN IMMEDIATE` transaction the caller
    /// opened (a Spin SQLite connection lives for one request: closing it rolls back).
    async fn create_with_key_sqlite(
        &self,
        user: &UserId,
        task: &NewTask,
        idem: &Idempotency,
        id: TaskId,
        now: Timestamp,
    ) -> Result<Insert<Result<Created, StoreError>>, StoreError> {
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
            return Ok(Insert::Done(
                statements::decode_earlier(row, user, task, idem).map(|task| Created {
                    task,
                    replayed: true,
                }),
            ));
        }
        let Insert::Done(rows) = self
            .insert_query(statements::insert_task(d, user, task, id, now))
            .await?
        else {
            return Ok(Insert::IdTaken);
        };
        let task = Self::one_task(rows)?
            .ok_or_else(|| StoreError::Other("INSERT returned no row".into()))?;
        self.execute(statements::set_key_task(d, user, idem, task.id))
            .await?;
        Ok(Insert::Done(Ok(Created {
            task,
            replayed: false,
        })))
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
    async fn create_once(
        &self,
        user: &UserId,
        task: &NewTask,
        idempotency: Option<&Idempotency>,
        now: Timestamp,
    ) -> Result<Created, StoreError> {
        for _ in 0..ID_DRAWS {
            if let Insert::Done(outcome) = self
                .create_with_id(user, task, idempotency, TaskId::fresh(), now)
                .await?
            {
                return outcome;
            }
        }
        Err(StoreError::Other(format!(
            "{ID_DRAWS} fresh task ids in a row were taken"
        )))
    }

    async fn create_with_id(
        &self,
        user: &UserId,
        task: &NewTask,
        idempotency: Option<&Idempotency>,
        id: TaskId,
        now: Timestamp,
    ) -> Result<Insert<Result<Created, StoreError>>, StoreError> {
        let Some(idem) = idempotency else {
            let st = statements::insert_task(self.dialect, user, task, id, now);
            let Insert::Done(rows) = self.insert_query(st).await? else {
                return Ok(Insert::IdTaken);
            };
            let task = Self::one_task(rows)?
                .ok_or_else(|| StoreError::Other("INSERT returned no row".into()))?;
            return Ok(Insert::Done(Ok(Created {
                task,
                replayed: false,
            })));
        };
        if self.dialect == Dialect::Postgres {
            return Ok(
                match self
                    .create_with_key_postgres(user, task, idem, id, now)
                    .await
                {
                    Ok(Insert::Done(created)) => Insert::Done(Ok(created)),
                    Ok(Insert::IdTaken) => Insert::IdTaken,
                    Err(e) => Insert::Done(Err(e)),
                },
            );
        }
        self.plain(statements::begin(self.dialect)).await?;
        match self.create_with_key_sqlite(user, task, idem, id, now).await {
            Ok(Insert::Done(outcome)) => {
                if let Err(e) = self.plain("COMMIT").await {
                    let _ = self.plain("ROLLBACK").await;
                    return Err(e);
                }
                Ok(Insert::Done(outcome))
            }
            Ok(Insert::IdTaken) => {
                // Undo the key's claim; the next draw claims it again.
                self.plain("ROLLBACK").await?;
                Ok(Insert::IdTaken)
            }
            Err(e) => {
                // Never leave half-written rows; the original error is the one to report.
                let _ = self.plain("ROLLBACK").await;
                Err(e)
            }
        }
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
        let st = statements::update_task(self.dialect, user, id, patch, expected, now);
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
        let st = statements::set_completion(self.dialect, user, id, completion, expected, now);
        self.changed_task(st, user, id, expected).await
    }

    async fn delete_once(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
    ) -> Result<(), StoreError> {
        let rows = self
            .query(statements::delete_task(self.dialect, user, id, expected))
            .await?;
        if rows.is_empty() {
            Err(self.missing(user, id, expected).await?)
        } else {
            Ok(())
        }
    }

    async fn clear_completed_once(&self, user: &UserId) -> Result<u64, StoreError> {
        self.execute(statements::clear_completed(self.dialect, user))
            .await
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
    ) -> Result<(), StoreError> {
        migrating!(self, self.delete_once(user, id, expected))
    }

    async fn clear_completed(&self, user: &UserId) -> Result<u64, StoreError> {
        migrating!(self, self.clear_completed_once(user))
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
