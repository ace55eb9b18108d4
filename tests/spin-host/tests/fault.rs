//! Fault injection: the PostgreSQL server dies under load and comes back.
//!
//! The test starts a private PostgreSQL 15 cluster (`initdb` into a temporary directory,
//! `pg_ctl start` on a free port of 127.0.0.1, trust authentication, no TLS; as the
//! `postgres` OS user when the test runs as root, since `initdb` refuses root), serves the
//! real component on it, and lets [`CLIENTS`] clients create tasks in a loop, each create
//! with its own `Idempotency-Key`, retried with the same key until it is acknowledged with
//! a 201. While they run, the server is killed (`pg_ctl stop -m immediate`), left down for
//! [`OUTAGE`], and started again. Then:
//!
//! - every answer is a 201, or a 503 with `Retry-After` (no 500, no other status, no
//!   transport failure, nothing slower than [`REQUEST_TIMEOUT`]); 503s only while the
//!   database is down or just coming back;
//! - the first 201 after the restart comes within [`RECOVERY_BOUND`] of the server
//!   accepting connections again (a probe's `SELECT 1` succeeding, as `pg_isready` would
//!   say; the first TCP connect is reported too);
//! - no acknowledged create is lost or doubled: listing every task (pages of 100 through
//!   `meta.next_cursor`) gives exactly one task per key, with the id its 201 named.
//!
//! The cluster is stopped and its directory removed when the test ends, also on a panic
//! (`PgCluster`'s `Drop`). Without PostgreSQL's server programs the test fails, unless
//! `SKIP_DB_TESTS=1` (as the other PostgreSQL tests).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jwt_simple::prelude::{Claims, HS256Key, MACLike as _};
use serde_json::{Value, json};
use spin_test_host::{Host, LogCapture, Response};
use task_api_test_kit::{postgres::skipping_db, temp_dir};

const SECRET: &str = "a fault-injection secret that is at least thirty-two bytes";
/// Every client creates tasks as this user, so one listing sees them all.
const USER: &str = "fault-user";
/// Concurrent clients.
const CLIENTS: usize = 8;
/// The longest a request may take before it counts as a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Load before the server is killed.
const BEFORE: Duration = Duration::from_millis(1500);
/// How long the server stays down.
const OUTAGE: Duration = Duration::from_secs(2);
/// Load after the server accepts connections again.
const AFTER: Duration = Duration::from_secs(2);
/// The first 201 after the restart must come this soon after the server is ready.
const RECOVERY_BOUND: Duration = Duration::from_secs(1);
/// A client's pause after a failed create, before it sends the same key again.
const RETRY_PAUSE: Duration = Duration::from_millis(25);
/// A client's pause between two acknowledged creates.
const CREATE_PAUSE: Duration = Duration::from_millis(10);
/// At most this many keys per client.
const KEYS_PER_CLIENT: usize = 1000;
/// A client still retrying a key this long after the load started gives up (and fails).
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);
/// The longest the cluster may take to accept connections after `pg_ctl start`.
const START_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The private cluster.

/// What runs the cluster's programs: where they are, its data, its port, and whether they
/// must run as the `postgres` OS user.
#[derive(Clone, Debug)]
struct PgCtl {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PgCtl {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// `program` of the server's binaries, as the `postgres` user when the test is root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(args)
            .output()
            .expect("running pg_ctl")
    }

    /// `pg_ctl start`, waiting until the server is ready (`wait`) or not.
    fn start(&self, wait: bool) -> Output {
        let log = self.log();
        let port = format!("-p {}", self.port);
        let mut args = vec!["-l", log.to_str().expect("a UTF-8 path"), "-o", &port];
        if wait {
            args.extend(["-w", "-t", "30"]);
        } else {
            args.push("-W");
        }
        args.push("start");
        self.pg_ctl(&args)
    }

    /// `pg_ctl stop -m immediate`: the postmaster kills every backend at once, with no
    /// checkpoint (the next start runs crash recovery).
    fn stop_immediate(&self) -> Output {
        self.pg_ctl(&["-m", "immediate", "-w", "-t", "30", "stop"])
    }

    /// The end of the server's log, for failure messages.
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A private PostgreSQL cluster, stopped and removed when dropped.
struct PgCluster {
    ctl: PgCtl,
}

impl PgCluster {
    /// initdb, configure and start a cluster on a free port; `None` when PostgreSQL's
    /// programs are missing and `SKIP_DB_TESTS=1`.
    fn start() -> Option<PgCluster> {
        let Some(bin) = ["/usr/lib/postgresql/15/bin", "/usr/local/bin"]
            .iter()
            .map(PathBuf::from)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        else {
            if skipping_db() {
                eprintln!("skipping the fault-injection test (SKIP_DB_TESTS=1): no initdb");
                return None;
            }
            panic!(
                "initdb and pg_ctl (PostgreSQL 15) are in neither /usr/lib/postgresql/15/bin \
                 nor /usr/local/bin; install PostgreSQL 15, or set SKIP_DB_TESTS=1"
            );
        };
        let as_postgres = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("fault-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).expect("the cluster's temporary directory");
        // From here on the guard removes the directory, whatever happens.
        let mut cluster = PgCluster {
            ctl: PgCtl {
                bin,
                dir,
                port: 0,
                as_postgres,
            },
        };
        let dir = cluster.ctl.dir.clone();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .expect("chmod the cluster's directory");
        if as_postgres {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .expect("running id");
                assert!(
                    out.status.success(),
                    "there is no `postgres` OS user to run the server as (the test runs as root)"
                );
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("a numeric id")
            };
            std::os::unix::fs::chown(&dir, Some(id("-u")), Some(id("-g")))
                .expect("chown the cluster's directory to postgres");
        }
        let out = cluster
            .ctl
            .command("initdb")
            .arg("-D")
            .arg(cluster.ctl.data())
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .expect("running initdb");
        assert!(out.status.success(), "initdb failed: {}", show(&out));
        // Only 127.0.0.1, no TLS, the socket in our directory (not /var/run/postgresql).
        // `fsync = off` only skips flushing to disk: a killed server loses nothing the
        // kernel has, and `pg_ctl stop -m immediate` kills processes, not the machine.
        let conf = format!(
            "\n# fault.rs\nlisten_addresses = '127.0.0.1'\nssl = off\n\
             unix_socket_directories = '{}'\nfsync = off\nshared_buffers = 16MB\n\
             max_connections = 100\n",
            dir.display()
        );
        let conf_path = cluster.ctl.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).expect("postgresql.conf");
        text.push_str(&conf);
        std::fs::write(&conf_path, text).expect("writing postgresql.conf");
        // A free port may be taken between looking and listening: try a few.
        let mut failures = Vec::new();
        for _ in 0..3 {
            cluster.ctl.port = free_port();
            let out = cluster.ctl.start(true);
            if out.status.success() {
                return Some(cluster);
            }
            failures.push(format!("port {}: {}", cluster.ctl.port, show(&out)));
        }
        panic!(
            "the private PostgreSQL cluster did not start:\n{}\nserver log:\n{}",
            failures.join("\n"),
            cluster.ctl.log_tail(30)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.ctl.port != 0 {
            let _ = self.ctl.stop_immediate();
        }
        let _ = std::fs::remove_dir_all(&self.ctl.dir);
    }
}

fn show(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Whether the server answers a `SELECT 1` on a new connection (what `pg_isready` checks,
/// and a little more).
async fn pg_ready(port: u16) -> bool {
    let config = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable connect_timeout=1"
    );
    let attempt = async {
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
            .await
            .ok()?;
        let driver = tokio::spawn(connection);
        let ok = client.simple_query("SELECT 1").await.is_ok();
        drop(client);
        let _ = driver.await;
        Some(ok)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}

/// When the server, just started, first took a TCP connection and first answered a query.
async fn wait_until_ready(port: u16) -> (Option<Instant>, Option<Instant>) {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut tcp = None;
    while Instant::now() < deadline {
        if tcp.is_none()
            && tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        {
            tcp = Some(Instant::now());
        }
        if tcp.is_some() && pg_ready(port).await {
            return (tcp, Some(Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (tcp, None)
}

// ---------------------------------------------------------------------------------------
// The clients.

fn token() -> String {
    let claims = Claims::create(jwt_simple::prelude::Duration::from_hours(1)).with_subject(USER);
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(claims)
        .expect("signing")
}

/// How one request ended.
#[derive(Debug)]
enum Outcome {
    Answered(Response),
    TimedOut,
    Failed(String),
}

/// One request of a client.
#[derive(Debug)]
struct Attempt {
    key: String,
    request_id: String,
    started: Instant,
    ended: Instant,
    outcome: Outcome,
}

impl Attempt {
    fn status(&self) -> Option<u16> {
        match &self.outcome {
            Outcome::Answered(r) => Some(r.status),
            _ => None,
        }
    }

    fn is_created(&self) -> bool {
        self.status() == Some(201)
    }

    /// A 503 with a non-empty `Retry-After`.
    fn is_unavailable(&self) -> bool {
        match &self.outcome {
            Outcome::Answered(r) => {
                r.status == 503
                    && r.header("retry-after")
                        .is_some_and(|v| !v.trim().is_empty())
            }
            _ => false,
        }
    }

    fn describe(&self, origin: Instant) -> String {
        let what = match &self.outcome {
            Outcome::Answered(r) => format!(
                "{} retry-after={:?} {}",
                r.status,
                r.header("retry-after"),
                r.text().chars().take(300).collect::<String>()
            ),
            Outcome::TimedOut => format!("no answer within {REQUEST_TIMEOUT:?}"),
            Outcome::Failed(e) => format!("transport failure: {e}"),
        };
        format!(
            "{} ({}) at {:.3}s..{:.3}s: {what}",
            self.key,
            self.request_id,
            secs(self.started, origin),
            secs(self.ended, origin)
        )
    }
}

/// A key acknowledged with a 201.
#[derive(Debug)]
struct Ack {
    key: String,
    id: i64,
    replayed: bool,
    attempts: usize,
}

/// What one client did.
#[derive(Debug, Default)]
struct ClientRun {
    attempts: Vec<Attempt>,
    acks: Vec<Ack>,
    gave_up: Option<String>,
}

/// `POST /api/tasks` with `key` as both the `Idempotency-Key` and the title.
async fn create(addr: SocketAddr, token: &str, key: &str, request_id: &str) -> Outcome {
    let request = http::Request::post("/api/tasks")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .header("x-request-id", request_id)
        .body(json!({ "title": key }).to_string().into_bytes())
        .expect("a request");
    match tokio::time::timeout(REQUEST_TIMEOUT, spin_test_host::client::send(addr, request)).await {
        Ok(Ok(response)) => Outcome::Answered(response),
        Ok(Err(e)) => Outcome::Failed(format!("{e:#}")),
        Err(_) => Outcome::TimedOut,
    }
}

/// Creates tasks until `stop` is set, each key retried until a 201.
async fn client(
    n: usize,
    addr: SocketAddr,
    token: Arc<String>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) -> ClientRun {
    let mut run = ClientRun::default();
    for k in 0..KEYS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let key = format!("fault-c{n}-k{k}");
        for attempt in 1.. {
            let request_id = format!("{key}-a{attempt}");
            let started = Instant::now();
            let outcome = create(addr, &token, &key, &request_id).await;
            let ended = Instant::now();
            let ack = match &outcome {
                Outcome::Answered(r) if r.status == 201 => {
                    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    Some(Ack {
                        key: key.clone(),
                        id: body["data"]["id"].as_i64().unwrap_or(-1),
                        replayed: r.header("idempotent-replayed") == Some("true"),
                        attempts: attempt,
                    })
                }
                _ => None,
            };
            run.attempts.push(Attempt {
                key: key.clone(),
                request_id,
                started,
                ended,
                outcome,
            });
            if let Some(ack) = ack {
                run.acks.push(ack);
                break;
            }
            if Instant::now() > deadline {
                run.gave_up = Some(format!(
                    "{key}: still not acknowledged after {attempt} tries"
                ));
                return run;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        tokio::time::sleep(CREATE_PAUSE).await;
    }
    run
}

/// Every task of [`USER`], `(id, title)`, through pages of 100 and `meta.next_cursor`.
async fn list_all(addr: SocketAddr, token: &str) -> Vec<(i64, String)> {
    let mut tasks = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    for _ in 0..1000 {
        let path = match &cursor {
            Some(c) => format!("/api/tasks?limit=100&cursor={c}"),
            None => "/api/tasks?limit=100".to_owned(),
        };
        let request = http::Request::get(path.as_str())
            .header("authorization", format!("Bearer {token}"))
            .body(Vec::new())
            .expect("a request");
        let response =
            tokio::time::timeout(REQUEST_TIMEOUT, spin_test_host::client::send(addr, request))
                .await
                .expect("the listing answers in time")
                .expect("the listing answers");
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        let body: Value = serde_json::from_slice(&response.body).expect("a JSON list");
        for task in body["data"].as_array().expect("a data array") {
            tasks.push((
                task["id"].as_i64().expect("an id"),
                task["title"].as_str().expect("a title").to_owned(),
            ));
        }
        total = body["meta"]["total"].as_u64();
        match body["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        total,
        Some(tasks.len() as u64),
        "meta.total against the tasks the pages listed"
    );
    tasks
}

fn secs(t: Instant, origin: Instant) -> f64 {
    t.saturating_duration_since(origin).as_secs_f64()
}

/// The component's log lines of these requests.
fn log_lines_of(log: &LogCapture, request_ids: &[&str]) -> String {
    log.text()
        .lines()
        .filter(|l| {
            request_ids
                .iter()
                .any(|id| l.contains(&format!("\"request_id\":\"{id}\"")))
        })
        .take(20)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// The test.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_a_postgres_crash_and_restart() {
    let wasm = spin_test_host::build_component();
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let ctl = cluster.ctl.clone();
    let port = ctl.port;
    let dir = temp_dir("spin-fault");
    let log = LogCapture::new();
    let host = Host::builder()
        .wasm(wasm)
        .process_env(false)
        .variable("jwt_secret", SECRET)
        .variable(
            "database_url",
            format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
        )
        .variable("database_host", format!("127.0.0.1:{port}"))
        .sqlite_dir(dir.path())
        .log_sink(log.sink())
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    let addr = running.addr;
    let token = Arc::new(token());

    // The first request migrates the fresh database.
    match create(addr, &token, "warm-up", "warm-up").await {
        Outcome::Answered(r) if r.status == 201 => {}
        other => panic!("the warm-up create failed: {other:?}"),
    }

    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(client(
                n,
                addr,
                token.clone(),
                stop.clone(),
                origin + CLIENT_DEADLINE,
            ))
        })
        .collect();

    tokio::time::sleep(BEFORE).await;
    let stop_began = Instant::now();
    let stopping = ctl.clone();
    let out = tokio::task::spawn_blocking(move || stopping.stop_immediate())
        .await
        .expect("pg_ctl stop");
    let stop_done = Instant::now();
    assert!(out.status.success(), "pg_ctl stop failed: {}", show(&out));

    tokio::time::sleep(OUTAGE).await;
    let start_began = Instant::now();
    let starting = ctl.clone();
    let started = tokio::task::spawn_blocking(move || starting.start(false));
    let (tcp_at, ready_at) = wait_until_ready(port).await;
    let out = started.await.expect("pg_ctl start");
    assert!(out.status.success(), "pg_ctl start failed: {}", show(&out));
    let ready_at = ready_at.unwrap_or_else(|| {
        panic!(
            "the server did not accept connections within {START_TIMEOUT:?} of pg_ctl start; \
             server log:\n{}",
            ctl.log_tail(30)
        )
    });

    tokio::time::sleep(AFTER).await;
    stop.store(true, Ordering::SeqCst);
    let mut runs = Vec::new();
    for c in clients {
        runs.push(c.await.expect("a client"));
    }
    let load_ended = Instant::now();

    // -- What the clients saw.
    let attempts: Vec<&Attempt> = runs.iter().flat_map(|r| &r.attempts).collect();
    let acks: Vec<&Ack> = runs.iter().flat_map(|r| &r.acks).collect();
    let mut problems: Vec<String> = Vec::new();
    let mut report = |title: &str, bad: &[&Attempt]| {
        if !bad.is_empty() {
            let ids: Vec<&str> = bad.iter().map(|a| a.request_id.as_str()).collect();
            problems.push(format!(
                "{title}: {} requests, e.g.\n  {}\n  component log:\n{}",
                bad.len(),
                bad.iter()
                    .take(5)
                    .map(|a| a.describe(origin))
                    .collect::<Vec<_>>()
                    .join("\n  "),
                log_lines_of(&log, &ids[..ids.len().min(5)])
            ));
        }
    };

    let wrong: Vec<&Attempt> = attempts
        .iter()
        .copied()
        .filter(|a| !a.is_created() && !a.is_unavailable())
        .collect();
    report(
        "answers other than 201 or 503 with Retry-After (500s, other statuses, hangs, failures)",
        &wrong,
    );
    let early: Vec<&Attempt> = attempts
        .iter()
        .copied()
        .filter(|a| a.is_unavailable() && a.ended < stop_began)
        .collect();
    report("503s before the server was stopped", &early);
    let late: Vec<&Attempt> = attempts
        .iter()
        .copied()
        .filter(|a| a.is_unavailable() && a.started > ready_at + RECOVERY_BOUND)
        .collect();
    report(
        &format!("503s for requests sent more than {RECOVERY_BOUND:?} after the server was ready"),
        &late,
    );
    let impossible: Vec<&Attempt> = attempts
        .iter()
        .copied()
        .filter(|a| a.is_created() && a.started > stop_done && a.ended < start_began)
        .collect();
    report("201s while the server was down", &impossible);

    let down_503s = attempts
        .iter()
        .filter(|a| a.is_unavailable() && a.ended >= stop_done && a.ended <= start_began)
        .count();
    if down_503s < CLIENTS {
        problems.push(format!(
            "only {down_503s} 503s while the server was down: the clients did not exercise the outage"
        ));
    }
    let all_503s = attempts.iter().filter(|a| a.is_unavailable()).count();
    let first_success = attempts
        .iter()
        .filter(|a| a.is_created() && a.ended > start_began)
        .min_by_key(|a| a.ended);
    let recovery = first_success.map(|a| a.ended.saturating_duration_since(ready_at));
    match (first_success, recovery) {
        (Some(first), Some(after)) if after > RECOVERY_BOUND => problems.push(format!(
            "the first 201 after the restart came {after:?} after the server was ready (bound \
             {RECOVERY_BOUND:?}): {}",
            first.describe(origin)
        )),
        (None, _) => problems.push("no 201 after the restart".to_owned()),
        _ => {}
    }
    for run in &runs {
        if let Some(gave_up) = &run.gave_up {
            problems.push(format!("a client gave up: {gave_up}"));
        }
    }

    // -- What the database kept.
    let listed = list_all(addr, &token).await;
    let mut by_title: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (id, title) in &listed {
        by_title.entry(title.as_str()).or_default().push(*id);
    }
    let acked_keys: BTreeSet<&str> = acks.iter().map(|a| a.key.as_str()).collect();
    let mut lost = Vec::new();
    let mut doubled = Vec::new();
    let mut wrong_id = Vec::new();
    for ack in &acks {
        match by_title.get(ack.key.as_str()).map(Vec::as_slice) {
            None | Some([]) => lost.push(ack.key.clone()),
            Some([id]) if *id == ack.id => {}
            Some([id]) => wrong_id.push(format!("{}: 201 said {}, listed {id}", ack.key, ack.id)),
            Some(ids) => doubled.push(format!("{}: {ids:?}", ack.key)),
        }
    }
    let strays: Vec<&str> = by_title
        .keys()
        .copied()
        .filter(|t| *t != "warm-up" && !acked_keys.contains(t))
        .collect();
    for (what, list) in [
        ("acknowledged creates missing from the listing", &lost),
        ("keys with more than one task", &doubled),
        ("keys whose task is not the one their 201 named", &wrong_id),
    ] {
        if !list.is_empty() {
            problems.push(format!(
                "{what}: {} ({:?})",
                list.len(),
                &list[..list.len().min(10)]
            ));
        }
    }
    if !strays.is_empty() {
        problems.push(format!(
            "tasks whose key was never acknowledged: {} ({:?})",
            strays.len(),
            &strays[..strays.len().min(10)]
        ));
    }
    if listed.len() != acks.len() + 1 {
        problems.push(format!(
            "{} tasks listed for {} acknowledged keys and the warm-up",
            listed.len(),
            acks.len()
        ));
    }

    // -- The keys whose first answer was a 503 (the creates in flight when the server died,
    // and those sent while it was down) once more: each must replay the task its 201 named.
    let in_doubt: Vec<&&Ack> = acks.iter().filter(|a| a.attempts > 1).take(50).collect();
    for ack in &in_doubt {
        let request_id = format!("{}-again", ack.key);
        match create(addr, &token, &ack.key, &request_id).await {
            Outcome::Answered(r)
                if r.status == 201 && r.header("idempotent-replayed") == Some("true") =>
            {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                if body["data"]["id"].as_i64() != Some(ack.id) {
                    problems.push(format!(
                        "{} replayed task {} after the run, its 201 named {}",
                        ack.key, body["data"]["id"], ack.id
                    ));
                }
            }
            other => problems.push(format!(
                "{} sent again after the run was not a replay: {other:?}",
                ack.key
            )),
        }
    }

    let replays = acks.iter().filter(|a| a.replayed).count();
    let retried = acks.iter().filter(|a| a.attempts > 1).count();
    let summary = format!(
        "fault injection: {CLIENTS} clients, {} requests over {:.2}s; server stopped at {:.3}s \
         (pg_ctl stop took {:?}), pg_ctl start at {:.3}s, first TCP connect at {}, ready at \
         {:.3}s (unreachable for {:?}); {down_503s} 503s while down, {all_503s} in all; first 201 after \
         the restart at {} ({} after ready); {} keys acknowledged ({retried} after retries, \
         {replays} as replays; {} of them sent again after the run), {} tasks listed",
        attempts.len(),
        secs(load_ended, origin),
        secs(stop_began, origin),
        stop_done - stop_began,
        secs(start_began, origin),
        tcp_at.map_or("never".to_owned(), |t| format!("{:.3}s", secs(t, origin))),
        secs(ready_at, origin),
        ready_at - stop_began,
        first_success.map_or("never".to_owned(), |a| format!(
            "{:.3}s",
            secs(a.ended, origin)
        )),
        first_success.map_or("-".to_owned(), |a| format!(
            "{:+.1} ms",
            (secs(a.ended, origin) - secs(ready_at, origin)) * 1000.0
        )),
        acks.len(),
        in_doubt.len(),
        listed.len(),
    );
    eprintln!("{summary}");
    running.shutdown().await;
    assert!(
        problems.is_empty(),
        "{summary}\n\n{}\n\nserver log (end):\n{}",
        problems.join("\n\n"),
        ctl.log_tail(40)
    );
    drop(cluster);
}
