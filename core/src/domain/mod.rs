//! The domain: what a task, a user, an account and a list query are, each valid by
//! construction, and the rules that change them.
//!
//! # What this layer owns
//!
//! - `time.rs`: [`Timestamp`](crate::Timestamp) and [`DueDate`](crate::DueDate), the two
//!   clocks the contract knows (milliseconds since the epoch, and a calendar day).
//! - `field.rs`: [`FieldError`](crate::FieldError), the one way every parser here reports
//!   a problem, and the one definition of a control character.
//! - `ids.rs`: the user's id, the task's id and the task's version (its `ETag`).
//! - `task.rs`: the task and its parts, and how a patch or a completion changes it.
//! - `listing.rs`: the list query (filters, sort, limit), the total order every store
//!   follows, and the keyset cursor.
//! - `account.rs`: the built-in accounts' email, password and user.
//!
//! # What it may import
//!
//! Nothing else of the crate: no store, no token, no setting, no HTTP. So its errors are
//! its own: a constructor answers `Vec<FieldError>` (every problem at once), the list query
//! [`QueryError`](crate::QueryError). Whether such a problem is a 400 or a 422 is decided
//! once, in `http/error.rs` (for typed errors) or by the body parser that knows which part
//! of the request the text came from. Inside the layer, files import one way:
//! `time`, `field` ← `ids` ← `task` ← `listing`, `account`. `.ci/check-layers` checks both.

pub(crate) mod account;
pub(crate) mod field;
pub(crate) mod ids;
pub(crate) mod listing;
pub(crate) mod task;
pub(crate) mod time;
