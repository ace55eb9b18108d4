//! Benchmarks of [`Api::handle`] over [`MemoryStore`]: what the core itself costs per
//! request, without a host or a database.
//!
//! - `jwt_verify`: [`task_api_core::JwtVerifier::verify`] of an HS256 token, alone.
//! - `create`: `POST /api/tasks` with a small JSON body.
//! - `get`: `GET /api/tasks/{id}`.
//! - `list_20`: `GET /api/tasks?limit=20` for a user holding 100 tasks.
//!
//! Tokens, bodies and requests are built once, outside the timed loops; each iteration
//! clones the prepared request, as a host hands over a fresh one per call.
//!
//! ```text
//! cargo bench -p task-api-core --bench handle -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use jwt_simple::prelude::{Claims, Duration, HS256Key, MACLike};
use task_api_core::{Api, Config, MemoryStore, RequestContext, Timestamp};

const SECRET: &str = "benchmark secret that is comfortably over 32 bytes";
/// The time of every benchmarked request; tokens are issued at this time.
const NOW_MS: i64 = 1_800_000_000_000;
/// Tasks held by the user of `list_20`.
const LISTED_TASKS: usize = 100;

fn now() -> Timestamp {
    Timestamp::from_millis(NOW_MS)
}

fn config() -> Config {
    Config::from_lookup(|name| (name == "jwt_secret").then(|| SECRET.to_owned()))
        .expect("the benchmark configuration is valid")
}

/// An HS256 token for `user`, issued at [`NOW_MS`] and valid for an hour.
fn token(user: &str) -> String {
    let secs = u64::try_from(now().as_secs()).expect("a time after 1970");
    let mut claims = Claims::create(Duration::from_hours(1)).with_subject(user);
    claims.issued_at = Some(Duration::from_secs(secs));
    claims.invalid_before = Some(Duration::from_secs(secs));
    claims.expires_at = Some(Duration::from_secs(secs + 3600));
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(claims)
        .expect("signing cannot fail")
}

fn get_request(uri: &str, token: &str) -> Request<Vec<u8>> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Vec::new())
        .expect("a valid request")
}

fn post_request(uri: &str, token: &str, body: &str) -> Request<Vec<u8>> {
    Request::post(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .expect("a valid request")
}

/// Sends `request` and checks its status, so a benchmark never times an error path.
fn send(api: &Api<MemoryStore>, request: Request<Vec<u8>>, expected: u16) -> Vec<u8> {
    let response = pollster::block_on(api.handle(request, RequestContext::new(now(), "bench")));
    assert_eq!(response.status().as_u16(), expected);
    response.into_body()
}

fn jwt_verify(c: &mut Criterion) {
    let config = config();
    let verifier = config.verifier();
    let token = token("u1");
    assert_eq!(
        verifier.verify(&token, now()).expect("valid").as_str(),
        "u1"
    );
    c.bench_function("jwt_verify", |b| {
        b.iter(|| verifier.verify(black_box(&token), black_box(now())))
    });
}

fn create(c: &mut Criterion) {
    let api = Api::new(MemoryStore::new(), config());
    let request = post_request(
        "/api/tasks",
        &token("u1"),
        r#"{"title":"Buy milk","description":"2 litres","priority":"high","due_date":"2026-12-01"}"#,
    );
    send(&api, request.clone(), 201);
    c.bench_function("create", |b| {
        b.iter(|| {
            pollster::block_on(api.handle(
                black_box(request.clone()),
                RequestContext::new(now(), "bench"),
            ))
        })
    });
}

fn get(c: &mut Criterion) {
    let api = Api::new(MemoryStore::new(), config());
    let token = token("u1");
    send(
        &api,
        post_request("/api/tasks", &token, r#"{"title":"Buy milk"}"#),
        201,
    );
    let request = get_request("/api/tasks/1", &token);
    send(&api, request.clone(), 200);
    c.bench_function("get", |b| {
        b.iter(|| {
            pollster::block_on(api.handle(
                black_box(request.clone()),
                RequestContext::new(now(), "bench"),
            ))
        })
    });
}

fn list_20(c: &mut Criterion) {
    let api = Api::new(MemoryStore::new(), config());
    let token = token("u1");
    let priorities = ["low", "medium", "high"];
    for i in 0..LISTED_TASKS {
        let body = format!(
            r#"{{"title":"Task number {i}","description":"details of task {i}","priority":"{}","due_date":"2026-{:02}-{:02}","completed":{}}}"#,
            priorities[i % 3],
            i % 12 + 1,
            i % 28 + 1,
            i % 4 == 0,
        );
        send(&api, post_request("/api/tasks", &token, &body), 201);
    }
    let request = get_request("/api/tasks?limit=20", &token);
    let body = send(&api, request.clone(), 200);
    let page: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(20));
    assert_eq!(page["meta"]["total"], LISTED_TASKS);
    c.bench_function("list_20", |b| {
        b.iter(|| {
            pollster::block_on(api.handle(
                black_box(request.clone()),
                RequestContext::new(now(), "bench"),
            ))
        })
    });
}

criterion_group!(benches, jwt_verify, create, get, list_20);
criterion_main!(benches);
