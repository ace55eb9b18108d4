//! `POST /tasks/batch`: the body read into [`BatchOp`]s (every problem at once, each named
//! by its path in the body), one store call that applies all or none, and the results.

use http::{Response, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::field::FieldError;
use crate::domain::ids::{TaskId, UserId, Version};
use crate::domain::task::Task;
use crate::http::body;
use crate::http::conditional::tags_of;
use crate::http::error::ApiError;
use crate::http::response::json;
use crate::store::changes::{Clock, MAX_BATCH_OPERATIONS};
use crate::store::tasks::{BatchOp, BatchResult, Idempotency, IdempotencyKey, TaskStore};

/// The kind of an operation, as named in the body and in a failure.
fn kind(op: &BatchOp) -> &'static str {
    match op {
        BatchOp::Create { .. } => "create",
        BatchOp::Update { .. } => "update",
        BatchOp::Delete { .. } => "delete",
    }
}

/// Answers `POST /tasks/batch`.
pub(crate) async fn run<S: TaskStore>(
    store: &S,
    raw: &[u8],
    user: &UserId,
    clock: Clock,
) -> Result<Response<Vec<u8>>, ApiError> {
    let (mut ops, several) = parse(raw)?;
    // Several of our tags in one `if_match`: like the header, the current version is read,
    // and kept if listed (the store still checks it atomically); otherwise none matches.
    for (i, listed) in several {
        if let BatchOp::Update { id, expected, .. } | BatchOp::Delete { id, expected } = &mut ops[i]
        {
            let current = match store.get(user, *id).await {
                Ok(task) => Some(task.version),
                Err(crate::store::tasks::StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            };
            *expected = Some(
                current
                    .filter(|v| listed.contains(v))
                    .unwrap_or(Version::new(0)),
            );
        }
    }
    let results = store.batch(user, &ops, clock).await.map_err(|f| {
        let error = Box::new(ApiError::from(f.error));
        match f.index.and_then(|i| ops.get(i).map(|op| (i, kind(op)))) {
            Some((index, op)) => ApiError::BatchFailed { index, op, error },
            None => *error,
        }
    })?;
    #[derive(Serialize)]
    struct Outcome<'a> {
        op: &'static str,
        status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        task: Option<&'a Task>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<TaskId>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        replayed: bool,
    }
    let data: Vec<Outcome> = results
        .iter()
        .map(|r| match r {
            BatchResult::Created(c) => Outcome {
                op: "create",
                status: 201,
                task: Some(&c.task),
                id: None,
                replayed: c.replayed,
            },
            BatchResult::Updated(task) => Outcome {
                op: "update",
                status: 200,
                task: Some(task),
                id: None,
                replayed: false,
            },
            BatchResult::Deleted(id) => Outcome {
                op: "delete",
                status: 204,
                task: None,
                id: Some(*id),
                replayed: false,
            },
        })
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "data": data })))
}

/// The operations whose `if_match` lists several of our tags: their index and the versions.
type Several = Vec<(usize, Vec<Version>)>;

/// The body: `{"operations": [...]}` with 1 to 100 operations, every problem found.
pub(crate) fn parse(raw: &[u8]) -> Result<(Vec<BatchOp>, Several), ApiError> {
    let mut errors = Vec::new();
    let mut operations = None;
    for (key, value) in body::object(raw)? {
        if key == "operations" {
            operations = Some(value);
        } else {
            errors.push(unknown(key));
        }
    }
    let list = match operations {
        None => {
            errors.push(FieldError::new(
                "operations",
                "required",
                "operations is required",
            ));
            Vec::new()
        }
        Some(Value::Array(list)) if (1..=MAX_BATCH_OPERATIONS).contains(&list.len()) => list,
        Some(Value::Array(_)) => {
            errors.push(FieldError::new(
                "operations",
                "invalid_length",
                "operations must hold 1 to 100 operations",
            ));
            Vec::new()
        }
        Some(_) => {
            errors.push(FieldError::new(
                "operations",
                "invalid_type",
                "operations must be an array",
            ));
            Vec::new()
        }
    };
    let mut ops = Vec::with_capacity(list.len());
    let mut several = Vec::new();
    for (i, value) in list.into_iter().enumerate() {
        let path = format!("operations[{i}]");
        match value {
            Value::Object(map) => {
                if let Some((op, listed)) = operation(&path, map, &mut errors) {
                    if let Some(listed) = listed {
                        several.push((i, listed));
                    }
                    ops.push(op);
                }
            }
            _ => errors.push(FieldError::new(
                path.clone(),
                "invalid_type",
                format!("{path} must be an object"),
            )),
        }
    }
    if errors.is_empty() {
        Ok((ops, several))
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn unknown(key: String) -> FieldError {
    let message = format!("{key} is not a field of this request");
    FieldError::new(key, "unknown_field", message)
}

/// One operation (and the versions its `if_match` lists, when it lists several), or `None`
/// with its problems added to `errors`.
fn operation(
    path: &str,
    mut map: Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<(BatchOp, Option<Vec<Version>>)> {
    let before = errors.len();
    let kind = match map.remove("op") {
        Some(Value::String(s)) if matches!(s.as_str(), "create" | "update" | "delete") => s,
        Some(_) => {
            errors.push(FieldError::new(
                format!("{path}.op"),
                "invalid_value",
                format!("{path}.op must be create, update or delete"),
            ));
            return None;
        }
        None => {
            errors.push(FieldError::new(
                format!("{path}.op"),
                "required",
                format!("{path}.op is required"),
            ));
            return None;
        }
    };
    let allowed: &[&str] = match kind.as_str() {
        "create" => &["task", "idempotency_key"],
        "update" => &["id", "task", "if_match"],
        _ => &["id", "if_match"],
    };
    for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
        let field = format!("{path}.{key}");
        errors.push(FieldError::new(
            field.clone(),
            "unknown_field",
            format!("{field} is not a field of a {kind} operation"),
        ));
    }
    let id = (kind != "create").then(|| task_id(path, map.remove("id"), errors));
    let (expected, listed) = match if_match(path, map.remove("if_match"), errors) {
        IfMatch::Any => (None, None),
        IfMatch::One(v) => (Some(v), None),
        IfMatch::Several(vs) => (None, Some(vs)),
    };
    let op = match kind.as_str() {
        "create" => {
            let task = task_body(path, map.remove("task"), errors)
                .and_then(|m| nested(path, body::new_task_of(m), errors));
            let key = idempotency_key(path, map.remove("idempotency_key"), errors);
            task.map(|task| BatchOp::Create {
                idempotency: key.map(|key| Idempotency {
                    key,
                    fingerprint: task.fingerprint(),
                }),
                task,
            })
        }
        "update" => {
            let patch = task_body(path, map.remove("task"), errors)
                .and_then(|m| nested(path, body::patch_of(m), errors));
            match (id.flatten(), patch) {
                (Some(id), Some(patch)) => Some(BatchOp::Update {
                    id,
                    patch,
                    expected,
                }),
                _ => None,
            }
        }
        _ => id.flatten().map(|id| BatchOp::Delete { id, expected }),
    };
    (errors.len() == before)
        .then_some(op)
        .flatten()
        .map(|op| (op, listed))
}

/// What an `if_match` requires.
enum IfMatch {
    /// Nothing (absent, `*`, or malformed and reported).
    Any,
    /// This version (`Version::new(0)` for tags that are not ours: it never matches).
    One(Version),
    /// One of these versions.
    Several(Vec<Version>),
}

/// A task body's problems, renamed into the operation's path.
fn nested<T>(path: &str, parsed: Result<T, ApiError>, errors: &mut Vec<FieldError>) -> Option<T> {
    match parsed {
        Ok(v) => Some(v),
        Err(ApiError::Validation(found)) => {
            errors.extend(found.into_iter().map(|e| {
                let field = if e.field == "body" {
                    format!("{path}.task")
                } else {
                    format!("{path}.task.{}", e.field)
                };
                FieldError {
                    field: field.into(),
                    ..e
                }
            }));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(
                format!("{path}.task"),
                "invalid_value",
                format!("{path}.task is not a valid task"),
            ));
            None
        }
    }
}

fn task_body(
    path: &str,
    value: Option<Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Map<String, Value>> {
    match value {
        Some(Value::Object(map)) => Some(map),
        Some(_) => {
            errors.push(FieldError::new(
                format!("{path}.task"),
                "invalid_type",
                format!("{path}.task must be an object"),
            ));
            None
        }
        None => {
            errors.push(FieldError::new(
                format!("{path}.task"),
                "required",
                format!("{path}.task is required"),
            ));
            None
        }
    }
}

fn task_id(path: &str, value: Option<Value>, errors: &mut Vec<FieldError>) -> Option<TaskId> {
    // An id is a JSON integer as written (`12`): `12.0` is read as a float, and a float of
    // 16 digits may not read back exactly on every target, so none is taken for an id.
    let id = match &value {
        Some(Value::Number(n)) => n.as_i64().and_then(TaskId::new),
        _ => None,
    };
    if id.is_none() {
        let (code, message) = if value.is_none() {
            ("required", format!("{path}.id is required"))
        } else {
            (
                "invalid_value",
                format!("{path}.id must be a task id (a positive 64-bit integer)"),
            )
        };
        errors.push(FieldError::new(format!("{path}.id"), code, message));
    }
    id
}

/// `if_match`, read as the `If-Match` header is: `*` requires only that the task exists,
/// and a tag that is not one of ours (weak, or from elsewhere) can never match.
fn if_match(path: &str, value: Option<Value>, errors: &mut Vec<FieldError>) -> IfMatch {
    let Some(value) = value else {
        return IfMatch::Any;
    };
    let tags = match &value {
        Value::String(s) => tags_of(s).filter(|t| !t.is_empty()),
        _ => None,
    };
    let field = format!("{path}.if_match");
    let Some(tags) = tags else {
        errors.push(FieldError::new(
            field.clone(),
            "invalid_value",
            format!("{field} must be an entity tag such as \"\\\"v3\\\"\", or \"*\""),
        ));
        return IfMatch::Any;
    };
    if tags.iter().any(|t| t == "*") {
        return IfMatch::Any;
    }
    let ours: Vec<Version> = tags.iter().filter_map(|t| Version::from_etag(t)).collect();
    match ours.as_slice() {
        [] => IfMatch::One(Version::new(0)),
        [one] => IfMatch::One(*one),
        _ => IfMatch::Several(ours),
    }
}

fn idempotency_key(
    path: &str,
    value: Option<Value>,
    errors: &mut Vec<FieldError>,
) -> Option<IdempotencyKey> {
    let value = value?;
    let key = match &value {
        Value::String(s) => IdempotencyKey::parse(s),
        _ => None,
    };
    if key.is_none() {
        let field = format!("{path}.idempotency_key");
        errors.push(FieldError::new(
            field.clone(),
            "invalid_value",
            format!("{field} must be 1 to 255 printable ASCII characters"),
        ));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(body: &str) -> Vec<String> {
        match parse(body.as_bytes()) {
            Err(ApiError::Validation(e)) => e.into_iter().map(|e| e.field.into_owned()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_problem_is_named_by_its_path() {
        let body = r#"{"operations": [
            {"op": "create", "task": {"title": ""}},
            {"op": "update", "id": 0, "task": {}},
            {"op": "delete", "id": 5, "if_match": "v1"},
            {"op": "explode"},
            {"op": "create", "task": {"title": "ok"}, "idempotency_key": ""}
        ]}"#;
        assert_eq!(
            problems(body),
            [
                "operations[0].task.title",
                "operations[1].id",
                "operations[1].task",
                "operations[2].if_match",
                "operations[3].op",
                "operations[4].idempotency_key",
            ]
        );
    }

    #[test]
    fn a_good_batch_reads_in_order() {
        let (ops, _) = parse(
            br#"{"operations": [
                {"op": "create", "task": {"title": "a"}, "idempotency_key": "k"},
                {"op": "update", "id": 7, "task": {"completed": true}, "if_match": "\"v2\""},
                {"op": "delete", "id": 8, "if_match": "*"}
            ]}"#,
        )
        .unwrap();
        assert!(matches!(
            &ops[0],
            BatchOp::Create {
                idempotency: Some(_),
                ..
            }
        ));
        assert!(
            matches!(&ops[1], BatchOp::Update { id, expected: Some(v), .. } if id.get() == 7 && v.get() == 2)
        );
        assert!(matches!(&ops[2], BatchOp::Delete { expected: None, .. }));
    }

    #[test]
    fn an_id_is_an_integer_as_written() {
        let (ops, _) = parse(br#"{"operations": [{"op": "delete", "id": 12}]}"#).unwrap();
        assert!(matches!(&ops[0], BatchOp::Delete { id, .. } if id.get() == 12));
        for id in ["12.0", "12.5", "0", "-3", "\"12\""] {
            let body = format!(r#"{{"operations": [{{"op": "delete", "id": {id}}}]}}"#);
            assert_eq!(problems(&body), ["operations[0].id"], "{id}");
        }
    }

    #[test]
    fn the_operation_count_is_bounded() {
        assert_eq!(problems(r#"{"operations": []}"#), ["operations"]);
        let many = format!(
            r#"{{"operations": [{}]}}"#,
            vec![r#"{"op": "delete", "id": 1}"#; 101].join(",")
        );
        assert_eq!(problems(&many), ["operations"]);
        assert_eq!(problems(r#"{}"#), ["operations"]);
    }
}
