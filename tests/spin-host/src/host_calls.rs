//! Per-request counts of the host calls an instance makes (`HostBuilder::count_host_calls`),
//! reported to the client in the `x-host-calls` response header, and a parser for it.
//!
//! Real Spin has nothing like this: it is a test and benchmark aid, so that a test can see,
//! for instance, that a request reads its variables once or opens one database connection.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// The response header that carries the counts when counting is on.
pub const HOST_CALLS_HEADER: &str = "x-host-calls";

/// One kind of host call, in the header's fixed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// `fermyon:spin/variables.get`.
    Variables,
    /// A guest write to stderr that carried bytes.
    Stderr,
    /// A guest write to stdout that carried bytes.
    Stdout,
    /// `spin:postgres/postgres.connection.query`.
    PgQuery,
    /// `spin:postgres/postgres.connection.execute`.
    PgExecute,
    /// `spin:postgres/postgres.connection.open`.
    PgConnect,
    /// `fermyon:spin/sqlite.connection.execute`.
    SqliteExecute,
    /// `fermyon:spin/sqlite.connection.open`.
    SqliteOpen,
    /// Any `fermyon:spin/key-value.store` call: open, get, set, delete, exists, get-keys.
    Kv,
    /// An outgoing `wasi:http` request (allowed or not).
    Http,
}

/// The header's keys, in order; `Call as usize` indexes it.
const KEYS: [&str; 10] = [
    "variables",
    "stderr",
    "stdout",
    "pg_query",
    "pg_execute",
    "pg_connect",
    "sqlite_execute",
    "sqlite_open",
    "kv",
    "http",
];

/// The counters of one instance, shared by its store and its stdout/stderr streams.
#[derive(Debug, Default)]
pub(crate) struct Counters([AtomicU32; 10]);

impl Counters {
    pub(crate) fn add(&self, call: Call) {
        self.0[call as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> HostCalls {
        let mut calls = HostCalls::default();
        for (slot, counter) in calls.slots_mut().into_iter().zip(&self.0) {
            *slot = counter.load(Ordering::Relaxed);
        }
        calls
    }
}

/// The host calls one request's instance made, by kind: the value of the `x-host-calls`
/// header, e.g. `variables=6; stderr=1; stdout=0; pg_query=1; pg_execute=0; pg_connect=1;
/// sqlite_execute=0; sqlite_open=0; kv=0; http=0` (always every key, in this order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostCalls {
    /// `variables::get` calls.
    pub variables: u32,
    /// Writes to stderr that carried bytes (one per WASI `write` or
    /// `blocking-write-and-flush`).
    pub stderr: u32,
    /// Writes to stdout that carried bytes.
    pub stdout: u32,
    /// PostgreSQL `query` calls.
    pub pg_query: u32,
    /// PostgreSQL `execute` calls.
    pub pg_execute: u32,
    /// PostgreSQL `open` calls (each one takes a pooled connection or makes a new one).
    pub pg_connect: u32,
    /// SQLite `execute` calls.
    pub sqlite_execute: u32,
    /// SQLite `open` calls.
    pub sqlite_open: u32,
    /// Key-value calls of any kind (open, get, set, delete, exists, get-keys).
    pub kv: u32,
    /// Outgoing HTTP requests.
    pub http: u32,
}

impl HostCalls {
    fn slots(&self) -> [u32; 10] {
        [
            self.variables,
            self.stderr,
            self.stdout,
            self.pg_query,
            self.pg_execute,
            self.pg_connect,
            self.sqlite_execute,
            self.sqlite_open,
            self.kv,
            self.http,
        ]
    }

    fn slots_mut(&mut self) -> [&mut u32; 10] {
        [
            &mut self.variables,
            &mut self.stderr,
            &mut self.stdout,
            &mut self.pg_query,
            &mut self.pg_execute,
            &mut self.pg_connect,
            &mut self.sqlite_execute,
            &mut self.sqlite_open,
            &mut self.kv,
            &mut self.http,
        ]
    }

    /// Parses a header value as the host writes it: `key=count` pairs separated by `;`,
    /// every key exactly once (in any order, spaces around items ignored). `None` when a
    /// key is missing, repeated or unknown, or a count is not a number.
    pub fn parse(value: &str) -> Option<HostCalls> {
        let mut calls = HostCalls::default();
        let mut seen = [false; 10];
        for item in value.split(';') {
            let (key, count) = item.trim().split_once('=')?;
            let i = KEYS.iter().position(|k| *k == key.trim())?;
            if std::mem::replace(&mut seen[i], true) {
                return None;
            }
            *calls.slots_mut()[i] = count.trim().parse().ok()?;
        }
        seen.iter().all(|s| *s).then_some(calls)
    }

    /// All calls of every kind added up.
    pub fn total(&self) -> u32 {
        self.slots().iter().sum()
    }
}

impl fmt::Display for HostCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, count)) in KEYS.iter().zip(self.slots()).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{key}={count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Call, Counters, HostCalls};

    #[test]
    fn the_header_lists_every_key_in_a_fixed_order() {
        let counters = Counters::default();
        for _ in 0..6 {
            counters.add(Call::Variables);
        }
        counters.add(Call::Stderr);
        counters.add(Call::PgQuery);
        counters.add(Call::PgConnect);
        counters.add(Call::Http);
        let calls = counters.snapshot();
        assert_eq!(
            calls.to_string(),
            "variables=6; stderr=1; stdout=0; pg_query=1; pg_execute=0; pg_connect=1; \
             sqlite_execute=0; sqlite_open=0; kv=0; http=1"
        );
        assert_eq!(calls.total(), 10);
        assert_eq!(HostCalls::parse(&calls.to_string()), Some(calls));
    }

    #[test]
    fn parse_wants_every_key_once() {
        let full = "variables=1; stderr=2; stdout=3; pg_query=4; pg_execute=5; pg_connect=6; \
                    sqlite_execute=7; sqlite_open=8; kv=9; http=10";
        let calls = HostCalls::parse(full).unwrap();
        assert_eq!((calls.stdout, calls.kv, calls.http), (3, 9, 10));
        // Order does not matter, spacing neither.
        let shuffled = "http=10;kv=9; sqlite_open=8;sqlite_execute=7; pg_connect=6; \
                        pg_execute=5; pg_query=4; stdout=3; stderr=2; variables=1";
        assert_eq!(HostCalls::parse(shuffled), Some(calls));
        // Missing, repeated, unknown keys and bad numbers are refused.
        assert_eq!(HostCalls::parse(&full.replace("; http=10", "")), None);
        assert_eq!(HostCalls::parse(&format!("{full}; kv=1")), None);
        assert_eq!(HostCalls::parse(&format!("{full}; redis=1")), None);
        assert_eq!(HostCalls::parse(&full.replace("kv=9", "kv=nine")), None);
        assert_eq!(HostCalls::parse(""), None);
    }
}
