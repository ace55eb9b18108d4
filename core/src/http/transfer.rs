//! `GET /tasks/export` and `POST /tasks/import`: a user's tasks out as JSON lines or CSV,
//! streamed page by page, and back in, all or none (`docs/sync.md`).
//!
//! An export answers with its first page in the body and an [`ExportCursor`] in the
//! response's extensions; [`crate::Api::handle_streaming`] hands the rest to the host as a
//! [`MoreBody`], so a host that streams holds one page at a time, whatever the number of
//! tasks. [`crate::Api::handle`] appends the rest itself.

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use serde_json::{Map, Value};

use crate::domain::field::FieldError;
use crate::domain::ids::{TaskId, UserId};
use crate::domain::task::Task;
use crate::domain::time::Timestamp;
use crate::http::body;
use crate::http::error::ApiError;
use crate::http::response::json;
use crate::store::changes::{EXPORT_PAGE, ImportedTask, MAX_IMPORT_TASKS};
use crate::store::tasks::{Idempotency, IdempotencyKey, StoreError, TaskStore};

/// Records of an import body, numbered from 0, each a JSON object or `None` when it could
/// not be read (its problem already reported).
type Records = Vec<(usize, Option<Map<String, Value>>)>;

/// The formats an export comes in and an import takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/x-ndjson`: one task JSON object per line.
    Ndjson,
    /// `text/csv`: RFC 4180, a header row first.
    Csv,
}

/// The CSV columns, in order.
const CSV_COLUMNS: [&str; 9] = [
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

/// Columns and fields an import ignores: an export imports as it is, under new ids.
const IGNORED: [&str; 3] = ["id", "user_id", "version"];

/// Where an export stands after the part already in the body.
#[derive(Clone, Debug)]
pub(crate) struct ExportCursor {
    pub(crate) user: UserId,
    pub(crate) format: Format,
    /// The last task sent: its `created_at` and id.
    pub(crate) after: (Timestamp, TaskId),
}

/// The rest of an export's body, page by page: what [`crate::Api::handle_streaming`] gives a
/// host beside the response.
///
/// It borrows the API's store ([`crate::Api::handle_streaming`]) or owns it
/// ([`crate::Api::into_streaming`], for a host whose body stream must be `'static`).
#[derive(Debug)]
pub struct MoreBody<'a, S> {
    pub(crate) store: Holder<'a, S>,
    pub(crate) cursor: Option<ExportCursor>,
}

/// How a [`MoreBody`] holds the store.
#[derive(Debug)]
pub(crate) enum Holder<'a, S> {
    Borrowed(&'a S),
    Owned(S),
}

impl<S> std::ops::Deref for Holder<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        match self {
            Holder::Borrowed(s) => s,
            Holder::Owned(s) => s,
        }
    }
}

impl<S: TaskStore> MoreBody<'_, S> {
    /// The next part of the body, or `None` at its end. After an error the body is
    /// incomplete: the host should abort the response (its status is already sent), so that
    /// the client sees a failed transfer rather than a short export.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(cursor) = self.cursor.take() else {
            return Ok(None);
        };
        let tasks = self
            .store
            .export_page(&cursor.user, Some(cursor.after), EXPORT_PAGE)
            .await?;
        self.cursor = next_cursor(&cursor.user, cursor.format, &tasks);
        Ok((!tasks.is_empty()).then(|| render(cursor.format, &tasks, false)))
    }
}

/// After a page: where to go on, if the page was full.
fn next_cursor(user: &UserId, format: Format, tasks: &[Task]) -> Option<ExportCursor> {
    match tasks.last() {
        Some(last) if tasks.len() >= EXPORT_PAGE as usize => Some(ExportCursor {
            user: user.clone(),
            format,
            after: (last.created_at, last.id),
        }),
        _ => None,
    }
}

/// The format `Accept` asks for: JSON lines unless CSV is preferred; neither is a 406.
fn negotiate(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(Format::Ndjson);
    };
    let accept = accept.to_str().map_err(|_| ApiError::NotAcceptable)?;
    let mut best: Option<(f32, Format)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "text/csv" => Format::Csv,
            "application/x-ndjson" | "application/jsonl" | "*/*" | "application/*" => {
                Format::Ndjson
            }
            "text/*" => Format::Csv,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map(|(_, f)| f).ok_or(ApiError::NotAcceptable)
}

/// Answers `GET /tasks/export`: the first page, and the cursor for the rest.
pub(crate) async fn export<S: TaskStore>(
    store: &S,
    req: &Request<Vec<u8>>,
    user: &UserId,
) -> Result<Response<Vec<u8>>, ApiError> {
    let format = negotiate(req.headers())?;
    let tasks = store.export_page(user, None, EXPORT_PAGE).await?;
    let mut r = Response::new(render(format, &tasks, true));
    let (media, file) = match format {
        Format::Ndjson => (
            "application/x-ndjson",
            "attachment; filename=\"tasks.ndjson\"",
        ),
        Format::Csv => (
            "text/csv; charset=utf-8",
            "attachment; filename=\"tasks.csv\"",
        ),
    };
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(file));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    if let Some(cursor) = next_cursor(user, format, &tasks) {
        r.extensions_mut().insert(cursor);
    }
    Ok(r)
}

/// A page of tasks in `format` (with the CSV header row when `first`).
fn render(format: Format, tasks: &[Task], first: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(tasks.len() * 256);
    match format {
        Format::Ndjson => {
            for task in tasks {
                // Serializing a task cannot fail.
                let _ = serde_json::to_writer(&mut out, task);
                out.push(b'\n');
            }
        }
        Format::Csv => {
            if first {
                out.extend_from_slice(CSV_COLUMNS.join(",").as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            for t in tasks {
                let cells = [
                    t.id.to_string(),
                    t.title.as_str().to_owned(),
                    t.description
                        .as_ref()
                        .map_or(String::new(), |d| d.as_str().to_owned()),
                    t.completed.to_string(),
                    t.priority.as_str().to_owned(),
                    t.due_date.map_or(String::new(), |d| d.to_string()),
                    t.created_at.to_string(),
                    t.updated_at.to_string(),
                    t.completed_at.map_or(String::new(), |c| c.to_string()),
                ];
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    csv_cell(&mut out, cell);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

fn csv_cell(out: &mut Vec<u8>, cell: &str) {
    if cell.contains([',', '"', '\r', '\n']) {
        out.push(b'"');
        out.extend_from_slice(cell.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(cell.as_bytes());
    }
}

/// Answers `POST /tasks/import`.
pub(crate) async fn import<S: TaskStore>(
    store: &S,
    req: &Request<Vec<u8>>,
    user: &UserId,
    now: Timestamp,
) -> Result<Response<Vec<u8>>, ApiError> {
    let format = content_format(req.headers())?;
    let tasks = parse_import(format, req.body(), now)?;
    let idempotency = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .and_then(IdempotencyKey::parse)
                .ok_or(ApiError::InvalidHeader("Idempotency-Key"))?;
            let mut digest = b"import:".to_vec();
            digest.extend_from_slice(req.body());
            let hash = hmac_sha256::Hash::hash(&digest);
            Some(Idempotency {
                key,
                fingerprint: hash.iter().map(|b| format!("{b:02x}")).collect(),
            })
        }
    };
    let imported = store.import(user, &tasks, idempotency, now).await?;
    let mut r = json(
        StatusCode::CREATED,
        &serde_json::json!({ "data": { "imported": imported.count } }),
    );
    if imported.replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(r)
}

fn content_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/x-ndjson" | "application/jsonl") => Ok(Format::Ndjson),
        Some("text/csv") => Ok(Format::Csv),
        _ => Err(ApiError::UnsupportedMediaType(
            "application/x-ndjson or text/csv",
        )),
    }
}

/// Most problems one answer lists; the rest are summed up in one more.
const MAX_PROBLEMS: usize = 100;

/// Every record of an import body, validated; or every problem (up to [`MAX_PROBLEMS`]).
pub(crate) fn parse_import(
    format: Format,
    raw: &[u8],
    now: Timestamp,
) -> Result<Vec<ImportedTask>, ApiError> {
    let text =
        std::str::from_utf8(raw).map_err(|_| ApiError::MalformedBody("the body is not UTF-8"))?;
    let mut errors = Vec::new();
    let records = match format {
        Format::Ndjson => ndjson_records(text, &mut errors),
        Format::Csv => csv_records(text, &mut errors)?,
    };
    if records.len() > MAX_IMPORT_TASKS {
        return Err(ApiError::Validation(vec![FieldError::new(
            "records",
            "too_many",
            "an import takes at most 10000 tasks: split it into several",
        )]));
    }
    let mut tasks = Vec::with_capacity(records.len());
    for (i, record) in records {
        if let Some(t) = record.and_then(|r| imported(i, r, now, &mut errors)) {
            tasks.push(t);
        }
    }
    if errors.is_empty() {
        return Ok(tasks);
    }
    if errors.len() > MAX_PROBLEMS {
        let more = errors.len() - MAX_PROBLEMS;
        errors.truncate(MAX_PROBLEMS);
        errors.push(FieldError::new(
            "records",
            "more_problems",
            format!("{more} more problems are not listed"),
        ));
    }
    Err(ApiError::Validation(errors))
}

/// The records of a JSON lines body, numbered from 0 (blank lines are no records).
fn ndjson_records(text: &str, errors: &mut Vec<FieldError>) -> Records {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => (i, Some(map)),
            _ => {
                errors.push(FieldError::new(
                    format!("records[{i}]"),
                    "invalid_json",
                    format!("records[{i}] is not a JSON object on one line"),
                ));
                (i, None)
            }
        })
        .collect()
}

/// The records of a CSV body, as JSON objects of the header's columns (numbered from 0,
/// the header excluded). A bad header is a 422 on its own.
fn csv_records(text: &str, errors: &mut Vec<FieldError>) -> Result<Records, ApiError> {
    let mut rows = csv_rows(text).map_err(ApiError::MalformedBody)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let header = rows.remove(0);
    let mut problems = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let known = CSV_COLUMNS.contains(&name.as_str()) || IGNORED.contains(&name.as_str());
        if !known {
            problems.push(FieldError::new(
                name.clone(),
                "unknown_field",
                format!("{name} is not a column an import takes"),
            ));
        } else if header[..i].contains(name) {
            problems.push(FieldError::new(
                name.clone(),
                "duplicate",
                format!("the column {name} appears twice"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            if row.len() != header.len() {
                errors.push(FieldError::new(
                    format!("records[{i}]"),
                    "invalid_length",
                    format!(
                        "records[{i}] has {} cells where the header has {}",
                        row.len(),
                        header.len()
                    ),
                ));
                return (i, None);
            }
            let mut map = Map::new();
            for (name, cell) in header.iter().zip(row) {
                if let Some(v) = csv_value(name, cell, i, errors) {
                    map.insert(name.clone(), v);
                }
            }
            (i, Some(map))
        })
        .collect())
}

/// A CSV cell as the JSON value of its column; an empty cell is `null` where the field
/// allows it and absent elsewhere.
fn csv_value(name: &str, cell: String, i: usize, errors: &mut Vec<FieldError>) -> Option<Value> {
    match name {
        "title" => Some(Value::String(cell)),
        "description" | "due_date" | "completed_at" if cell.is_empty() => Some(Value::Null),
        _ if cell.is_empty() => None,
        "completed" => match cell.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Some(Value::Bool(true)),
            "false" | "f" | "0" => Some(Value::Bool(false)),
            _ => {
                errors.push(FieldError::new(
                    format!("records[{i}].completed"),
                    "invalid_type",
                    format!("records[{i}].completed must be true or false"),
                ));
                None
            }
        },
        _ => Some(Value::String(cell)),
    }
}

/// RFC 4180 rows: fields separated by commas, rows by CRLF or LF, quoted fields with `""`
/// for a quote. A row that is only an empty line is skipped.
fn csv_rows(text: &str) -> Result<Vec<Vec<String>>, &'static str> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut touched = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                c => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.is_empty() => {
                quoted = true;
                touched = true;
            }
            '"' => return Err("a CSV field has a quote inside without being quoted"),
            ',' => {
                row.push(std::mem::take(&mut cell));
                touched = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                if touched || !cell.is_empty() {
                    row.push(std::mem::take(&mut cell));
                    rows.push(std::mem::take(&mut row));
                }
                touched = false;
            }
            c => {
                cell.push(c);
                touched = true;
            }
        }
    }
    if quoted {
        return Err("a quoted CSV field is not closed");
    }
    if touched || !cell.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    Ok(rows)
}

/// One record as a task to import, or `None` with its problems added.
fn imported(
    i: usize,
    mut map: Map<String, Value>,
    now: Timestamp,
    errors: &mut Vec<FieldError>,
) -> Option<ImportedTask> {
    for key in IGNORED {
        map.remove(key);
    }
    let before = errors.len();
    let mut time = |name: &'static str| -> Option<Timestamp> {
        match map.remove(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Timestamp::parse_rfc3339_any(&s).or_else(|| {
                errors.push(FieldError::new(
                    format!("records[{i}].{name}"),
                    "invalid_value",
                    format!("records[{i}].{name} must be an RFC 3339 time such as 2026-12-01T10:00:00.000Z"),
                ));
                None
            }),
            Some(_) => {
                errors.push(FieldError::new(
                    format!("records[{i}].{name}"),
                    "invalid_type",
                    format!("records[{i}].{name} must be an RFC 3339 time as a string"),
                ));
                None
            }
        }
    };
    let created = time("created_at");
    let updated = time("updated_at");
    let completed_at = time("completed_at");
    let task = match body::new_task_of(map) {
        Ok(t) => Some(t),
        Err(ApiError::Validation(found)) => {
            errors.extend(found.into_iter().map(|e| FieldError {
                field: format!("records[{i}].{}", e.field).into(),
                ..e
            }));
            None
        }
        Err(_) => None,
    };
    if errors.len() > before {
        return None;
    }
    let task = task?;
    let created_at = created.unwrap_or(now);
    let mut problem = |field: &str, message: &str| {
        errors.push(FieldError::new(
            format!("records[{i}].{field}"),
            "inconsistent",
            format!("records[{i}].{field} {message}"),
        ));
    };
    if completed_at.is_some() && !task.completed {
        problem("completed_at", "is set on a task that is not completed");
    }
    if completed_at.is_some_and(|c| c < created_at) {
        problem("completed_at", "is before created_at");
    }
    if updated.is_some_and(|u| u < created_at) {
        problem("updated_at", "is before created_at");
    }
    if errors.len() > before {
        return None;
    }
    let updated_at =
        updated.unwrap_or_else(|| completed_at.map_or(created_at, |c| c.max(created_at)));
    let completed_at = task.completed.then(|| completed_at.unwrap_or(updated_at));
    Some(ImportedTask {
        task,
        created_at,
        updated_at: updated_at.max(completed_at.unwrap_or(updated_at)),
        completed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_follow_rfc_4180() {
        let rows = csv_rows("a,b\r\n\"x, \"\"y\"\"\",\"line\nbreak\"\n\n,\n").unwrap();
        assert_eq!(
            rows,
            [
                vec!["a", "b"],
                vec!["x, \"y\"", "line\nbreak"],
                vec!["", ""],
            ]
        );
        assert!(csv_rows("\"open").is_err());
        assert!(csv_rows("a\"b").is_err());
    }

    #[test]
    fn a_rendered_page_reads_back() {
        let mut out = Vec::new();
        csv_cell(&mut out, "say \"hi\", then\nleave");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(csv_rows(&text).unwrap(), [vec!["say \"hi\", then\nleave"]]);
    }

    #[test]
    fn accept_picks_the_format() {
        let with = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, accept.parse().unwrap());
            negotiate(&h)
        };
        assert_eq!(negotiate(&HeaderMap::new()).unwrap(), Format::Ndjson);
        assert_eq!(with("text/csv").unwrap(), Format::Csv);
        assert_eq!(
            with("application/x-ndjson, text/csv;q=0.5").unwrap(),
            Format::Ndjson
        );
        assert_eq!(with("text/csv;q=0.9, */*;q=0.1").unwrap(), Format::Csv);
        assert!(with("application/xml").is_err());
    }

    #[test]
    fn an_import_keeps_its_times_and_completes_consistently() {
        let now = Timestamp::from_millis(10_000_000);
        let body = "title,completed,created_at,updated_at\r\nA,t,2026-01-01T00:00:00.000Z,2026-01-02T00:00:00.000Z\r\n";
        let tasks = parse_import(Format::Csv, body.as_bytes(), now).unwrap();
        let t = &tasks[0];
        assert!(t.task.completed);
        assert_eq!(t.completed_at, Some(t.updated_at));
        assert!(t.created_at < t.updated_at);
        let bad = "{\"title\":\"x\",\"completed_at\":\"2026-01-01T00:00:00.000Z\"}\nnot json\n";
        match parse_import(Format::Ndjson, bad.as_bytes(), now) {
            Err(ApiError::Validation(e)) => assert_eq!(
                e.iter().map(|e| e.field.as_ref()).collect::<Vec<_>>(),
                ["records[1]", "records[0].completed_at"]
            ),
            other => panic!("{other:?}"),
        }
    }
}
