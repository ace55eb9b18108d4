//! Failed-login counters in Spin's key-value store, shared by every instance (each request
//! runs in a fresh one, so counting in memory would count nothing).
//!
//! The core decides what is counted and when a login is refused; this only stores numbers.
//! Spin's key-value interface has no atomic increment, so two failures racing on the same
//! key may count once: the limit can be overshot by the number of racing attempts, never
//! bypassed. Keys of past windows are not removed (the store has no expiry); they are a
//! few bytes per email and address with failed logins.

use std::cell::OnceCell;

use spin_sdk::key_value::Store;
use task_api_core::{LoginThrottle, StoreError};

/// Keys are namespaced so the store can hold other things (the JWKS cache).
const PREFIX: &str = "task-api:";

/// The counters, in the `default` store, opened on first use (only login touches it).
#[derive(Default)]
pub struct KvThrottle {
    store: OnceCell<Result<Store, String>>,
}

impl KvThrottle {
    fn store(&self) -> Result<&Store, StoreError> {
        self.store
            .get_or_init(|| Store::open_default().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| StoreError::Unavailable(format!("key-value store: {e}")))
    }
}

impl LoginThrottle for KvThrottle {
    async fn count(&self, key: &str) -> Result<u64, StoreError> {
        let value = self
            .store()?
            .get(&format!("{PREFIX}{key}"))
            .map_err(|e| StoreError::Unavailable(format!("key-value get: {e}")))?;
        Ok(value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn increment(&self, key: &str) -> Result<u64, StoreError> {
        let n = self.count(key).await? + 1;
        self.store()?
            .set(&format!("{PREFIX}{key}"), n.to_string().as_bytes())
            .map_err(|e| StoreError::Unavailable(format!("key-value set: {e}")))?;
        Ok(n)
    }
}
