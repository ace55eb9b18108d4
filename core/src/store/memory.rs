//! An in-memory [`TaskStore`] and [`AccountStore`]: the same ordering, cursors, conflicts and
//! idempotency as the SQL stores, for embedders that want no database and for fast tests of
//! the handler.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use crate::domain::account::{Email, User};
use crate::domain::ids::{TaskId, UserId, Version};
use crate::domain::listing::ListQuery;
use crate::domain::task::{Completion, NewTask, Task, TaskPatch};
use crate::domain::time::Timestamp;
use crate::store::accounts::{AccountStore, ThrottleKey};
use crate::store::changes::{Change, Changes, Clock, FeedPosition, Imported, ImportedTask};
use crate::store::tasks::{
    BatchFailure, BatchOp, BatchResult, Created, IDEMPOTENCY_TTL_MS, Idempotency, Page, StoreError,
    TaskStore,
};

/// Tasks held in memory, behind one mutex. Ids are [`TaskId::fresh`], unique across users
/// and never reused.
///
/// ```
/// use task_api_core::{MemoryStore, NewTask, TaskStore, Timestamp, Title, UserId};
/// let store = MemoryStore::new();
/// let user = UserId::parse("u1").unwrap();
/// let new = NewTask::new(Title::parse("Buy milk").unwrap());
/// let created = pollster::block_on(store.create(&user, new, None, Timestamp::from_millis(0))).unwrap();
/// let other = UserId::parse("u2").unwrap();
/// assert!(pollster::block_on(store.get(&other, created.task.id)).is_err());
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every id this store has handed out, deleted tasks' included, so none is reused.
    issued: HashSet<TaskId>,
    tasks: HashMap<UserId, BTreeMap<TaskId, Task>>,
    keys: HashMap<(UserId, String), KeyRecord>,
    /// Each user's change feed.
    feeds: HashMap<UserId, Feed>,
    /// Accounts by id, with their password hashes.
    users: HashMap<UserId, (User, String)>,
    /// Account ids by folded email.
    emails: HashMap<String, UserId>,
    /// The throttle's counts, with when each may be forgotten.
    attempts: HashMap<ThrottleKey, (u64, Timestamp)>,
    /// The earliest of those times: once it has passed, the expired counts are swept (so a
    /// sweep happens at most once per window).
    next_expiry: Option<Timestamp>,
}

#[derive(Clone, Debug)]
struct KeyRecord {
    fingerprint: String,
    /// The task a create made; `None` for an import's key.
    task: Option<TaskId>,
    /// How many tasks an import made.
    imported: u64,
    at: Timestamp,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing that runs under the lock can panic half-way through a change (changes only
        // assign fields), so the data behind a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One user's change counter, the number of each task's latest change, and the tombstones.
#[derive(Clone, Debug, Default)]
struct Feed {
    epoch: i64,
    seq: i64,
    pruned: i64,
    of_task: HashMap<TaskId, i64>,
    tombstones: BTreeMap<(i64, TaskId), Timestamp>,
}

impl State {
    /// The user's task `id`, if it is at `expected` (when given).
    fn task_mut(
        &mut self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
    ) -> Result<&mut Task, StoreError> {
        let task = self
            .tasks
            .get_mut(user)
            .and_then(|t| t.get_mut(&id))
            .ok_or(StoreError::NotFound)?;
        match expected {
            Some(v) if v != task.version => Err(StoreError::VersionConflict),
            _ => Ok(task),
        }
    }

    /// The next change number of `user`: one per atomic write.
    fn bump(&mut self, user: &UserId) -> i64 {
        let feed = self.feeds.entry(user.clone()).or_insert_with(|| Feed {
            epoch: TaskId::fresh().get(),
            ..Feed::default()
        });
        feed.seq += 1;
        feed.seq
    }

    fn changed(&mut self, user: &UserId, id: TaskId, seq: i64) {
        self.feeds
            .entry(user.clone())
            .or_default()
            .of_task
            .insert(id, seq);
    }

    /// A fresh id, never handed out before.
    fn fresh_id(&mut self) -> TaskId {
        loop {
            let id = TaskId::fresh();
            if self.issued.insert(id) {
                return id;
            }
        }
    }

    fn create(
        &mut self,
        user: &UserId,
        task: NewTask,
        idempotency: Option<&Idempotency>,
        now: Timestamp,
        seq: i64,
    ) -> Result<Created, StoreError> {
        if let Some(idem) = idempotency {
            let slot = (user.clone(), idem.key.as_str().to_owned());
            if let Some(rec) = self.keys.get(&slot)
                && now.as_millis() - rec.at.as_millis() < IDEMPOTENCY_TTL_MS
            {
                if rec.fingerprint != idem.fingerprint {
                    return Err(StoreError::IdempotencyKeyReused);
                }
                // The same body replays the first response: the task as it was created,
                // whatever happened to it since (unless it was deleted: 404).
                let (id, first_at) = (rec.task.ok_or(StoreError::IdempotencyKeyReused)?, rec.at);
                self.task_mut(user, id, None)?;
                return Ok(Created {
                    task: Task::create(id, user.clone(), task, first_at),
                    replayed: true,
                });
            }
        }
        let id = self.fresh_id();
        let task = Task::create(id, user.clone(), task, now);
        self.insert(user, task.clone(), seq);
        if let Some(idem) = idempotency {
            self.keys.insert(
                (user.clone(), idem.key.as_str().to_owned()),
                KeyRecord {
                    fingerprint: idem.fingerprint.clone(),
                    task: Some(id),
                    imported: 0,
                    at: now,
                },
            );
        }
        Ok(Created {
            task,
            replayed: false,
        })
    }

    fn insert(&mut self, user: &UserId, task: Task, seq: i64) {
        let id = task.id;
        self.tasks.entry(user.clone()).or_default().insert(id, task);
        self.changed(user, id, seq);
    }

    fn update(
        &mut self,
        user: &UserId,
        id: TaskId,
        change: impl FnOnce(&mut Task),
        expected: Option<Version>,
        seq: i64,
    ) -> Result<Task, StoreError> {
        let task = self.task_mut(user, id, expected)?;
        change(task);
        let task = task.clone();
        self.changed(user, id, seq);
        Ok(task)
    }

    /// Removes tasks, leaving tombstones numbered `seq`, and prunes the user's old ones.
    fn remove(&mut self, user: &UserId, ids: &[TaskId], clock: Clock, seq: i64) {
        let feed = self.feeds.entry(user.clone()).or_default();
        let old: Vec<_> = feed
            .tombstones
            .iter()
            .filter(|(_, at)| **at < clock.prune_before)
            .map(|(k, _)| *k)
            .collect();
        for k in old {
            feed.tombstones.remove(&k);
            feed.pruned = feed.pruned.max(k.0);
        }
        for id in ids {
            feed.of_task.remove(id);
            feed.tombstones.insert((seq, *id), clock.now);
        }
        if let Some(tasks) = self.tasks.get_mut(user) {
            for id in ids {
                tasks.remove(id);
            }
        }
    }

    fn delete(
        &mut self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
        clock: Clock,
        seq: i64,
    ) -> Result<(), StoreError> {
        self.task_mut(user, id, expected)?;
        self.remove(user, &[id], clock, seq);
        Ok(())
    }

    fn apply(
        &mut self,
        user: &UserId,
        op: &BatchOp,
        clock: Clock,
        seq: i64,
    ) -> Result<BatchResult, StoreError> {
        Ok(match op {
            BatchOp::Create { task, idempotency } => BatchResult::Created(self.create(
                user,
                task.clone(),
                idempotency.as_ref(),
                clock.now,
                seq,
            )?),
            BatchOp::Update {
                id,
                patch,
                expected,
            } => BatchResult::Updated(self.update(
                user,
                *id,
                |t| t.apply(patch, clock.now),
                *expected,
                seq,
            )?),
            BatchOp::Delete { id, expected } => {
                self.delete(user, *id, *expected, clock, seq)?;
                BatchResult::Deleted(*id)
            }
        })
    }
}

impl TaskStore for MemoryStore {
    async fn create(
        &self,
        user: &UserId,
        task: NewTask,
        idempotency: Option<Idempotency>,
        now: Timestamp,
    ) -> Result<Created, StoreError> {
        let mut state = self.lock();
        let seq = state.bump(user);
        state.create(user, task, idempotency.as_ref(), now, seq)
    }

    async fn get(&self, user: &UserId, id: TaskId) -> Result<Task, StoreError> {
        Ok(self.lock().task_mut(user, id, None)?.clone())
    }

    async fn list(&self, user: &UserId, query: &ListQuery) -> Result<Page, StoreError> {
        let state = self.lock();
        let Some(tasks) = state.tasks.get(user) else {
            return Ok(Page::default());
        };
        let sort = query.sort();
        let mut matching: Vec<_> = tasks
            .values()
            .filter(|t| query.matches(t))
            .map(|t| (sort.key.value_of(t), t))
            .collect();
        let total = matching.len() as u64;
        matching.retain(|(_, t)| query.is_after_cursor(t));
        let limit = query.limit() as usize;
        let has_more = matching.len() > limit;
        // Only the page needs to be in order: select it, then sort it.
        let by = |a: &(crate::SortValue, &Task), b: &(crate::SortValue, &Task)| {
            sort.compare((&a.0, a.1.id), (&b.0, b.1.id))
        };
        if has_more {
            matching.select_nth_unstable_by(limit, by);
            matching.truncate(limit);
        }
        matching.sort_unstable_by(by);
        Ok(Page {
            tasks: matching.into_iter().map(|(_, t)| t.clone()).collect(),
            total,
            has_more,
        })
    }

    async fn update(
        &self,
        user: &UserId,
        id: TaskId,
        patch: &TaskPatch,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let mut state = self.lock();
        let seq = state.bump(user);
        state.update(user, id, |t| t.apply(patch, now), expected, seq)
    }

    async fn set_completion(
        &self,
        user: &UserId,
        id: TaskId,
        completion: Completion,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let mut state = self.lock();
        let seq = state.bump(user);
        let change = |task: &mut Task| {
            let completed = match completion {
                Completion::Toggle => !task.completed,
                Completion::Set(c) => c,
            };
            task.set_completed(completed, now);
        };
        state.update(user, id, change, expected, seq)
    }

    async fn delete(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
        clock: Clock,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        let seq = state.bump(user);
        state.delete(user, id, expected, clock, seq)
    }

    async fn clear_completed(&self, user: &UserId, clock: Clock) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let done: Vec<TaskId> = state
            .tasks
            .get(user)
            .map(|tasks| {
                tasks
                    .values()
                    .filter(|t| t.completed)
                    .map(|t| t.id)
                    .collect()
            })
            .unwrap_or_default();
        let seq = state.bump(user);
        state.remove(user, &done, clock, seq);
        Ok(done.len() as u64)
    }

    async fn changes(
        &self,
        user: &UserId,
        after: FeedPosition,
        limit: u32,
        horizon: Timestamp,
    ) -> Result<Changes, StoreError> {
        let state = self.lock();
        let Some(feed) = state.feeds.get(user) else {
            return Ok(Changes::default());
        };
        let tasks = state.tasks.get(user);
        let upserts = feed.of_task.iter().filter_map(|(id, seq)| {
            let task = tasks?.get(id)?;
            Some((
                FeedPosition {
                    seq: *seq,
                    id: id.get(),
                },
                Change::Upsert(task.clone()),
            ))
        });
        let deletes = feed
            .tombstones
            .iter()
            .filter(|(_, at)| **at >= horizon)
            .map(|((seq, id), at)| {
                (
                    FeedPosition {
                        seq: *seq,
                        id: id.get(),
                    },
                    Change::Delete {
                        id: *id,
                        deleted_at: *at,
                    },
                )
            });
        let mut changes: Vec<_> = upserts.chain(deletes).filter(|(p, _)| *p > after).collect();
        changes.sort_unstable_by_key(|(p, _)| *p);
        let has_more = changes.len() > limit as usize;
        changes.truncate(limit as usize);
        Ok(Changes {
            changes,
            has_more,
            head: feed.seq,
            pruned_through: feed.pruned,
            epoch: feed.epoch,
        })
    }

    async fn batch(
        &self,
        user: &UserId,
        ops: &[BatchOp],
        clock: Clock,
    ) -> Result<Vec<BatchResult>, BatchFailure> {
        let mut state = self.lock();
        // All or none: keep what the batch may change, and put it back on a failure.
        let tasks = state.tasks.get(user).cloned();
        let feed = state.feeds.get(user).cloned();
        let keys: Vec<_> = ops
            .iter()
            .filter_map(|op| match op {
                BatchOp::Create {
                    idempotency: Some(idem),
                    ..
                } => Some((user.clone(), idem.key.as_str().to_owned())),
                _ => None,
            })
            .map(|slot| {
                let before = state.keys.get(&slot).cloned();
                (slot, before)
            })
            .collect();
        let seq = state.bump(user);
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            match state.apply(user, op, clock, seq) {
                Ok(result) => results.push(result),
                Err(error) => {
                    restore(&mut state.tasks, user, tasks);
                    restore(&mut state.feeds, user, feed);
                    for (slot, before) in keys.into_iter().rev() {
                        match before {
                            Some(rec) => state.keys.insert(slot, rec),
                            None => state.keys.remove(&slot),
                        };
                    }
                    return Err(BatchFailure {
                        index: Some(index),
                        error,
                    });
                }
            }
        }
        Ok(results)
    }

    async fn import(
        &self,
        user: &UserId,
        tasks: &[ImportedTask],
        idempotency: Option<Idempotency>,
        now: Timestamp,
    ) -> Result<Imported, StoreError> {
        let mut state = self.lock();
        if let Some(idem) = &idempotency {
            let slot = (user.clone(), idem.key.as_str().to_owned());
            if let Some(rec) = state.keys.get(&slot)
                && now.as_millis() - rec.at.as_millis() < IDEMPOTENCY_TTL_MS
            {
                if rec.fingerprint != idem.fingerprint || rec.task.is_some() {
                    return Err(StoreError::IdempotencyKeyReused);
                }
                return Ok(Imported {
                    count: rec.imported,
                    replayed: true,
                });
            }
        }
        let seq = state.bump(user);
        for t in tasks {
            let id = state.fresh_id();
            state.insert(user, t.clone().into_task(id, user.clone()), seq);
        }
        let count = tasks.len() as u64;
        if let Some(idem) = idempotency {
            state.keys.insert(
                (user.clone(), idem.key.as_str().to_owned()),
                KeyRecord {
                    fingerprint: idem.fingerprint,
                    task: None,
                    imported: count,
                    at: now,
                },
            );
        }
        Ok(Imported {
            count,
            replayed: false,
        })
    }

    async fn export_page(
        &self,
        user: &UserId,
        after: Option<(Timestamp, TaskId)>,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError> {
        let state = self.lock();
        let Some(tasks) = state.tasks.get(user) else {
            return Ok(Vec::new());
        };
        let key = |t: &Task| (t.created_at, t.id);
        let mut page: Vec<&Task> = tasks
            .values()
            .filter(|t| after.is_none_or(|a| key(t) > a))
            .collect();
        let limit = limit as usize;
        if page.len() > limit {
            page.select_nth_unstable_by_key(limit, |t| key(t));
            page.truncate(limit);
        }
        page.sort_unstable_by_key(|t| key(t));
        Ok(page.into_iter().cloned().collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Puts back a user's entry as it was (absent when it was).
fn restore<T>(map: &mut HashMap<UserId, T>, user: &UserId, before: Option<T>) {
    match before {
        Some(v) => map.insert(user.clone(), v),
        None => map.remove(user),
    };
}

impl AccountStore for MemoryStore {
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.emails.contains_key(user.email.folded()) {
            return Err(StoreError::EmailTaken);
        }
        if state.users.contains_key(&user.id) {
            return Err(StoreError::Other("user id already exists".into()));
        }
        state
            .emails
            .insert(user.email.folded().to_owned(), user.id.clone());
        state
            .users
            .insert(user.id.clone(), (user.clone(), password_hash.to_owned()));
        Ok(())
    }

    async fn login_record(&self, email: &Email) -> Result<Option<(User, String)>, StoreError> {
        let state = self.lock();
        Ok(state
            .emails
            .get(email.folded())
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.get(id).map(|(u, _)| u.clone()))
    }

    async fn count_attempt(
        &self,
        key: &ThrottleKey,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        if state.next_expiry.is_some_and(|t| t <= now) {
            state.attempts.retain(|_, (_, until)| *until > now);
            state.next_expiry = state.attempts.values().map(|(_, until)| *until).min();
        }
        state.next_expiry = Some(state.next_expiry.map_or(expires_at, |t| t.min(expires_at)));
        let entry = state.attempts.entry(key.clone()).or_insert((0, expires_at));
        entry.0 += 1;
        Ok(entry.0)
    }

    async fn forgive_attempt(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        if let Some((n, _)) = self.lock().attempts.get_mut(key) {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }
}
