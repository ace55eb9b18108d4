//! The end-to-end suite: the real `task_api_spin.wasm`, served by the test host over real
//! HTTP, on SQLite and on PostgreSQL.
//!
//! Two parts:
//! - The storage behaviour suite (`task_api_test_kit::store_suite`, the very functions that
//!   run in-process over the memory store and the native SQL adapters) runs here through
//!   [`HttpStore`], a `TaskStore` that speaks the HTTP API. The suite passes `now`
//!   explicitly; the host's test clock (`x-test-now-ms`) makes the component see it.
//! - Scenarios only a served host can show: 20 concurrent clients, idempotent retries at
//!   once, paging through hundreds of tasks in a real database, accounts and their login
//!   limits across instances, and a database that is down. Every route, status, JWT case
//!   and isolation rule is the contract suite's, which runs over HTTP in `contract_http.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use http::Request;
use serde_json::{Value, json};
use spin_test_host::{Host, RunningHost};
use task_api_core::{
    BatchFailure, BatchOp, BatchResult, Changes, Clock, Completion, Created, Description, DueDate,
    FeedPosition, Idempotency, Imported, ImportedTask, ListQuery, NewTask, Page, Priority,
    StoreError, Task, TaskId, TaskPatch, TaskStore, Timestamp, Title, UserId, Version,
};
use task_api_test_kit::postgres::PgSchema;
use task_api_test_kit::{Reply, SECRET, TempDir, store_suite, temp_dir, token_at};

// ------------------------------------------------------------------ serving the component

/// Which database the component uses.
#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

/// A served component and what must live as long as it: its data directory, its schema.
struct Served {
    running: RunningHost,
    _host: Host,
    _dir: TempDir,
    _schema: Option<PgSchema>,
}

impl Served {
    fn addr(&self) -> SocketAddr {
        self.running.addr
    }
}

/// Serves the built component on `db` (fresh file or fresh schema) with the test clock on
/// and `extra` variables; `None` when PostgreSQL tests are skipped.
async fn serve(db: Db, extra: &[(&str, &str)]) -> Option<Served> {
    let dir = temp_dir("e2e");
    let mut variables: Vec<(String, String)> = vec![("jwt_secret".into(), SECRET.into())];
    let schema = match db {
        Db::Sqlite => None,
        Db::Postgres => {
            let schema = PgSchema::create("e2e").await?;
            variables.push(("database_url".into(), schema.component_url()));
            variables.push(("database_host".into(), schema.database_host()));
            Some(schema)
        }
    };
    variables.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variables(variables)
        .sqlite_dir(dir.path())
        .test_clock(true)
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    Some(Served {
        running,
        _host: host,
        _dir: dir,
        _schema: schema,
    })
}

/// Sends one request at the component's clock `now`: with a bearer token for `user` (none
/// when `None`), a JSON body when given, and extra headers.
async fn send_at(
    addr: SocketAddr,
    now: Timestamp,
    method: &str,
    path: &str,
    user: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("x-test-now-ms", now.as_millis().to_string());
    if let Some(u) = user {
        b = b.header(
            "authorization",
            format!("Bearer {}", token_at(u, now.as_secs() as u64)),
        );
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = body.map(|v| v.to_string().into_bytes()).unwrap_or_default();
    let r = spin_test_host::client::send(addr, b.body(body).expect("a valid request"))
        .await
        .expect("the host answers");
    let mut response = http::Response::new(r.body);
    *response.status_mut() = http::StatusCode::from_u16(r.status).expect("a valid status");
    *response.headers_mut() = r.headers;
    Reply::new(response)
}

// ------------------------------------------------------------------ the store suite over HTTP

/// A [`TaskStore`] that is a client of the served API, so the storage suite reaches the
/// component's SQL through every layer: HTTP, the core's handler, the Spin interfaces.
///
/// List items carry no `ETag`; their versions come from the ones this client saw last
/// (every change goes through it), or from a `GET` for a task it has not seen.
struct HttpStore {
    addr: SocketAddr,
    /// The clock of the latest call that named one; calls that take no `now` use it.
    clock: Mutex<Timestamp>,
    versions: Mutex<HashMap<i64, Version>>,
}

impl HttpStore {
    fn new(addr: SocketAddr) -> Self {
        HttpStore {
            addr,
            clock: Mutex::new(store_suite::at(0)),
            versions: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self, now: Option<Timestamp>) -> Timestamp {
        let mut clock = self.clock.lock().unwrap();
        if let Some(n) = now {
            *clock = n;
        }
        *clock
    }

    async fn call(
        &self,
        now: Option<Timestamp>,
        method: &str,
        path: &str,
        user: &UserId,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let now = self.now(now);
        send_at(
            self.addr,
            now,
            method,
            path,
            Some(user.as_str()),
            body,
            headers,
        )
        .await
    }

    /// The task of an item reply, remembering its version.
    fn item(&self, r: &Reply) -> Result<Task, StoreError> {
        if r.status >= 300 {
            return Err(error_of(r));
        }
        let version = r
            .header("etag")
            .and_then(Version::from_etag)
            .ok_or_else(|| StoreError::Other(format!("no ETag on {}", r.json)))?;
        let task = decode(&r.json["data"], version);
        self.versions.lock().unwrap().insert(task.id.get(), version);
        Ok(task)
    }
}

/// The store error an API error stands for.
fn error_of(r: &Reply) -> StoreError {
    match (r.status, r.json["code"].as_str()) {
        (404, _) => StoreError::NotFound,
        (412, _) => StoreError::VersionConflict,
        (422, Some("idempotency_key_reused")) => StoreError::IdempotencyKeyReused,
        (503, _) => StoreError::Unavailable(r.json.to_string()),
        _ => StoreError::Other(format!("{} {}", r.status, r.json)),
    }
}

/// A task from its JSON, through the core's constructors.
fn decode(v: &Value, version: Version) -> Task {
    let s = |k: &str| v[k].as_str();
    let time = |k: &str| s(k).map(|t| Timestamp::parse_rfc3339(t).expect(k));
    Task {
        id: TaskId::new(v["id"].as_i64().expect("id")).expect("positive id"),
        user_id: UserId::parse(s("user_id").expect("user_id")).expect("user id"),
        title: Title::parse(s("title").expect("title")).expect("title"),
        description: s("description").map(|d| Description::parse(d).unwrap().unwrap()),
        completed: v["completed"].as_bool().expect("completed"),
        priority: Priority::parse(s("priority").expect("priority")).expect("priority"),
        due_date: s("due_date").map(|d| DueDate::parse(d).expect("due_date")),
        created_at: time("created_at").expect("created_at"),
        updated_at: time("updated_at").expect("updated_at"),
        completed_at: time("completed_at"),
        version,
    }
}

fn if_match(expected: Option<Version>) -> Vec<(&'static str, String)> {
    expected
        .map(|v| vec![("if-match", v.etag())])
        .unwrap_or_default()
}

fn borrowed<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

const NOT_OVER_HTTP: &str = "not a store operation over HTTP: see contract_http.rs";

impl TaskStore for HttpStore {
    async fn create(
        &self,
        user: &UserId,
        task: NewTask,
        idempotency: Option<Idempotency>,
        now: Timestamp,
    ) -> Result<Created, StoreError> {
        let body = serde_json::to_value(&task).expect("a new task is JSON");
        let key: Vec<(&str, &str)> = idempotency
            .as_ref()
            .map(|i| vec![("idempotency-key", i.key.as_str())])
            .unwrap_or_default();
        let r = self
            .call(Some(now), "POST", "/api/tasks", user, Some(&body), &key)
            .await;
        let task = self.item(&r)?;
        Ok(Created {
            task,
            replayed: r.header("idempotent-replayed") == Some("true"),
        })
    }

    async fn get(&self, user: &UserId, id: TaskId) -> Result<Task, StoreError> {
        let r = self
            .call(None, "GET", &format!("/api/tasks/{id}"), user, None, &[])
            .await;
        self.item(&r)
    }

    async fn list(&self, user: &UserId, query: &ListQuery) -> Result<Page, StoreError> {
        let path = format!("/api/tasks?{}", query.to_query_string());
        let r = self.call(None, "GET", &path, user, None, &[]).await;
        if r.status != 200 {
            return Err(error_of(&r));
        }
        let mut tasks = Vec::new();
        for item in r.json["data"].as_array().expect("data") {
            let id = item["id"].as_i64().expect("id");
            let known = self.versions.lock().unwrap().get(&id).copied();
            let version = match known {
                Some(v) => v,
                None => self.get(user, TaskId::new(id).unwrap()).await?.version,
            };
            tasks.push(decode(item, version));
        }
        Ok(Page {
            tasks,
            total: r.json["meta"]["total"].as_u64().expect("total"),
            has_more: !r.json["meta"]["next_cursor"].is_null(),
        })
    }

    async fn update(
        &self,
        user: &UserId,
        id: TaskId,
        patch: &TaskPatch,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let mut body = serde_json::Map::new();
        if let Some(t) = patch.title() {
            body.insert("title".into(), json!(t.as_str()));
        }
        if let Some(d) = patch.description() {
            body.insert("description".into(), json!(d.map(|d| d.as_str())));
        }
        if let Some(p) = patch.priority() {
            body.insert("priority".into(), json!(p.as_str()));
        }
        if let Some(d) = patch.due_date() {
            body.insert("due_date".into(), json!(d.map(|d| d.to_string())));
        }
        if let Some(c) = patch.completed() {
            body.insert("completed".into(), json!(c));
        }
        let h = if_match(expected);
        let path = format!("/api/tasks/{id}");
        let body = Value::Object(body);
        let r = self
            .call(Some(now), "PATCH", &path, user, Some(&body), &borrowed(&h))
            .await;
        self.item(&r)
    }

    async fn set_completion(
        &self,
        user: &UserId,
        id: TaskId,
        completion: Completion,
        expected: Option<Version>,
        now: Timestamp,
    ) -> Result<Task, StoreError> {
        let body = match completion {
            Completion::Toggle => None,
            Completion::Set(c) => Some(json!({ "completed": c })),
        };
        let h = if_match(expected);
        let path = format!("/api/tasks/{id}/complete");
        let r = self
            .call(
                Some(now),
                "PATCH",
                &path,
                user,
                body.as_ref(),
                &borrowed(&h),
            )
            .await;
        self.item(&r)
    }

    async fn delete(
        &self,
        user: &UserId,
        id: TaskId,
        expected: Option<Version>,
        _: Clock,
    ) -> Result<(), StoreError> {
        let h = if_match(expected);
        let path = format!("/api/tasks/{id}");
        let r = self
            .call(None, "DELETE", &path, user, None, &borrowed(&h))
            .await;
        match r.status {
            204 => Ok(()),
            _ => Err(error_of(&r)),
        }
    }

    async fn clear_completed(&self, user: &UserId, _: Clock) -> Result<u64, StoreError> {
        let path = "/api/tasks?status=completed";
        let r = self.call(None, "DELETE", path, user, None, &[]).await;
        match r.status {
            200 => Ok(r.json["data"]["deleted"].as_u64().expect("deleted")),
            _ => Err(error_of(&r)),
        }
    }

    // The feed, batches, export and import have no store-level form over HTTP (a feed
    // position is inside an opaque token): the store suite's behaviours for them run on the
    // stores themselves (`sync_suite_tests!`), and the contract suite runs the routes against
    // this very component (`contract_http.rs`).
    async fn changes(
        &self,
        _: &UserId,
        _: FeedPosition,
        _: u32,
        _: Timestamp,
    ) -> Result<Changes, StoreError> {
        Err(StoreError::Other(NOT_OVER_HTTP.into()))
    }

    async fn batch(
        &self,
        _: &UserId,
        _: &[BatchOp],
        _: Clock,
    ) -> Result<Vec<BatchResult>, BatchFailure> {
        Err(StoreError::Other(NOT_OVER_HTTP.into()).into())
    }

    async fn import(
        &self,
        _: &UserId,
        _: &[ImportedTask],
        _: Option<Idempotency>,
        _: Timestamp,
    ) -> Result<Imported, StoreError> {
        Err(StoreError::Other(NOT_OVER_HTTP.into()))
    }

    async fn export_page(
        &self,
        _: &UserId,
        _: Option<(Timestamp, TaskId)>,
        _: u32,
    ) -> Result<Vec<Task>, StoreError> {
        Err(StoreError::Other(NOT_OVER_HTTP.into()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let r = spin_test_host::client::get(self.addr, "/health/ready")
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        match r.status {
            200 => Ok(()),
            503 => Err(StoreError::Unavailable(r.text())),
            s => Err(StoreError::Other(format!("{s} {}", r.text()))),
        }
    }
}

async fn fresh_sqlite() -> Option<(Served, HttpStore)> {
    let served = serve(Db::Sqlite, &[]).await?;
    let store = HttpStore::new(served.addr());
    Some((served, store))
}

async fn fresh_postgres() -> Option<(Served, HttpStore)> {
    let served = serve(Db::Postgres, &[]).await?;
    let store = HttpStore::new(served.addr());
    Some((served, store))
}

mod store_suite_over_http_on_sqlite {
    task_api_test_kit::store_suite_tests!(crate::fresh_sqlite);
}

mod store_suite_over_http_on_postgres {
    task_api_test_kit::store_suite_tests!(crate::fresh_postgres);
}

// ------------------------------------------------------------------ HTTP scenarios

/// A client of one served component, on the real clock.
struct Api<'a> {
    served: &'a Served,
}

impl Api<'_> {
    async fn call(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_with(method, path, user, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        send_at(
            self.served.addr(),
            now,
            method,
            path,
            user,
            body.as_ref(),
            headers,
        )
        .await
    }

    async fn create(&self, user: &str, body: Value) -> Reply {
        let r = self
            .call("POST", "/api/tasks", Some(user), Some(body))
            .await;
        assert_eq!(r.status, 201, "{}", r.json);
        r
    }

    async fn page_through(&self, user: &str, query: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/tasks?{query}&cursor={c}"),
                None => format!("/api/tasks?{query}"),
            };
            let r = self.call("GET", &path, Some(user), None).await;
            assert_eq!(r.status, 200, "{}", r.json);
            ids.extend(r.ids());
            match r.json["meta"]["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
            assert!(ids.len() < 100_000, "paging never ends");
        }
    }
}

/// Generates one test per database for each scenario.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod scenarios_on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let served = crate::serve(crate::Db::Sqlite, crate::EXTRA).await.unwrap();
                    crate::$name(&crate::Api { served: &served }).await;
                }
            )*
        }
        mod scenarios_on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(served) = crate::serve(crate::Db::Postgres, crate::EXTRA).await else {
                        return;
                    };
                    crate::$name(&crate::Api { served: &served }).await;
                }
            )*
        }
    };
}

/// The settings of the scenarios: CORS for one origin, and built-in accounts on.
const EXTRA: &[(&str, &str)] = &[
    ("cors_origins", "https://app.example"),
    ("accounts", "true"),
];

scenarios!(
    twenty_concurrent_creates_get_distinct_ids,
    twenty_concurrent_toggles_are_atomic,
    concurrent_idempotent_retries_create_one_task,
    paging_visits_hundreds_of_tasks_once_under_every_sort,
    an_account_registers_logs_in_and_owns_its_tasks,
    failed_logins_are_limited_across_instances,
);

async fn twenty_concurrent_creates_get_distinct_ids(api: &Api<'_>) {
    let addr = api.served.addr();
    let creates = (0..20).map(|i| {
        tokio::spawn(async move {
            let now = Timestamp::from_system_time(std::time::SystemTime::now());
            let body = json!({ "title": format!("task {i}") });
            send_at(
                addr,
                now,
                "POST",
                "/api/tasks",
                Some("u1"),
                Some(&body),
                &[],
            )
            .await
        })
    });
    let mut ids = Vec::new();
    for c in creates.collect::<Vec<_>>() {
        let r = c.await.unwrap();
        assert_eq!(r.status, 201, "{}", r.json);
        ids.push(r.id());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    let mut listed = api.page_through("u1", "limit=100").await;
    listed.sort();
    assert_eq!(listed, ids);
}

async fn twenty_concurrent_toggles_are_atomic(api: &Api<'_>) {
    let id = api.create("u1", json!({"title": "flip me"})).await.id();
    let addr = api.served.addr();
    let toggles = (0..20).map(|_| {
        tokio::spawn(async move {
            let now = Timestamp::from_system_time(std::time::SystemTime::now());
            send_at(
                addr,
                now,
                "PATCH",
                &format!("/api/tasks/{id}/complete"),
                Some("u1"),
                None,
                &[],
            )
            .await
        })
    });
    let mut states = Vec::new();
    for t in toggles.collect::<Vec<_>>() {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.json);
        states.push(r.header("etag").unwrap().to_owned());
    }
    // Every toggle produced its own version: none was lost or applied twice.
    states.sort();
    states.dedup();
    assert_eq!(states.len(), 20);
    let end = api
        .call("GET", &format!("/api/tasks/{id}"), Some("u1"), None)
        .await;
    assert_eq!(
        end.json["data"]["completed"], false,
        "an even number of toggles"
    );
    assert_eq!(end.json["data"]["completed_at"], Value::Null);
    assert_eq!(end.header("etag"), Some("\"v21\""));
}

async fn concurrent_idempotent_retries_create_one_task(api: &Api<'_>) {
    let addr = api.served.addr();
    let retries = (0..10).map(|_| {
        tokio::spawn(async move {
            let now = Timestamp::from_system_time(std::time::SystemTime::now());
            let body = json!({"title": "pay rent"});
            send_at(
                addr,
                now,
                "POST",
                "/api/tasks",
                Some("u1"),
                Some(&body),
                &[("idempotency-key", "rent-2026-11")],
            )
            .await
        })
    });
    let mut ids = Vec::new();
    for r in retries.collect::<Vec<_>>() {
        let r = r.await.unwrap();
        assert_eq!(r.status, 201, "{}", r.json);
        ids.push(r.id());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry names the same task");
    let other_body = api
        .call_with(
            "POST",
            "/api/tasks",
            Some("u1"),
            Some(json!({"title": "pay gas"})),
            &[("idempotency-key", "rent-2026-11")],
        )
        .await;
    assert_eq!(
        (other_body.status, other_body.json["code"].clone()),
        (422, json!("idempotency_key_reused"))
    );
    assert_eq!(api.page_through("u1", "limit=100").await, ids);
}

async fn paging_visits_hundreds_of_tasks_once_under_every_sort(api: &Api<'_>) {
    let priorities = ["low", "medium", "high"];
    let mut all = Vec::new();
    for i in 0..300 {
        let mut body =
            json!({ "title": format!("Task {:03}", (i * 7) % 50), "priority": priorities[i % 3] });
        if i % 4 != 0 {
            body["due_date"] = json!(format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28));
        }
        if i % 5 == 0 {
            body["completed"] = json!(true);
        }
        all.push(api.create("u1", body).await.id());
    }
    all.sort();
    for sort in [
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "title",
        "-title",
        "priority",
        "-priority",
        "due_date",
        "-due_date",
    ] {
        let mut ids = api
            .page_through("u1", &format!("sort={sort}&limit=37"))
            .await;
        assert_eq!(ids.len(), 300, "{sort}");
        ids.sort();
        assert_eq!(ids, all, "{sort}: every task exactly once");
    }
    let pending = api
        .page_through("u1", "status=pending&sort=-due_date&limit=50")
        .await;
    assert_eq!(pending.len(), 240);
}

async fn an_account_registers_logs_in_and_owns_its_tasks(api: &Api<'_>) {
    let credentials = json!({"email": "  Ann@Example.com ", "password": "correct horse battery"});
    let registered = api
        .call("POST", "/auth/register", None, Some(credentials))
        .await;
    assert_eq!(registered.status, 201, "{}", registered.json);
    let user_id = registered.json["data"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(registered.json["data"]["user"]["email"], "Ann@Example.com");
    assert_eq!(registered.json["data"]["token_type"], "bearer");

    let again = api
        .call(
            "POST",
            "/api/auth/register",
            None,
            Some(json!({"email": "ann@example.com", "password": "another password"})),
        )
        .await;
    assert_eq!(
        (again.status, again.json["code"].clone()),
        (409, json!("email_taken"))
    );

    let login = api
        .call(
            "POST",
            "/api/auth/login",
            None,
            Some(json!({"email": "ANN@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.json);
    let token = login.json["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {token}");

    let created = api
        .call_with(
            "POST",
            "/api/tasks",
            None,
            Some(json!({"title": "from my own account"})),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["data"]["user_id"], user_id.as_str());
    let me = api
        .call_with("GET", "/auth/me", None, None, &[("authorization", &bearer)])
        .await;
    assert_eq!(
        (me.status, me.json["data"]["id"].clone()),
        (200, json!(user_id))
    );
    assert_eq!(
        api.call("POST", "/auth/logout", None, None).await.status,
        204
    );

    let wrong = api
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "ann@example.com", "password": "wrong password"})),
        )
        .await;
    let unknown = api
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "bob@example.com", "password": "wrong password"})),
        )
        .await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.json["detail"], unknown.json["detail"]);
    assert!(!wrong.json.to_string().contains("wrong password"));
}

async fn failed_logins_are_limited_across_instances(api: &Api<'_>) {
    let credentials = json!({"email": "carol@example.com", "password": "the right one"});
    assert_eq!(
        api.call("POST", "/auth/register", None, Some(credentials))
            .await
            .status,
        201
    );
    let wrong = json!({"email": "carol@example.com", "password": "not the right one"});
    // Each request runs in a fresh instance: only the shared key-value store can count.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            api.call("POST", "/auth/login", None, Some(wrong.clone()))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    let limited = api
        .call(
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "carol@example.com", "password": "the right one"})),
        )
        .await;
    assert_eq!(
        (limited.status, limited.json["code"].clone()),
        (429, json!("too_many_attempts"))
    );
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_is_503_with_retry_after_while_health_stays_200() {
    // Allowed as an outbound host, but nothing listens on port 1.
    let down = [
        ("database_url", "postgres://postgres@127.0.0.1:1/test"),
        ("database_host", "127.0.0.1:1"),
    ];
    let served = serve(Db::Sqlite, &down).await.unwrap();
    let api = Api { served: &served };
    for (method, path, body) in [
        ("GET", "/api/tasks", None),
        ("POST", "/api/tasks", Some(json!({"title": "x"}))),
        ("GET", "/api/tasks/1", None),
    ] {
        let r = api.call(method, path, Some("u1"), body).await;
        assert_eq!(r.status, 503, "{method} {path}: {}", r.json);
        assert_eq!(r.header("retry-after"), Some("5"));
        assert_eq!(r.json["code"], "service_unavailable");
    }
    let ready = api.call("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.json,
        json!({"status": "unavailable", "database": "unreachable"})
    );
    assert_eq!(ready.header("retry-after"), Some("5"));
    assert_eq!(api.call("GET", "/health", None, None).await.status, 200);
}
