//! Model-based property tests of [`Api::handle`] over every store: the [`MemoryStore`] and,
//! with the `sql` feature, `SqlStore` on a real PostgreSQL and on SQLite (the test executors
//! of `support/postgres.rs` and `support/sqlite.rs`, a fresh schema or file per case).
//!
//! Random sequences of operations by two to five users go through the handler under all
//! four bases, and every response is checked against a plain model of each user's tasks kept
//! by the test (a `BTreeMap` of tasks and the owner of every id ever issued). The model is
//! written from the contract, not from the crate: filters, the sort order (ties by id in the
//! sort's direction, undated tasks last, titles lower-cased, priority by rank), paging,
//! `completed_at`, `updated_at` and ETag changes are all recomputed here.
//!
//! Every request for an id that is not one of the caller's live tasks (another user's,
//! deleted, never issued, malformed) is sent a second time with an id that never existed,
//! and the two answers must be identical but for the request id; the owner's copy is then
//! read back and must be unchanged.
//!
//! Every property runs on every store; a long run (below) is one deterministic sequence of
//! operations by all five users on each store, and ends, like every case, with each user's
//! whole list equal to the model's. Its creates pause while 250 tasks are live, so that its
//! cost grows with its length, not with the square of it. The environment sets the counts:
//!
//! - `PROPTEST_CASES`: the cases of each property on the memory store (64 by default).
//! - `MODEL_SQL_CASES`: the cases of each property on PostgreSQL and on SQLite (8 by
//!   default: every case migrates a new schema or file, which costs more than its requests).
//! - `MODEL_OPS`: the operations of each store's long run, e.g. `MODEL_OPS=100000`. Unset,
//!   the long runs only say that they were skipped. The sequence comes from proptest's
//!   deterministic RNG, so every run and every store sees the same operations; each prints
//!   its wall time and operations per second (`--nocapture` shows them):
//!   `MODEL_OPS=100000 cargo test -p task-api-core --all-features --release --test model
//!   long_run -- --nocapture --test-threads=1`.
//!
//! PostgreSQL is the one of `support/postgres.rs`: unreachable, it fails these tests unless
//! `SKIP_DB_TESTS=1`, which skips them with a message.

#[cfg(feature = "sql")]
mod support;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

use http::{Method, Request};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use task_api_core::{AccountStore, Api, Config, MemoryStore, RequestContext, TaskStore, Timestamp};

// ---------------------------------------------------------------------------------------
// Shared helpers: configuration, tokens, requests, replies.
// ---------------------------------------------------------------------------------------

const SECRET: &str = "model-test secret that is comfortably over 32 bytes";
/// The `now` of the first request of every case (2027-01-15); later requests move it on.
const START_MS: i64 = 1_800_000_000_000;
/// The users of a case: the first two to five (all five in a long run). Most need
/// percent-encoding in a path; `/` and `%` must survive it inside one segment.
const USERS: [&str; 5] = [
    "alice",
    "bob@example.com",
    "Zoë 日本",
    "carol/ops 100%",
    "dave",
];
/// Tokens are valid for an hour; the harness mints new ones after this long, so that a
/// long run outlives none.
const TOKEN_REFRESH_MS: i64 = 30 * 60 * 1000;
/// An id no task ever gets in these tests (the largest positive 64-bit integer; issued ids
/// are at most 2^53 - 1).
const MISSING_ID: &str = "9223372036854775807";
/// `{id}` segments that are not positive 64-bit integers.
const MALFORMED_IDS: &[&str] = &["0", "-1", "abc", "1.5", "99999999999999999999"];
/// Due dates, few enough to give ties; a leap day and a year boundary included.
const DATES: &[&str] = &[
    "2025-12-31",
    "2026-01-01",
    "2026-02-28",
    "2028-02-29",
    "2026-12-01",
];
/// Title characters: case pairs, non-ASCII letters whose lower case differs in length
/// (`İ`), SQL and LIKE metacharacters, JSON escapes and two kinds of white space.
const TITLE_CHARS: &[char] = &[
    'a', 'A', 'b', 'é', 'É', 'ß', 'İ', '日', '\'', '%', '_', '\\', '"', ';', ' ', '\u{3000}',
];
const DESCRIPTION_CHARS: &[char] = &['a', 'B', 'é', '%', '_', '\'', '\\', ' ', '\n', '\t'];
const SEARCH_CHARS: &[char] = &['a', 'A', 'b', 'é', 'É', 'i', 'İ', '%', '_', '\\', '\'', ' '];

fn config() -> Config {
    Config::from_lookup(|name| (name == "jwt_secret").then(|| SECRET.to_owned()))
        .expect("the test configuration is valid")
}

/// An HS256 token for `user`, issued at `now` and valid for an hour from then.
fn mint_token(user: &str, now: Timestamp) -> String {
    let secs = u64::try_from(now.as_secs()).expect("a time after 1970");
    task_api_test_kit::token_signed_with(SECRET, user, secs)
}

/// A request with a bearer token and, if `body` is given, a JSON body.
fn build_request(method: Method, uri: &str, token: &str, body: Option<&Value>) -> Request<Vec<u8>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    let bytes = match body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            serde_json::to_vec(v).expect("serializable body")
        }
        None => Vec::new(),
    };
    builder.body(bytes).expect("a valid request")
}

/// One of the four equivalent task bases.
#[derive(Clone, Copy, Debug)]
enum Base {
    Api,
    ApiV1,
    ApiUser,
    ApiV1User,
}

impl Base {
    const ALL: [Base; 4] = [Base::Api, Base::ApiV1, Base::ApiUser, Base::ApiV1User];

    /// The base as sent by `user` (the user's id percent-encoded in the path).
    fn path(self, user: &str) -> String {
        let user = utf8_percent_encode(user, NON_ALPHANUMERIC);
        match self {
            Base::Api => "/api".to_owned(),
            Base::ApiV1 => "/api/v1".to_owned(),
            Base::ApiUser => format!("/api/{user}"),
            Base::ApiV1User => format!("/api/v1/{user}"),
        }
    }
}

/// A response, with its body parsed as JSON when there is one.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> &Value {
        self.body
            .as_ref()
            .unwrap_or_else(|| panic!("expected a JSON body: {self:?}"))
    }

    fn etag(&self) -> String {
        self.header("etag")
            .unwrap_or_else(|| panic!("expected an ETag: {self:?}"))
            .to_owned()
    }

    /// Everything but the request id, which differs between any two requests.
    fn redacted(&self) -> (u16, Vec<(String, String)>, Option<Value>) {
        let headers = self
            .headers
            .iter()
            .map(|(n, v)| {
                let v = if n == "x-request-id" { "" } else { v };
                (n.clone(), v.to_owned())
            })
            .collect();
        let mut body = self.body.clone();
        if let Some(Value::Object(map)) = &mut body {
            map.remove("request_id");
        }
        (self.status, headers, body)
    }
}

fn stamp(ms: i64) -> String {
    Timestamp::from_millis(ms).to_string()
}

fn text(chars: &'static [char], len: RangeInclusive<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(select(chars), len).prop_map(|cs| cs.into_iter().collect())
}

/// A count from the environment, or `default` when unset; a value that is not a count is a
/// mistake worth a failure rather than a silent default.
fn env_count(name: &str, default: Option<u32>) -> Option<u32> {
    match std::env::var(name) {
        Ok(v) => Some(
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a count")),
        ),
        Err(_) => default,
    }
}

fn proptest_config() -> ProptestConfig {
    ProptestConfig::with_cases(env_count("PROPTEST_CASES", Some(64)).expect("a default"))
}

// ---------------------------------------------------------------------------------------
// The model.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    const ALL: [Priority; 3] = [Priority::Low, Priority::Medium, Priority::High];

    fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    CreatedAt,
    UpdatedAt,
    Title,
    Priority,
    DueDate,
}

impl SortKey {
    const ALL: [SortKey; 5] = [
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
        SortKey::Title,
        SortKey::Priority,
        SortKey::DueDate,
    ];

    fn name(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
            SortKey::Title => "title",
            SortKey::Priority => "priority",
            SortKey::DueDate => "due_date",
        }
    }
}

/// A task as the model expects the API to return it.
#[derive(Clone, Debug)]
struct ModelTask {
    id: i64,
    /// The task's place in [`Model::issued`].
    seq: usize,
    owner: usize,
    title: String,
    description: Option<String>,
    priority: Priority,
    due_date: Option<&'static str>,
    completed: bool,
    created_at: i64,
    updated_at: i64,
    completed_at: Option<i64>,
    etag: String,
}

impl ModelTask {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "user_id": USERS[self.owner],
            "title": self.title,
            "description": self.description,
            "completed": self.completed,
            "priority": self.priority.name(),
            "due_date": self.due_date,
            "created_at": stamp(self.created_at),
            "updated_at": stamp(self.updated_at),
            "completed_at": self.completed_at.map(stamp),
        })
    }

    fn touch(&mut self, now: i64) {
        self.updated_at = self.updated_at.max(now);
    }

    /// `completed_at` is set when the task becomes completed, cleared when it becomes pending.
    fn set_completed(&mut self, completed: bool, now: i64) {
        if completed && !self.completed {
            self.completed_at = Some(now);
        } else if !completed {
            self.completed_at = None;
        }
        self.completed = completed;
        self.touch(now);
    }

    /// The total order of a sort: the value in the sort's direction (undated tasks last in
    /// both directions), then the id in the same direction.
    fn order(a: &ModelTask, b: &ModelTask, key: SortKey, descending: bool) -> Ordering {
        let directed = |o: Ordering| if descending { o.reverse() } else { o };
        let by_value = match key {
            SortKey::CreatedAt => directed(a.created_at.cmp(&b.created_at)),
            SortKey::UpdatedAt => directed(a.updated_at.cmp(&b.updated_at)),
            SortKey::Title => directed(a.title.to_lowercase().cmp(&b.title.to_lowercase())),
            SortKey::Priority => directed(a.priority.cmp(&b.priority)),
            SortKey::DueDate => match (a.due_date, b.due_date) {
                (Some(x), Some(y)) => directed(x.cmp(y)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        };
        by_value.then_with(|| directed(a.id.cmp(&b.id)))
    }
}

/// The stored form of a description: trailing white space trimmed, empty as null.
fn stored_description(d: &str) -> Option<String> {
    let d = d.trim_end();
    (!d.is_empty()).then(|| d.to_owned())
}

#[derive(Debug, Default)]
struct Model {
    /// Live tasks of every user.
    tasks: BTreeMap<i64, ModelTask>,
    /// The owner of every id ever issued, deleted tasks included.
    owners: BTreeMap<i64, usize>,
    /// The same ids in the order they were issued, to pick one without walking them all.
    issued: Vec<i64>,
    /// The live tasks' ids by their place in `issued`. Targets pick tasks in this order, not
    /// by id, so that a sequence of operations means the same tasks on every store and in
    /// every run even though ids are not sequential (they may be random).
    live: BTreeMap<usize, i64>,
}

impl Model {
    fn insert(&mut self, task: ModelTask) {
        self.owners.insert(task.id, task.owner);
        self.live.insert(task.seq, task.id);
        self.issued.push(task.id);
        self.tasks.insert(task.id, task);
    }

    /// Removes the tasks `drop` picks, returning how many.
    fn remove_where(&mut self, drop: impl Fn(&ModelTask) -> bool) -> usize {
        let before = self.tasks.len();
        let live = &mut self.live;
        self.tasks.retain(|_, t| {
            let dropped = drop(t);
            if dropped {
                live.remove(&t.seq);
            }
            !dropped
        });
        before - self.tasks.len()
    }

    /// `user`'s tasks matching `spec`, in its order.
    fn expected_list(&self, user: usize, spec: &ListSpec) -> Vec<&ModelTask> {
        let mut tasks: Vec<&ModelTask> = self
            .tasks
            .values()
            .filter(|t| t.owner == user && spec.matches(t))
            .collect();
        let (key, descending) = spec.sort.unwrap_or((SortKey::CreatedAt, true));
        tasks.sort_by(|a, b| ModelTask::order(a, b, key, descending));
        tasks
    }
}

// ---------------------------------------------------------------------------------------
// Operations.
// ---------------------------------------------------------------------------------------

/// Which task an item operation names.
#[derive(Clone, Debug)]
enum Target {
    /// One of the ids issued so far, whoever owns it and whether or not it was deleted.
    Issued(Index),
    /// One of the live tasks of any user. Over a long run nearly every issued id is a
    /// deleted task's; this keeps the live ones, the caller's and others', in reach.
    Live(Index),
    /// One of the caller's live tasks: with five users, `Live` is another's four times in
    /// five, and the caller's own tasks must change often enough too.
    Own(Index),
    /// An id that was never issued.
    NeverIssued(u32),
    /// A segment that is not a task id at all.
    Malformed(&'static str),
}

#[derive(Clone, Debug)]
struct CreateBody {
    title: String,
    /// Absent, null, or a string.
    description: Option<Option<String>>,
    priority: Option<Priority>,
    due_date: Option<Option<&'static str>>,
    completed: Option<bool>,
}

/// A partial update; every field may be absent.
#[derive(Clone, Debug)]
struct PatchBody {
    title: Option<String>,
    description: Option<Option<String>>,
    priority: Option<Priority>,
    due_date: Option<Option<&'static str>>,
    completed: Option<bool>,
}

fn body_fields(
    title: Option<&String>,
    description: &Option<Option<String>>,
    priority: Option<Priority>,
    due_date: Option<Option<&'static str>>,
    completed: Option<bool>,
) -> Value {
    let mut map = serde_json::Map::new();
    if let Some(t) = title {
        map.insert("title".into(), json!(t));
    }
    if let Some(d) = description {
        map.insert("description".into(), json!(d));
    }
    if let Some(p) = priority {
        map.insert("priority".into(), json!(p.name()));
    }
    if let Some(d) = due_date {
        map.insert("due_date".into(), json!(d));
    }
    if let Some(c) = completed {
        map.insert("completed".into(), json!(c));
    }
    Value::Object(map)
}

impl CreateBody {
    fn json(&self) -> Value {
        body_fields(
            Some(&self.title),
            &self.description,
            self.priority,
            self.due_date,
            self.completed,
        )
    }
}

impl PatchBody {
    fn json(&self) -> Value {
        body_fields(
            self.title.as_ref(),
            &self.description,
            self.priority,
            self.due_date,
            self.completed,
        )
    }

    /// Whether the update is acceptable: it changes something and any title is not blank.
    fn is_valid(&self) -> bool {
        let changes_something = self.title.is_some()
            || self.description.is_some()
            || self.priority.is_some()
            || self.due_date.is_some()
            || self.completed.is_some();
        changes_something && self.title.as_ref().is_none_or(|t| !t.trim().is_empty())
    }

    fn apply(&self, task: &mut ModelTask, now: i64) {
        if let Some(t) = &self.title {
            task.title = t.trim().to_owned();
        }
        if let Some(d) = &self.description {
            task.description = d.as_deref().and_then(stored_description);
        }
        if let Some(p) = self.priority {
            task.priority = p;
        }
        if let Some(d) = self.due_date {
            task.due_date = d;
        }
        match self.completed {
            Some(c) => task.set_completed(c, now),
            None => task.touch(now),
        }
    }
}

/// The query of a list.
#[derive(Clone, Debug)]
struct ListSpec {
    status: Option<&'static str>,
    priorities: Option<Vec<Priority>>,
    search: Option<String>,
    due_before: Option<&'static str>,
    due_after: Option<&'static str>,
    /// Key and whether descending.
    sort: Option<(SortKey, bool)>,
    limit: Option<u32>,
}

impl ListSpec {
    fn query(&self, cursor: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(s) = self.status {
            q.append_pair("status", s);
        }
        if let Some(ps) = &self.priorities {
            let names: Vec<&str> = ps.iter().map(|p| p.name()).collect();
            q.append_pair("priority", &names.join(","));
        }
        if let Some(s) = &self.search {
            q.append_pair("q", s);
        }
        if let Some(d) = self.due_before {
            q.append_pair("due_before", d);
        }
        if let Some(d) = self.due_after {
            q.append_pair("due_after", d);
        }
        if let Some((key, descending)) = self.sort {
            let sign = if descending { "-" } else { "" };
            q.append_pair("sort", &format!("{sign}{}", key.name()));
        }
        if let Some(l) = self.limit {
            q.append_pair("limit", &l.to_string());
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        q.finish()
    }

    fn matches(&self, t: &ModelTask) -> bool {
        let status = match self.status {
            None | Some("all") => true,
            Some("pending") => !t.completed,
            Some("completed") => t.completed,
            Some(other) => unreachable!("status {other} is never generated"),
        };
        let priority = self
            .priorities
            .as_ref()
            .is_none_or(|ps| ps.contains(&t.priority));
        let search = match self.search.as_deref().map(str::trim) {
            None => true,
            Some("") => unreachable!("a blank q is refused before any task is matched"),
            Some(s) => {
                let s = s.to_lowercase();
                t.title.to_lowercase().contains(&s)
                    || t.description
                        .as_ref()
                        .is_some_and(|d| d.to_lowercase().contains(&s))
            }
        };
        let due = match (self.due_before, self.due_after) {
            (None, None) => true,
            (before, after) => t
                .due_date
                .is_some_and(|d| before.is_none_or(|b| d <= b) && after.is_none_or(|a| d >= a)),
        };
        status && priority && search && due
    }

    /// The parameter the service refuses, if any: an empty (or blank) value is a 400, not
    /// the same as leaving the parameter out.
    fn refused_parameter(&self) -> Option<&'static str> {
        self.search
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
            .then_some("q")
    }
}

/// One request (or, for a list, one walk through every page). `user` is taken modulo the
/// number of users of the case.
#[derive(Clone, Debug)]
enum Op {
    Create {
        user: usize,
        base: Base,
        body: CreateBody,
    },
    Get {
        user: usize,
        base: Base,
        target: Target,
    },
    Update {
        user: usize,
        base: Base,
        target: Target,
        put: bool,
        body: PatchBody,
    },
    /// `PATCH …/complete` (or its alias): toggle with no body or `{}`, or set.
    Complete {
        user: usize,
        base: Base,
        target: Target,
        alias: bool,
        set: Option<bool>,
        empty_object: bool,
    },
    Delete {
        user: usize,
        base: Base,
        target: Target,
    },
    List {
        user: usize,
        base: Base,
        spec: ListSpec,
    },
    ClearCompleted {
        user: usize,
        base: Base,
    },
}

/// An operation, after the clock moves on by `advance_ms` (0 gives equal timestamps).
#[derive(Clone, Debug)]
struct Step {
    advance_ms: i64,
    op: Op,
}

// ---------------------------------------------------------------------------------------
// The harness: sends operations through the API and checks each reply against the model.
// ---------------------------------------------------------------------------------------

/// How an item request for a target went.
enum ItemOutcome {
    /// The target is one of the caller's live tasks.
    Own(i64, Reply),
    /// It is not; the reply was already checked to be that of an id that never existed.
    Hidden(Reply),
}

struct Harness<S: TaskStore + AccountStore> {
    api: Api<S>,
    now: Timestamp,
    tokens: Vec<String>,
    /// When `tokens` were minted.
    minted: Timestamp,
    sent: u64,
    model: Model,
}

impl<S: TaskStore + AccountStore> Harness<S> {
    /// A harness for the first `users` users over `store`, which must be empty.
    fn new(store: S, users: usize) -> Self {
        let now = Timestamp::from_millis(START_MS);
        Harness {
            api: Api::new(store, config()),
            now,
            tokens: USERS[..users].iter().map(|u| mint_token(u, now)).collect(),
            minted: now,
            sent: 0,
            model: Model::default(),
        }
    }

    fn send(&mut self, user: usize, method: Method, uri: &str, body: Option<&Value>) -> Reply {
        self.sent += 1;
        let request = build_request(method, uri, &self.tokens[user], body);
        let ctx = RequestContext::new(self.now, format!("req-{}", self.sent));
        let response = pollster::block_on(self.api.handle(request, ctx));
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                let v = v.to_str().expect("ASCII header values");
                (n.as_str().to_owned(), v.to_owned())
            })
            .collect();
        let body = (!response.body().is_empty()).then(|| {
            serde_json::from_slice(response.body())
                .unwrap_or_else(|e| panic!("{uri}: the body is not JSON ({e})"))
        });
        Reply {
            status: response.status().as_u16(),
            headers,
            body,
        }
    }

    fn run(&mut self, steps: &[Step]) {
        for step in steps {
            self.step(step);
        }
        self.check_every_list();
    }

    fn step(&mut self, step: &Step) {
        self.now = self.now.plus_millis(step.advance_ms);
        if self.now.as_millis() - self.minted.as_millis() > TOKEN_REFRESH_MS {
            let users = self.tokens.len();
            self.tokens = USERS[..users]
                .iter()
                .map(|u| mint_token(u, self.now))
                .collect();
            self.minted = self.now;
        }
        self.apply(&step.op);
    }

    /// Every user's whole list is exactly the model's.
    fn check_every_list(&mut self) {
        for user in 0..self.tokens.len() {
            let spec = ListSpec {
                status: None,
                priorities: None,
                search: None,
                due_before: None,
                due_after: None,
                sort: None,
                limit: Some(100),
            };
            self.list(user, Base::Api, &spec);
        }
    }

    fn apply(&mut self, op: &Op) {
        let users = self.tokens.len();
        match op {
            Op::Create { user, base, body } => self.create(user % users, *base, body),
            Op::Get { user, base, target } => self.get(user % users, *base, target),
            Op::Update {
                user,
                base,
                target,
                put,
                body,
            } => self.update(user % users, *base, target, *put, body),
            Op::Complete {
                user,
                base,
                target,
                alias,
                set,
                empty_object,
            } => self.complete(user % users, *base, target, *alias, *set, *empty_object),
            Op::Delete { user, base, target } => self.delete(user % users, *base, target),
            Op::List { user, base, spec } => self.list(user % users, *base, spec),
            Op::ClearCompleted { user, base } => self.clear_completed(user % users, *base),
        }
    }

    fn now_ms(&self) -> i64 {
        self.now.as_millis()
    }

    /// The `{id}` segment a target of `user`'s names, and the id if it was ever issued.
    fn resolve(&self, user: usize, target: &Target) -> (String, Option<i64>) {
        let model = &self.model;
        let own: Vec<i64> = match target {
            Target::Own(_) => model
                .live
                .values()
                .copied()
                .filter(|id| model.tasks[id].owner == user)
                .collect(),
            _ => Vec::new(),
        };
        let id = match target {
            Target::Issued(ix) if !model.issued.is_empty() => *ix.get(&model.issued),
            Target::Live(ix) if !model.live.is_empty() => {
                let n = ix.index(model.live.len());
                *model.live.values().nth(n).expect("in range")
            }
            Target::Own(ix) if !own.is_empty() => *ix.get(&own),
            Target::Issued(_) | Target::Live(_) | Target::Own(_) => {
                return (MISSING_ID.to_owned(), None);
            }
            Target::NeverIssued(n) => 1_000_000_000 + i64::from(*n),
            Target::Malformed(s) => return ((*s).to_owned(), None),
        };
        // Ids need not be sequential (they may be random), so even a "never issued" id is
        // looked up rather than assumed unknown.
        (
            id.to_string(),
            self.model.owners.contains_key(&id).then_some(id),
        )
    }

    /// Sends an item request. If the target is not one of `user`'s live tasks, checks that
    /// the reply is exactly the reply for an id that never existed, and that the owner's
    /// copy (if any) is unchanged.
    fn item(
        &mut self,
        user: usize,
        base: Base,
        target: &Target,
        method: Method,
        tail: &str,
        body: Option<&Value>,
    ) -> ItemOutcome {
        let (segment, id) = self.resolve(user, target);
        let base_path = base.path(USERS[user]);
        let uri = format!("{base_path}/tasks/{segment}{tail}");
        let reply = self.send(user, method.clone(), &uri, body);
        let own = id.filter(|id| self.model.tasks.get(id).is_some_and(|t| t.owner == user));
        if let Some(id) = own {
            return ItemOutcome::Own(id, reply);
        }
        if let Target::Malformed(_) = target {
            // No task can have this id: the path itself leads nowhere, whatever the body.
            assert_eq!(reply.status, 404, "{uri}: {reply:?}");
            assert_eq!(reply.json()["code"], "not_found");
            return ItemOutcome::Hidden(reply);
        }
        let missing_uri = format!("{base_path}/tasks/{MISSING_ID}{tail}");
        let missing = self.send(user, method, &missing_uri, body);
        assert_eq!(
            reply.redacted(),
            missing.redacted(),
            "{uri} (not a live task of {}) must answer exactly as an id that never existed",
            USERS[user]
        );
        if let Some(id) = id {
            self.check_stored(id);
        }
        ItemOutcome::Hidden(reply)
    }

    /// Reads task `id` as its owner: the model's copy if live, else a 404.
    fn check_stored(&mut self, id: i64) {
        let owner = self.model.owners[&id];
        let reply = self.send(owner, Method::GET, &format!("/api/tasks/{id}"), None);
        match self.model.tasks.get(&id) {
            Some(task) => {
                assert_eq!(reply.status, 200, "owner reads task {id}: {reply:?}");
                assert_eq!(reply.json()["data"], task.json(), "task {id} as stored");
                assert_eq!(reply.etag(), task.etag, "ETag of unchanged task {id}");
            }
            None => assert_eq!(reply.status, 404, "deleted task {id}: {reply:?}"),
        }
    }

    fn create(&mut self, user: usize, base: Base, body: &CreateBody) {
        let base_path = base.path(USERS[user]);
        let reply = self.send(
            user,
            Method::POST,
            &format!("{base_path}/tasks"),
            Some(&body.json()),
        );
        let title = body.title.trim();
        if title.is_empty() {
            assert_eq!(reply.status, 422, "blank title: {reply:?}");
            assert_eq!(reply.json()["code"], "validation_failed");
            return;
        }
        assert_eq!(reply.status, 201, "create {body:?}: {reply:?}");
        let data = &reply.json()["data"];
        let id = data["id"].as_i64().expect("a numeric id");
        assert!(
            !self.model.owners.contains_key(&id),
            "id {id} was issued twice"
        );
        let now = self.now_ms();
        let completed = body.completed.unwrap_or(false);
        let task = ModelTask {
            id,
            seq: self.model.issued.len(),
            owner: user,
            title: title.to_owned(),
            description: body
                .description
                .as_ref()
                .and_then(|d| d.as_deref())
                .and_then(stored_description),
            priority: body.priority.unwrap_or(Priority::Medium),
            due_date: body.due_date.flatten(),
            completed,
            created_at: now,
            updated_at: now,
            completed_at: completed.then_some(now),
            etag: reply.etag(),
        };
        assert_eq!(*data, task.json(), "created from {body:?}");
        assert_eq!(
            reply.header("location"),
            Some(format!("{base_path}/tasks/{id}").as_str())
        );
        self.model.insert(task);
    }

    fn get(&mut self, user: usize, base: Base, target: &Target) {
        match self.item(user, base, target, Method::GET, "", None) {
            ItemOutcome::Own(id, reply) => {
                let task = &self.model.tasks[&id];
                assert_eq!(reply.status, 200, "get own task {id}: {reply:?}");
                assert_eq!(reply.json()["data"], task.json());
                assert_eq!(reply.etag(), task.etag);
            }
            ItemOutcome::Hidden(reply) => assert_eq!(reply.status, 404),
        }
    }

    fn update(&mut self, user: usize, base: Base, target: &Target, put: bool, body: &PatchBody) {
        let method = if put { Method::PUT } else { Method::PATCH };
        let json = body.json();
        let valid = body.is_valid();
        match self.item(user, base, target, method, "", Some(&json)) {
            ItemOutcome::Own(id, reply) if valid => {
                assert_eq!(reply.status, 200, "update {id} with {json}: {reply:?}");
                let now = self.now_ms();
                let task = self.model.tasks.get_mut(&id).expect("live");
                body.apply(task, now);
                assert_eq!(reply.json()["data"], task.json(), "after update {json}");
                let etag = reply.etag();
                assert_ne!(etag, task.etag, "the ETag changes with the task");
                task.etag = etag;
            }
            ItemOutcome::Own(id, reply) => {
                assert_eq!(reply.status, 422, "update {id} with {json}: {reply:?}");
                self.check_stored(id);
            }
            ItemOutcome::Hidden(reply) => {
                let malformed = matches!(target, Target::Malformed(_));
                let expected = if valid || malformed { 404 } else { 422 };
                assert_eq!(reply.status, expected, "update with {json}: {reply:?}");
            }
        }
    }

    fn complete(
        &mut self,
        user: usize,
        base: Base,
        target: &Target,
        alias: bool,
        set: Option<bool>,
        empty_object: bool,
    ) {
        let tail = if alias { "/toggle-status" } else { "/complete" };
        let body = match set {
            Some(c) => Some(json!({ "completed": c })),
            None => empty_object.then(|| json!({})),
        };
        match self.item(user, base, target, Method::PATCH, tail, body.as_ref()) {
            ItemOutcome::Own(id, reply) => {
                assert_eq!(reply.status, 200, "complete {id} with {body:?}: {reply:?}");
                let now = self.now_ms();
                let task = self.model.tasks.get_mut(&id).expect("live");
                let completed = set.unwrap_or(!task.completed);
                task.set_completed(completed, now);
                assert_eq!(reply.json()["data"], task.json(), "after {tail} {body:?}");
                let etag = reply.etag();
                assert_ne!(etag, task.etag, "the ETag changes with the task");
                task.etag = etag;
            }
            ItemOutcome::Hidden(reply) => assert_eq!(reply.status, 404),
        }
    }

    fn delete(&mut self, user: usize, base: Base, target: &Target) {
        match self.item(user, base, target, Method::DELETE, "", None) {
            ItemOutcome::Own(id, reply) => {
                assert_eq!(reply.status, 204, "delete {id}: {reply:?}");
                assert!(reply.body.is_none(), "204 has no body");
                self.model.remove_where(|t| t.id == id);
                self.check_stored(id);
            }
            ItemOutcome::Hidden(reply) => assert_eq!(reply.status, 404),
        }
    }

    /// Walks every page of a list and compares the walk with the model.
    fn list(&mut self, user: usize, base: Base, spec: &ListSpec) {
        let base_path = base.path(USERS[user]);
        if let Some(name) = spec.refused_parameter() {
            let uri = format!("{base_path}/tasks?{}", spec.query(None));
            let reply = self.send(user, Method::GET, &uri, None);
            assert_eq!(reply.status, 400, "{uri}: {reply:?}");
            assert_eq!(reply.json()["code"], "invalid_parameter", "{uri}");
            assert_eq!(
                reply.json()["errors"],
                json!([{
                    "field": name,
                    "code": "blank",
                    "message": format!("{name} must not be empty: leave the parameter out instead"),
                }]),
                "{uri}"
            );
            return;
        }
        let expected: Vec<Value> = self
            .model
            .expected_list(user, spec)
            .into_iter()
            .map(ModelTask::json)
            .collect();
        let limit = spec.limit.unwrap_or(50);
        let mut seen: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 0.. {
            assert!(
                page <= expected.len(),
                "paging does not end after {page} pages of {spec:?}"
            );
            let query = spec.query(cursor.as_deref());
            let uri = format!("{base_path}/tasks?{query}");
            let reply = self.send(user, Method::GET, &uri, None);
            assert_eq!(reply.status, 200, "{uri}: {reply:?}");
            let body = reply.json();
            let data = body["data"].as_array().expect("data is an array");
            let meta = &body["meta"];
            assert_eq!(
                meta["total"].as_u64(),
                Some(expected.len() as u64),
                "meta.total of {uri} ({spec:?})"
            );
            assert_eq!(meta["limit"].as_u64(), Some(u64::from(limit)), "{uri}");
            assert!(data.len() <= limit as usize, "{uri}: page over the limit");
            seen.extend(data.iter().cloned());
            match &meta["next_cursor"] {
                Value::Null => break,
                Value::String(c) => {
                    assert_eq!(
                        data.len(),
                        limit as usize,
                        "{uri}: a page followed by another is full"
                    );
                    cursor = Some(c.clone());
                }
                other => panic!("{uri}: next_cursor is {other}"),
            }
        }
        assert_eq!(
            seen, expected,
            "the walk through every page of {spec:?} for {}",
            USERS[user]
        );
    }

    fn clear_completed(&mut self, user: usize, base: Base) {
        let base_path = base.path(USERS[user]);
        let uri = format!("{base_path}/tasks?status=completed");
        let reply = self.send(user, Method::DELETE, &uri, None);
        let deleted = self.model.remove_where(|t| t.owner == user && t.completed);
        assert_eq!(reply.status, 200, "{uri}: {reply:?}");
        assert_eq!(*reply.json(), json!({ "data": { "deleted": deleted } }));
    }
}

// ---------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------

fn user() -> impl Strategy<Value = usize> {
    0..USERS.len()
}

fn base() -> impl Strategy<Value = Base> {
    select(Base::ALL.to_vec())
}

fn priority() -> impl Strategy<Value = Priority> {
    select(Priority::ALL.to_vec())
}

fn due_date() -> impl Strategy<Value = &'static str> {
    select(DATES)
}

fn title() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => text(TITLE_CHARS, 1..=6),
        1 => Just("  \u{3000}".to_owned()),
    ]
}

/// Absent, null, or a string (possibly empty or blank).
fn description_field() -> impl Strategy<Value = Option<Option<String>>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(None)),
        2 => text(DESCRIPTION_CHARS, 0..=5).prop_map(|d| Some(Some(d))),
    ]
}

/// Absent, null, or a date.
fn due_field() -> impl Strategy<Value = Option<Option<&'static str>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(None)),
        3 => due_date().prop_map(|d| Some(Some(d))),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => any::<Index>().prop_map(Target::Issued),
        3 => any::<Index>().prop_map(Target::Live),
        2 => any::<Index>().prop_map(Target::Own),
        1 => (0u32..1000).prop_map(Target::NeverIssued),
        1 => select(MALFORMED_IDS).prop_map(Target::Malformed),
    ]
}

fn create_op() -> impl Strategy<Value = Op> {
    (
        user(),
        base(),
        title(),
        description_field(),
        prop::option::of(priority()),
        due_field(),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(user, base, title, description, priority, due_date, completed)| Op::Create {
                user,
                base,
                body: CreateBody {
                    title,
                    description,
                    priority,
                    due_date,
                    completed,
                },
            },
        )
}

fn get_op() -> impl Strategy<Value = Op> {
    (user(), base(), target()).prop_map(|(user, base, target)| Op::Get { user, base, target })
}

fn update_op() -> impl Strategy<Value = Op> {
    let body = (
        prop::option::weighted(0.3, title()),
        description_field(),
        prop::option::weighted(0.4, priority()),
        due_field(),
        prop::option::weighted(0.3, any::<bool>()),
    )
        .prop_map(
            |(title, description, priority, due_date, completed)| PatchBody {
                title,
                description,
                priority,
                due_date,
                completed,
            },
        );
    (user(), base(), target(), any::<bool>(), body).prop_map(|(user, base, target, put, body)| {
        Op::Update {
            user,
            base,
            target,
            put,
            body,
        }
    })
}

fn complete_op() -> impl Strategy<Value = Op> {
    (
        user(),
        base(),
        target(),
        any::<bool>(),
        prop::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            |(user, base, target, alias, set, empty_object)| Op::Complete {
                user,
                base,
                target,
                alias,
                set,
                empty_object,
            },
        )
}

fn delete_op() -> impl Strategy<Value = Op> {
    (user(), base(), target()).prop_map(|(user, base, target)| Op::Delete { user, base, target })
}

fn list_spec() -> impl Strategy<Value = ListSpec> {
    (
        prop::option::of(select(&["all", "pending", "completed"][..])),
        prop::option::weighted(0.3, prop::collection::vec(priority(), 1..=3)),
        prop::option::weighted(0.3, text(SEARCH_CHARS, 0..=2)),
        prop::option::weighted(0.2, due_date()),
        prop::option::weighted(0.2, due_date()),
        prop::option::weighted(0.85, (select(SortKey::ALL.to_vec()), any::<bool>())),
        prop_oneof![
            1 => Just(None),
            8 => (1u32..=6).prop_map(Some),
            1 => Just(Some(100)),
        ],
    )
        .prop_map(
            |(status, priorities, search, due_before, due_after, sort, limit)| ListSpec {
                status,
                priorities,
                search,
                due_before,
                due_after,
                sort,
                limit,
            },
        )
}

fn list_op() -> impl Strategy<Value = Op> {
    (user(), base(), list_spec()).prop_map(|(user, base, spec)| Op::List { user, base, spec })
}

fn clear_op() -> impl Strategy<Value = Op> {
    (user(), base()).prop_map(|(user, base)| Op::ClearCompleted { user, base })
}

fn step(op: impl Strategy<Value = Op>) -> impl Strategy<Value = Step> {
    (0i64..=3, op).prop_map(|(advance_ms, op)| Step { advance_ms, op })
}

fn steps(
    op: impl Strategy<Value = Op>,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(op), len)
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => create_op(),
        10 => any_op_but_create(),
    ]
}

fn any_op_but_create() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => get_op(),
        2 => update_op(),
        2 => complete_op(),
        1 => delete_op(),
        2 => list_op(),
        1 => clear_op(),
    ]
}

fn item_op() -> impl Strategy<Value = Op> {
    prop_oneof![get_op(), update_op(), complete_op(), delete_op()]
}

fn number_of_users() -> impl Strategy<Value = usize> {
    2..=USERS.len()
}

// ---------------------------------------------------------------------------------------
// The properties, as strategies of (number of users, steps) that every store runs.
// ---------------------------------------------------------------------------------------

type Case = (usize, Vec<Step>);

/// Any mix of operations: every reply agrees with the model.
fn random_sequences() -> impl Strategy<Value = Case> {
    (number_of_users(), steps(any_op(), 1..40))
}

/// Requests naming other users' tasks answer exactly as ids that never existed, and leave
/// the owners' copies unchanged.
fn isolation_sequences() -> impl Strategy<Value = Case> {
    (
        number_of_users(),
        steps(create_op(), 1..10),
        steps(item_op(), 1..30),
    )
        .prop_map(|(users, created, probes)| (users, created.into_iter().chain(probes).collect()))
}

/// With many tasks and small pages: `meta.total` counts every match and the pages together
/// hold every matching task exactly once, in the sort's total order.
fn paging_sequences() -> impl Strategy<Value = Case> {
    (
        number_of_users(),
        steps(
            prop_oneof![8 => create_op(), 1 => complete_op(), 1 => update_op(), 1 => delete_op()],
            5..45,
        ),
        steps(list_op(), 1..8),
    )
        .prop_map(|(users, setup, lists)| (users, setup.into_iter().chain(lists).collect()))
}

/// Runs `property` on the SQL stores, each case over a fresh store from `fresh` (its guard
/// dropped, with the database, after the case).
#[cfg(feature = "sql")]
fn check_sql<G, S: TaskStore + AccountStore>(
    property: impl Strategy<Value = Case>,
    fresh: impl Fn() -> (G, S),
) {
    let config = ProptestConfig {
        cases: env_count("MODEL_SQL_CASES", Some(8)).expect("a default"),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let result = TestRunner::new(config).run(&property, |(users, steps)| {
        let (_guard, store) = fresh();
        Harness::new(store, users).run(&steps);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The long run's length, or `None` (saying so) when `MODEL_OPS` is unset.
fn model_ops(store: &str) -> Option<u32> {
    let ops = env_count("MODEL_OPS", None);
    if ops.is_none() {
        eprintln!("skipping the long run on {store}: set MODEL_OPS (e.g. MODEL_OPS=100000)");
    }
    ops
}

/// The live tasks (of all users together) at which a long run stops creating until some are
/// deleted. Creates outrun deletes and clears in [`any_op`]'s mix, and a list walks every
/// page of one to six tasks, so without a bound the run's cost would grow with the square
/// of its length. 250 keeps some users over the default page of 50.
const LONG_RUN_LIVE_TASKS: usize = 250;

/// `ops` operations by all five users over `store`, from a fixed seed, then every user's
/// whole list; prints the wall time and the rate.
fn long_run<S: TaskStore + AccountStore>(store_name: &str, ops: u32, store: S) {
    // The steps are drawn one at a time rather than as one vector: a vector's value tree
    // would keep every step's shrinking state for the whole run. Which mix a step comes from
    // depends only on the model, so every store still sees the same sequence.
    let mut runner = TestRunner::deterministic();
    let grow = step(any_op());
    let hold = step(any_op_but_create());
    let mut harness = Harness::new(store, USERS.len());
    let started = Instant::now();
    for n in 1..=ops {
        let step = if harness.model.tasks.len() < LONG_RUN_LIVE_TASKS {
            grow.new_tree(&mut runner).map(|t| t.current())
        } else {
            hold.new_tree(&mut runner).map(|t| t.current())
        }
        .expect("the strategies never reject");
        // A failure names the operation: with the fixed seed, its index reproduces it.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| harness.step(&step))) {
            eprintln!("the long run on {store_name} failed at operation {n} of {ops}: {step:?}");
            resume_unwind(panic);
        }
        if n % 10_000 == 0 {
            eprintln!(
                "{store_name}: {n} operations in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    harness.check_every_list();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "long run on {store_name}: {ops} operations ({} requests) by {} users in {secs:.1} s: \
         {:.0} operations/s, {:.0} requests/s; {} tasks issued, {} live at the end",
        harness.sent,
        USERS.len(),
        f64::from(ops) / secs,
        harness.sent as f64 / secs,
        harness.model.issued.len(),
        harness.model.tasks.len(),
    );
}

mod memory {
    use super::*;

    proptest! {
        #![proptest_config(proptest_config())]

        #[test]
        fn random_operation_sequences_agree_with_the_model(
            (users, steps) in random_sequences(),
        ) {
            Harness::new(MemoryStore::new(), users).run(&steps);
        }

        #[test]
        fn users_never_see_or_change_each_others_tasks((users, steps) in isolation_sequences()) {
            Harness::new(MemoryStore::new(), users).run(&steps);
        }

        #[test]
        fn paging_visits_every_matching_task_once_in_sort_order(
            (users, steps) in paging_sequences(),
        ) {
            Harness::new(MemoryStore::new(), users).run(&steps);
        }
    }

    #[test]
    fn long_run_agrees_with_the_model() {
        if let Some(ops) = model_ops("the memory store") {
            long_run("the memory store", ops, MemoryStore::new());
        }
    }
}

#[cfg(feature = "sql")]
mod postgres {
    use super::support::postgres::{PgExecutor, PgSchema, fresh};
    use super::*;
    use task_api_core::sql::SqlStore;
    use tokio::runtime::Runtime;

    /// The runtime drives the connections while the harness answers requests on the test's
    /// thread; one worker is enough for that.
    fn runtime() -> Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime")
    }

    /// A migrated store in a fresh schema, or `None` when skipping (said once).
    fn store(runtime: &Runtime) -> Option<(PgSchema, SqlStore<PgExecutor>)> {
        runtime.block_on(fresh())
    }

    fn check(property: impl Strategy<Value = Case>) {
        let runtime = runtime();
        // One probe before the cases, so that a skip is one message, not one per case.
        if store(&runtime).is_none() {
            return;
        }
        check_sql(property, || {
            store(&runtime).expect("PostgreSQL answered a moment ago")
        });
    }

    #[test]
    fn random_operation_sequences_agree_with_the_model() {
        check(random_sequences());
    }

    #[test]
    fn users_never_see_or_change_each_others_tasks() {
        check(isolation_sequences());
    }

    #[test]
    fn paging_visits_every_matching_task_once_in_sort_order() {
        check(paging_sequences());
    }

    #[test]
    fn long_run_agrees_with_the_model() {
        let Some(ops) = model_ops("PostgreSQL") else {
            return;
        };
        let runtime = runtime();
        if let Some((_schema, store)) = store(&runtime) {
            long_run("PostgreSQL", ops, store);
        }
    }
}

#[cfg(feature = "sql")]
mod sqlite {
    use super::support::sqlite::fresh;
    use super::*;

    fn check(property: impl Strategy<Value = Case>) {
        check_sql(property, || {
            pollster::block_on(fresh()).expect("SQLite is built in")
        });
    }

    #[test]
    fn random_operation_sequences_agree_with_the_model() {
        check(random_sequences());
    }

    #[test]
    fn users_never_see_or_change_each_others_tasks() {
        check(isolation_sequences());
    }

    #[test]
    fn paging_visits_every_matching_task_once_in_sort_order() {
        check(paging_sequences());
    }

    #[test]
    fn long_run_agrees_with_the_model() {
        if let Some(ops) = model_ops("SQLite") {
            let (_db, store) = pollster::block_on(fresh()).expect("SQLite is built in");
            long_run("SQLite", ops, store);
        }
    }
}
