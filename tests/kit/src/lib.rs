//! What the task API's test suites share, so that each thing has one place: the reply
//! type ([`Reply`]), tokens ([`token_at`], [`SECRET`]), the test database ([`postgres`]),
//! temporary directories ([`temp_dir`]), the storage suite ([`store_suite`]) and the HTTP
//! contract suite ([`contract`], with the sync routes' behaviours from [`contract_sync`])
//! over a [`Transport`]: the core in process ([`InProcess`]) or any server over HTTP
//! ([`Http`]).
//!
//! # Running the contract suite against another server
//!
//! Write a function that starts a fresh server (empty storage) with the given settings —
//! Spin variable names such as `cors_origins` and `accounts`, with `jwt_secret` set to
//! [`SECRET`] unless the settings name it — and returns an [`Http`] transport to its base
//! URL, keeping the server alive with it. Then instantiate the suite in a test file:
//!
//! ```text
//! fn start(settings: &[(&str, &str)]) -> task_api_test_kit::Http {
//!     let mut vars = vec![("jwt_secret", task_api_test_kit::SECRET)];
//!     vars.extend_from_slice(settings);
//!     let server = my_server::spawn_on_a_free_port(&vars); // dropped: the server stops
//!     task_api_test_kit::Http::new(&format!("http://{}", server.addr())).keeping(server)
//! }
//! task_api_test_kit::contract_tests!(start);
//! ```
//!
//! The server must run on this machine (the transport's clock is the system's, and it keeps
//! each request in a millisecond of its own, as the in-process clock does).

pub mod contract;
pub mod contract_sync;
pub mod postgres;
pub mod reply;
pub mod store_suite;
pub mod sync_suite;
pub mod token;
pub mod transport;

pub use reply::Reply;
pub use tempfile::{self, TempDir};
pub use token::{SECRET, system_now_secs, token_at, token_signed_with};
pub use transport::{Http, InProcess, START_MS, Transport, config};

/// A new empty directory under the system's temporary directory, named after `prefix`,
/// removed (with everything in it) when dropped.
pub fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .expect("a temporary directory")
}
