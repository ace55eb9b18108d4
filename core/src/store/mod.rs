//! Storage: the traits a host implements to keep tasks and accounts, and the stores the
//! crate ships.
//!
//! # What this layer owns
//!
//! - `tasks.rs`: [`TaskStore`](crate::TaskStore), one async method per operation, each
//!   naming the owner; what a store can fail with ([`StoreError`](crate::StoreError),
//!   [`Misconfiguration`](crate::Misconfiguration)); idempotency keys; pages.
//! - `changes.rs`: what the change feed, batches, export and import exchange with a store.
//! - `accounts.rs`: [`AccountStore`](crate::AccountStore) and the throttle counter's key.
//! - `memory.rs`: [`MemoryStore`](crate::MemoryStore), both traits in memory.
//! - `sql/` (feature `sql`): the PostgreSQL and SQLite stores over a host's executor,
//!   published as `task_api_core::sql`; its design notes are in `sql/mod.rs`.
//!
//! # What it may import
//!
//! `domain` only: a store keeps and orders domain values, and answers
//! [`StoreError`](crate::StoreError), which `http/error.rs` maps to a status. It knows no token, no
//! setting and no HTTP type, so a store can be tested without any of them. The SQL
//! executors' [`DbError`](crate::sql::DbError) becomes a `StoreError` in one function of
//! `sql/mod.rs`.

pub(crate) mod accounts;
pub(crate) mod changes;
pub(crate) mod memory;
#[cfg(feature = "sql")]
pub mod sql;
pub(crate) mod tasks;
