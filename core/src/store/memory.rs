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
use crate::store::tasks::{Created, IDEMPOTENCY_TTL_MS, Idempotency, Page, StoreError, TaskStore};

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

#[derive(Debug)]
struct KeyRecord {
    fingerprint: String,
    task: TaskId,
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
        if let Some(idem) = &idempotency {
            let slot = (user.clone(), idem.key.as_str().to_owned());
            if let Some(rec) = state.keys.get(&slot)
                && now.as_millis() - rec.at.as_millis() < IDEMPOTENCY_TTL_MS
            {
                if rec.fingerprint != idem.fingerprint {
                    return Err(StoreError::IdempotencyKeyReused);
                }
                // The same body replays the first response: the task as it was created,
                // whatever happened to it since (unless it was deleted: 404).
                let (id, first_at) = (rec.task, rec.at);
                state.task_mut(user, id, None)?;
                return Ok(Created {
                    task: Task::create(id, user.clone(), task, first_at),
                    replayed: true,
                });
            }
        }
        let id = loop {
            let id = TaskId::fresh();
            if state.issued.insert(id) {
                break id;
            }
        };
        let task = Task::create(id, user.clone(), task, now);
        state
            .tasks
            .entry(user.clone())
            .or_default()
            .insert(id, task.clone());
        if let Some(idem) = idempotency {
            state.keys.insert(
                (user.clone(), idem.key.as_str().to_owned()),
                KeyRecord {
                    fingerprint: idem.fingerprint,
                    task: id,
                    at: now,
                },
            );
        }
        Ok(Created {
            task,
            replayed: false,
        })
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
        let task = state.task_mut(user, id, expected)?;
        task.apply(patch, now);
        Ok(task.clone())
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
        let task = state.task_mut(user, id, expected)?;
        let completed = match completion {
            Completion::Toggle => !task.completed,
            Completion::Set(c) => c,
        };
        task.set_completed(completed, now);
        Ok(task.clone())
    }

    async fn delete(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.task_mut(user, id, expected)?;
        if let Some(tasks) = state.tasks.get_mut(user) {
            tasks.remove(&id);
        }
        Ok(())
    }

    async fn clear_completed(&self, user: &UserId) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let Some(tasks) = state.tasks.get_mut(user) else {
            return Ok(0);
        };
        let before = tasks.len();
        tasks.retain(|_, t| !t.completed);
        Ok((before - tasks.len()) as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
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
