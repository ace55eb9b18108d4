//! Load benchmark: the served `.wasm` against the same SQL run directly.
//!
//! 32 clients, each on its own keep-alive connection, drive the component (served by the
//! test host, one fresh instance per request, on PostgreSQL) for a fixed time, first with
//! `GET /api/tasks?limit=20` and then with `POST /api/tasks`. Then 32 tokio-postgres
//! connections run the very statements the component's store sends for those two
//! operations (`task_api_core::sql::list_statement` / `insert_statement`), for the same
//! time, on the same database. It prints requests/s, p50 and p99 for each, and the ratio
//! component ÷ direct, which is the figure that matters: what the HTTP layer, the Wasm
//! instance per request, the core and Spin's Postgres interface cost over the SQL itself.
//!
//! ```text
//! cargo bench -p spin-test-host --bench load            # LOAD_SECS=10 by default
//! LOAD_SECS=5 LOAD_CLIENTS=32 cargo bench -p spin-test-host --bench load
//! ```
//!
//! It needs PostgreSQL (`TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`)
//! and works in a fresh schema that it drops at the end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use jwt_simple::prelude::{Claims, HS256Key, MACLike};
use spin_test_host::Host;
use spin_test_host::fixtures::{PgSchema, TempDir, database_url};
use task_api_core::sql::{Dialect, SqlValue, insert_statement, list_statement};
use task_api_core::{ListQuery, NewTask, Timestamp, Title, UserId};
use tokio_postgres::types::{ToSql, Type};
use wasmtime_wasi_http::io::TokioIo;

const SECRET: &str = "a load-benchmark secret that is over thirty-two bytes";
const USER: &str = "load-user";
/// Tasks the user holds before the list phase, so that every list returns 20.
const SEEDED: usize = 100;

/// What one phase measured.
struct Measured {
    requests: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn from(mut latencies: Vec<Duration>, elapsed: Duration) -> Measured {
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Measured {
            requests: latencies.len(),
            elapsed,
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn token() -> String {
    let claims = Claims::create(jwt_simple::prelude::Duration::from_hours(2)).with_subject(USER);
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(claims)
        .expect("signing")
}

/// A request builder for the `n`-th call of worker `w`.
type MakeRequest = Arc<dyn Fn(u64, u64) -> Request<Full<Bytes>> + Send + Sync>;
/// A statement builder for the `n`-th call of worker `w`.
type MakeStatement = Arc<dyn Fn(u64, u64) -> (String, Vec<SqlValue>) + Send + Sync>;

/// Runs `clients` workers started by `spawn(worker)` and gathers their latencies.
async fn phase(
    clients: u64,
    spawn: impl Fn(u64) -> tokio::task::JoinHandle<Vec<Duration>>,
) -> Measured {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients).map(spawn).collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("a worker"));
    }
    Measured::from(all, started.elapsed())
}

/// A keep-alive HTTP/1.1 connection to the host.
async fn http_connection(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// One client of the component on one keep-alive connection, until `deadline`.
async fn http_worker(
    addr: SocketAddr,
    w: u64,
    deadline: Instant,
    make: MakeRequest,
    expected: u16,
) -> Vec<Duration> {
    let mut sender = http_connection(addr).await;
    let mut latencies = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline {
        let request = make(w, n);
        let t = Instant::now();
        http_call(&mut sender, request, expected).await;
        latencies.push(t.elapsed());
        n += 1;
    }
    latencies
}

/// One client of PostgreSQL on its own connection, until `deadline`.
async fn pg_worker(
    url: String,
    schema: String,
    w: u64,
    deadline: Instant,
    make: MakeStatement,
) -> Vec<Duration> {
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search_path");
    let mut prepared = HashMap::new();
    let mut latencies = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline {
        let statement = make(w, n);
        let t = Instant::now();
        pg_run(&client, &mut prepared, statement).await;
        latencies.push(t.elapsed());
        n += 1;
    }
    latencies
}

async fn http_call(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    expected: u16,
) {
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("a body");
    assert_eq!(status, expected, "{:?}", body.to_bytes());
}

/// Binds the core's values by the types PostgreSQL prepared for the statement.
fn bind(types: &[Type], params: &[SqlValue]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    types
        .iter()
        .zip(params)
        .map(|(ty, v)| -> Box<dyn ToSql + Sync + Send> {
            match (v, ty) {
                (SqlValue::Null, &Type::INT8) => Box::new(None::<i64>),
                (SqlValue::Null, &Type::BOOL) => Box::new(None::<bool>),
                (SqlValue::Null, _) => Box::new(None::<String>),
                (SqlValue::Int(n), _) => Box::new(*n),
                (SqlValue::Text(s), _) => Box::new(s.clone()),
                (SqlValue::Bool(b), _) => Box::new(*b),
            }
        })
        .collect()
}

/// Runs a statement, prepared once per connection as a native app's pool would.
async fn pg_run(
    client: &tokio_postgres::Client,
    prepared: &mut HashMap<String, tokio_postgres::Statement>,
    (sql, params): (String, Vec<SqlValue>),
) {
    let statement = match prepared.get(&sql) {
        Some(s) => s.clone(),
        None => {
            let s = client.prepare(&sql).await.expect("prepare");
            prepared.insert(sql, s.clone());
            s
        }
    };
    let values = bind(statement.params(), &params);
    let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref() as _).collect();
    client.query(&statement, &refs).await.expect("query");
}

fn report(name: &str, component: &Measured, direct: &Measured) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<8} component {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms | direct SQL {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms | ratio {:>5.1}%",
        component.rate(),
        ms(component.p50),
        ms(component.p99),
        direct.rate(),
        ms(direct.p50),
        ms(direct.p99),
        100.0 * component.rate() / direct.rate(),
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; this benchmark takes no arguments of its own.
    let secs = env_number("LOAD_SECS", 10);
    let clients = env_number("LOAD_CLIENTS", 32);
    let schema = PgSchema::create("load")
        .await
        .expect("PostgreSQL for the benchmark");
    let dir = TempDir::new("load");
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variable("jwt_secret", SECRET)
        .variable("database_url", schema.component_url())
        .variable("database_host", schema.database_host())
        .sqlite_dir(dir.path())
        .max_instances(u32::try_from(clients * 2).unwrap_or(64))
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    let addr = running.addr;
    let auth = Arc::new(format!("Bearer {}", token()));

    let list_request: MakeRequest = {
        let auth = auth.clone();
        Arc::new(move |_, _| {
            Request::get("/api/tasks?limit=20")
                .header("host", addr.to_string())
                .header("authorization", auth.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap()
        })
    };
    let create_request: MakeRequest = {
        let auth = auth.clone();
        Arc::new(move |w, n| {
            Request::post("/api/tasks")
                .header("host", addr.to_string())
                .header("authorization", auth.as_str())
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(format!(
                    r#"{{"title":"load {w}-{n}","priority":"low"}}"#
                ))))
                .unwrap()
        })
    };

    // Seed through the component (which also applies the migrations).
    let mut seeder = http_connection(addr).await;
    for n in 0..SEEDED as u64 {
        http_call(&mut seeder, create_request(u64::MAX, n), 201).await;
    }

    let user = UserId::parse(USER).expect("a user id");
    let query = ListQuery::parse("limit=20").expect("a query");
    let list_sql: MakeStatement = {
        let user = user.clone();
        Arc::new(move |_, _| list_statement(Dialect::Postgres, &user, &query))
    };
    let insert_sql: MakeStatement = Arc::new(move |w, n| {
        let title = Title::parse(&format!("direct {w}-{n}")).expect("a title");
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        insert_statement(Dialect::Postgres, &user, &NewTask::new(title), now)
    });

    let over_http = |make: &MakeRequest, expected: u16| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let make = make.clone();
        phase(clients, move |w| {
            tokio::spawn(http_worker(addr, w, deadline, make.clone(), expected))
        })
    };
    let url = database_url();
    let direct = |make: &MakeStatement| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let (make, url, name) = (make.clone(), url.clone(), schema.name().to_owned());
        phase(clients, move |w| {
            tokio::spawn(pg_worker(
                url.clone(),
                name.clone(),
                w,
                deadline,
                make.clone(),
            ))
        })
    };

    println!(
        "load: {clients} clients, {secs} s per phase, PostgreSQL schema {}; component served by spin-test-host ({} build), one instance per request",
        schema.name(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    let list_component = over_http(&list_request, 200).await;
    let list_direct = direct(&list_sql).await;
    let create_component = over_http(&create_request, 201).await;
    let create_direct = direct(&insert_sql).await;
    report("list-20", &list_component, &list_direct);
    report("create", &create_component, &create_direct);
    running.shutdown().await;
}
