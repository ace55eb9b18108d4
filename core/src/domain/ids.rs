//! The ids of a user and of a task, and a task's version: the keys every layer above names
//! tasks by, each valid by construction.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::domain::field::{FieldError, has_control};

/// Longest user id (`sub`), in Unicode scalar values.
pub const USER_ID_MAX_CHARS: usize = 128;

/// The id of a user: the token's `sub`, a string of 1 to 128 characters without control
/// characters.
///
/// ```
/// use task_api_core::UserId;
/// let id = UserId::parse("u_8f2c").unwrap();
/// assert_eq!(id.as_str(), "u_8f2c");
/// assert!(UserId::parse("").is_none());
/// assert!(UserId::parse(&"x".repeat(129)).is_none());
/// assert!(UserId::parse("u\u{0}1").is_none()); // NUL, or any other control character
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// A user id, if `s` is 1 to 128 characters long and holds no control character.
    pub fn parse(s: &str) -> Option<Self> {
        Self::parse_as("sub", s).ok()
    }

    /// `s` as a user id, or every problem with it, each naming `field` (a path's `user_id`).
    pub(crate) fn parse_as(field: &'static str, s: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let n = s.chars().count();
        if n == 0 {
            errors.push(FieldError::new(
                field,
                "blank",
                format!("{field} must not be empty"),
            ));
        } else if n > USER_ID_MAX_CHARS {
            errors.push(FieldError::new(
                field,
                "too_long",
                format!("{field} must be 1 to 128 characters"),
            ));
        }
        if has_control(s) {
            errors.push(FieldError::new(
                field,
                "control_character",
                format!("{field} must not contain control characters"),
            ));
        }
        if errors.is_empty() {
            Ok(UserId(s.to_owned()))
        } else {
            Err(errors)
        }
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a task: a positive 64-bit integer (it fits PostgreSQL's `bigint`).
///
/// The stores give new tasks [`TaskId::fresh`] ids: unguessable, and at most
/// [`TaskId::MAX_FRESH`], so that a JavaScript number holds them exactly. Any positive id
/// parses, so ids from before (one sequence, starting at 1) keep working.
///
/// ```
/// use task_api_core::TaskId;
/// assert_eq!(TaskId::parse("42").unwrap().get(), 42);
/// for bad in ["0", "-1", "abc", "9223372036854775808", "+1", ""] {
///     assert!(TaskId::parse(bad).is_none());
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(i64);

impl TaskId {
    /// A task id from its decimal form (ASCII digits only).
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<i64>().ok().and_then(Self::new)
    }

    /// A task id, if `n` is positive.
    pub fn new(n: i64) -> Option<Self> {
        (n > 0).then_some(TaskId(n))
    }

    /// The number.
    pub fn get(self) -> i64 {
        self.0
    }

    /// The largest id [`TaskId::fresh`] returns: 2^53 − 1, JavaScript's
    /// `Number.MAX_SAFE_INTEGER`.
    pub const MAX_FRESH: i64 = (1 << 53) - 1;

    /// A new id, uniform in `1..=MAX_FRESH`, that says nothing about how many tasks exist or
    /// when this one was made (a sequence would tell a user who creates two tasks an hour
    /// apart how many everyone else created in between).
    ///
    /// It is SipHash, under a key that std draws from the host's randomness once per
    /// process (`wasi:random` in the component, so once per Spin instance), of a
    /// process-wide counter: distinct inputs, outputs nobody without the key can predict.
    /// Two ids can still collide (about one chance in 9·10^15 per pair), so a store that
    /// finds the id taken draws another.
    ///
    /// ```
    /// use task_api_core::TaskId;
    /// let (a, b) = (TaskId::fresh(), TaskId::fresh());
    /// assert_ne!(a, b);
    /// assert!((1..=TaskId::MAX_FRESH).contains(&a.get()));
    /// ```
    pub fn fresh() -> Self {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let bits = KEY.get_or_init(RandomState::new).hash_one(n) >> 11; // 53 bits
        // 0..2^53 folded onto 0..MAX_FRESH (one value, 2^53 − 1, maps to 0), then shifted.
        TaskId((bits % Self::MAX_FRESH as u64) as i64 + 1)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The revision of a task, behind its `ETag`. Starts at 1 and grows by one on every change.
///
/// ```
/// use task_api_core::Version;
/// let v = Version::FIRST;
/// assert_eq!(v.next().get(), 2);
/// assert_eq!(v.etag(), "\"v1\"");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(i64);

impl Version {
    /// The version of a task just created.
    pub const FIRST: Version = Version(1);

    /// A version read back from a store.
    pub const fn new(n: i64) -> Self {
        Version(n)
    }

    /// The number.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The version after one more change.
    pub const fn next(self) -> Self {
        Version(self.0 + 1)
    }

    /// The strong entity tag of a task at this version (quotes included).
    pub fn etag(self) -> String {
        format!("\"v{}\"", self.0)
    }

    /// The version an entity tag names, if it is one of ours (strong, `"v<n>"`).
    pub fn from_etag(tag: &str) -> Option<Self> {
        let n = tag.strip_prefix("\"v")?.strip_suffix('"')?;
        TaskId::parse(n).map(|id| Version(id.get()))
    }
}
