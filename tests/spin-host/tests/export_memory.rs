//! `GET /api/tasks/export` holds one page at a time, whatever the number of tasks
//! (docs/sync.md, "Export"): measured where it matters for a Spin component, in the guest's
//! linear memory ([`Host::peak_guest_memory`]), on SQLite and on PostgreSQL.
//!
//! One user gets `EXPORT_TASKS` tasks (default 30,000; imports of 10,000 NDJSON lines, each
//! task with a title of about 40 characters and a description of about 100), others 1,000
//! and 10,000. Each export is the only request in flight, its body read to the end by the
//! client; the peak of the big export (for 30,000 tasks, NDJSON and CSV: about 10 and 6 MiB
//! of body) must stay within [`SLACK`] of the 1,000-task one, which a component that built
//! the body in memory could not do. A memory bound, not a timing: the times are printed
//! only. CI runs the default, which costs about a third of the 100,000-task run.
//!
//! `EXPORT_TASKS=100000 cargo test -p spin-test-host --test export_memory -- --nocapture
//! --test-threads=1` prints the figures for 100,000 tasks (about 35 and 21 MiB of body).

use std::time::{Duration, Instant};

use http::Request;
use spin_test_host::{Host, RunningHost};
use task_api_test_kit::postgres::{PgSchema, reachable};
use task_api_test_kit::{SECRET, TempDir, system_now_secs, temp_dir, token_at};

/// How much more linear memory the big export may use than the 1,000-task one: less than
/// the body of 30,000 tasks (about 10 MiB of JSON lines), more than the one-off step seen
/// on PostgreSQL (0.44 MiB, between 1,000 and 10,000 tasks, then flat to 100,000).
const SLACK: usize = 4 << 20;

/// The big export's number of tasks: `EXPORT_TASKS`, default 30,000 (a multiple of
/// [`IMPORT_BATCH`]).
fn big_tasks() -> usize {
    std::env::var("EXPORT_TASKS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n >= 30_000 && n % IMPORT_BATCH == 0)
        .unwrap_or(30_000)
}
/// Tasks per import: the most one import takes.
const IMPORT_BATCH: usize = 10_000;

const MIB: f64 = (1 << 20) as f64;

/// A served component and what must outlive it, dropped in this order.
struct Served {
    running: RunningHost,
    host: Host,
    runtime: tokio::runtime::Runtime,
    _schema: Option<PgSchema>,
    _dir: TempDir,
}

/// Serves the component on SQLite, or on a fresh PostgreSQL schema when `postgres`
/// (`None` when PostgreSQL is unreachable and skipping is allowed).
fn serve(postgres: bool) -> Option<Served> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = temp_dir("export-memory");
    let mut variables: Vec<(String, String)> = vec![("jwt_secret".into(), SECRET.into())];
    let schema = if postgres {
        let schema = runtime.block_on(PgSchema::create("export_memory"))?;
        variables.push(("database_url".into(), schema.component_url()));
        variables.push(("database_host".into(), schema.database_host()));
        Some(schema)
    } else {
        None
    };
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variables(variables)
        .sqlite_dir(dir.path())
        .build()
        .expect("the host starts");
    let running = runtime
        .block_on(host.serve("127.0.0.1:0"))
        .expect("the host listens");
    Some(Served {
        running,
        host,
        runtime,
        _schema: schema,
        _dir: dir,
    })
}

fn bearer(user: &str) -> String {
    format!("Bearer {}", token_at(user, system_now_secs()))
}

/// `n` NDJSON records numbered from `first`: a title of about 40 characters and a
/// description of about 100.
fn ndjson(first: usize, n: usize) -> Vec<u8> {
    let mut body = String::with_capacity(n * 190);
    for i in first..first + n {
        let title = format!("Task {i:06}: review the quarterly numbers");
        let description = format!(
            "Task {i:06} of the export memory test: check the figures, write them up, and send them round."
        );
        body.push_str(&serde_json::json!({"title": title, "description": description}).to_string());
        body.push('\n');
    }
    body.into_bytes()
}

/// Gives `user` `n` tasks, [`IMPORT_BATCH`] per import.
fn import(served: &Served, user: &str, n: usize) {
    let started = Instant::now();
    for first in (0..n).step_by(IMPORT_BATCH) {
        let count = IMPORT_BATCH.min(n - first);
        let request = Request::post("/api/tasks/import")
            .header("authorization", bearer(user))
            .header("content-type", "application/x-ndjson")
            .body(ndjson(first, count))
            .expect("a request");
        let response = served
            .runtime
            .block_on(served.running.send(request))
            .expect("the import answers");
        assert_eq!(response.status, 201, "import: {}", response.text());
        let reply: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
        assert_eq!(reply["data"]["imported"], count, "{reply}");
    }
    println!(
        "  imported {n} tasks for {user} in {:.2}s",
        started.elapsed().as_secs_f64()
    );
}

/// What one export cost.
struct Export {
    peak: usize,
    body: usize,
    elapsed: Duration,
}

/// Exports `user`'s tasks as `accept` (alone on the host, its body read to the end), checks
/// the body holds `tasks` records (and the CSV header), and reads the guest's peak memory.
fn export(served: &Served, user: &str, accept: &str, tasks: usize) -> Export {
    let request = Request::get("/api/tasks/export")
        .header("authorization", bearer(user))
        .header("accept", accept)
        .body(Vec::new())
        .expect("a request");
    served.host.reset_peak_guest_memory();
    let started = Instant::now();
    let response = served
        .runtime
        .block_on(served.running.send(request))
        .expect("the export answers");
    let elapsed = started.elapsed();
    let peak = served.host.peak_guest_memory();
    assert_eq!(response.status, 200, "export: {}", response.text());
    let header = usize::from(accept == "text/csv");
    let lines = response
        .body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty());
    assert_eq!(
        lines.count(),
        header + tasks,
        "{accept} export of {user}: lines"
    );
    assert!(response.body.ends_with(b"\n"), "a complete last line");
    let export = Export {
        peak,
        body: response.body.len(),
        elapsed,
    };
    println!(
        "  {accept:<20} {tasks:>7} tasks: peak guest memory {:>10} bytes ({:>6.2} MiB), body {:>10} bytes ({:>6.2} MiB), {:>6.3}s",
        export.peak,
        export.peak as f64 / MIB,
        export.body,
        export.body as f64 / MIB,
        export.elapsed.as_secs_f64(),
    );
    export
}

/// The whole measurement on one database.
fn export_memory_is_bounded(postgres: bool) {
    let db = if postgres { "PostgreSQL" } else { "SQLite" };
    let Some(served) = serve(postgres) else {
        return;
    };
    println!("export memory on {db}:");
    import(&served, "export-1k", 1_000);
    import(&served, "export-10k", 10_000);
    let n = big_tasks();
    import(&served, "export-big", n);
    println!(
        "  peak guest memory of the imports: {:.2} MiB",
        served.host.peak_guest_memory() as f64 / MIB
    );

    let small = export(&served, "export-1k", "application/x-ndjson", 1_000);
    let small_csv = export(&served, "export-1k", "text/csv", 1_000);
    let middle = export(&served, "export-10k", "application/x-ndjson", 10_000);
    let big = export(&served, "export-big", "application/x-ndjson", n);
    let big_csv = export(&served, "export-big", "text/csv", n);
    // Twice, so that a one-off (an allocator's first growth) shows as such.
    let again = export(&served, "export-big", "application/x-ndjson", n);

    for (what, e, base) in [
        ("NDJSON 10k".to_owned(), &middle, &small),
        (format!("NDJSON {n}"), &big, &small),
        (format!("CSV {n}"), &big_csv, &small_csv),
        (format!("NDJSON {n} again"), &again, &small),
    ] {
        println!(
            "  {what}: {:+.2} MiB over the 1k export ({:.2} MiB of body)",
            (e.peak as f64 - base.peak as f64) / MIB,
            e.body as f64 / MIB
        );
    }
    // The meter works: it counts at least the memory every instance starts with.
    assert!(
        small.peak >= 1 << 20,
        "{db}: a peak of {} bytes",
        small.peak
    );
    for (what, e, base) in [
        ("NDJSON", &big, &small),
        ("CSV", &big_csv, &small_csv),
        ("NDJSON (again)", &again, &small),
    ] {
        assert!(
            e.peak < base.peak + SLACK,
            "{db}: the {what} export of {n} tasks reached {:.2} MiB of linear memory, \
             the export of 1,000 {:.2} MiB: more than {} MiB apart, so memory grows with the \
             number of tasks (the body was {:.2} MiB)",
            e.peak as f64 / MIB,
            base.peak as f64 / MIB,
            SLACK >> 20,
            e.body as f64 / MIB
        );
    }
}

#[test]
fn export_memory_is_bounded_on_sqlite() {
    export_memory_is_bounded(false);
}

#[test]
fn export_memory_is_bounded_on_postgres() {
    if !reachable() {
        return;
    }
    export_memory_is_bounded(true);
}
