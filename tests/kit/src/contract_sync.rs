//! The sync routes (docs/sync.md): the change feed, batches, export and import, one function
//! per behaviour over any [`Transport`], as in [`contract`](crate::contract), which
//! re-exports them so that [`contract_tests!`](crate::contract_tests) lists them with the
//! rest of the contract.
//!
//! Nothing here assumes id values or their order: ids are random. Where the feed's order
//! is asserted, it is the order in which the test made its changes.

use std::collections::{BTreeMap, BTreeSet};

use http::Request;
use serde_json::{Value, json};

use crate::contract::Start;
use crate::{Reply, Transport};

/// The four task bases, as `u1` sees them.
const BASES: [&str; 4] = ["/api", "/api/v1", "/api/u1", "/api/v1/u1"];

/// The export's CSV header row, column by column.
const CSV_HEADER: [&str; 9] = [
    "id",
    "title",
    "description",
    "completed",
    "priority",
    "due_date",
    "created_at",
    "updated_at",
    "completed_at",
];

const NDJSON: &str = "application/x-ndjson";
const CSV: &str = "text/csv";

// ---------------------------------------------------------------- helpers

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A request as `user` with a body of `content_type` (none when `None`) and extra headers.
fn raw_request<T: Transport>(
    app: &T,
    method: &str,
    path: &str,
    user: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Request<Vec<u8>> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(u) = user {
        b = b.header("authorization", format!("Bearer {}", app.token(u)));
    }
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.to_vec()).expect("a valid request")
}

/// `GET /api/tasks/changes` as `user` after `since` (from the beginning when `None`), which
/// must be a 200 of the feed's shape.
fn changes<T: Transport>(app: &T, user: &str, since: Option<&str>, limit: Option<u32>) -> Reply {
    changes_at(app, "/api", user, since, limit)
}

/// [`changes`] under `base`.
fn changes_at<T: Transport>(
    app: &T,
    base: &str,
    user: &str,
    since: Option<&str>,
    limit: Option<u32>,
) -> Reply {
    let mut query = Vec::new();
    if let Some(s) = since {
        query.push(format!("since={}", encode(s)));
    }
    if let Some(l) = limit {
        query.push(format!("limit={l}"));
    }
    let mut path = format!("{base}/tasks/changes");
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let r = app.call("GET", &path, Some(user), None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.json);
    let data = r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a feed envelope: {}", r.json));
    for change in data {
        assert_change_shape(change);
    }
    assert!(
        r.json["meta"]["next"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "meta.next is always present: {}",
        r.json
    );
    assert!(r.json["meta"]["has_more"].is_boolean(), "{}", r.json);
    r
}

/// An upsert is `{kind, id, task}` with the task's id; a tombstone is `{kind, id,
/// deleted_at}`.
fn assert_change_shape(change: &Value) {
    let keys: Vec<&str> = change
        .as_object()
        .unwrap_or_else(|| panic!("a change object: {change}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert!(change["id"].is_i64(), "{change}");
    match change["kind"].as_str() {
        Some("upsert") => {
            assert_eq!(keys, ["id", "kind", "task"], "{change}");
            assert_eq!(change["task"]["id"], change["id"], "{change}");
        }
        Some("delete") => {
            assert_eq!(keys, ["deleted_at", "id", "kind"], "{change}");
            assert!(is_timestamp(&change["deleted_at"]), "{change}");
        }
        _ => panic!("a change of kind upsert or delete: {change}"),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as every timestamp of the contract.
fn is_timestamp(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let pattern = b"dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == pattern.len()
        && s.bytes().zip(pattern.iter()).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            p => c == *p,
        })
}

fn next_of(r: &Reply) -> String {
    r.json["meta"]["next"].as_str().unwrap().to_owned()
}

/// Every change to `user`'s tasks after `since`, following `has_more`, and the token after
/// the last.
fn drain<T: Transport>(
    app: &T,
    user: &str,
    since: Option<&str>,
    limit: Option<u32>,
) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    let mut since = since.map(str::to_owned);
    loop {
        let r = changes(app, user, since.as_deref(), limit);
        let page = r.json["data"].as_array().unwrap();
        if let Some(l) = limit {
            assert!(page.len() <= l as usize, "a page of {l}: {}", r.json);
        }
        all.extend(page.iter().cloned());
        since = Some(next_of(&r));
        if r.json["meta"]["has_more"] == false {
            return (all, since.unwrap());
        }
        assert!(!page.is_empty(), "has_more with an empty page: {}", r.json);
        assert!(all.len() < 100_000, "the feed does not end");
    }
}

fn up(id: i64) -> (String, i64) {
    ("upsert".to_owned(), id)
}

fn del(id: i64) -> (String, i64) {
    ("delete".to_owned(), id)
}

/// Each change as `(kind, id)`, in feed order.
fn kinds(changes: &[Value]) -> Vec<(String, i64)> {
    changes
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn get<T: Transport>(app: &T, user: &str, id: i64) -> Reply {
    app.call("GET", &format!("/api/tasks/{id}"), Some(user), None)
}

fn patch<T: Transport>(app: &T, user: &str, id: i64, body: Value) -> Reply {
    let r = app.call("PATCH", &format!("/api/tasks/{id}"), Some(user), Some(body));
    assert_eq!(r.status, 200, "PATCH {id}: {}", r.json);
    r
}

fn delete<T: Transport>(app: &T, user: &str, id: i64) {
    let r = app.call("DELETE", &format!("/api/tasks/{id}"), Some(user), None);
    assert_eq!(r.status, 204, "DELETE {id}: {}", r.json);
}

/// `tasks` in the order an export gives them: by `created_at` (RFC 3339 at a fixed width,
/// so the text sorts like the time), then by id.
fn in_creation_order(tasks: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut tasks: Vec<Value> = tasks.into_iter().collect();
    tasks.sort_by_key(|t| {
        (
            t["created_at"].as_str().unwrap_or("").to_owned(),
            t["id"].as_i64().unwrap_or(0),
        )
    });
    tasks
}

/// Every task of `user` by id, as the listing renders them.
fn tasks_of<T: Transport>(app: &T, user: &str) -> BTreeMap<i64, Value> {
    let r = app.list(user, "limit=100");
    assert_eq!(r.json["meta"]["next_cursor"], Value::Null, "one page");
    r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_i64().unwrap(), t.clone()))
        .collect()
}

/// The titles of `user`'s tasks, sorted.
fn titles_of<T: Transport>(app: &T, user: &str) -> Vec<String> {
    let mut titles: Vec<String> = tasks_of(app, user)
        .values()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

/// Tasks by title (titles are unique in these tests) without what an import assigns anew
/// (`id`, `user_id`).
fn contents_by_title(tasks: &BTreeMap<i64, Value>) -> BTreeMap<String, Value> {
    tasks
        .values()
        .map(|t| {
            let mut t = t.clone();
            let o = t.as_object_mut().unwrap();
            o.remove("id");
            o.remove("user_id");
            (t["title"].as_str().unwrap().to_owned(), t)
        })
        .collect()
}

/// A task of a title among `tasks`.
fn titled<'a>(tasks: &'a BTreeMap<i64, Value>, title: &str) -> &'a Value {
    tasks
        .values()
        .find(|t| t["title"] == title)
        .unwrap_or_else(|| panic!("a task titled {title:?} among {tasks:?}"))
}

/// `POST /api/tasks/batch` as `user` with these operations.
fn batch<T: Transport>(app: &T, user: &str, operations: Value) -> Reply {
    batch_at(app, "/api", user, operations)
}

fn batch_at<T: Transport>(app: &T, base: &str, user: &str, operations: Value) -> Reply {
    app.call(
        "POST",
        &format!("{base}/tasks/batch"),
        Some(user),
        Some(json!({ "operations": operations })),
    )
}

/// A successful batch's results, one per operation.
fn results(r: &Reply) -> &Vec<Value> {
    assert_eq!(r.status, 200, "the batch applied: {}", r.json);
    r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of results: {}", r.json))
}

/// The fields a problem names, sorted.
fn fields(r: &Reply) -> Vec<String> {
    let mut f: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
    f.sort();
    f
}

/// A problem without its `request_id` (which differs from one request to the next).
fn problem(r: &Reply) -> Value {
    let mut p = r.json.clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("request_id");
    }
    p
}

/// The media type of a `Content-Type` (no parameters), lower case.
fn media_type(r: &Reply) -> Option<String> {
    r.header("content-type")
        .map(|v| v.split(';').next().unwrap().trim().to_ascii_lowercase())
}

/// Sends `request` and returns its status and its body as text, whatever the body is.
///
/// [`Reply::new`] insists on a JSON body, which an NDJSON export of more than one task and
/// any CSV are not: it panics with a message that carries the status and the body
/// (debug-formatted), which is caught here and read back. Headers are lost that way, so the
/// export's `Content-Type` is checked where the body is JSON (one task) and on `HEAD`. Once
/// `Reply` keeps a body that is not JSON, this is `app.send(request)` and `r.text()`.
fn send_for_text<T: Transport>(app: &T, request: Request<Vec<u8>>) -> (u16, String) {
    let r = app.send(request);
    (r.status, r.text())
}

/// `GET /api/tasks/export` as `user` with `accept`: its status and body text.
fn export<T: Transport>(app: &T, user: &str, accept: Option<&str>) -> (u16, String) {
    export_at(app, "/api", user, accept)
}

fn export_at<T: Transport>(app: &T, base: &str, user: &str, accept: Option<&str>) -> (u16, String) {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    let path = format!("{base}/tasks/export");
    send_for_text(
        app,
        raw_request(app, "GET", &path, Some(user), None, b"", &headers),
    )
}

/// The tasks of an NDJSON export, line by line: every line one JSON object (the last one
/// may end with a newline).
fn ndjson_tasks(text: &str) -> Vec<Value> {
    if text.is_empty() {
        return Vec::new();
    }
    text.strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a JSON line ({e}): {line:?} in {text:?}"));
            assert!(v.is_object(), "one object per line: {line:?}");
            v
        })
        .collect()
}

/// `user`'s NDJSON export, which must be a 200.
fn exported_tasks<T: Transport>(app: &T, user: &str) -> Vec<Value> {
    let (status, text) = export(app, user, None);
    assert_eq!(status, 200, "{text}");
    ndjson_tasks(&text)
}

/// The records of a CSV text (RFC 4180; CRLF or LF between records).
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c != '"' {
                field.push(c);
            } else if chars.peek() == Some(&'"') {
                chars.next();
                field.push('"');
            } else {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            '"' => panic!("a quote inside an unquoted field: {text:?}"),
            ',' => {
                record.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                was_quoted = false;
            }
            c => {
                assert!(!was_quoted, "text after a closing quote: {text:?}");
                field.push(c);
            }
        }
    }
    assert!(!quoted, "an unterminated quoted field: {text:?}");
    if !field.is_empty() || !record.is_empty() || was_quoted {
        record.push(field);
        records.push(record);
    }
    records
}

/// `user`'s CSV export as records (the header first), which must be a 200.
fn exported_csv<T: Transport>(app: &T, user: &str) -> Vec<Vec<String>> {
    let (status, text) = export(app, user, Some(CSV));
    assert_eq!(status, 200, "{text}");
    csv_records(&text)
}

/// The CSV cells the export writes for `task`: `null` as an empty field.
fn csv_cells(task: &Value) -> Vec<String> {
    CSV_HEADER
        .iter()
        .map(|column| match &task[*column] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// One CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A CSV text of these rows (the header first), CRLF after each.
fn csv_text(rows: &[&[&str]]) -> String {
    rows.iter()
        .map(|row| {
            let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            format!("{}\r\n", fields.join(","))
        })
        .collect()
}

/// These records as NDJSON, one line each.
fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// `POST /api/tasks/import` as `user`.
fn import<T: Transport>(
    app: &T,
    user: &str,
    content_type: Option<&str>,
    body: &str,
    key: Option<&str>,
) -> Reply {
    import_at(app, "/api", user, content_type, body, key)
}

fn import_at<T: Transport>(
    app: &T,
    base: &str,
    user: &str,
    content_type: Option<&str>,
    body: &str,
    key: Option<&str>,
) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    let path = format!("{base}/tasks/import");
    app.send(raw_request(
        app,
        "POST",
        &path,
        Some(user),
        content_type,
        body.as_bytes(),
        &headers,
    ))
}

/// Tasks whose content differs in every way the formats must carry: commas, quotes,
/// newlines, tabs, a carriage return, non-ASCII text, nulls, dates, priorities, completion,
/// and an `updated_at` later than `created_at`.
fn varied_tasks<T: Transport>(app: &T, user: &str) {
    app.create(
        user,
        json!({"title": "Milk, \"oat\"", "description": "two\nlines, \"quoted\"\tand a tab",
               "priority": "high", "due_date": "2026-12-01"}),
    );
    app.create(user, json!({"title": "done", "completed": true}));
    let plain = app.create(user, json!({"title": "plain"})).id();
    app.create(
        user,
        json!({"title": "ünïcødé ✓", "priority": "low", "description": "crlf\r\nline"}),
    );
    app.let_time_pass(5);
    patch(
        app,
        user,
        plain,
        json!({"priority": "low", "due_date": "2027-02-28"}),
    );
}

// ---------------------------------------------------------------- the change feed

pub fn feed_without_since_returns_every_live_task_as_upserts<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app.create("u1", json!({"title": "a"})).id();
    let b = app.create("u1", json!({"title": "b"})).id();
    let c = app.create("u1", json!({"title": "c"})).id();
    patch(&app, "u1", a, json!({"title": "a2"}));
    delete(&app, "u1", b);
    let (all, _) = drain(&app, "u1", None, None);
    let upserts: Vec<&Value> = all.iter().filter(|x| x["kind"] == "upsert").collect();
    // In the order of each task's latest change: c's creation, then a's update.
    let ids: Vec<i64> = upserts.iter().map(|x| x["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [c, a]);
    for u in upserts {
        let id = u["id"].as_i64().unwrap();
        assert_eq!(u["task"], *get(&app, "u1", id).task(), "{id}");
    }
    // The deleted task is at most a tombstone (whether the beginning keeps it is the
    // service's choice), never an upsert.
    for x in all.iter().filter(|x| x["kind"] == "delete") {
        assert_eq!(x["id"], b, "{x}");
    }
}

pub fn feed_of_nothing_is_empty_with_a_next_token<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = changes(&app, "u1", None, None);
    assert_eq!(r.json["data"], json!([]));
    assert_eq!(r.json["meta"]["has_more"], false);
    assert_eq!(r.json["meta"]["limit"], 100);
    assert_eq!(r.header("content-type"), Some("application/json"));
    // The token from an empty feed picks up the first change.
    let id = app.create("u1", json!({"title": "first"})).id();
    let (later, _) = drain(&app, "u1", Some(&next_of(&r)), None);
    assert_eq!(kinds(&later), [up(id)]);
}

pub fn feed_after_delete_returns_a_tombstone<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app.create("u1", json!({"title": "a"}));
    let (_, since) = drain(&app, "u1", None, None);
    app.let_time_pass(5);
    delete(&app, "u1", a.id());
    // Created and deleted between two polls: its latest state is the deletion.
    let c = app.create("u1", json!({"title": "c"})).id();
    delete(&app, "u1", c);
    let after = app.create("u1", json!({"title": "after"}));
    let (later, _) = drain(&app, "u1", Some(&since), None);
    assert_eq!(kinds(&later), [del(a.id()), del(c), up(after.id())]);
    let deleted_at = later[0]["deleted_at"].as_str().unwrap();
    assert!(deleted_at > a.task()["updated_at"].as_str().unwrap());
    assert!(deleted_at <= after.task()["created_at"].as_str().unwrap());
}

pub fn feed_shows_a_task_changed_several_times_once_in_its_latest_state<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[]);
    let (_, since) = drain(&app, "u1", None, None);
    let a = app.create("u1", json!({"title": "a"})).id();
    patch(&app, "u1", a, json!({"title": "a2"}));
    patch(&app, "u1", a, json!({"description": "d"}));
    let r = app.call(
        "PATCH",
        &format!("/api/tasks/{a}/complete"),
        Some("u1"),
        None,
    );
    assert_eq!(r.status, 200);
    let b = app.create("u1", json!({"title": "b"})).id();
    let (later, _) = drain(&app, "u1", Some(&since), None);
    assert_eq!(kinds(&later), [up(a), up(b)]);
    assert_eq!(later[0]["task"], *get(&app, "u1", a).task());
    assert_eq!(later[0]["task"]["title"], "a2");
    assert_eq!(later[0]["task"]["completed"], true);
    // A later change moves it after b.
    patch(&app, "u1", a, json!({"title": "a3"}));
    let (later, _) = drain(&app, "u1", Some(&since), None);
    assert_eq!(kinds(&later), [up(b), up(a)]);
    assert_eq!(later[1]["task"]["title"], "a3");
}

pub fn feed_never_repeats_a_change_already_returned<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let ids: Vec<i64> = (0..3)
        .map(|i| app.create("u1", json!({"title": format!("t{i}")})).id())
        .collect();
    // Page by page, each change once.
    let (paged, since) = drain(&app, "u1", None, Some(1));
    assert_eq!(
        kinds(&paged),
        ids.iter().map(|&id| up(id)).collect::<Vec<_>>()
    );
    // Drained: nothing again, however often asked.
    let mut since = since;
    for _ in 0..2 {
        let r = changes(&app, "u1", Some(&since), None);
        assert_eq!(r.json["data"], json!([]));
        assert_eq!(r.json["meta"]["has_more"], false);
        since = next_of(&r);
    }
    let d = app.create("u1", json!({"title": "d"})).id();
    let (later, _) = drain(&app, "u1", Some(&since), None);
    assert_eq!(kinds(&later), [up(d)]);
}

pub fn feed_next_token_picks_up_only_later_changes<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app.create("u1", json!({"title": "a"})).id();
    let b = app.create("u1", json!({"title": "b"})).id();
    app.create("u1", json!({"title": "untouched"}));
    let (first, since) = drain(&app, "u1", None, None);
    assert_eq!(first.len(), 3);
    patch(&app, "u1", a, json!({"title": "a2"}));
    let c = app.create("u1", json!({"title": "c"})).id();
    delete(&app, "u1", b);
    let (later, _) = drain(&app, "u1", Some(&since), None);
    assert_eq!(kinds(&later), [up(a), up(c), del(b)]);
    assert_eq!(later[0]["task"]["title"], "a2");
    assert_eq!(later[1]["task"], *get(&app, "u1", c).task());
}

pub fn feed_limit_pages_with_has_more<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let ids: Vec<i64> = (0..5)
        .map(|i| app.create("u1", json!({"title": format!("t{i}")})).id())
        .collect();
    let mut since: Option<String> = None;
    let mut seen = Vec::new();
    for (len, more) in [(2, true), (2, true), (1, false)] {
        let r = changes(&app, "u1", since.as_deref(), Some(2));
        assert_eq!(r.json["data"].as_array().unwrap().len(), len, "{}", r.json);
        assert_eq!(r.json["meta"]["has_more"], more, "{}", r.json);
        assert_eq!(r.json["meta"]["limit"], 2);
        seen.extend(kinds(r.json["data"].as_array().unwrap()));
        since = Some(next_of(&r));
    }
    assert_eq!(seen, ids.iter().map(|&id| up(id)).collect::<Vec<_>>());
    // Exactly `limit` changes: nothing more is waiting.
    let r = changes(&app, "u1", None, Some(5));
    assert_eq!(r.json["data"].as_array().unwrap().len(), 5);
    assert_eq!(r.json["meta"]["has_more"], false);
    let r = changes(&app, "u1", None, None);
    assert_eq!(r.json["meta"]["limit"], 100);
}

pub fn feed_limit_outside_1_to_1000_is_400_naming_limit<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for limit in ["0", "1001", "-1", "abc", "1.5", ""] {
        let r = app.call(
            "GET",
            &format!("/api/tasks/changes?limit={limit}"),
            Some("u1"),
            None,
        );
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (400, json!("invalid_parameter")),
            "{limit:?}"
        );
        assert_eq!(fields(&r), ["limit"], "{limit:?}");
    }
    for limit in [1, 1000] {
        let r = changes(&app, "u1", None, Some(limit));
        assert_eq!(r.json["meta"]["limit"], limit);
    }
}

pub fn feed_with_a_forged_since_is_400_naming_since<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for i in 0..2 {
        app.create("u1", json!({"title": format!("t{i}")}));
    }
    // A listing cursor is a token this service issued, but not for the feed.
    let cursor = app.list("u1", "limit=1").json["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    for since in [
        "garbage".to_owned(),
        "not%20a%20token".to_owned(),
        "%00".to_owned(),
        String::new(),
        encode(&cursor),
    ] {
        let r = app.call(
            "GET",
            &format!("/api/tasks/changes?since={since}"),
            Some("u1"),
            None,
        );
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (400, json!("invalid_parameter")),
            "{since:?}"
        );
        assert_eq!(fields(&r), ["since"], "{since:?}");
    }
}

/// A token from one service: three changes to `u1`'s tasks, drained.
fn token_of_another_database<T: Transport>(start: Start<'_, T>) -> String {
    let first = start(&[]);
    for i in 0..3 {
        first.create("u1", json!({"title": format!("t{i}")}));
    }
    drain(&first, "u1", None, None).1
}

fn assert_sync_reset<T: Transport>(app: &T, since: &str) {
    let path = format!("/api/tasks/changes?since={}", encode(since));
    let r = app.call("GET", &path, Some("u1"), None);
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (410, json!("sync_reset")),
        "{}",
        r.json
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
}

pub fn feed_token_ahead_of_the_database_is_410_sync_reset<T: Transport>(start: Start<'_, T>) {
    let since = token_of_another_database(start);
    // Another service, with fewer changes than the token has seen.
    let other = start(&[]);
    assert_sync_reset(&other, &since);
    let id = other.create("u1", json!({"title": "o"})).id();
    assert_sync_reset(&other, &since);
    // Starting again without `since` works.
    let (all, _) = drain(&other, "u1", None, None);
    assert_eq!(kinds(&all), [up(id)]);
}

pub fn feed_token_from_another_database_is_410_sync_reset<T: Transport>(start: Start<'_, T>) {
    let since = token_of_another_database(start);
    // Another service that has made more changes than the token has seen: a restore or a
    // move, which the token must tell apart from this database's own.
    let other = start(&[]);
    for i in 0..5 {
        other.create("u1", json!({"title": format!("o{i}")}));
    }
    assert_sync_reset(&other, &since);
}

pub fn feed_is_scoped_to_the_token_user<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let mine = app.create("u1", json!({"title": "mine"})).id();
    let theirs = app.create("u2", json!({"title": "theirs"})).id();
    patch(&app, "u2", theirs, json!({"title": "theirs2"}));
    let (all, since) = drain(&app, "u1", None, None);
    assert_eq!(kinds(&all), [up(mine)]);
    let (_, their_since) = drain(&app, "u2", None, None);
    let gone = app.create("u2", json!({"title": "gone"})).id();
    delete(&app, "u2", gone);
    delete(&app, "u2", theirs);
    let (later, _) = drain(&app, "u1", Some(&since), None);
    assert_eq!(later, Vec::<Value>::new());
    // Another user's token tells nothing about that user's tasks.
    let r = app.call(
        "GET",
        &format!("/api/tasks/changes?since={}", encode(&their_since)),
        Some("u1"),
        None,
    );
    assert!(matches!(r.status, 200 | 400 | 410), "{}", r.status);
    let text = r.text();
    for id in [theirs, gone] {
        assert!(!text.contains(&id.to_string()), "{text}");
    }
}

pub fn feed_under_every_base<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let id = app.create("u1", json!({"title": "a"})).id();
    let task = get(&app, "u1", id).task().clone();
    for base in BASES {
        let r = changes_at(&app, base, "u1", None, None);
        assert_eq!(
            kinds(r.json["data"].as_array().unwrap()),
            [up(id)],
            "{base}"
        );
        assert_eq!(r.json["data"][0]["task"], task, "{base}");
        // The token works under any base.
        let r = changes(&app, "u1", Some(&next_of(&r)), None);
        assert_eq!(r.json["data"], json!([]), "{base}");
    }
}

pub fn feed_shows_cleared_completed_tasks_as_tombstones<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app
        .create("u1", json!({"title": "a", "completed": true}))
        .id();
    app.create("u1", json!({"title": "b"}));
    let c = app
        .create("u1", json!({"title": "c", "completed": true}))
        .id();
    let (_, since) = drain(&app, "u1", None, None);
    let r = app.call("DELETE", "/api/tasks?status=completed", Some("u1"), None);
    assert_eq!(r.json["data"]["deleted"], 2);
    let (later, _) = drain(&app, "u1", Some(&since), None);
    let got: BTreeSet<(String, i64)> = kinds(&later).into_iter().collect();
    assert_eq!(got, BTreeSet::from([del(a), del(c)]));
    assert_eq!(later.len(), 2);
}

pub fn feed_replica_equals_the_listing_once_drained<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let mut replica: BTreeMap<i64, Value> = BTreeMap::new();
    let mut since: Option<String> = None;
    for round in 0..4 {
        for i in 0..4 {
            app.create(
                "u1",
                json!({"title": format!("r{round}-{i}"), "completed": i == 0}),
            );
        }
        let live: Vec<i64> = tasks_of(&app, "u1").into_keys().collect();
        patch(
            &app,
            "u1",
            live[0],
            json!({"description": format!("round {round}")}),
        );
        let r = app.call(
            "PATCH",
            &format!("/api/tasks/{}/complete", live[1]),
            Some("u1"),
            None,
        );
        assert_eq!(r.status, 200);
        delete(&app, "u1", live[2]);
        let r = batch(
            &app,
            "u1",
            json!([
                {"op": "create", "task": {"title": format!("r{round}-batch")}},
                {"op": "update", "id": live[3], "task": {"priority": "high"}},
            ]),
        );
        results(&r);
        if round == 1 {
            app.call("DELETE", "/api/tasks?status=completed", Some("u1"), None);
        }
        // Apply the feed, three changes at a time.
        let (page, next) = drain(&app, "u1", since.as_deref(), Some(3));
        for change in page {
            let id = change["id"].as_i64().unwrap();
            if change["kind"] == "upsert" {
                replica.insert(id, change["task"].clone());
            } else {
                replica.remove(&id);
            }
        }
        since = Some(next);
        assert_eq!(replica, tasks_of(&app, "u1"), "round {round}");
    }
}

// ---------------------------------------------------------------- batches

pub fn batch_applies_every_operation_in_order<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app.create("u1", json!({"title": "a"})).id();
    let b = app.create("u1", json!({"title": "b"})).id();
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "create", "task": {"title": "c", "priority": "high"}},
            {"op": "update", "id": a, "task": {"title": "a1"}},
            {"op": "update", "id": a, "task": {"title": "a2", "completed": true}},
            {"op": "delete", "id": b},
        ]),
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let res = results(&r);
    let summary: Vec<(Value, Value)> = res
        .iter()
        .map(|x| (x["op"].clone(), x["status"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("create"), json!(201)),
            (json!("update"), json!(200)),
            (json!("update"), json!(200)),
            (json!("delete"), json!(204)),
        ]
    );
    let c = &res[0]["task"];
    assert_eq!(
        (
            c["title"].clone(),
            c["priority"].clone(),
            c["user_id"].clone()
        ),
        (json!("c"), json!("high"), json!("u1"))
    );
    assert_eq!(c["completed"], false);
    assert_ne!(res[0]["replayed"], true);
    // Each result is the task after its own operation.
    assert_eq!(res[1]["task"]["title"], "a1");
    assert_eq!(res[1]["task"]["completed"], false);
    assert_eq!(res[2]["task"]["title"], "a2");
    assert_eq!(res[2]["task"]["completed"], true);
    assert_eq!(res[2]["task"]["completed_at"], res[2]["task"]["updated_at"]);
    let keys: Vec<&String> = res[3].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "op", "status"]);
    assert_eq!(res[3]["id"], b);
    // The service holds what the results say.
    let cid = c["id"].as_i64().unwrap();
    let now = tasks_of(&app, "u1");
    assert_eq!(
        now.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([a, cid])
    );
    assert_eq!(now[&a], res[2]["task"]);
    assert_eq!(now[&cid], *c);
    assert_eq!(get(&app, "u1", b).status, 404);
}

pub fn batch_with_a_stale_if_match_applies_nothing_and_names_the_index<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[]);
    let a = app.create("u1", json!({"title": "a"}));
    let b = app.create("u1", json!({"title": "b"}));
    let stale = b.header("etag").unwrap().to_owned();
    patch(&app, "u1", b.id(), json!({"title": "b2"}));
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "update", "id": a.id(), "task": {"title": "changed"}},
            {"op": "create", "task": {"title": "new"}},
            {"op": "delete", "id": b.id(), "if_match": stale},
        ]),
    );
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (412, json!("precondition_failed")),
        "{}",
        r.json
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        (r.json["index"].clone(), r.json["op"].clone()),
        (json!(2), json!("delete"))
    );
    // Nothing before the failure applied either.
    let now = get(&app, "u1", a.id());
    assert_eq!(now.task(), a.task());
    assert_eq!(now.header("etag"), a.header("etag"));
    assert_eq!(get(&app, "u1", b.id()).task()["title"], "b2");
    assert_eq!(titles_of(&app, "u1"), ["a", "b2"]);
}

pub fn batch_naming_another_users_task_is_404_and_applies_nothing<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[]);
    let theirs = app.create("u2", json!({"title": "secret"}));
    let id = theirs.id();
    let etag = theirs.header("etag").unwrap().to_owned();
    let mine = app.create("u1", json!({"title": "mine"})).id();
    let mut problems = Vec::new();
    for (op, target) in [
        (
            json!({"op": "update", "id": id, "task": {"title": "pwned"}}),
            "theirs",
        ),
        (
            json!({"op": "update", "id": id, "task": {"title": "pwned"}, "if_match": etag}),
            "theirs",
        ),
        (json!({"op": "delete", "id": id}), "theirs"),
        (
            json!({"op": "delete", "id": id, "if_match": etag}),
            "theirs",
        ),
        (
            json!({"op": "update", "id": 12345, "task": {"title": "pwned"}}),
            "nobody's",
        ),
        (json!({"op": "delete", "id": 12345}), "nobody's"),
    ] {
        let name = op["op"].clone();
        let r = batch(
            &app,
            "u1",
            json!([
                {"op": "create", "task": {"title": "new"}},
                {"op": "update", "id": mine, "task": {"title": "changed"}},
                op,
            ]),
        );
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (404, json!("not_found")),
            "{target}: {}",
            r.json
        );
        assert_eq!(
            (r.json["index"].clone(), r.json["op"].clone()),
            (json!(2), name)
        );
        assert!(!r.text().contains("secret"));
        problems.push((r.json["op"].clone(), problem(&r)));
    }
    // Another user's task and no task at all are the same answer.
    for (op, p) in &problems {
        let same = problems.iter().find(|(o, _)| o == op).unwrap();
        assert_eq!(p, &same.1, "{op}");
    }
    assert_eq!(titles_of(&app, "u1"), ["mine"]);
    assert_eq!(get(&app, "u2", id).task(), theirs.task());
}

pub fn batch_validation_lists_every_problem_with_paths<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app.create("u1", json!({"title": "a"})).id();
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "create", "task": {"title": "  "}},
            {"op": "frobnicate", "id": a},
            {"op": "update", "id": a, "task": {"title": "ok"}, "if_match": "v1"},
            {"op": "update", "id": a, "task": {"priority": "urgent"}},
            {"op": "delete"},
            {"op": "create", "task": {"title": "fine"}},
        ]),
    );
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (422, json!("validation_failed")),
        "{}",
        r.json
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(
        fields(&r),
        [
            "operations[0].task.title",
            "operations[1].op",
            "operations[2].if_match",
            "operations[3].task.priority",
            "operations[4].id",
        ]
    );
    let errors = r.field_errors();
    assert!(errors.contains(&("operations[0].task.title".into(), "blank".into())));
    assert!(errors.contains(&("operations[3].task.priority".into(), "invalid_value".into())));
    assert_eq!(titles_of(&app, "u1"), ["a"]);
}

pub fn batch_validation_comes_before_any_operation_is_tried<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    // The first operation would be a 404, but the second is malformed: nothing is tried.
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "delete", "id": 12345},
            {"op": "create", "task": {"description": "no title"}},
        ]),
    );
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(
        r.field_errors(),
        [("operations[1].task.title".to_owned(), "required".to_owned())]
    );
    assert_eq!(r.json.get("index"), None);
}

pub fn batch_over_100_operations_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let ops: Vec<Value> = (0..101)
        .map(|i| json!({"op": "create", "task": {"title": format!("t{i}")}}))
        .collect();
    let r = batch(&app, "u1", json!(ops));
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (422, json!("validation_failed")),
        "{}",
        r.json
    );
    assert_eq!(fields(&r), ["operations"]);
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
    // 100 is allowed.
    let r = batch(&app, "u1", json!(ops[..100]));
    assert_eq!(results(&r).len(), 100);
    assert_eq!(app.list("u1", "").json["meta"]["total"], 100);
}

pub fn batch_empty_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for body in [
        json!({"operations": []}),
        json!({}),
        json!({"operations": {"op": "create", "task": {"title": "x"}}}),
        json!({"operations": null}),
    ] {
        let r = app.call("POST", "/api/tasks/batch", Some("u1"), Some(body.clone()));
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (422, json!("validation_failed")),
            "{body}"
        );
        assert_eq!(fields(&r), ["operations"], "{body}");
    }
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

pub fn batch_body_is_json_of_at_most_64_kib<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let body = br#"{"operations":[{"op":"create","task":{"title":"x"}}]}"#;
    let r = app.send(raw_request(
        &app,
        "POST",
        "/api/tasks/batch",
        Some("u1"),
        Some("text/plain"),
        body,
        &[],
    ));
    assert_eq!(r.status, 415);
    for bad in [&b"{\"operations\":"[..], b"[1,2]", b""] {
        let r = app.send(raw_request(
            &app,
            "POST",
            "/api/tasks/batch",
            Some("u1"),
            Some("application/json"),
            bad,
            &[],
        ));
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (400, json!("malformed_body")),
            "{bad:?}"
        );
    }
    let big = "d".repeat(70_000);
    let r = batch(
        &app,
        "u1",
        json!([{"op": "create", "task": {"title": "x", "description": big}}]),
    );
    assert_eq!(r.status, 413);
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

pub fn batch_create_with_idempotency_key_replays<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let op = json!({"op": "create", "task": {"title": "pay rent"}, "idempotency_key": "k-1"});
    let first = batch(&app, "u1", json!([op.clone()]));
    let first = results(&first)[0].clone();
    assert_eq!(first["status"], 201);
    assert_ne!(first["replayed"], true);
    let again = batch(
        &app,
        "u1",
        json!([op, {"op": "create", "task": {"title": "extra"}}]),
    );
    let again = results(&again);
    assert_eq!(again[0]["status"], 201);
    assert_eq!(again[0]["replayed"], true);
    assert_eq!(again[0]["task"], first["task"]);
    assert_eq!(again[1]["status"], 201);
    assert_ne!(again[1]["replayed"], true);
    assert_eq!(titles_of(&app, "u1"), ["extra", "pay rent"]);
}

pub fn batch_create_reusing_a_key_with_another_body_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = batch(
        &app,
        "u1",
        json!([{"op": "create", "task": {"title": "a"}, "idempotency_key": "k"}]),
    );
    results(&r);
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "create", "task": {"title": "other"}},
            {"op": "create", "task": {"title": "b"}, "idempotency_key": "k"},
        ]),
    );
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (422, json!("idempotency_key_reused")),
        "{}",
        r.json
    );
    assert_eq!(
        (r.json["index"].clone(), r.json["op"].clone()),
        (json!(1), json!("create"))
    );
    assert_eq!(titles_of(&app, "u1"), ["a"]);
    // Keys are per user: another user's same key is no reuse.
    let r = batch(
        &app,
        "u2",
        json!([{"op": "create", "task": {"title": "b"}, "idempotency_key": "k"}]),
    );
    assert_eq!(results(&r)[0]["task"]["user_id"], "u2");
}

pub fn batch_with_an_invalid_idempotency_key_is_422_naming_it<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "k\t1"] {
        let r = batch(
            &app,
            "u1",
            json!([{"op": "create", "task": {"title": "a"}, "idempotency_key": key}]),
        );
        assert_eq!(r.status, 422, "{key:.10}: {}", r.json);
        assert_eq!(fields(&r), ["operations[0].idempotency_key"], "{key:.10}");
    }
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

pub fn batch_unknown_op_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for op in [
        json!({"op": "upsert", "task": {"title": "x"}}),
        json!({"task": {"title": "x"}}),
        json!({"op": 5, "task": {"title": "x"}}),
        json!({"op": "CREATE", "task": {"title": "x"}}),
    ] {
        let r = batch(&app, "u1", json!([op.clone()]));
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (422, json!("validation_failed")),
            "{op}"
        );
        assert_eq!(fields(&r), ["operations[0].op"], "{op}");
    }
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

pub fn batch_update_with_unknown_field_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let a = app.create("u1", json!({"title": "a"})).id();
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "update", "id": a, "task": {"title": "b"}},
            {"op": "update", "id": a, "task": {"colour": "red"}},
        ]),
    );
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(
        r.field_errors(),
        [(
            "operations[1].task.colour".to_owned(),
            "unknown_field".to_owned()
        )]
    );
    // Server-owned fields are ignored, as on PATCH: the same update without them applies.
    let r = batch(
        &app,
        "u1",
        json!([{"op": "update", "id": a, "task": {"title": "b", "id": 5, "created_at": "x"}}]),
    );
    assert_eq!(results(&r)[0]["task"]["id"], a);
    assert_eq!(get(&app, "u1", a).task()["title"], "b");
}

pub fn batch_result_tasks_carry_new_versions<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let id = c.id();
    let e1 = c.header("etag").unwrap().to_owned();
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "update", "id": id, "task": {"title": "b"}, "if_match": e1},
            {"op": "create", "task": {"title": "new"}},
        ]),
    );
    let res = results(&r).clone();
    let now = get(&app, "u1", id);
    assert_eq!(now.task(), &res[0]["task"]);
    let e2 = now.header("etag").unwrap().to_owned();
    assert_eq!(e2, "\"v2\"");
    let created = get(&app, "u1", res[1]["task"]["id"].as_i64().unwrap());
    assert_eq!(created.task(), &res[1]["task"]);
    assert_eq!(created.header("etag"), Some("\"v1\""));
    // The old tag is stale in a batch as on PATCH; the new one is current.
    let r = batch(
        &app,
        "u1",
        json!([{"op": "update", "id": id, "task": {"title": "c"}, "if_match": e1}]),
    );
    assert_eq!(
        (r.status, r.json["index"].clone()),
        (412, json!(0)),
        "{}",
        r.json
    );
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "update", "id": id, "task": {"title": "c"}, "if_match": e2},
            {"op": "update", "id": id, "task": {"title": "d"}},
        ]),
    );
    assert_eq!(results(&r)[1]["task"]["title"], "d");
    // Two updates, two versions.
    let now = get(&app, "u1", id);
    assert_eq!(now.header("etag"), Some("\"v4\""));
    let r = batch(
        &app,
        "u1",
        json!([{"op": "delete", "id": id, "if_match": now.header("etag").unwrap()}]),
    );
    assert_eq!(results(&r)[0]["status"], 204);
    assert_eq!(get(&app, "u1", id).status, 404);
}

pub fn batch_if_match_takes_the_header_syntax<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let c = app.create("u1", json!({"title": "a"}));
    let id = c.id();
    let e1 = c.header("etag").unwrap().to_owned();
    let update = |title: &str, if_match: &str| {
        batch(
            &app,
            "u1",
            json!([{"op": "update", "id": id, "task": {"title": title}, "if_match": if_match}]),
        )
    };
    let r = update("b", "*");
    assert_eq!(results(&r)[0]["task"]["title"], "b");
    let e2 = get(&app, "u1", id).header("etag").unwrap().to_owned();
    // A list matches when any of its tags is current.
    let r = update("c", &format!("{e1}, {e2}"));
    assert_eq!(results(&r)[0]["task"]["title"], "c");
    let r = update("d", &format!("{e1}, {e2}"));
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (412, json!("precondition_failed")),
        "{}",
        r.json
    );
    // Weak tags never match.
    let e3 = get(&app, "u1", id).header("etag").unwrap().to_owned();
    let r = update("d", &format!("W/{e3}"));
    assert_eq!(r.status, 412, "{}", r.json);
    assert_eq!(get(&app, "u1", id).task()["title"], "c");
}

pub fn batch_changes_share_one_position_in_the_feed<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let x = app.create("u1", json!({"title": "x"})).id();
    let y = app.create("u1", json!({"title": "y"})).id();
    let (_, since) = drain(&app, "u1", None, None);
    let before = app.create("u1", json!({"title": "before"})).id();
    let r = batch(
        &app,
        "u1",
        json!([
            {"op": "create", "task": {"title": "p"}},
            {"op": "update", "id": x, "task": {"title": "x2"}},
            {"op": "delete", "id": y},
        ]),
    );
    let p = results(&r)[0]["task"]["id"].as_i64().unwrap();
    let after = app.create("u1", json!({"title": "after"})).id();
    let (later, _) = drain(&app, "u1", Some(&since), None);
    let k = kinds(&later);
    assert_eq!(k.len(), 5, "{later:?}");
    assert_eq!((k[0].clone(), k[4].clone()), (up(before), up(after)));
    // Among themselves, the batch's changes have no order.
    let middle: BTreeSet<(String, i64)> = k[1..4].iter().cloned().collect();
    assert_eq!(middle, BTreeSet::from([up(p), up(x), del(y)]));
}

// ---------------------------------------------------------------- export

pub fn export_streams_ndjson_one_task_per_line<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    varied_tasks(&app, "u1");
    // In creation order, as the other routes render them.
    let expected = in_creation_order(tasks_of(&app, "u1").into_values());
    assert_eq!(expected.len(), 4);
    for accept in [None, Some("*/*"), Some(NDJSON)] {
        let (status, text) = export(&app, "u1", accept);
        assert_eq!(status, 200, "{accept:?}: {text}");
        assert_eq!(
            text.matches('\n').count(),
            4,
            "{accept:?}: one line each: {text:?}"
        );
        assert_eq!(ndjson_tasks(&text), expected, "{accept:?}");
    }
}

pub fn export_csv_with_accept_text_csv<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    varied_tasks(&app, "u1");
    let (status, text) = export(&app, "u1", Some(CSV));
    assert_eq!(status, 200, "{text}");
    let header = CSV_HEADER.join(",");
    assert!(
        text.starts_with(&format!("{header}\r\n")) || text.starts_with(&format!("{header}\n")),
        "{text:?}"
    );
    let records = csv_records(&text);
    assert_eq!(records[0], CSV_HEADER);
    // A row per task in creation order; commas, quotes and newlines quoted, nulls empty.
    let rows: Vec<Vec<String>> = in_creation_order(tasks_of(&app, "u1").into_values())
        .iter()
        .map(csv_cells)
        .collect();
    assert_eq!(records[1..], rows[..]);
}

pub fn export_content_type_follows_accept<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let task = app.create("u1", json!({"title": "only"})).task().clone();
    // One task is one NDJSON line: the task as the other routes render it.
    for accept in [None, Some("*/*"), Some(NDJSON)] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let r = app.call_with("GET", "/api/tasks/export", Some("u1"), None, &headers);
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(media_type(&r).as_deref(), Some(NDJSON), "{accept:?}");
        assert_eq!(
            ndjson_tasks(&r.text()),
            std::slice::from_ref(&task),
            "{accept:?}"
        );
    }
    for (accept, media) in [(None, NDJSON), (Some(NDJSON), NDJSON), (Some(CSV), CSV)] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let r = app.call_with("HEAD", "/api/tasks/export", Some("u1"), None, &headers);
        assert_eq!(r.status, 200, "HEAD {accept:?}");
        assert_eq!(media_type(&r).as_deref(), Some(media), "HEAD {accept:?}");
        assert!(r.raw.body().is_empty());
    }
}

pub fn export_with_unacceptable_accept_is_406<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    app.create("u1", json!({"title": "x"}));
    for accept in [
        "application/json",
        "text/html",
        "application/xml",
        "text/plain",
    ] {
        let r = app.call_with(
            "GET",
            "/api/tasks/export",
            Some("u1"),
            None,
            &[("accept", accept)],
        );
        assert_eq!(
            (r.status, r.json["code"].clone()),
            (406, json!("not_acceptable")),
            "{accept}"
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{accept}"
        );
    }
}

pub fn export_is_scoped_to_the_token_user<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    for i in 0..2 {
        app.create("u1", json!({"title": format!("m{i}")}));
    }
    let mine: Vec<i64> = in_creation_order(tasks_of(&app, "u1").into_values())
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    for i in 0..3 {
        app.create("u2", json!({"title": format!("t{i}")}));
    }
    let lines = exported_tasks(&app, "u1");
    let ids: Vec<i64> = lines.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, mine);
    assert!(lines.iter().all(|t| t["user_id"] == "u1"));
    let records = exported_csv(&app, "u1");
    let ids: Vec<i64> = records[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(ids, mine);
}

pub fn export_of_no_tasks_is_empty<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    app.create("u2", json!({"title": "theirs"}));
    let (status, text) = export(&app, "u1", None);
    assert_eq!((status, text.trim()), (200, ""));
    assert_eq!(exported_csv(&app, "u1"), [CSV_HEADER]);
}

// ---------------------------------------------------------------- import

pub fn import_ndjson_creates_tasks_keeping_times_and_new_ids<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let before = app.create("u1", json!({"title": "before"})).task().clone();
    let body = format!(
        "\n{}\n\n{}",
        json!({"id": 999, "user_id": "u2", "version": 7, "title": "  kept  ",
               "description": "d", "priority": "high", "due_date": "2026-12-01",
               "completed": true, "created_at": "2020-01-02T03:04:05.678Z",
               "updated_at": "2020-03-01T00:00:00.000Z",
               "completed_at": "2020-02-01T00:00:00.000Z"}),
        ndjson(&[json!({"title": "bare"})]),
    );
    let r = import(&app, "u1", Some(NDJSON), &body, None);
    assert_eq!(
        (r.status, r.json.clone()),
        (201, json!({"data": {"imported": 2}}))
    );
    let after = app.create("u1", json!({"title": "after"})).task().clone();
    let tasks = tasks_of(&app, "u1");
    assert_eq!(tasks.len(), 4);
    let kept = titled(&tasks, "kept");
    assert_ne!(kept["id"], 999);
    assert_eq!(kept["user_id"], "u1");
    for (field, value) in [
        ("description", json!("d")),
        ("priority", json!("high")),
        ("due_date", json!("2026-12-01")),
        ("completed", json!(true)),
        ("created_at", json!("2020-01-02T03:04:05.678Z")),
        ("updated_at", json!("2020-03-01T00:00:00.000Z")),
        ("completed_at", json!("2020-02-01T00:00:00.000Z")),
    ] {
        assert_eq!(kept[field], value, "{field}");
    }
    let bare = titled(&tasks, "bare");
    assert_eq!(
        (
            bare["priority"].clone(),
            bare["completed"].clone(),
            bare["description"].clone(),
            bare["due_date"].clone(),
            bare["completed_at"].clone(),
        ),
        (
            json!("medium"),
            json!(false),
            Value::Null,
            Value::Null,
            Value::Null
        )
    );
    // Created now, between the tasks made before and after.
    let created = bare["created_at"].as_str().unwrap();
    assert!(created >= before["created_at"].as_str().unwrap());
    assert!(created <= after["created_at"].as_str().unwrap());
    assert_eq!(bare["updated_at"], bare["created_at"]);
    assert_ne!(kept["id"], bare["id"]);
    // An imported task is a task like any other.
    let id = kept["id"].as_i64().unwrap();
    assert_eq!(get(&app, "u1", id).task(), kept);
}

pub fn import_fills_in_updated_at_and_completed_at<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let jan = "2020-01-01T00:00:00.000Z";
    let may = "2020-05-01T00:00:00.000Z";
    let jun = "2020-06-01T00:00:00.000Z";
    let body = ndjson(&[
        json!({"title": "completed later", "created_at": jan, "completed": true, "completed_at": jun}),
        json!({"title": "pending", "created_at": jan}),
        json!({"title": "completed, updated", "completed": true, "created_at": jan, "updated_at": may}),
        json!({"title": "completed, no times", "completed": true, "created_at": jan}),
        json!({"title": "completed now", "completed": true}),
    ]);
    let r = import(&app, "u1", Some(NDJSON), &body, None);
    assert_eq!(r.status, 201, "{}", r.json);
    let tasks = tasks_of(&app, "u1");
    let times = |title: &str| {
        let t = titled(&tasks, title);
        (
            t["updated_at"].as_str().unwrap().to_owned(),
            t["completed_at"].as_str().map(str::to_owned),
        )
    };
    // `updated_at` defaults to the latest of `created_at` and `completed_at`.
    assert_eq!(times("completed later"), (jun.into(), Some(jun.into())));
    assert_eq!(times("pending"), (jan.into(), None));
    // A completed task without `completed_at` gets its `updated_at`.
    assert_eq!(times("completed, updated"), (may.into(), Some(may.into())));
    assert_eq!(times("completed, no times"), (jan.into(), Some(jan.into())));
    let now = titled(&tasks, "completed now");
    assert_eq!(now["updated_at"], now["created_at"]);
    assert_eq!(now["completed_at"], now["created_at"]);
    assert!(is_timestamp(&now["created_at"]));
}

pub fn import_reads_any_rfc3339_time_and_renders_it_in_utc<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let body = ndjson(&[
        json!({"title": "offset", "created_at": "2020-01-02T03:04:05+02:00"}),
        json!({"title": "seconds", "created_at": "2020-01-02T03:04:05Z"}),
    ]);
    let r = import(&app, "u1", Some(NDJSON), &body, None);
    assert_eq!(r.status, 201, "{}", r.json);
    let tasks = tasks_of(&app, "u1");
    assert_eq!(
        titled(&tasks, "offset")["created_at"],
        "2020-01-02T01:04:05.000Z"
    );
    assert_eq!(
        titled(&tasks, "seconds")["created_at"],
        "2020-01-02T03:04:05.000Z"
    );
}

pub fn import_csv_creates_tasks<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let before = app.create("u1", json!({"title": "before"})).task().clone();
    // Columns in any order, a subset of them; quoted fields with commas, quotes, newlines.
    let body = csv_text(&[
        &[
            "priority",
            "title",
            "completed",
            "description",
            "due_date",
            "created_at",
        ],
        &[
            "high",
            "Milk, \"oat\"",
            "true",
            "two\nlines",
            "2026-12-01",
            "2020-01-02T03:04:05.678Z",
        ],
        &["low", "plain", "false", "", "", ""],
    ]);
    let r = import(&app, "u1", Some(CSV), &body, None);
    assert_eq!(
        (r.status, r.json.clone()),
        (201, json!({"data": {"imported": 2}}))
    );
    let tasks = tasks_of(&app, "u1");
    assert_eq!(tasks.len(), 3);
    let milk = titled(&tasks, "Milk, \"oat\"");
    assert_eq!(milk["priority"], "high");
    assert_eq!(milk["completed"], true);
    assert_eq!(milk["description"], "two\nlines");
    assert_eq!(milk["due_date"], "2026-12-01");
    assert_eq!(milk["created_at"], "2020-01-02T03:04:05.678Z");
    assert_eq!(milk["updated_at"], milk["created_at"]);
    assert_eq!(milk["completed_at"], milk["updated_at"]);
    let plain = titled(&tasks, "plain");
    assert_eq!(
        (
            plain["priority"].clone(),
            plain["completed"].clone(),
            plain["description"].clone(),
            plain["due_date"].clone(),
            plain["completed_at"].clone(),
        ),
        (
            json!("low"),
            json!(false),
            Value::Null,
            Value::Null,
            Value::Null
        )
    );
    // An empty `created_at` is none: now.
    assert!(plain["created_at"].as_str().unwrap() >= before["created_at"].as_str().unwrap());
}

pub fn import_of_an_export_round_trips<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    varied_tasks(&app, "u1");
    let (status, text) = export(&app, "u1", Some(NDJSON));
    assert_eq!(status, 200);
    let r = import(&app, "u2", Some(NDJSON), &text, None);
    assert_eq!(
        (r.status, r.json.clone()),
        (201, json!({"data": {"imported": 4}}))
    );
    let mine = tasks_of(&app, "u1");
    let theirs = tasks_of(&app, "u2");
    assert_eq!(contents_by_title(&theirs), contents_by_title(&mine));
    assert!(theirs.keys().all(|id| !mine.contains_key(id)), "new ids");
    assert!(theirs.values().all(|t| t["user_id"] == "u2"));
}

pub fn import_of_a_csv_export_round_trips<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    varied_tasks(&app, "u1");
    let (status, text) = export(&app, "u1", Some(CSV));
    assert_eq!(status, 200);
    let r = import(&app, "u2", Some(CSV), &text, None);
    assert_eq!(
        (r.status, r.json.clone()),
        (201, json!({"data": {"imported": 4}}))
    );
    let mine = tasks_of(&app, "u1");
    let theirs = tasks_of(&app, "u2");
    assert_eq!(contents_by_title(&theirs), contents_by_title(&mine));
    assert!(theirs.keys().all(|id| !mine.contains_key(id)), "new ids");
}

pub fn import_with_a_bad_record_imports_nothing_and_names_records_i<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[]);
    // Blank lines are not records: they are not counted.
    let body = format!(
        "\n{}\n{}\n\n{}",
        json!({"title": "ok"}),
        json!({"description": "no title"}),
        ndjson(&[
            json!({"title": "bad priority", "priority": "urgent"}),
            json!({"title": "unknown field", "colour": "red"}),
            json!({"title": "also ok"}),
        ]),
    );
    let r = import(&app, "u1", Some(NDJSON), &body, None);
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (422, json!("validation_failed")),
        "{}",
        r.json
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let mut errors = r.field_errors();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("records[1].title".to_owned(), "required".to_owned()),
            ("records[2].priority".to_owned(), "invalid_value".to_owned()),
            ("records[3].colour".to_owned(), "unknown_field".to_owned()),
        ]
    );
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

pub fn import_csv_bad_row_is_named_without_counting_the_header<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let body = csv_text(&[
        &["title", "priority", "completed"],
        &["ok", "low", "false"],
        &["bad priority", "urgent", "false"],
        &["bad completed", "high", "yes"],
    ]);
    let r = import(&app, "u1", Some(CSV), &body, None);
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (422, json!("validation_failed")),
        "{}",
        r.json
    );
    assert_eq!(fields(&r), ["records[1].priority", "records[2].completed"]);
    // An unknown column is refused too.
    let body = csv_text(&[&["title", "colour"], &["x", "red"]]);
    let r = import(&app, "u1", Some(CSV), &body, None);
    assert_eq!(r.status, 422, "{}", r.json);
    assert!(r.text().contains("colour"), "{}", r.json);
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

pub fn import_with_idempotency_key_replays_without_importing_again<T: Transport>(
    start: Start<'_, T>,
) {
    let app = start(&[]);
    let body = ndjson(&[json!({"title": "a"}), json!({"title": "b"})]);
    let first = import(&app, "u1", Some(NDJSON), &body, Some("imp-1"));
    assert_eq!(
        (first.status, first.json.clone()),
        (201, json!({"data": {"imported": 2}}))
    );
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = import(&app, "u1", Some(NDJSON), &body, Some("imp-1"));
    assert_eq!(
        (again.status, again.json.clone()),
        (201, first.json.clone())
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(titles_of(&app, "u1"), ["a", "b"]);
    // Without the key, the same body imports again.
    let r = import(&app, "u1", Some(NDJSON), &body, None);
    assert_eq!(r.status, 201);
    assert_eq!(app.list("u1", "").json["meta"]["total"], 4);
}

pub fn import_key_reused_with_another_body_is_422<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let r = import(
        &app,
        "u1",
        Some(NDJSON),
        &ndjson(&[json!({"title": "a"})]),
        Some("k"),
    );
    assert_eq!(r.status, 201);
    let r = import(
        &app,
        "u1",
        Some(NDJSON),
        &ndjson(&[json!({"title": "b"})]),
        Some("k"),
    );
    assert_eq!(
        (r.status, r.json["code"].clone()),
        (422, json!("idempotency_key_reused")),
        "{}",
        r.json
    );
    assert_eq!(titles_of(&app, "u1"), ["a"]);
}

pub fn import_with_wrong_content_type_is_415<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let line = json!({"title": "x"}).to_string();
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let r = import(&app, "u1", content_type, &line, None);
        assert_eq!(r.status, 415, "{content_type:?}");
    }
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
    // Parameters such as a charset are allowed, as for JSON bodies.
    let r = import(
        &app,
        "u1",
        Some("application/x-ndjson; charset=utf-8"),
        &line,
        None,
    );
    assert_eq!(r.status, 201, "{}", r.json);
    let r = import(
        &app,
        "u1",
        Some("text/csv; charset=utf-8"),
        "title\r\ny\r\n",
        None,
    );
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(titles_of(&app, "u1"), ["x", "y"]);
}

pub fn import_creates_show_in_the_feed<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    app.create("u1", json!({"title": "earlier"}));
    let (_, since) = drain(&app, "u1", None, None);
    let body = ndjson(&[
        json!({"title": "a"}),
        json!({"title": "b", "completed": true}),
    ]);
    assert_eq!(import(&app, "u1", Some(NDJSON), &body, None).status, 201);
    let (later, _) = drain(&app, "u1", Some(&since), None);
    let tasks = tasks_of(&app, "u1");
    let imported: BTreeMap<i64, Value> = tasks
        .iter()
        .filter(|(_, t)| t["title"] != "earlier")
        .map(|(id, t)| (*id, t.clone()))
        .collect();
    assert!(later.iter().all(|c| c["kind"] == "upsert"), "{later:?}");
    let fed: BTreeMap<i64, Value> = later
        .iter()
        .map(|c| (c["id"].as_i64().unwrap(), c["task"].clone()))
        .collect();
    assert_eq!(later.len(), 2);
    assert_eq!(fed, imported);
}

pub fn import_over_10000_records_is_refused<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let body = "{\"title\":\"t\"}\n".repeat(10_001);
    let r = import(&app, "u1", Some(NDJSON), &body, None);
    assert!(matches!(r.status, 413 | 422), "{}: {}", r.status, r.json);
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
}

// ---------------------------------------------------------------- every route

pub fn batch_export_and_import_are_served_under_every_base<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let mut expected = Vec::new();
    for base in BASES {
        let r = batch_at(
            &app,
            base,
            "u1",
            json!([{"op": "create", "task": {"title": format!("batch {base}")}}]),
        );
        results(&r);
        let body = ndjson(&[json!({"title": format!("import {base}")})]);
        let r = import_at(&app, base, "u1", Some(NDJSON), &body, None);
        assert_eq!(r.status, 201, "{base}: {}", r.json);
        expected.push(format!("batch {base}"));
        expected.push(format!("import {base}"));
    }
    expected.sort();
    for base in BASES {
        let (status, text) = export_at(&app, base, "u1", None);
        assert_eq!(status, 200, "{base}");
        let mut titles: Vec<String> = ndjson_tasks(&text)
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect();
        titles.sort();
        assert_eq!(titles, expected, "{base}");
    }
}

pub fn sync_routes_need_a_token_and_the_path_user<T: Transport>(start: Start<'_, T>) {
    let app = start(&[]);
    let batch_body = json!({"operations": [{"op": "create", "task": {"title": "x"}}]}).to_string();
    let import_body = ndjson(&[json!({"title": "x"})]);
    let routes: [(&str, &str, Option<&str>, &str); 4] = [
        ("GET", "changes", None, ""),
        ("POST", "batch", Some("application/json"), &batch_body),
        ("GET", "export", None, ""),
        ("POST", "import", Some(NDJSON), &import_body),
    ];
    for (method, route, content_type, body) in routes {
        let r = app.send(raw_request(
            &app,
            method,
            &format!("/api/tasks/{route}"),
            None,
            content_type,
            body.as_bytes(),
            &[],
        ));
        assert_eq!(r.status, 401, "{method} {route}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{method} {route}"
        );
        for base in ["/api/u2", "/api/v1/u2"] {
            let path = format!("{base}/tasks/{route}");
            let r = app.send(raw_request(
                &app,
                method,
                &path,
                Some("u1"),
                content_type,
                body.as_bytes(),
                &[],
            ));
            assert_eq!(
                (r.status, r.json["code"].clone()),
                (403, json!("forbidden")),
                "{method} {path}"
            );
        }
    }
    assert_eq!(app.list("u1", "").json["meta"]["total"], 0);
    assert_eq!(app.list("u2", "").json["meta"]["total"], 0);
}
