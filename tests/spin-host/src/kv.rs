//! `fermyon:spin/key-value@2.0.0` like Spin's default store: only the `default` store
//! exists, in SQLite at `<sqlite_dir>/sqlite_key_value.db`; a component may open it only
//! if it lists it in `key_value_stores` (`access-denied` otherwise; other labels are
//! `no-such-store`). Failures are `other(<message>)`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::OptionalExtension as _;
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin2_0_0::key_value as v2;
use crate::host_calls::Call;
use crate::state::State;

/// The application's default key-value store, opened on first use.
pub struct KeyValueDatabase {
    path: PathBuf,
    connection: OnceLock<Arc<Mutex<rusqlite::Connection>>>,
}

impl KeyValueDatabase {
    /// The store kept in the SQLite file at `path`.
    pub fn new(path: PathBuf) -> Self {
        KeyValueDatabase {
            path,
            connection: OnceLock::new(),
        }
    }

    fn connection(&self) -> Result<Arc<Mutex<rusqlite::Connection>>, v2::Error> {
        if let Some(c) = self.connection.get() {
            return Ok(c.clone());
        }
        let other = |e: &dyn std::fmt::Display| v2::Error::Other(e.to_string());
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| other(&e))?;
        }
        let conn = rusqlite::Connection::open(&self.path).map_err(|e| other(&e))?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, \
             value BLOB NOT NULL, PRIMARY KEY (store, key))",
            [],
        )
        .map_err(|e| other(&e))?;
        Ok(self
            .connection
            .get_or_init(|| Arc::new(Mutex::new(conn)))
            .clone())
    }
}

/// The host side of a guest's `store` resource.
pub struct KeyValueStore {
    label: String,
    connection: Arc<Mutex<rusqlite::Connection>>,
}

impl KeyValueStore {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, v2::Error> {
        let connection = self.connection.clone();
        let label = self.label.clone();
        tokio::task::spawn_blocking(move || {
            let conn = connection.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn, &label).map_err(|e| v2::Error::Other(e.to_string()))
        })
        .await
        .map_err(|e| v2::Error::Other(e.to_string()))?
    }
}

impl State {
    /// The store behind a handle; every key-value call but `open` goes through here, so
    /// it also counts the call.
    fn kv_store(&self, store: &Resource<KeyValueStore>) -> Result<&KeyValueStore, v2::Error> {
        self.calls.add(Call::Kv);
        self.table
            .get(store)
            .map_err(|_| v2::Error::Other("invalid store handle".into()))
    }
}

impl v2::Host for State {}

impl v2::HostStore for State {
    async fn open(&mut self, label: String) -> Result<Resource<KeyValueStore>, v2::Error> {
        self.calls.add(Call::Kv);
        if !self.shared.app.key_value_stores.contains(&label) {
            return Err(v2::Error::AccessDenied);
        }
        if label != "default" {
            return Err(v2::Error::NoSuchStore);
        }
        let connection = self.shared.kv.connection()?;
        self.table
            .push(KeyValueStore { label, connection })
            .map_err(|_| v2::Error::StoreTableFull)
    }

    async fn get(
        &mut self,
        store: Resource<KeyValueStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, v2::Error> {
        self.kv_store(&store)?
            .run(move |c, label| {
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .query_row((label, key), |r| r.get(0))
                    .optional()
            })
            .await
    }

    async fn set(
        &mut self,
        store: Resource<KeyValueStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), v2::Error> {
        self.kv_store(&store)?
            .run(move |c, label| {
                c.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute((label, key, value))
                .map(drop)
            })
            .await
    }

    async fn delete(
        &mut self,
        store: Resource<KeyValueStore>,
        key: String,
    ) -> Result<(), v2::Error> {
        self.kv_store(&store)?
            .run(move |c, label| {
                c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .execute((label, key))
                    .map(drop)
            })
            .await
    }

    async fn exists(
        &mut self,
        store: Resource<KeyValueStore>,
        key: String,
    ) -> Result<bool, v2::Error> {
        self.kv_store(&store)?
            .run(move |c, label| {
                c.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                    .exists((label, key))
            })
            .await
    }

    async fn get_keys(&mut self, store: Resource<KeyValueStore>) -> Result<Vec<String>, v2::Error> {
        self.kv_store(&store)?
            .run(|c, label| {
                c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?
                    .query_map([label], |r| r.get(0))?
                    .collect()
            })
            .await
    }

    async fn drop(&mut self, store: Resource<KeyValueStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
