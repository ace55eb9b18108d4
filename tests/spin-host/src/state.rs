//! What every request's store holds, and what all requests share.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::guest_memory::GuestMemory;
use crate::guest_output::{GuestOutput, LogSink};
use crate::host_calls::{Call, Counters};
use crate::kv::KeyValueDatabase;
use crate::manifest::App;
use crate::pg::{PgPools, StrictMode};
use crate::sqlite::SqliteDatabase;

/// Application-wide state: the resolved manifest and the database handles.
pub struct Shared {
    pub app: App,
    pub pg: PgPools,
    pub sqlite: SqliteDatabase,
    pub kv: KeyValueDatabase,
    /// Whether requests may set the wall clock (`HostBuilder::test_clock`).
    pub test_clock: bool,
    /// Strict zero-row mode for PostgreSQL queries (`HostBuilder::strict_postgres`).
    pub strict_postgres: StrictMode,
    /// How a refused PostgreSQL address is worded (`HostBuilder::pg_refusal_text`).
    pub pg_refusal: crate::pg::RefusalText,
    /// Where the guests' stdout and stderr go (`HostBuilder::log_sink`).
    pub log_sink: LogSink,
    /// Whether responses carry `x-host-calls` (`HostBuilder::count_host_calls`).
    pub count_host_calls: bool,
    /// The most linear memory one instance has reached (`Host::peak_guest_memory`).
    pub guest_memory_peak: Arc<std::sync::atomic::AtomicUsize>,
}

/// The request header that sets the wall clock when the test clock is on.
pub const TEST_NOW_HEADER: &str = "x-test-now-ms";

/// A wall clock stopped at one instant, for a request that asked for it.
struct FixedClock(std::time::Duration);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }

    fn now(&self) -> std::time::Duration {
        self.0
    }
}

/// The data of one request's store (one fresh instance per request).
pub struct State {
    pub shared: Arc<Shared>,
    pub table: ResourceTable,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub hooks: OutboundHttp,
    /// The host calls this instance made, by kind (always counted: a relaxed atomic add
    /// per call; only reported with `HostBuilder::count_host_calls`).
    pub calls: Arc<Counters>,
    /// The store's resource limiter: refuses nothing, records the linear memory.
    pub memory: GuestMemory,
}

impl State {
    /// A request's state; `now_ms` stops its wall clock there (test clock only).
    pub fn new(shared: Arc<Shared>, now_ms: Option<u64>) -> State {
        let mut wasi = WasiCtx::builder();
        if let Some(ms) = now_ms {
            wasi.wall_clock(FixedClock(std::time::Duration::from_millis(ms)));
        }
        // The guest's stdout and stderr both go to the log sink (the host's stderr unless
        // set), each write as it comes, as Spin's `ComponentStdioWriter` sends both streams
        // of a component to its stderr (spinframework/spin crates/trigger/src/cli/stdio.rs).
        let calls = Arc::new(Counters::default());
        let sink = shared.log_sink.clone();
        wasi.stdout(GuestOutput::new(sink.clone(), calls.clone(), Call::Stdout))
            .stderr(GuestOutput::new(sink, calls.clone(), Call::Stderr));
        for (k, v) in &shared.app.environment {
            wasi.env(k, v);
        }
        State {
            hooks: OutboundHttp {
                shared: shared.clone(),
                calls: calls.clone(),
            },
            calls,
            memory: GuestMemory::new(shared.guest_memory_peak.clone(), crate::MAX_MEMORY_SIZE),
            shared,
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Outbound `wasi:http` requests, checked against `allowed_outbound_hosts` like Spin:
/// a request to a host that is not allowed fails with `HTTP-request-denied`.
pub struct OutboundHttp {
    shared: Arc<Shared>,
    calls: Arc<Counters>,
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        self.calls.add(Call::Http);
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let allowed = uri.host().is_some_and(|host| {
            self.shared
                .app
                .allowed_hosts
                .allows(&scheme, host, uri.port_u16())
        });
        if !allowed {
            eprintln!(
                "spin-test-host: the component tried to send a request to {uri}, \
                 which allowed_outbound_hosts does not allow"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}
