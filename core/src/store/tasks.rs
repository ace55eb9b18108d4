//! The storage trait: one async method per API operation, each taking the [`UserId`].
//!
//! There is no method that reads or writes a task without naming its owner, so a store that
//! filters by owner in each method cannot leak one user's tasks to another. Each method is
//! shaped so that a SQL store can do it in one round trip: create returns the row, update,
//! completion and delete are conditional on the owner and the expected version, and list
//! returns the page together with the total.

use std::fmt;

use crate::domain::ids::{TaskId, UserId, Version};
use crate::domain::listing::ListQuery;
use crate::domain::task::{Completion, NewTask, Task, TaskPatch};
use crate::domain::time::Timestamp;
use crate::store::changes::{Changes, Clock, FeedPosition, Imported, ImportedTask};

/// How long an idempotency key is remembered, in milliseconds (24 hours).
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// What a store can fail with. `http/error.rs` maps each kind to one HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No such task for this user (also: the task belongs to someone else). → 404
    #[error("not found")]
    NotFound,
    /// The task exists but is not at the expected version. → 412
    #[error("version conflict")]
    VersionConflict,
    /// The idempotency key was used before with a different body. → 422
    #[error("idempotency key reused with a different body")]
    IdempotencyKeyReused,
    /// An account with the same (folded) email exists. → 409
    #[error("email taken")]
    EmailTaken,
    /// The backing store cannot be reached now; the cause is logged. → 503 with Retry-After
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The backing store refuses the service until an operator changes a setting (a
    /// rejected TLS handshake or password, for instance): retrying cannot help. → 500
    /// `configuration_error` naming the setting, with its hint; the cause is logged.
    #[error(transparent)]
    Misconfigured(Misconfiguration),
    /// Anything else; the cause is logged, never sent. → 500
    #[error("{0}")]
    Other(String),
}

/// A store that refuses the service until an operator changes `setting`: what a
/// [`crate::sql::DbError`], a [`StoreError`] and an [`crate::ApiError`] carry alike.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{setting} {hint}: {cause}")]
pub struct Misconfiguration {
    /// The setting to change (`database_url` or `database_host`).
    pub setting: &'static str,
    /// What to change, for the problem's detail (fixed text, never a value).
    pub hint: &'static str,
    /// The driver's text, for the log only.
    pub cause: String,
}

/// Longest `Idempotency-Key`, in characters (printable ASCII, so also bytes).
pub(crate) const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

/// An `Idempotency-Key` header value: 1 to 255 printable ASCII characters.
///
/// ```
/// use task_api_core::IdempotencyKey;
/// assert!(IdempotencyKey::parse("order-7f3a").is_some());
/// assert!(IdempotencyKey::parse("").is_none());
/// assert!(IdempotencyKey::parse("caf\u{e9}").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A key, if `s` is 1 to 255 characters from space to `~`.
    pub fn parse(s: &str) -> Option<Self> {
        ((1..=IDEMPOTENCY_KEY_MAX_CHARS).contains(&s.len())
            && s.bytes().all(|b| (0x20..=0x7e).contains(&b)))
        .then(|| IdempotencyKey(s.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdempotencyKey").field(&self.0).finish()
    }
}

/// An idempotent create: the key and the digest of the body it came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key, scoped to the user.
    pub key: IdempotencyKey,
    /// [`NewTask::fingerprint`] of the request that used the key.
    pub fingerprint: String,
}

/// What a create did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// The task: new, or the one an earlier request with the same key created.
    pub task: Task,
    /// Whether this was a replay of an earlier request.
    pub replayed: bool,
}

/// One page of a list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// At most `limit` tasks, in the query's order, after the query's cursor.
    pub tasks: Vec<Task>,
    /// Every task matching the filters, ignoring the cursor and limit.
    pub total: u64,
    /// Whether more tasks follow this page.
    pub has_more: bool,
}

/// One operation of a batch, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// Create a task, idempotently with a key.
    Create {
        /// The task.
        task: NewTask,
        /// The key and the fingerprint of `task`.
        idempotency: Option<Idempotency>,
    },
    /// Apply a patch, if the task is at `expected`.
    Update {
        /// The task.
        id: TaskId,
        /// The change.
        patch: TaskPatch,
        /// The version required, if any.
        expected: Option<Version>,
    },
    /// Delete, if the task is at `expected`.
    Delete {
        /// The task.
        id: TaskId,
        /// The version required, if any.
        expected: Option<Version>,
    },
}

/// What one operation of a batch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchResult {
    /// The create's task (perhaps replayed).
    Created(Created),
    /// The task as updated.
    Updated(Task),
    /// The task deleted.
    Deleted(TaskId),
}

/// Why a batch applied nothing: the first operation that failed, and how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("operation {index:?}: {error}")]
pub struct BatchFailure {
    /// The operation's index in the batch, from 0 (`None` when the failure is not one
    /// operation's, such as the store being unreachable).
    pub index: Option<usize>,
    /// What it failed with.
    pub error: StoreError,
}

impl From<StoreError> for BatchFailure {
    fn from(error: StoreError) -> Self {
        BatchFailure { index: None, error }
    }
}

/// Where tasks live. Every method takes the owner; a task of another user is reported as
/// [`StoreError::NotFound`], never as anything that tells it exists.
///
/// `now` is passed in by the caller so that every store stamps times alike; a store keeps
/// `updated_at` from going backwards when clocks disagree.
///
/// The futures are not required to be `Send`: a Spin component runs one request on one
/// thread. A store whose futures are `Send` (the [`crate::MemoryStore`]'s are) makes
/// [`crate::Api::handle`]'s future `Send` too, so it can serve from a multi-threaded runtime.
#[allow(async_fn_in_trait)] // Send-ness follows the implementing type; see above
pub trait TaskStore {
    /// Creates a task for `user`. With `idempotency`, a key already used by this user
    /// within [`IDEMPOTENCY_TTL_MS`] returns the task it created (`replayed`), or
    /// [`StoreError::IdempotencyKeyReused`] if the fingerprint differs, or
    /// [`StoreError::NotFound`] if that task has since been deleted.
    async fn create(
        &self,
        user: &UserId,
        task: NewTask,
        idempotency: Option<Idempotency>,
        now: Timestamp,
    ) -> Result<Created, StoreError>;

    /// The task `id` of `user`.
    async fn get(&self, user: &UserId, id: TaskId) -> Result<Task, StoreError>;

    /// One page of `user`'s tasks matching `query`, and how many match in all.
    async fn list(&self, user: &UserId, query: &ListQuery) -> Result<Page, StoreError>;

    /// Applies `patch` to task `id` of `user` if it is at version `expected` (when given),
    /// returning the task as changed.
    async fn update(
        &self,
        user: &UserId,
        id: TaskId,
        patch: &TaskPatch,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError>;

    /// Toggles or sets `completed` on task `id` of `user` atomically, if it is at version
    /// `expected` (when given).
    async fn set_completion(
        &self,
        user: &UserId,
        id: TaskId,
        completion: Completion,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError>;

    /// Deletes task `id` of `user` if it is at version `expected` (when given), leaving a
    /// tombstone at `clock.now` and pruning the user's tombstones older than
    /// `clock.prune_before`.
    async fn delete(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
        clock: Clock,
    ) -> Result<(), StoreError>;

    /// Deletes every completed task of `user`, returning how many went (tombstones as for
    /// [`TaskStore::delete`]).
    async fn clear_completed(&self, user: &UserId, clock: Clock) -> Result<u64, StoreError>;

    /// At most `limit` changes to `user`'s tasks after `after`, in the order they committed,
    /// each task at most once (at its latest change). Tombstones deleted before `horizon`
    /// count as pruned: they are not returned.
    async fn changes(
        &self,
        user: &UserId,
        after: FeedPosition,
        limit: u32,
        horizon: Timestamp,
    ) -> Result<Changes, StoreError>;

    /// Applies `ops` in order, all or none, as one change of the feed. A failure names the
    /// first operation that failed; then nothing was applied.
    async fn batch(
        &self,
        user: &UserId,
        ops: &[BatchOp],
        clock: Clock,
    ) -> Result<Vec<BatchResult>, BatchFailure>;

    /// Creates `tasks` for `user` with fresh ids, all or none, as one change of the feed.
    /// With `idempotency`, a key already used by this user within [`IDEMPOTENCY_TTL_MS`]
    /// returns the first import's count (`replayed`), or
    /// [`StoreError::IdempotencyKeyReused`] if the fingerprint differs.
    async fn import(
        &self,
        user: &UserId,
        tasks: &[ImportedTask],
        idempotency: Option<Idempotency>,
        now: Timestamp,
    ) -> Result<Imported, StoreError>;

    /// At most `limit` of `user`'s tasks in creation order (`created_at`, then id), after
    /// the task at `after` (from the first when `None`).
    async fn export_page(
        &self,
        user: &UserId,
        after: Option<(Timestamp, TaskId)>,
        limit: u32,
    ) -> Result<Vec<Task>, StoreError>;

    /// One cheap round trip to the backing store, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
}
