//! The shared store suite against the [`MemoryStore`], the reference the SQL stores follow.

use task_api_core::MemoryStore;

async fn fresh() -> Option<((), MemoryStore)> {
    Some(((), MemoryStore::new()))
}

task_api_test_kit::store_suite_tests!(fresh);
task_api_test_kit::sync_suite_tests!(fresh);
task_api_test_kit::account_suite_tests!(fresh);
