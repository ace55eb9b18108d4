//! A small Spin-compatible host for the task API's tests.
//!
//! It runs the real component (`task_api_spin.wasm`) the way `spin up` would for this
//! project: it reads `spin.toml`, resolves the application variables (explicit values,
//! then `SPIN_VARIABLE_<NAME>`, then defaults), and serves the component over HTTP with
//! one fresh instance per request. The component gets WASI 0.2, `wasi:http` (outgoing
//! requests checked against `allowed_outbound_hosts`) and the Spin interfaces it imports:
//! `spin:postgres/postgres@3.0.0`, `fermyon:spin/sqlite@2.0.0`,
//! `fermyon:spin/variables@2.0.0` and `fermyon:spin/key-value@2.0.0`.
//!
//! ```no_run
//! # async fn example() -> spin_test_host::Result<()> {
//! let wasm = spin_test_host::build_component();
//! let host = spin_test_host::Host::builder()
//!     .wasm(wasm)
//!     .variable("jwt_secret", "a test secret of at least thirty-two bytes")
//!     .sqlite_dir("/tmp/some-test-dir")
//!     .build()?;
//! let running = host.serve("127.0.0.1:0").await?;
//! let response = running.get("/health").await?;
//! assert_eq!(response.status, 200);
//! running.shutdown().await;
//! # Ok(()) }
//! ```

pub mod allowed_hosts;
pub mod client;
pub mod manifest;

mod guest_memory;
mod guest_output;
mod host_calls;
mod kv;
mod pg;
mod server;
mod sqlite;
mod state;
mod variables;

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::net::ToSocketAddrs;
use tokio::sync::watch;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

pub use crate::client::Response;
pub use crate::guest_output::{LogCapture, LogSink, SinkFn};
pub use crate::host_calls::{HOST_CALLS_HEADER, HostCalls};
pub use crate::manifest::App;
pub use crate::pg::{PgError, PgProbe, PgProbeConnection, RefusalText, STRICT_ZERO_ROWS};
pub use wasmtime::{Error, Result};

/// Bindings for the Spin interfaces the component imports, generated from the WIT files
/// shipped in the spin-sdk crate (`wit-spin-sdk` is a link made by `build.rs`).
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit-spin-sdk",
        inline: "
            package spin-test-host:host;

            world imports {
                import spin:postgres/postgres@3.0.0;
                import fermyon:spin/sqlite@2.0.0;
                import fermyon:spin/variables@2.0.0;
                import fermyon:spin/key-value@2.0.0;
            }
        ",
        imports: { default: async },
        with: {
            "spin:postgres/postgres@3.0.0.connection": crate::pg::PgConnection,
            "fermyon:spin/sqlite@2.0.0.connection": crate::sqlite::SqliteConnection,
            "fermyon:spin/key-value@2.0.0.store": crate::kv::KeyValueStore,
        },
    });
}

use crate::state::{Shared, State};

/// Bytes of each pooled linear memory kept resident (reset with memset) between instances:
/// about what one request of the component touches. Measured with the load benchmark:
/// 1 MiB for memories, tables and stacks alike spent a tenth of the host's time in memset.
const MEMORY_KEEP_RESIDENT: usize = 256 << 10;
/// The same for tables and async stacks, which a request touches far less of.
const SMALL_KEEP_RESIDENT: usize = 16 << 10;

/// The most bytes one linear memory may grow to (the pooling allocator's slot size); also
/// what [`Host::peak_guest_memory`] knows a growth cannot pass.
pub(crate) const MAX_MEMORY_SIZE: usize = 1 << 30;

/// The repository root (this crate lives in `tests/spin-host`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/spin-host is two levels below the workspace root")
        .to_path_buf()
}

/// Where [`build_component`] puts the component.
pub fn component_path() -> PathBuf {
    workspace_root().join("target/wasm-tests/wasm32-wasip2/release/task_api_spin.wasm")
}

/// Builds the component (`cargo build -p task-api-spin --target wasm32-wasip2 --release`,
/// in `target/wasm-tests` so it does not wait on other builds' locks) once per process,
/// and returns the `.wasm` path.
///
/// # Panics
///
/// If the build fails: its output is on stderr.
pub fn build_component() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| cargo_build_component("target/wasm-tests", &[]))
        .clone()
}

/// Where [`build_postgres_only_component`] builds: a target directory of its own, so that
/// the two feature sets never rebuild each other's artifacts.
pub const POSTGRES_ONLY_TARGET_DIR: &str = "target/nosqlite";

/// Builds the PostgreSQL-only component (the same build with `--no-default-features`, which
/// imports no SQLite interface) in [`POSTGRES_ONLY_TARGET_DIR`], once per process, and
/// returns the `.wasm` path.
///
/// # Panics
///
/// If the build fails: its output is on stderr.
pub fn build_postgres_only_component() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| cargo_build_component(POSTGRES_ONLY_TARGET_DIR, &["--no-default-features"]))
        .clone()
}

/// `cargo build -p task-api-spin --target wasm32-wasip2 --release <extra>` into
/// `target_dir` (relative to the workspace root), returning the `.wasm` it made.
fn cargo_build_component(target_dir: &str, extra: &[&str]) -> PathBuf {
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut args = vec![
        "build",
        "-p",
        "task-api-spin",
        "--target",
        "wasm32-wasip2",
        "--release",
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let status = std::process::Command::new(cargo)
        .args(&args)
        .env("CARGO_TARGET_DIR", root.join(target_dir))
        .current_dir(&root)
        .status()
        .expect("running cargo to build the component");
    assert!(
        status.success(),
        "building the component failed ({status}): `cargo {}`, output above",
        args.join(" ")
    );
    let wasm = root
        .join(target_dir)
        .join("wasm32-wasip2/release/task_api_spin.wasm");
    assert!(
        wasm.is_file(),
        "the build did not produce {}",
        wasm.display()
    );
    eprintln!(
        "spin-test-host: component built in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        wasm.display()
    );
    wasm
}

/// Settings for a [`Host`]; see [`Host::builder`].
#[derive(Clone, Debug)]
pub struct HostBuilder {
    manifest: PathBuf,
    wasm: Option<PathBuf>,
    sources: manifest::VariableSources,
    sqlite_dir: PathBuf,
    max_instances: u32,
    compile_cache: Option<PathBuf>,
    test_clock: bool,
    strict_postgres: bool,
    pg_refusal: pg::RefusalText,
    log_sink: LogSink,
    count_host_calls: bool,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            manifest: workspace_root().join("spin.toml"),
            wasm: None,
            sources: manifest::VariableSources {
                explicit: BTreeMap::new(),
                process_env: true,
                dotenv: None,
            },
            sqlite_dir: PathBuf::from(".spin"),
            max_instances: 64,
            test_clock: false,
            strict_postgres: true,
            pg_refusal: pg::RefusalText::default(),
            log_sink: LogSink::stderr(),
            count_host_calls: false,
            compile_cache: Some(workspace_root().join("target/spin-test-host-cache")),
        }
    }
}

impl HostBuilder {
    /// The manifest (default: the repository's `spin.toml`).
    pub fn manifest(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifest = path.into();
        self
    }

    /// The component to run (default: the manifest's `source`, relative to its directory).
    pub fn wasm(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm = Some(path.into());
        self
    }

    /// Sets an application variable (`jwt_secret`, or `SPIN_VARIABLE_JWT_SECRET`); it wins
    /// over the process environment, like `spin up --variable`.
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.sources.explicit.insert(name.into(), value.into());
        self
    }

    /// Sets several application variables; see [`HostBuilder::variable`].
    pub fn variables<K: Into<String>, V: Into<String>>(
        mut self,
        values: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in values {
            self.sources.explicit.insert(k.into(), v.into());
        }
        self
    }

    /// Whether `SPIN_VARIABLE_<NAME>` is read from the process environment (default
    /// true). Tests that must not see the developer's environment turn it off.
    pub fn process_env(mut self, read: bool) -> Self {
        self.sources.process_env = read;
        self
    }

    /// A dotenv file consulted after the process environment, like Spin's `.env`
    /// (default: none; the binary uses `.env`).
    pub fn dotenv(mut self, path: Option<PathBuf>) -> Self {
        self.sources.dotenv = path;
        self
    }

    /// The directory of the `default` SQLite database and key-value store (default
    /// `.spin`, relative to the current directory).
    pub fn sqlite_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.sqlite_dir = dir.into();
        self
    }

    /// How many instances may run at once (default 64); further requests wait.
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n.max(1);
        self
    }

    /// Lets each request set the component's wall clock with an `x-test-now-ms` header
    /// (milliseconds since the Unix epoch; the header is removed before the component sees
    /// it). Off by default and in the binary: it exists so that tests that pass `now`
    /// explicitly (token lifetimes, timestamps, 24-hour key expiry) run unchanged over HTTP.
    pub fn test_clock(mut self, on: bool) -> Self {
        self.test_clock = on;
        self
    }

    /// Strict zero-row mode for PostgreSQL (default on, in the binary too unless
    /// `--lenient-postgres`): a guest `query` whose result has no rows fails with
    /// `query-failed(`[`STRICT_ZERO_ROWS`]`)` instead of returning an empty row set, because
    /// Spin 4.0.x hangs forever on such a query (spinframework/spin#3671). The host writes
    /// one line to its stderr with the start of the SQL and counts the violation
    /// ([`RunningHost::strict_violations`]). `execute` is never affected. Off, the host
    /// answers like Spin before 4.0 (and after the fix): no rows and no columns.
    pub fn strict_postgres(mut self, on: bool) -> Self {
        self.strict_postgres = on;
        self
    }

    /// How a PostgreSQL address that `allowed_outbound_hosts` does not allow is refused
    /// ([`RefusalText`]): as Spin 3.4 and later word it (the default), or as Spin 3.0 to
    /// 3.3 did, quoting the whole connection string with its password.
    pub fn pg_refusal_text(mut self, text: RefusalText) -> Self {
        self.pg_refusal = text;
        self
    }

    /// Where the guest's stdout and stderr go (default: the host's stderr). Each guest
    /// write (WASI `write` / `blocking-write-and-flush` with bytes) is one call with its
    /// bytes, unbuffered, as Spin forwards them; pass a [`LogCapture`] to read them back.
    pub fn log_sink(mut self, sink: impl Into<LogSink>) -> Self {
        self.log_sink = sink.into();
        self
    }

    /// Adds an `x-host-calls` header ([`HOST_CALLS_HEADER`]) to every response, counting
    /// the host calls of the request's instance by kind ([`HostCalls`], read with
    /// [`Response::host_calls`]). Off by default and in the binary: it is for tests and
    /// benchmarks. To count what the instance does after its response head (writing the
    /// body, logging), the host then waits for the instance to finish and buffers the
    /// body before answering, so responses are not streamed.
    pub fn count_host_calls(mut self, on: bool) -> Self {
        self.count_host_calls = on;
        self
    }

    /// Where compiled components are kept between runs, keyed by the Wasm's content and
    /// the engine's settings (default `target/spin-test-host-cache`; `None` disables).
    pub fn compile_cache(mut self, dir: Option<PathBuf>) -> Self {
        self.compile_cache = dir;
        self
    }

    /// Reads the manifest, resolves variables, compiles and pre-instantiates the component.
    pub fn build(self) -> Result<Host> {
        let app = manifest::load(&self.manifest, &self.sources)?;
        let wasm = self.wasm.clone().unwrap_or_else(|| app.source.clone());

        let mut pooling = PoolingAllocationConfig::new();
        let n = self.max_instances;
        pooling
            .total_component_instances(n)
            .total_core_instances(n.saturating_mul(16))
            .total_memories(n.saturating_mul(4))
            .total_tables(n.saturating_mul(8))
            .total_stacks(n)
            .max_memory_size(MAX_MEMORY_SIZE)
            // Reset the first pages of a reused slot with memset rather than madvise: an
            // instance per request touches them every time, and giving them back to the
            // kernel costs page faults and cross-core TLB flushes on each request.
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(SMALL_KEEP_RESIDENT)
            .async_stack_keep_resident(SMALL_KEEP_RESIDENT)
            .decommit_batch_size(n as usize);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)?;

        // One compilation at a time in a process: hosts built in parallel (tests) wait
        // for the first one and then load its result from the cache.
        static COMPILING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let started = Instant::now();
        let (component, cached) = {
            let _guard = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
            load_component(&engine, &wasm, self.compile_cache.as_deref())?
        };
        let compile_time = started.elapsed();

        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::spin::postgres3_0_0::postgres::add_to_linker::<_, HasSelf<State>>(
            &mut linker,
            |s| s,
        )?;
        bindings::fermyon::spin2_0_0::sqlite::add_to_linker::<_, HasSelf<State>>(
            &mut linker,
            |s| s,
        )?;
        bindings::fermyon::spin2_0_0::variables::add_to_linker::<_, HasSelf<State>>(
            &mut linker,
            |s| s,
        )?;
        bindings::fermyon::spin2_0_0::key_value::add_to_linker::<_, HasSelf<State>>(
            &mut linker,
            |s| s,
        )?;
        let pre = linker
            .instantiate_pre(&component)
            .context("the component imports something this host does not provide")?;
        let pre = ProxyPre::new(pre)
            .context("the component does not export wasi:http/incoming-handler")?;

        let shared = Arc::new(Shared {
            pg: pg::PgPools::default(),
            sqlite: sqlite::SqliteDatabase::new(self.sqlite_dir.join("sqlite_db.db")),
            kv: kv::KeyValueDatabase::new(self.sqlite_dir.join("sqlite_key_value.db")),
            app,
            test_clock: self.test_clock,
            strict_postgres: pg::StrictMode::new(self.strict_postgres),
            pg_refusal: self.pg_refusal,
            log_sink: self.log_sink.clone(),
            count_host_calls: self.count_host_calls,
            guest_memory_peak: Arc::default(),
        });
        Ok(Host {
            inner: Arc::new(server::Inner::new(pre, shared, n)),
            wasm,
            compile_time,
            cached,
        })
    }
}

/// Compiles `wasm`, or loads the result of an earlier compilation from `cache`.
fn load_component(engine: &Engine, wasm: &Path, cache: Option<&Path>) -> Result<(Component, bool)> {
    let bytes = std::fs::read(wasm).with_context(|| {
        format!(
            "reading the component {} (build it with `cargo build -p task-api-spin --target wasm32-wasip2 --release`)",
            wasm.display()
        )
    })?;
    let Some(cache) = cache else {
        return Ok((Component::new(engine, &bytes)?, false));
    };
    // Any fixed-key hasher will do: a different std hasher only means a cache miss.
    let mut hasher =
        std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default().build_hasher();
    bytes.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    let file = cache.join(format!("{:016x}-{}.cwasm", hasher.finish(), bytes.len()));
    if file.is_file() {
        // SAFETY: the file was written by `Component::serialize` below, for an engine with
        // the same compatibility hash (part of the file name); nothing else writes there.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(component) => return Ok((component, true)),
            Err(e) => eprintln!(
                "spin-test-host: ignoring the cached {}: {e}",
                file.display()
            ),
        }
    }
    let component = Component::new(engine, &bytes)?;
    let written = std::fs::create_dir_all(cache).and_then(|()| {
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, component.serialize().map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, &file)
    });
    if let Err(e) = written {
        eprintln!("spin-test-host: could not cache the compiled component: {e}");
    }
    prune_cache(cache, CACHE_KEEP);
    Ok((component, false))
}

/// Compiled components kept in the cache directory; older ones are removed.
const CACHE_KEEP: usize = 6;

/// Removes all but the `keep` most recently written `.cwasm` files of `dir`.
fn prune_cache(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, path) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
}

/// A compiled, pre-instantiated component with its resolved manifest, ready to serve.
pub struct Host {
    inner: Arc<server::Inner>,
    wasm: PathBuf,
    compile_time: std::time::Duration,
    cached: bool,
}

impl Host {
    /// Settings with the defaults described on each [`HostBuilder`] method.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The resolved manifest.
    pub fn app(&self) -> &App {
        &self.inner.shared.app
    }

    /// The component file being served.
    pub fn wasm(&self) -> &Path {
        &self.wasm
    }

    /// How long compiling (or loading the cached compilation) took, and whether it came
    /// from the cache.
    pub fn compile_time(&self) -> (std::time::Duration, bool) {
        (self.compile_time, self.cached)
    }

    /// Zero-row PostgreSQL queries refused by strict mode so far, by every server of this
    /// host.
    pub fn strict_violations(&self) -> u64 {
        self.inner.shared.strict_postgres.violations()
    }

    /// The most linear memory (bytes, all of an instance's memories together, from its
    /// initial size on) that one instance has reached since the host was built or
    /// [`Host::reset_peak_guest_memory`]: what "bounded memory" means for a component,
    /// since the guest can hold nothing outside its linear memory. An instance's memory
    /// never shrinks, so its peak is its size when it ends. Each request being an instance,
    /// reset, send one request, read its body to the end, and this is that request's peak.
    pub fn peak_guest_memory(&self) -> usize {
        self.inner
            .shared
            .guest_memory_peak
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts [`Host::peak_guest_memory`] again from 0, returning what it was.
    pub fn reset_peak_guest_memory(&self) -> usize {
        self.inner
            .shared
            .guest_memory_peak
            .swap(0, std::sync::atomic::Ordering::Relaxed)
    }

    /// Listens on `addr` (port 0 picks a free port) and serves requests on the current
    /// tokio runtime until the returned [`RunningHost`] is shut down or dropped. Use a
    /// multi-threaded runtime for requests to run in parallel.
    pub async fn serve(&self, addr: impl ToSocketAddrs) -> Result<RunningHost> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .context("binding the listener")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::accept_loop(listener, self.inner.clone(), stopped));
        Ok(RunningHost {
            addr,
            stop,
            task: Some(task),
            inner: self.inner.clone(),
        })
    }
}

/// A host serving requests. Dropping it stops the server at once (open connections are
/// cut); [`RunningHost::shutdown`] lets requests in progress finish first.
pub struct RunningHost {
    /// The address the host listens on.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    inner: Arc<server::Inner>,
}

impl RunningHost {
    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a GET request for `path` (with the query) and reads the whole response.
    pub async fn get(&self, path: &str) -> Result<Response> {
        client::get(self.addr, path).await
    }

    /// Sends `request` (its URI is the path and query) and reads the whole response.
    pub async fn send(&self, request: http::Request<Vec<u8>>) -> Result<Response> {
        client::send(self.addr, request).await
    }

    /// Zero-row PostgreSQL queries refused by strict mode so far
    /// ([`HostBuilder::strict_postgres`]).
    pub fn strict_violations(&self) -> u64 {
        self.inner.shared.strict_postgres.violations()
    }

    /// Stops accepting connections, lets the requests in progress finish (up to five
    /// seconds), then closes the pooled PostgreSQL connections.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.inner.shared.pg.close();
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
