//! The HTTP contract (docs/contract.md) in process, over the in-memory store: the kit's
//! contract suite (`task_api_test_kit::contract`, one test per behaviour, which also runs
//! over HTTP against the served component), then the behaviours only the in-process API
//! can show.

mod support;

use http::Request;
use serde_json::json;
use support::{InProcess, Transport};
use task_api_core::{
    Completion, Created, ListQuery, NewTask, Page, StoreError, Task, TaskId, TaskPatch, TaskStore,
    Timestamp, UserId, Version,
};

/// A fresh API over a fresh memory store with `settings`.
fn start(settings: &[(&str, &str)]) -> InProcess {
    InProcess::with_config(settings)
}

task_api_test_kit::contract_tests!(start);

// ---------------------------------------------------------------- in process only
//
// These need what only the in-process API has: a store that fails on demand (the served
// component's database going down is `tests/spin-host/tests/e2e.rs`), the `RequestLog` the
// core attaches to a response (a host logs it; it never reaches a client), a body the host
// could not read completely, the exact instants and request ids of the in-process clock and
// entropy, 24 hours passing, the handler's future itself, and properties of 256 generated
// requests each (run in process over every store: here and in `store_*.rs`).

#[test]
fn ready_is_503_with_retry_after_when_the_store_is_down() {
    let app = InProcess::over(DownStore, support::config(&[]));
    let r = app.call("GET", "/health/ready", None, None);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json,
        json!({"status": "unavailable", "database": "unreachable"})
    );
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn health_stays_200_when_the_store_is_down() {
    let app = InProcess::over(DownStore, support::config(&[]));
    assert_eq!(app.call("GET", "/health", None, None).status, 200);
}

#[test]
fn task_route_is_503_with_retry_after_when_the_store_is_down() {
    let app = InProcess::over(DownStore, support::config(&[]));
    let r = app.call("GET", "/api/tasks", Some("u1"), None);
    assert_eq!(r.status, 503);
    assert_eq!(r.json["code"], "service_unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
}

#[test]
fn internal_store_error_is_500_without_internal_detail() {
    let app = InProcess::over(BrokenStore, support::config(&[]));
    let r = app.call("GET", "/api/tasks", Some("u1"), None);
    assert_eq!(r.status, 500);
    let body = String::from_utf8(r.raw.body().clone()).unwrap();
    assert!(!body.contains("hunter2"), "{body}");
    assert_eq!(r.json["code"], "internal_error");
    // The cause goes to the host's log, under the request id.
    let log = r
        .raw
        .extensions()
        .get::<task_api_core::RequestLog>()
        .unwrap();
    assert!(log.error.as_deref().unwrap().contains("hunter2"));
    assert_eq!(r.json["request_id"], log.request_id.as_str());
}

#[test]
fn short_secret_refuses_task_routes_with_500_naming_the_setting() {
    let app = InProcess::with_config(&[("jwt_secret", "short")]);
    let r = app.call("GET", "/api/tasks", Some("u1"), None);
    assert_eq!(r.status, 500);
    assert_eq!(r.json["code"], "configuration_error");
    let detail = r.json["detail"].as_str().unwrap();
    assert!(
        detail.contains("jwt_secret") && !detail.contains("short"),
        "{detail}"
    );
    let log = r
        .raw
        .extensions()
        .get::<task_api_core::RequestLog>()
        .unwrap();
    assert!(log.error.as_deref().unwrap().contains("jwt_secret"));
    assert_eq!(app.call("GET", "/health", None, None).status, 200);
}

#[test]
fn timestamps_are_rfc3339_utc_with_milliseconds() {
    let r = InProcess::new().create("u1", json!({"title": "x"}));
    let created = r.task()["created_at"].as_str().unwrap();
    assert_eq!(created, "2026-11-21T10:15:30.001Z");
}

#[test]
fn body_that_the_host_could_not_read_completely_is_400_and_stores_nothing() {
    let app = InProcess::new();
    let request = Request::post("/api/tasks")
        .header("authorization", format!("Bearer {}", app.token("u1")))
        .header("content-type", "application/json")
        .body(br#"{"title":"only the first half of"}"#.to_vec())
        .unwrap();
    let r = app.send_in(request, |ctx| ctx.with_incomplete_body());
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (400, json!("malformed_body"))
    );
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

#[test]
fn forged_cursors_are_400_naming_cursor_or_a_page_of_ones_own_tasks() {
    let app = support::hostile::app(task_api_core::MemoryStore::new());
    support::hostile::forged_cursors_are_400_or_a_page_of_ones_own_tasks(&app);
}

#[test]
fn any_search_text_is_400_naming_q_or_a_page_of_ones_own_tasks() {
    let app = support::hostile::app(task_api_core::MemoryStore::new());
    support::hostile::any_search_text_is_400_naming_q_or_a_page_of_ones_own_tasks(&app);
}

#[test]
fn idempotency_key_expires_after_24_hours() {
    let app = InProcess::new();
    let first = app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "a"})),
        &[("idempotency-key", "k")],
    );
    app.advance_ms(24 * 3600 * 1000);
    let later = app.call_with(
        "POST",
        "/api/tasks",
        Some("u1"),
        Some(json!({"title": "a"})),
        &[("idempotency-key", "k")],
    );
    assert_ne!(later.id(), first.id());
}

#[test]
fn sane_request_id_is_echoed_and_others_replaced() {
    let app = InProcess::new();
    let r = app.call_with(
        "GET",
        "/health",
        None,
        None,
        &[("x-request-id", "abc-123.x:y_z")],
    );
    assert_eq!(r.header("x-request-id"), Some("abc-123.x:y_z"));
    let r = app.call_with(
        "GET",
        "/health",
        None,
        None,
        &[("x-request-id", "bad id with spaces")],
    );
    assert!(r.header("x-request-id").unwrap().starts_with("gen-"));
    let r = app.call("GET", "/nope", None, None);
    assert!(r.header("x-request-id").unwrap().starts_with("gen-"));
}

#[test]
fn request_log_names_the_route_template_and_user() {
    let app = InProcess::new();
    let id = app.create("u1", json!({"title": "x"})).id();
    let r = app.call("GET", &format!("/api/v1/u1/tasks/{id}"), Some("u1"), None);
    let log = r
        .raw
        .extensions()
        .get::<task_api_core::RequestLog>()
        .unwrap();
    assert_eq!(log.route, "/api/v1/{user_id}/tasks/{id}");
    assert_eq!(log.user_id.as_ref().map(|u| u.as_str()), Some("u1"));
    assert_eq!(log.error, None);
}

#[test]
fn handle_future_is_send_over_the_memory_store() {
    fn assert_send<T: Send>(_: &T) {}
    let app = InProcess::new();
    let fut = app.api.handle(
        Request::new(Vec::new()),
        task_api_core::RequestContext::new(Timestamp::from_millis(0), "x"),
    );
    assert_send(&fut);
}

// ---------------------------------------------------------------- stores that fail

/// A store whose database cannot be reached.
struct DownStore;

/// A store failing with an internal cause that must never reach a client.
struct BrokenStore;

macro_rules! failing_store {
    ($t:ty, $err:expr) => {
        impl TaskStore for $t {
            async fn create(
                &self,
                _: &UserId,
                _: NewTask,
                _: Option<task_api_core::Idempotency>,
                _: Timestamp,
            ) -> Result<Created, StoreError> {
                Err($err)
            }
            async fn get(&self, _: &UserId, _: TaskId) -> Result<Task, StoreError> {
                Err($err)
            }
            async fn list(&self, _: &UserId, _: &ListQuery) -> Result<Page, StoreError> {
                Err($err)
            }
            async fn update(
                &self,
                _: &UserId,
                _: TaskId,
                _: &TaskPatch,
                _: Option<Version>,
                _: Timestamp,
            ) -> Result<Task, StoreError> {
                Err($err)
            }
            async fn set_completion(
                &self,
                _: &UserId,
                _: TaskId,
                _: Completion,
                _: Option<Version>,
                _: Timestamp,
            ) -> Result<Task, StoreError> {
                Err($err)
            }
            async fn delete(
                &self,
                _: &UserId,
                _: TaskId,
                _: Option<Version>,
                _: task_api_core::Clock,
            ) -> Result<(), StoreError> {
                Err($err)
            }
            async fn clear_completed(
                &self,
                _: &UserId,
                _: task_api_core::Clock,
            ) -> Result<u64, StoreError> {
                Err($err)
            }
            async fn changes(
                &self,
                _: &UserId,
                _: task_api_core::FeedPosition,
                _: u32,
                _: Timestamp,
            ) -> Result<task_api_core::Changes, StoreError> {
                Err($err)
            }
            async fn batch(
                &self,
                _: &UserId,
                _: &[task_api_core::BatchOp],
                _: task_api_core::Clock,
            ) -> Result<Vec<task_api_core::BatchResult>, task_api_core::BatchFailure> {
                Err($err.into())
            }
            async fn import(
                &self,
                _: &UserId,
                _: &[task_api_core::ImportedTask],
                _: Option<task_api_core::Idempotency>,
                _: Timestamp,
            ) -> Result<task_api_core::Imported, StoreError> {
                Err($err)
            }
            async fn export_page(
                &self,
                _: &UserId,
                _: Option<(Timestamp, TaskId)>,
                _: u32,
            ) -> Result<Vec<Task>, StoreError> {
                Err($err)
            }
            async fn ping(&self) -> Result<(), StoreError> {
                Err($err)
            }
        }
        impl task_api_core::AccountStore for $t {}
    };
}

failing_store!(
    DownStore,
    StoreError::Unavailable("connection refused".into())
);
failing_store!(
    BrokenStore,
    StoreError::Other("pool exploded, password=hunter2".into())
);
