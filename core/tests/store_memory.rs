//! The shared store suite against the [`MemoryStore`], the reference the SQL stores follow.

mod store_suite;

use task_api_core::MemoryStore;

async fn fresh() -> Option<((), MemoryStore)> {
    Some(((), MemoryStore::new()))
}

store_suite::suite_tests!(fresh);
store_suite::account_suite_tests!(fresh);
