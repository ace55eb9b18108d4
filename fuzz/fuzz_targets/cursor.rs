//! `ListQuery::parse` on arbitrary query strings, and lists over a seeded `MemoryStore`.
//!
//! * Any text as the query. When it parses: `to_query_string` reads back as an equal query,
//!   and a list over the store (only the owner's tasks, at most `limit` of them).
//! * Parameters from the known names with any values, then a cursor the API would issue
//!   after any task (any id, times, title, priority, due date): it must read back as the
//!   same position, and the next page lists.
//! * That cursor with its id or sort value replaced by any text (re-encoded, so the digest
//!   still matches and the decoding of each part is reached), or any bytes as a cursor.
//!
//! Asserts: no panic; the round trips above; a page holds only the owner's tasks.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use task_api_core::{
    Description, DueDate, ListQuery, MemoryStore, Priority, Task, TaskId, TaskStore, Timestamp,
    Title, UserId, Version,
};
use task_api_fuzz::*;

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(String),
    Structured { params: Vec<(u8, Value)>, after: ArbTask, edit: Edit },
}

#[derive(Arbitrary, Debug)]
enum Value {
    Text(String),
    Known(u8),
}

const PARAMS: &[&str] = &["status", "priority", "q", "due_before", "due_after", "sort", "limit",
    "unknown"];

const VALUES: &[&str] = &[
    "all", "pending", "completed", "low", "medium", "high", "high,low", "low, medium ,high",
    "milk", "MILK", "ß", "2026-11-21", "2028-02-29", "created_at", "-created_at", "updated_at",
    "-updated_at", "title", "-title", "priority", "-priority", "due_date", "-due_date", "1",
    "100", "101", "0", " 5 ",
];

/// The task a cursor is issued after.
#[derive(Arbitrary, Debug)]
struct ArbTask {
    id: i64,
    title: String,
    completed: bool,
    priority: u8,
    due: Option<(u16, u8, u8)>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    None,
    /// Replace the id part.
    Id(String),
    /// Replace the sort value part.
    Value(String),
    /// Replace everything after the digest.
    Rest(String),
    /// Any bytes as the decoded cursor.
    Bytes(Vec<u8>),
    /// Any text as the cursor, not base64-encoded by us.
    Text(String),
}

fn store() -> &'static MemoryStore {
    static S: OnceLock<MemoryStore> = OnceLock::new();
    S.get_or_init(|| {
        let s = MemoryStore::new();
        seed(&s);
        s
    })
}

fn owner() -> UserId {
    UserId::parse(OWNER).unwrap()
}

fn task_of(t: &ArbTask) -> Task {
    let title = Title::parse(&t.title).unwrap_or_else(|_| Title::parse("x").unwrap());
    let due = t.due.and_then(|(y, m, d)| {
        DueDate::parse(&format!("{:04}-{:02}-{:02}", y % 10_000, m % 100, d % 100))
    });
    Task {
        id: TaskId::new(t.id).or_else(|| TaskId::new(t.id.unsigned_abs().max(1) as i64 & i64::MAX))
            .or_else(|| TaskId::new(1))
            .unwrap(),
        user_id: owner(),
        title,
        description: Description::parse("d").ok().flatten(),
        completed: t.completed,
        priority: Priority::ALL[t.priority as usize % 3],
        due_date: due,
        created_at: Timestamp::from_millis(t.created_at),
        updated_at: Timestamp::from_millis(t.updated_at),
        completed_at: None,
        version: Version::FIRST,
    }
}

/// Lists the page `q` asks for; panics if it holds another user's task or too many.
fn list(q: &ListQuery) {
    let page = pollster::block_on(store().list(&owner(), q)).expect("the memory store lists");
    assert!(page.tasks.len() <= q.limit() as usize, "more tasks than the limit");
    for t in &page.tasks {
        assert_eq!(t.user_id.as_str(), OWNER, "another user's task in the page");
        assert!(q.matches(t), "a task the filters exclude: {t:?}");
    }
    if let Some(last) = page.tasks.last() {
        // The next page's cursor reads back.
        let next = format!("{}&cursor={}", q.to_query_string(), q.cursor_after(last));
        ListQuery::parse(&next).expect("an issued cursor reads back");
    }
}

fn append_cursor(base: &str, cursor: &str) -> String {
    let enc: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
    if base.is_empty() { format!("cursor={enc}") } else { format!("{base}&cursor={enc}") }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(text) => {
            if let Ok(q) = ListQuery::parse(&text) {
                let again = ListQuery::parse(&q.to_query_string());
                assert_eq!(again.as_ref().ok(), Some(&q), "to_query_string did not read back");
                list(&q);
            }
        }
        Input::Structured { params, after, edit } => {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in params.iter().take(8) {
                let v = match v {
                    Value::Text(s) => s.as_str(),
                    Value::Known(i) => VALUES[*i as usize % VALUES.len()],
                };
                ser.append_pair(PARAMS[*k as usize % PARAMS.len()], v);
            }
            let base = ser.finish();
            let Ok(q) = ListQuery::parse(&base) else {
                return;
            };
            let task = task_of(&after);
            let cursor = q.cursor_after(&task);
            let issued = ListQuery::parse(&append_cursor(&base, &cursor))
                .expect("an issued cursor reads back");
            let position = issued.after().expect("the cursor's position");
            assert_eq!(position.id, task.id);
            assert_eq!(position.value, q.sort().key.value_of(&task));
            assert_eq!(ListQuery::parse(&issued.to_query_string()).ok().as_ref(), Some(&issued));
            list(&issued);

            let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
            let mut parts = raw.splitn(3, '|');
            let digest = parts.next().unwrap_or("");
            let id = parts.next().unwrap_or("");
            let value = parts.next().unwrap_or("");
            let edited = match &edit {
                Edit::None => return,
                Edit::Id(s) => URL_SAFE_NO_PAD.encode(format!("{digest}|{s}|{value}")),
                Edit::Value(s) => URL_SAFE_NO_PAD.encode(format!("{digest}|{id}|{s}")),
                Edit::Rest(s) => URL_SAFE_NO_PAD.encode(format!("{digest}|{s}")),
                Edit::Bytes(b) => {
                    let mut bytes = format!("{digest}|").into_bytes();
                    bytes.extend_from_slice(b);
                    URL_SAFE_NO_PAD.encode(bytes)
                }
                Edit::Text(s) => s.clone(),
            };
            if let Ok(q) = ListQuery::parse(&append_cursor(&base, &edited)) {
                list(&q);
            }
        }
    }
});
