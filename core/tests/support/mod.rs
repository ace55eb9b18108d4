//! The core's own test helpers: the SQL stores' test executors and fresh databases
//! (`postgres`, `sqlite`) and the hostile requests (`hostile`). What every suite shares (the
//! in-process API, replies, tokens, the test database's URL) is the test kit's
//! (`tests/kit`), re-exported here.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of these helpers

pub mod hostile;
#[cfg(feature = "sql")]
pub mod postgres;
#[cfg(feature = "sql")]
pub mod sqlite;

pub use task_api_test_kit::{InProcess, Reply, SECRET, START_MS, Transport, config, token_at};
