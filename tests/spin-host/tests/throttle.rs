//! The built-in accounts' throttle through the served `.wasm`, on SQLite and PostgreSQL: it
//! counts before it hashes, its counts live in the database (so every instance shares
//! them), and the client address it keys by is the one Spin (or a trusted proxy) added,
//! never one the client made up.

use std::net::SocketAddr;

use serde_json::{Value, json};
use spin_test_host::{Host, Response, RunningHost};
use task_api_test_kit::{TempDir, postgres::PgSchema, temp_dir};

const SECRET: &str = "a throttle-test secret that is at least thirty-two bytes";

/// Where the served components keep their data: one SQLite directory or one PostgreSQL
/// schema, which several hosts may share.
struct Data {
    dir: TempDir,
    schema: Option<PgSchema>,
}

impl Data {
    /// `None` when PostgreSQL tests are skipped.
    async fn new(postgres: bool) -> Option<Data> {
        let schema = if postgres {
            Some(PgSchema::create("throttle").await?)
        } else {
            None
        };
        Some(Data {
            dir: temp_dir("throttle"),
            schema,
        })
    }

    /// A host over this data with accounts on and `extra` variables.
    async fn serve(&self, extra: &[(&str, &str)]) -> (Host, RunningHost) {
        let mut variables: Vec<(String, String)> = vec![
            ("jwt_secret".into(), SECRET.into()),
            ("accounts".into(), "true".into()),
        ];
        if let Some(schema) = &self.schema {
            variables.push(("database_url".into(), schema.component_url()));
            variables.push(("database_host".into(), schema.database_host()));
        }
        variables.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let host = Host::builder()
            .wasm(spin_test_host::build_component())
            .process_env(false)
            .variables(variables)
            .sqlite_dir(self.dir.path())
            .build()
            .expect("the host starts");
        let running = host.serve("127.0.0.1:0").await.expect("the host listens");
        (host, running)
    }
}

async fn post(addr: SocketAddr, path: &str, body: Value, headers: &[(&str, &str)]) -> Response {
    let mut request = http::Request::post(path).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.to_string().into_bytes()).unwrap();
    spin_test_host::client::send(addr, request)
        .await
        .expect("the host answers")
}

fn credentials(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

async fn register(addr: SocketAddr, email: &str) {
    let r = post(
        addr,
        "/auth/register",
        credentials(email, "the right one"),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Generates one test per store for each scenario.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::$name(crate::Data::new(false).await.unwrap()).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(data) = crate::Data::new(true).await else { return };
                    crate::$name(data).await;
                }
            )*
        }
    };
}

on_both_stores!(
    fifty_parallel_wrong_logins_reach_the_password_check_at_most_five_times,
    two_hosts_over_one_database_share_the_count,
    a_made_up_spin_client_addr_does_not_escape_the_address_limit,
    registrations_are_limited_per_address,
    behind_a_trusted_proxy_clients_are_keyed_by_the_hop_it_added,
);

async fn fifty_parallel_wrong_logins_reach_the_password_check_at_most_five_times(data: Data) {
    let (_host, running) = data.serve(&[]).await;
    let addr = running.addr;
    register(addr, "dana@example.com").await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..50 {
        attempts.spawn(async move {
            let wrong = credentials("dana@example.com", "a wrong guess");
            post(addr, "/auth/login", wrong, &[]).await.status
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = attempts.join_next().await {
        statuses.push(status.unwrap());
    }
    // Each attempt counts under the email and under the address (all fifty come from one),
    // so an attempt within the email's five may still be over the address's twenty: at most
    // five passwords are checked, and every other attempt is refused.
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert!((1..=5).contains(&checked), "{statuses:?}");
    assert_eq!(checked + refused, 50, "{statuses:?}");
}

async fn two_hosts_over_one_database_share_the_count(data: Data) {
    let (_a, first) = data.serve(&[]).await;
    let (_b, second) = data.serve(&[]).await;
    register(first.addr, "erin@example.com").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let host = if i % 2 == 0 { &first } else { &second };
        let wrong = credentials("erin@example.com", "a wrong guess");
        statuses.push(post(host.addr, "/auth/login", wrong, &[]).await.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
}

async fn a_made_up_spin_client_addr_does_not_escape_the_address_limit(data: Data) {
    let (_host, running) = data.serve(&[]).await;
    let mut statuses = Vec::new();
    for i in 0..21 {
        // A different email each time: only the address limit (20) can stop these.
        let wrong = credentials(&format!("nobody{i}@example.com"), "a wrong guess");
        let claim = format!("203.0.113.{i}:4000");
        let headers = [("spin-client-addr", claim.as_str())];
        statuses.push(
            post(running.addr, "/auth/login", wrong, &headers)
                .await
                .status,
        );
    }
    assert_eq!(statuses[..20], [401; 20]);
    assert_eq!(
        statuses[20], 429,
        "the address Spin appended is the one counted"
    );
}

async fn registrations_are_limited_per_address(data: Data) {
    let (_host, running) = data.serve(&[]).await;
    let mut statuses = Vec::new();
    for i in 0..11 {
        let new = credentials(&format!("new{i}@example.com"), "the right one");
        statuses.push(post(running.addr, "/auth/register", new, &[]).await.status);
    }
    assert_eq!(statuses[..10], [201; 10]);
    assert_eq!(statuses[10], 429);
}

async fn behind_a_trusted_proxy_clients_are_keyed_by_the_hop_it_added(data: Data) {
    let (_host, running) = data
        .serve(&[("client_addr_header", "x-forwarded-for")])
        .await;
    let login = |i: usize, forwarded: &'static str| {
        let addr = running.addr;
        async move {
            let wrong = credentials(&format!("someone{i}@example.com"), "a wrong guess");
            post(
                addr,
                "/auth/login",
                wrong,
                &[("x-forwarded-for", forwarded)],
            )
            .await
            .status
        }
    };
    // The client wrote the first entry; the proxy appended the second, which is counted.
    for i in 0..20 {
        assert_eq!(login(i, "6.6.6.6, 198.51.100.1").await, 401);
    }
    assert_eq!(login(20, "7.7.7.7, 198.51.100.1").await, 429);
    assert_eq!(
        login(21, "6.6.6.6, 198.51.100.2").await,
        401,
        "another client behind the same proxy is not locked out"
    );
}
