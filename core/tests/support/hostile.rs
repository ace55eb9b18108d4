//! Hostile requests over `Api::handle`, for every store: text a database refuses (NUL and
//! the other control characters), an email whose lower-cased form outgrows its column, and
//! cursors forged or edited by the client. Each is a 4xx naming the culprit or, for a
//! cursor or a search, a page of the caller's own tasks: never a 5xx, never another user's
//! task.
//!
//! [`hostile_tests!`] turns every function into one `#[test]`, given a factory returning
//! `Option<(guard, InProcess)>` (`None` skips; the guard is dropped after the test). The
//! memory store's run of the properties is in `contract.rs`.

#![allow(dead_code)] // each test binary uses its own subset

use std::fmt::Debug;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Request;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use task_api_core::{AccountStore, PasswordCost, TaskStore};

use super::{InProcess, Reply, Transport};

/// The user whose requests are forged.
pub const OWNER: &str = "owner";
/// Another user, whose tasks a forged request must never see.
pub const OTHER: &str = "other";

/// Generated requests per property.
const CASES: u32 = 256;

/// Generates one `#[test]` per hostile request, each on a fresh app from `$fresh`.
#[allow(unused_macros)] // used by the SQL stores' test binaries only
macro_rules! hostile_tests {
    ($fresh:path) => {
        $crate::support::hostile::hostile_tests!(@each $fresh;
            nul_in_search_is_400_naming_q,
            control_character_in_token_sub_is_401,
            nul_in_a_title_cursor_is_400_naming_cursor,
            email_whose_folded_form_is_too_long_is_422,
            forged_cursors_are_400_or_a_page_of_ones_own_tasks,
            any_search_text_is_400_naming_q_or_a_page_of_ones_own_tasks,
        );
    };
    (@each $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let Some((_guard, app)) = $fresh() else {
                    return;
                };
                $crate::support::hostile::$name(&app);
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use hostile_tests;

/// An app over `store` with the built-in accounts on, hashing at a cheap test cost.
pub fn app<S: TaskStore + AccountStore>(store: S) -> InProcess<S> {
    let cheap = PasswordCost::new(64, 1, 1).expect("valid Argon2 parameters");
    let config = super::config(&[("accounts", "true")]).map(|c| c.with_password_cost(cheap));
    InProcess::over(store, config)
}

// ---------------------------------------------------------------- one request each

pub fn nul_in_search_is_400_naming_q<S: TaskStore + AccountStore>(app: &InProcess<S>) {
    app.create(OWNER, json!({"title": "milk"}));
    for q in ["%00", "mi%00lk"] {
        let r = app.call("GET", &format!("/api/tasks?q={q}"), Some(OWNER), None);
        assert_invalid_parameter(&r, "q");
    }
}

pub fn control_character_in_token_sub_is_401<S: TaskStore + AccountStore>(app: &InProcess<S>) {
    for sub in ["u\u{0}1", "u\u{7f}", "u\u{85}"] {
        for (method, body) in [("GET", None), ("POST", Some(json!({"title": "x"})))] {
            let r = app.call(method, "/api/tasks", Some(sub), body);
            assert_eq!(r.status, 401, "{method} as {sub:?}: {}", r.json);
            let h = r.header("www-authenticate").unwrap_or_default();
            assert!(h.contains("invalid_token"), "{h}");
        }
    }
}

pub fn nul_in_a_title_cursor_is_400_naming_cursor<S: TaskStore + AccountStore>(app: &InProcess<S>) {
    for t in ["a", "b"] {
        app.create(OWNER, json!({"title": t}));
    }
    let issued = issued_cursors(app, "limit=1&sort=title");
    let raw = decode(&issued[0]);
    let (head, _) = raw.rsplit_once('|').expect("digest|id|value");
    let cursor = URL_SAFE_NO_PAD.encode(format!("{head}|a\u{0}"));
    let r = app.call(
        "GET",
        &format!("/api/tasks?limit=1&sort=title&cursor={cursor}"),
        Some(OWNER),
        None,
    );
    assert_invalid_parameter(&r, "cursor");
}

pub fn email_whose_folded_form_is_too_long_is_422<S: TaskStore + AccountStore>(app: &InProcess<S>) {
    // 135 characters as sent; "İ" lower-cases to two, so 265 once folded.
    let email = format!("{}@a.co", "İ".repeat(130));
    for path in ["/auth/register", "/auth/login"] {
        let body = json!({"email": email, "password": "long enough password"});
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
            .expect("a valid request");
        let r = app.send_in(request, |ctx| ctx.with_entropy([7; 32]));
        assert_eq!(r.status, 422, "{path}: {}", r.json);
        assert_eq!(
            r.field_errors(),
            [("email".to_owned(), "invalid_email".to_owned())],
            "{path}"
        );
    }
}

// ---------------------------------------------------------------- properties

/// How a client may forge a cursor, from one the service issued (`raw` is its decoded
/// form, `digest|id|value`).
#[derive(Clone, Debug)]
enum Forgery {
    /// Random bytes, base64url-encoded: they decode, and are rarely UTF-8.
    Bytes(Vec<u8>),
    /// Random text sent as the cursor itself (mostly not base64url).
    Text(String),
    /// The issued digest (so the query matches) with any id and value.
    Fields { id: String, value: String },
    /// One byte of the decoded cursor replaced.
    Replace { at: Index, byte: u8 },
    /// The decoded cursor cut short.
    Cut { at: Index },
    /// Text inserted into the decoded cursor.
    Insert { at: Index, text: String },
    /// One character of the encoded cursor replaced.
    EditEncoded { at: Index, with: char },
}

impl Forgery {
    fn apply(&self, issued: &str) -> String {
        let raw = decode(issued).into_bytes();
        let encode = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            Forgery::Bytes(b) => encode(b),
            Forgery::Text(t) => t.clone(),
            Forgery::Fields { id, value } => {
                let raw = String::from_utf8_lossy(&raw).into_owned();
                let digest = raw.split('|').next().unwrap_or_default();
                encode(format!("{digest}|{id}|{value}").as_bytes())
            }
            Forgery::Replace { at, byte } => {
                let mut b = raw;
                let i = at.index(b.len());
                b[i] = *byte;
                encode(&b)
            }
            Forgery::Cut { at } => encode(&raw[..at.index(raw.len())]),
            Forgery::Insert { at, text } => {
                let mut b = raw;
                let i = at.index(b.len() + 1);
                b.splice(i..i, text.bytes());
                encode(&b)
            }
            Forgery::EditEncoded { at, with } => {
                let mut chars: Vec<char> = issued.chars().collect();
                let i = at.index(chars.len());
                chars[i] = *with;
                chars.into_iter().collect()
            }
        }
    }
}

/// Text a database may refuse or misread: control characters (C0, DEL, C1; often NUL, the
/// one PostgreSQL refuses), separators, quotes, `LIKE` wildcards and escapes, numbers and
/// dates, as well as any printable text.
fn nasty_text(max: usize) -> impl Strategy<Value = String> {
    let class = format!(r#"[\x00-\x1f\x7f\x{{80}}-\x{{9f}}a-zA-Z0-9|%_\\'" İé日-]{{0,{max}}}"#);
    let nasty = proptest::string::string_regex(&class).expect("a valid regex");
    let half = || {
        proptest::string::string_regex(&format!("[a-z|%_]{{0,{}}}", max / 2))
            .expect("a valid regex")
    };
    prop_oneof![
        2 => nasty,
        1 => proptest::string::string_regex(&format!(".{{0,{max}}}")).expect("a valid regex"),
        2 => (half(), half()).prop_map(|(a, b)| format!("{a}\0{b}")),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => "[-+]?[0-9]{1,22}",
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
    ]
}

/// A task id: mostly one that exists, else anything.
fn task_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (1i64..=64).prop_map(|n| n.to_string()),
        1 => nasty_text(24),
    ]
}

fn forgery() -> impl Strategy<Value = Forgery> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..48).prop_map(Forgery::Bytes),
        1 => nasty_text(48).prop_map(Forgery::Text),
        3 => (task_id(), nasty_text(24)).prop_map(|(id, value)| Forgery::Fields { id, value }),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Forgery::Replace { at, byte }),
        1 => any::<Index>().prop_map(|at| Forgery::Cut { at }),
        2 => (any::<Index>(), nasty_text(8)).prop_map(|(at, text)| Forgery::Insert { at, text }),
        1 => (any::<Index>(), any::<char>())
            .prop_map(|(at, with)| Forgery::EditEncoded { at, with }),
    ]
}

/// Queries whose cursors are forged: every sort key, both directions, filters.
const CURSOR_QUERIES: [&str; 7] = [
    "limit=1",
    "limit=1&sort=title",
    "limit=2&sort=-title&q=a",
    "limit=1&sort=due_date",
    "limit=1&sort=-due_date&status=completed",
    "limit=1&sort=-priority&status=pending",
    "limit=3&sort=updated_at&priority=low,high",
];

pub fn forged_cursors_are_400_or_a_page_of_ones_own_tasks<S: TaskStore + AccountStore>(
    app: &InProcess<S>,
) {
    let own = seed(app);
    let issued: Vec<(&str, String)> = CURSOR_QUERIES
        .iter()
        .flat_map(|q| issued_cursors(app, q).into_iter().map(move |c| (*q, c)))
        .collect();
    assert!(issued.len() > CURSOR_QUERIES.len(), "every query pages");
    run(
        (any::<Index>(), forgery()),
        |(which, forgery): (Index, Forgery)| {
            let (query, cursor) = &issued[which.index(issued.len())];
            let forged = forgery.apply(cursor);
            let r = app.call(
                "GET",
                &format!("/api/tasks?{query}&cursor={}", encode_param(&forged)),
                Some(OWNER),
                None,
            );
            page_of_own_tasks_or_400_naming(&r, "cursor", &own)
                .map_err(|e| TestCaseError::fail(format!("{query}&cursor={forged:?}: {e}")))
        },
    );
}

pub fn any_search_text_is_400_naming_q_or_a_page_of_ones_own_tasks<S: TaskStore + AccountStore>(
    app: &InProcess<S>,
) {
    let own = seed(app);
    run(nasty_text(220), |q: String| {
        let r = app.call(
            "GET",
            &format!("/api/tasks?limit=100&q={}", encode_param(&q)),
            Some(OWNER),
            None,
        );
        page_of_own_tasks_or_400_naming(&r, "q", &own)
    });
}

// ---------------------------------------------------------------- helpers

/// Tasks of [`OWNER`] and [`OTHER`] alike, varied in every sort key, with titles that stress
/// a text cursor (the separator `|`, case, a character whose lower case is longer, `LIKE`
/// wildcards). Returns the owner's task ids.
fn seed<S: TaskStore + AccountStore>(app: &InProcess<S>) -> Vec<i64> {
    let titles = [
        "Alpha",
        "alpha",
        "b|c|d",
        "İstanbul",
        "100% _done_",
        r"back\slash",
        "日本語",
        "zed",
    ];
    let mut own = Vec::new();
    for (i, title) in titles.iter().enumerate() {
        let due = if i % 2 == 0 {
            json!(format!("2026-0{}-1{i}", 1 + i))
        } else {
            Value::Null
        };
        let priority = ["low", "medium", "high"][i % 3];
        for user in [OWNER, OTHER] {
            let r = app.create(
                user,
                json!({
                    "title": title,
                    "description": "oat milk",
                    "priority": priority,
                    "due_date": due,
                    "completed": i % 3 == 0,
                }),
            );
            if user == OWNER {
                own.push(r.id());
            }
        }
    }
    own
}

/// Every `next_cursor` of paging through `query` as [`OWNER`].
fn issued_cursors<S: TaskStore + AccountStore>(app: &InProcess<S>, query: &str) -> Vec<String> {
    let mut cursors: Vec<String> = Vec::new();
    loop {
        let q = match cursors.last() {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        match app.list(OWNER, &q).json["meta"]["next_cursor"].as_str() {
            Some(c) => cursors.push(c.to_owned()),
            None => return cursors,
        }
        assert!(cursors.len() < 1000, "paging {query} does not end");
    }
}

fn decode(cursor: &str) -> String {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .expect("issued cursors are base64url");
    String::from_utf8(bytes).expect("issued cursors are UTF-8")
}

fn encode_param(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn assert_invalid_parameter(r: &Reply, name: &str) {
    assert_eq!(r.status, 400, "{}", r.json);
    assert_eq!(r.json["code"], "invalid_parameter");
    let fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, [name]);
}

/// A 200 listing only tasks of `own`, or a 400 `invalid_parameter` naming only `name`.
fn page_of_own_tasks_or_400_naming(
    r: &Reply,
    name: &str,
    own: &[i64],
) -> Result<(), TestCaseError> {
    match r.status {
        200 => {
            let data = r.json["data"].as_array().expect("a list envelope");
            for task in data {
                prop_assert_eq!(task["user_id"].as_str(), Some(OWNER), "{}", task);
                let id = task["id"].as_i64().unwrap_or_default();
                prop_assert!(own.contains(&id), "task {} is not the owner's", id);
            }
            let total = r.json["meta"]["total"].as_u64().unwrap_or(u64::MAX);
            prop_assert!(total <= own.len() as u64, "total {} counts others", total);
        }
        400 => {
            prop_assert_eq!(&r.json["code"], "invalid_parameter");
            let fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
            prop_assert!(
                !fields.is_empty() && fields.iter().all(|f| f == name),
                "{:?} should name only {}",
                fields,
                name
            );
        }
        status => prop_assert!(false, "status {}: {}", status, r.json),
    }
    Ok(())
}

/// Runs `test` on [`CASES`] values of `strategy`, shrinking a failure to a minimal case.
fn run<T: Debug>(
    strategy: impl Strategy<Value = T>,
    test: impl Fn(T) -> Result<(), TestCaseError>,
) {
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if let Err(e) = TestRunner::new(config).run(&strategy, test) {
        panic!("{e}");
    }
}
