//! What the change feed, batches, export and import exchange with a store (the design is in
//! `docs/sync.md`).
//!
//! Every change a store makes to a user's tasks takes the next number of that user's
//! change counter, in the same atomic step as the change. The counter is one row per user,
//! locked by each write until it commits, so one user's writes get their numbers in the order
//! they commit: a reader can never see number 8 committed while number 7 is still to come,
//! which a table-wide sequence would allow. Each task keeps the number of its latest change;
//! a deleted task leaves a tombstone with the number of its deletion.

use crate::domain::ids::{TaskId, Version};
use crate::domain::task::{NewTask, Task};
use crate::domain::time::Timestamp;

/// A place in a user's change feed: after the change numbered `seq` to the task `id` (the
/// changes of one atomic write share a number and are ordered by task id).
///
/// ```
/// use task_api_core::FeedPosition;
/// assert!(FeedPosition::START < FeedPosition { seq: 0, id: 1 });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedPosition {
    /// The change number.
    pub seq: i64,
    /// The task id (0 before every task of `seq`).
    pub id: i64,
}

impl FeedPosition {
    /// Before every change.
    pub const START: FeedPosition = FeedPosition { seq: 0, id: 0 };
}

/// One change, as the feed returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The task was created or changed: its latest state.
    Upsert(Task),
    /// The task was deleted.
    Delete {
        /// The deleted task.
        id: TaskId,
        /// When.
        deleted_at: Timestamp,
    },
}

impl Change {
    /// The task the change is about.
    pub fn task_id(&self) -> TaskId {
        match self {
            Change::Upsert(task) => task.id,
            Change::Delete { id, .. } => *id,
        }
    }
}

/// A page of a user's change feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// At most `limit` changes after the position asked for, in feed order, each with its
    /// position.
    pub changes: Vec<(FeedPosition, Change)>,
    /// Whether more changes follow.
    pub has_more: bool,
    /// The user's latest change number (0 before any change).
    pub head: i64,
    /// Tombstones numbered up to this may have been pruned (0 when none was).
    pub pruned_through: i64,
    /// Drawn at random with the user's first write (0 before it): a feed token of another
    /// epoch comes from another database.
    pub epoch: i64,
}

/// The time of a write that may delete, and the tombstones it may prune: those of the same
/// user deleted before `prune_before` (the retention period ago).
///
/// ```
/// use task_api_core::{Clock, Timestamp};
/// let clock = Clock::new(Timestamp::from_millis(5_000), 1_000);
/// assert_eq!(clock.prune_before, Timestamp::from_millis(4_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Now.
    pub now: Timestamp,
    /// Tombstones deleted before this may go.
    pub prune_before: Timestamp,
}

impl Clock {
    /// `now`, keeping tombstones for `retention_ms`.
    pub fn new(now: Timestamp, retention_ms: i64) -> Clock {
        Clock {
            now,
            prune_before: Timestamp::from_millis(now.as_millis().saturating_sub(retention_ms)),
        }
    }
}

/// Most operations in one batch.
pub const MAX_BATCH_OPERATIONS: usize = 100;

/// Most tasks one import takes.
pub const MAX_IMPORT_TASKS: usize = 10_000;

/// A task to import: its content and its own times, validated (`created_at <=
/// updated_at`, `completed_at` present exactly when completed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedTask {
    /// The content (its `completed` is the imported state).
    pub task: NewTask,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it was completed, if it is.
    pub completed_at: Option<Timestamp>,
}

impl ImportedTask {
    /// The task as a store keeps it, under `id` for `user`.
    pub fn into_task(self, id: TaskId, user: crate::domain::ids::UserId) -> Task {
        Task {
            id,
            user_id: user,
            title: self.task.title,
            description: self.task.description,
            completed: self.task.completed,
            priority: self.task.priority,
            due_date: self.task.due_date,
            created_at: self.created_at,
            updated_at: self.updated_at,
            completed_at: self.completed_at,
            version: Version::FIRST,
        }
    }
}

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Imported {
    /// How many tasks it created (the first import's count, when replayed).
    pub count: u64,
    /// Whether this was a replay of an earlier import with the same key.
    pub replayed: bool,
}

/// Most tasks an export reads per store call.
pub const EXPORT_PAGE: u32 = 500;
