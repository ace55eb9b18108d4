//! The task and its parts, each valid by construction.
//!
//! Every value type here has private contents and a constructor that checks the contract's
//! rules and reports every problem it finds, so code holding a `Title` or a `UserId` never
//! checks it again. Stores build [`Task`]s from these parts; the state changes a task can go
//! through (`apply`, `set_completed`) live here so that every store changes tasks alike.

use serde::Serialize;

use crate::domain::field::{FieldError, has_control, is_control};
use crate::domain::ids::{TaskId, UserId, Version};
use crate::domain::time::{DueDate, Timestamp};

/// Longest title, in Unicode scalar values after trimming.
pub const TITLE_MAX_CHARS: usize = 200;
/// Longest description, in Unicode scalar values after trimming trailing whitespace.
pub const DESCRIPTION_MAX_CHARS: usize = 2000;

/// A task title: trimmed, 1 to 200 characters, no control characters.
///
/// ```
/// use task_api_core::Title;
/// assert_eq!(Title::parse("  Buy milk ").unwrap().as_str(), "Buy milk");
/// let errors = Title::parse("\u{7}").unwrap_err();
/// assert_eq!(errors[0].code, "control_character");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    /// Trims `s` and checks it, returning every problem found.
    pub fn parse(s: &str) -> Result<Self, Vec<FieldError>> {
        let t = s.trim();
        let mut errors = Vec::new();
        let n = t.chars().count();
        if n == 0 {
            errors.push(FieldError::new("title", "blank", "title must not be blank"));
        } else if n > TITLE_MAX_CHARS {
            errors.push(FieldError::new(
                "title",
                "too_long",
                "title must be 1 to 200 characters",
            ));
        }
        if has_control(t) {
            errors.push(FieldError::new(
                "title",
                "control_character",
                "title must not contain control characters",
            ));
        }
        if errors.is_empty() {
            Ok(Title(t.to_owned()))
        } else {
            Err(errors)
        }
    }

    /// The title text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for sorting by title and for searching: lower-cased, so that every
    /// store orders and matches titles the same way whatever its collation.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A task description: at most 2,000 characters after trailing whitespace is trimmed, no
/// control characters but tab, newline and carriage return, never empty.
///
/// ```
/// use task_api_core::Description;
/// assert_eq!(Description::parse("2 litres \n").unwrap().unwrap().as_str(), "2 litres");
/// assert!(Description::parse("   ").unwrap().is_none()); // empty is stored as null
/// assert!(Description::parse("a\u{0}b").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    /// Trims trailing whitespace and checks `s`. An empty result is `Ok(None)`: no description.
    pub fn parse(s: &str) -> Result<Option<Self>, Vec<FieldError>> {
        let t = s.trim_end();
        let mut errors = Vec::new();
        if t.chars().count() > DESCRIPTION_MAX_CHARS {
            errors.push(FieldError::new(
                "description",
                "too_long",
                "description must be at most 2000 characters",
            ));
        }
        if t.chars()
            .any(|c| is_control(c) && !matches!(c, '\t' | '\n' | '\r'))
        {
            errors.push(FieldError::new(
                "description",
                "control_character",
                "description must not contain control characters other than tab, newline and carriage return",
            ));
        }
        match (errors.is_empty(), t.is_empty()) {
            (false, _) => Err(errors),
            (true, true) => Ok(None),
            (true, false) => Ok(Some(Description(t.to_owned()))),
        }
    }

    /// The description text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form searched by `q`.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

/// How important a task is. Sorts by rank: low < medium < high.
///
/// ```
/// use task_api_core::Priority;
/// assert_eq!(Priority::parse("high"), Some(Priority::High));
/// assert!(Priority::Low < Priority::High);
/// assert_eq!(Priority::default(), Priority::Medium);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Rank 1.
    Low,
    /// Rank 2, the default.
    #[default]
    Medium,
    /// Rank 3.
    High,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Medium, Priority::High];

    /// The priority named `s` (`low`, `medium`, `high`; exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    /// The rank used for sorting and storage: 1, 2 or 3.
    pub fn rank(self) -> i16 {
        match self {
            Priority::Low => 1,
            Priority::Medium => 2,
            Priority::High => 3,
        }
    }

    /// The priority of a stored rank.
    pub fn from_rank(rank: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|p| i64::from(p.rank()) == rank)
    }
}

/// A stored task, as the API returns it.
///
/// Each field is valid by its type; the stores keep the rules that tie fields together
/// (`completed_at` is set exactly when `completed` is) by changing tasks only through
/// [`Task::create`], [`Task::apply`] and [`Task::set_completed`] or their SQL equivalents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Task {
    /// The task's id, unique across all users.
    pub id: TaskId,
    /// The owner.
    pub user_id: UserId,
    /// The title.
    pub title: Title,
    /// The description, if any.
    pub description: Option<Description>,
    /// Whether the task is done.
    pub completed: bool,
    /// How important it is.
    pub priority: Priority,
    /// When it is due, if ever.
    pub due_date: Option<DueDate>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed; never goes backwards.
    pub updated_at: Timestamp,
    /// When it last became completed; `None` while pending.
    pub completed_at: Option<Timestamp>,
    /// The revision behind the `ETag`; not part of the JSON.
    #[serde(skip)]
    pub version: Version,
}

impl Task {
    /// The task a store creates from `new` for `user_id` with a fresh `id` at `now`.
    ///
    /// ```
    /// use task_api_core::{NewTask, Task, TaskId, Timestamp, Title, UserId};
    /// let new = NewTask::new(Title::parse("Buy milk").unwrap());
    /// let now = Timestamp::from_millis(1_000);
    /// let task = Task::create(TaskId::new(1).unwrap(), UserId::parse("u1").unwrap(), new, now);
    /// assert_eq!(task.created_at, now);
    /// assert!(!task.completed && task.completed_at.is_none());
    /// ```
    pub fn create(id: TaskId, user_id: UserId, new: NewTask, now: Timestamp) -> Task {
        Task {
            id,
            user_id,
            title: new.title,
            description: new.description,
            completed: new.completed,
            priority: new.priority,
            due_date: new.due_date,
            created_at: now,
            updated_at: now,
            completed_at: new.completed.then_some(now),
            version: Version::FIRST,
        }
    }

    /// Applies an update at `now`: the fields the patch holds change, the others stay.
    ///
    /// ```
    /// # use task_api_core::*;
    /// # let mut task = Task::create(TaskId::new(1).unwrap(), UserId::parse("u1").unwrap(),
    /// #     NewTask::new(Title::parse("a").unwrap()), Timestamp::from_millis(0));
    /// let patch = TaskPatch::builder().completed(true).build().unwrap();
    /// task.apply(&patch, Timestamp::from_millis(5));
    /// assert_eq!(task.completed_at, Some(Timestamp::from_millis(5)));
    /// assert_eq!(task.version.get(), 2);
    /// ```
    pub fn apply(&mut self, patch: &TaskPatch, now: Timestamp) {
        if let Some(title) = &patch.title {
            self.title = title.clone();
        }
        if let Some(description) = &patch.description {
            self.description = description.clone();
        }
        if let Some(priority) = patch.priority {
            self.priority = priority;
        }
        if let Some(due_date) = patch.due_date {
            self.due_date = due_date;
        }
        match patch.completed {
            Some(completed) => self.set_completed(completed, now),
            None => self.touch(now),
        }
    }

    /// Marks the task completed or pending at `now`. `completed_at` is set only when the task
    /// becomes completed and cleared when it becomes pending; the version always moves on.
    pub fn set_completed(&mut self, completed: bool, now: Timestamp) {
        if completed && !self.completed {
            self.completed_at = Some(now);
        } else if !completed {
            self.completed_at = None;
        }
        self.completed = completed;
        self.touch(now);
    }

    fn touch(&mut self, now: Timestamp) {
        self.updated_at = self.updated_at.max(now);
        self.version = self.version.next();
    }
}

/// A task to create, as validated from a request body.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct NewTask {
    /// The title.
    pub title: Title,
    /// The description, if any.
    pub description: Option<Description>,
    /// Defaults to medium.
    pub priority: Priority,
    /// Defaults to none.
    pub due_date: Option<DueDate>,
    /// Defaults to false.
    pub completed: bool,
}

impl NewTask {
    /// A pending, medium-priority task with only a title.
    pub fn new(title: Title) -> Self {
        NewTask {
            title,
            description: None,
            priority: Priority::default(),
            due_date: None,
            completed: false,
        }
    }

    /// A digest of this task's content, used to tell an idempotent retry (same content)
    /// from the reuse of a key for different content.
    ///
    /// ```
    /// use task_api_core::{NewTask, Title};
    /// let a = NewTask::new(Title::parse("x").unwrap());
    /// let b = NewTask::new(Title::parse(" x ").unwrap());
    /// assert_eq!(a.fingerprint(), b.fingerprint()); // the same task after trimming
    /// ```
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let digest = hmac_sha256::Hash::hash(&canonical);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A partial update: only the fields it holds change. Never empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskPatch {
    title: Option<Title>,
    description: Option<Option<Description>>,
    priority: Option<Priority>,
    due_date: Option<Option<DueDate>>,
    completed: Option<bool>,
}

impl TaskPatch {
    /// Starts a patch; [`TaskPatchBuilder::build`] refuses an empty one.
    ///
    /// ```
    /// use task_api_core::{Priority, TaskPatch};
    /// assert!(TaskPatch::builder().build().is_none());
    /// let p = TaskPatch::builder().priority(Priority::High).build().unwrap();
    /// assert_eq!(p.priority(), Some(Priority::High));
    /// ```
    pub fn builder() -> TaskPatchBuilder {
        TaskPatchBuilder(TaskPatch::default())
    }

    /// The new title, if it changes.
    pub fn title(&self) -> Option<&Title> {
        self.title.as_ref()
    }

    /// The new description (`Some(None)` clears it), if it changes.
    pub fn description(&self) -> Option<Option<&Description>> {
        self.description.as_ref().map(Option::as_ref)
    }

    /// The new priority, if it changes.
    pub fn priority(&self) -> Option<Priority> {
        self.priority
    }

    /// The new due date (`Some(None)` clears it), if it changes.
    pub fn due_date(&self) -> Option<Option<DueDate>> {
        self.due_date
    }

    /// The new completion state, if it changes.
    pub fn completed(&self) -> Option<bool> {
        self.completed
    }
}

/// Builds a [`TaskPatch`].
#[derive(Debug)]
pub struct TaskPatchBuilder(TaskPatch);

impl TaskPatchBuilder {
    /// Sets the title.
    pub fn title(mut self, title: Title) -> Self {
        self.0.title = Some(title);
        self
    }

    /// Sets or clears the description.
    pub fn description(mut self, description: Option<Description>) -> Self {
        self.0.description = Some(description);
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.0.priority = Some(priority);
        self
    }

    /// Sets or clears the due date.
    pub fn due_date(mut self, due_date: Option<DueDate>) -> Self {
        self.0.due_date = Some(due_date);
        self
    }

    /// Sets the completion state.
    pub fn completed(mut self, completed: bool) -> Self {
        self.0.completed = Some(completed);
        self
    }

    /// The patch, or `None` if it would change nothing.
    pub fn build(self) -> Option<TaskPatch> {
        (self.0 != TaskPatch::default()).then_some(self.0)
    }
}

/// What `PATCH /tasks/{id}/complete` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Flip `completed`.
    Toggle,
    /// Set `completed` to this value.
    Set(bool),
}
