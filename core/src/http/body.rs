//! Request bodies: JSON in, a [`NewTask`], [`TaskPatch`], [`Completion`] or credentials out,
//! or every problem found, as the [`ApiError`] the route answers.
//!
//! The rules for single values live with their types in `domain/` (`task.rs`, `account.rs`);
//! this module owns the body rules: which fields exist, which are server-owned and ignored,
//! what `null` means for each, and that an update must change something.

use http::{Request, header};
use serde_json::{Map, Value};

use crate::domain::account::{Email, Password};
use crate::domain::field::FieldError;
use crate::domain::task::{Completion, Description, NewTask, Priority, TaskPatch, Title};
use crate::domain::time::DueDate;
use crate::http::error::ApiError;

/// Largest accepted request body, in bytes (64 KiB): a larger one is a 413, whatever the
/// route.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest body of `POST /tasks/import`, in bytes (8 MiB): a larger one is a 413.
pub const MAX_IMPORT_BYTES: usize = 8 * 1024 * 1024;

/// The largest body the route at `path` takes: [`MAX_IMPORT_BYTES`] for an import,
/// [`MAX_BODY_BYTES`] for every other path. A host that reads bodies itself reads at most
/// one byte more than this, so that the core can answer 413.
///
/// ```
/// use task_api_core::{MAX_BODY_BYTES, MAX_IMPORT_BYTES, max_body_bytes};
/// assert_eq!(max_body_bytes("/api/tasks/import"), MAX_IMPORT_BYTES);
/// assert_eq!(max_body_bytes("/api/u1/tasks"), MAX_BODY_BYTES);
/// ```
pub fn max_body_bytes(path: &str) -> usize {
    match crate::http::routes::resolve(path) {
        Some(r) => body_limit(r.endpoint),
        None => MAX_BODY_BYTES,
    }
}

/// The largest body `endpoint` takes.
pub(crate) fn body_limit(endpoint: crate::http::routes::Endpoint) -> usize {
    if endpoint == crate::http::routes::Endpoint::TaskImport {
        MAX_IMPORT_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// The body, checked to be JSON. With `optional`, an empty body is allowed whatever its
/// content type (a toggle sends none).
pub(crate) fn json_body(req: &Request<Vec<u8>>, optional: bool) -> Result<&[u8], ApiError> {
    let body = req.body().as_slice();
    if optional && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(b"");
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(body)
    } else {
        Err(ApiError::UnsupportedMediaType("application/json"))
    }
}

/// Fields the server owns: ignored when a client sends a task back.
pub(crate) const SERVER_OWNED: [&str; 5] =
    ["id", "user_id", "created_at", "updated_at", "completed_at"];

/// The body of `POST /tasks`.
pub(crate) fn parse_new_task(body: &[u8]) -> Result<NewTask, ApiError> {
    new_task_of(object(body)?)
}

/// A create body, already a JSON object (also a batch's `task` and an import's record).
pub(crate) fn new_task_of(body: Map<String, Value>) -> Result<NewTask, ApiError> {
    let fields = TaskFields::read(body, true)?;
    let title = fields.title.expect("required on create, checked by read");
    Ok(NewTask {
        title,
        description: fields.description.flatten(),
        priority: fields.priority.unwrap_or_default(),
        due_date: fields.due_date.flatten(),
        completed: fields.completed.unwrap_or(false),
    })
}

/// The body of `PUT` / `PATCH /tasks/{id}`.
pub(crate) fn parse_patch(body: &[u8]) -> Result<TaskPatch, ApiError> {
    patch_of(object(body)?)
}

/// An update body, already a JSON object (also a batch's `task`).
pub(crate) fn patch_of(body: Map<String, Value>) -> Result<TaskPatch, ApiError> {
    let f = TaskFields::read(body, false)?;
    let mut b = TaskPatch::builder();
    if let Some(t) = f.title {
        b = b.title(t);
    }
    if let Some(d) = f.description {
        b = b.description(d);
    }
    if let Some(p) = f.priority {
        b = b.priority(p);
    }
    if let Some(d) = f.due_date {
        b = b.due_date(d);
    }
    if let Some(c) = f.completed {
        b = b.completed(c);
    }
    b.build().ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new(
            "body",
            "no_changes",
            "the update must change at least one of title, description, priority, due_date, completed",
        )])
    })
}

/// The body of `PATCH /tasks/{id}/complete`: none or `{}` toggles, `{"completed": b}` sets.
pub(crate) fn parse_completion(body: &[u8]) -> Result<Completion, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Completion::Toggle);
    }
    let mut errors = Vec::new();
    let mut completed = None;
    for (key, value) in object(body)? {
        match key.as_str() {
            "completed" => completed = bool_field("completed", value, &mut errors),
            k if SERVER_OWNED.contains(&k) => {}
            _ => errors.push(unknown(key)),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(completed.map_or(Completion::Toggle, Completion::Set))
}

/// Every changeable field a body held, each `Some` when present and valid.
struct TaskFields {
    title: Option<Title>,
    description: Option<Option<Description>>,
    priority: Option<Priority>,
    due_date: Option<Option<DueDate>>,
    completed: Option<bool>,
}

impl TaskFields {
    fn read(body: Map<String, Value>, title_required: bool) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let mut f = TaskFields {
            title: None,
            description: None,
            priority: None,
            due_date: None,
            completed: None,
        };
        let mut title_seen = false;
        for (key, value) in body {
            match key.as_str() {
                "title" => {
                    title_seen = true;
                    f.title = match value {
                        Value::String(s) => collect(Title::parse(&s), &mut errors),
                        Value::Null => not_null("title", &mut errors),
                        _ => wrong_type("title", "a string", &mut errors),
                    }
                }
                "description" => {
                    f.description = match value {
                        Value::Null => Some(None),
                        Value::String(s) => collect(Description::parse(&s), &mut errors),
                        _ => wrong_type("description", "a string or null", &mut errors),
                    }
                }
                "priority" => {
                    f.priority = match value {
                        Value::Null => not_null("priority", &mut errors),
                        Value::String(s) => Priority::parse(&s).or_else(|| {
                            errors.push(FieldError::new(
                                "priority",
                                "invalid_value",
                                "priority must be one of low, medium, high",
                            ));
                            None
                        }),
                        _ => wrong_type("priority", "one of low, medium, high", &mut errors),
                    }
                }
                "due_date" => {
                    f.due_date = match value {
                        Value::Null => Some(None),
                        Value::String(s) => match DueDate::parse(&s) {
                            Some(d) => Some(Some(d)),
                            None => {
                                errors.push(FieldError::new(
                                    "due_date",
                                    "invalid_date",
                                    "due_date must be a real date written YYYY-MM-DD",
                                ));
                                None
                            }
                        },
                        _ => wrong_type("due_date", "a YYYY-MM-DD string or null", &mut errors),
                    }
                }
                "completed" => f.completed = bool_field("completed", value, &mut errors),
                k if SERVER_OWNED.contains(&k) => {}
                _ => errors.push(unknown(key)),
            }
        }
        if title_required && !title_seen {
            errors.push(FieldError::new("title", "required", "title is required"));
        }
        if errors.is_empty() {
            Ok(f)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// The body of `POST /auth/register` and `POST /auth/login`: every problem at once.
pub(crate) fn parse_credentials(body: &[u8]) -> Result<(Email, Password), ApiError> {
    let map = object(body)?;
    let mut errors = Vec::new();
    let (mut email, mut password) = (None, None);
    let (mut email_seen, mut password_seen) = (false, false);
    for (key, value) in map {
        match (key.as_str(), value) {
            ("email", Value::String(s)) => {
                email_seen = true;
                email = Email::parse(&s);
                if email.is_none() {
                    errors.push(FieldError::new(
                        "email",
                        "invalid_email",
                        "email must be an address like name@example.com of at most 254 characters",
                    ));
                }
            }
            ("password", Value::String(s)) => {
                password_seen = true;
                password = Password::parse(&s);
                if password.is_none() {
                    errors.push(FieldError::new(
                        "password",
                        "password_length",
                        "password must be 8 to 128 characters",
                    ));
                }
            }
            (field @ ("email" | "password"), _) => {
                if field == "email" {
                    email_seen = true;
                } else {
                    password_seen = true;
                }
                errors.push(FieldError::new(
                    field.to_owned(),
                    "invalid_type",
                    format!("{field} must be a string"),
                ));
            }
            _ => {
                let message = format!("{key} is not a field of this request");
                errors.push(FieldError::new(key, "unknown_field", message));
            }
        }
    }
    for (seen, field) in [(email_seen, "email"), (password_seen, "password")] {
        if !seen {
            errors.push(FieldError::new(
                field,
                "required",
                format!("{field} is required"),
            ));
        }
    }
    match (email, password) {
        (Some(e), Some(p)) if errors.is_empty() => Ok((e, p)),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// The body as a JSON object, or a 400.
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::MalformedBody("the body must be a JSON object")),
        Err(_) => Err(ApiError::MalformedBody("the body is not valid JSON")),
    }
}

fn collect<T>(result: Result<T, Vec<FieldError>>, errors: &mut Vec<FieldError>) -> Option<T> {
    result.map_err(|e| errors.extend(e)).ok()
}

fn bool_field(name: &'static str, value: Value, errors: &mut Vec<FieldError>) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(b),
        Value::Null => not_null(name, errors),
        _ => wrong_type(name, "true or false", errors),
    }
}

fn not_null<T>(field: &'static str, errors: &mut Vec<FieldError>) -> Option<T> {
    errors.push(FieldError::new(
        field,
        "null",
        format!("{field} must not be null"),
    ));
    None
}

fn wrong_type<T>(field: &'static str, want: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    errors.push(FieldError::new(
        field,
        "invalid_type",
        format!("{field} must be {want}"),
    ));
    None
}

fn unknown(key: String) -> FieldError {
    let message = format!("{key} is not a field of this request");
    FieldError::new(key, "unknown_field", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_errors(r: Result<impl std::fmt::Debug, ApiError>) -> Vec<(String, &'static str)> {
        match r {
            Err(ApiError::Validation(e)) => e
                .into_iter()
                .map(|e| (e.field.into_owned(), e.code))
                .collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn codes(body: &str) -> Vec<(String, &'static str)> {
        field_errors(parse_new_task(body.as_bytes()))
    }

    fn pair(f: &str, c: &'static str) -> (String, &'static str) {
        (f.to_owned(), c)
    }

    #[test]
    fn minimal_create_gets_the_defaults() {
        let t = parse_new_task(br#"{"title":"  Buy milk  "}"#).unwrap();
        assert_eq!(t.title.as_str(), "Buy milk");
        assert_eq!(
            (t.priority, t.completed, t.description, t.due_date),
            (Priority::Medium, false, None, None)
        );
    }

    #[test]
    fn full_create_keeps_every_field() {
        let t = parse_new_task(
            br#"{"title":"t","description":"d","priority":"high","due_date":"2026-12-01","completed":true}"#,
        )
        .unwrap();
        assert_eq!(t.description.unwrap().as_str(), "d");
        assert_eq!(t.priority, Priority::High);
        assert_eq!(t.due_date.unwrap().to_string(), "2026-12-01");
        assert!(t.completed);
    }

    #[test]
    fn title_is_required_on_create() {
        assert_eq!(codes("{}"), [pair("title", "required")]);
    }

    #[test]
    fn title_of_200_characters_after_trimming_is_accepted() {
        let title = format!("  {}  ", "é".repeat(200));
        assert!(
            parse_new_task(serde_json::json!({ "title": title }).to_string().as_bytes()).is_ok()
        );
    }

    #[test]
    fn title_of_201_characters_is_too_long() {
        let body = serde_json::json!({ "title": "a".repeat(201) }).to_string();
        assert_eq!(codes(&body), [pair("title", "too_long")]);
    }

    #[test]
    fn title_counts_scalar_values_not_bytes_or_graphemes() {
        // 200 flags made of two scalar values each are 400 scalar values.
        let body = serde_json::json!({ "title": "🇫🇷".repeat(100) }).to_string();
        assert!(parse_new_task(body.as_bytes()).is_ok());
        let body = serde_json::json!({ "title": "🇫🇷".repeat(101) }).to_string();
        assert_eq!(codes(&body), [pair("title", "too_long")]);
    }

    #[test]
    fn blank_title_is_refused() {
        assert_eq!(codes(r#"{"title":" \t\n "}"#), [pair("title", "blank")]);
    }

    #[test]
    fn title_with_control_character_is_refused() {
        assert_eq!(
            codes(r#"{"title":"a\u0000b"}"#),
            [pair("title", "control_character")]
        );
        assert_eq!(
            codes(r#"{"title":"a\nb"}"#),
            [pair("title", "control_character")]
        );
    }

    #[test]
    fn title_too_long_and_with_control_character_reports_both() {
        let body = serde_json::json!({ "title": format!("{}\u{1b}", "a".repeat(201)) }).to_string();
        assert_eq!(
            codes(&body),
            [
                pair("title", "too_long"),
                pair("title", "control_character")
            ]
        );
    }

    #[test]
    fn null_title_is_refused() {
        assert_eq!(codes(r#"{"title":null}"#), [pair("title", "null")]);
    }

    #[test]
    fn non_string_title_is_refused() {
        assert_eq!(codes(r#"{"title":5}"#), [pair("title", "invalid_type")]);
    }

    #[test]
    fn description_of_2000_characters_is_accepted_and_2001_refused() {
        let ok = serde_json::json!({ "title": "t", "description": "ж".repeat(2000) }).to_string();
        assert!(parse_new_task(ok.as_bytes()).is_ok());
        let bad = serde_json::json!({ "title": "t", "description": "ж".repeat(2001) }).to_string();
        assert_eq!(codes(&bad), [pair("description", "too_long")]);
    }

    #[test]
    fn description_keeps_tab_newline_carriage_return_and_leading_space() {
        let t = parse_new_task(br#"{"title":"t","description":"  a\tb\r\nc \n "}"#).unwrap();
        assert_eq!(t.description.unwrap().as_str(), "  a\tb\r\nc");
    }

    #[test]
    fn description_with_other_control_characters_is_refused() {
        assert_eq!(
            codes(r#"{"title":"t","description":"bell\u0007"}"#),
            [pair("description", "control_character")]
        );
    }

    #[test]
    fn empty_description_is_stored_as_null() {
        let t = parse_new_task(br#"{"title":"t","description":"   "}"#).unwrap();
        assert_eq!(t.description, None);
        let t = parse_new_task(br#"{"title":"t","description":null}"#).unwrap();
        assert_eq!(t.description, None);
    }

    #[test]
    fn unknown_priority_is_refused() {
        assert_eq!(
            codes(r#"{"title":"t","priority":"urgent"}"#),
            [pair("priority", "invalid_value")]
        );
        assert_eq!(
            codes(r#"{"title":"t","priority":"High"}"#),
            [pair("priority", "invalid_value")]
        );
        assert_eq!(
            codes(r#"{"title":"t","priority":null}"#),
            [pair("priority", "null")]
        );
    }

    #[test]
    fn due_date_must_be_a_real_date() {
        assert_eq!(
            codes(r#"{"title":"t","due_date":"2026-02-30"}"#),
            [pair("due_date", "invalid_date")]
        );
        assert_eq!(
            codes(r#"{"title":"t","due_date":"tomorrow"}"#),
            [pair("due_date", "invalid_date")]
        );
        assert_eq!(
            codes(r#"{"title":"t","due_date":20261201}"#),
            [pair("due_date", "invalid_type")]
        );
    }

    #[test]
    fn completed_must_be_a_boolean() {
        assert_eq!(
            codes(r#"{"title":"t","completed":"yes"}"#),
            [pair("completed", "invalid_type")]
        );
        assert_eq!(
            codes(r#"{"title":"t","completed":null}"#),
            [pair("completed", "null")]
        );
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        assert_eq!(
            codes(r#"{"title":"t","colour":"red","tags":[]}"#),
            [
                pair("colour", "unknown_field"),
                pair("tags", "unknown_field")
            ]
        );
    }

    #[test]
    fn server_owned_fields_are_ignored() {
        let t = parse_new_task(
            br#"{"title":"t","id":7,"user_id":"someone","created_at":"x","updated_at":1,"completed_at":null}"#,
        );
        assert!(t.is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let got =
            codes(r#"{"title":"","priority":"x","due_date":"2026-13-01","completed":1,"extra":0}"#);
        assert_eq!(got.len(), 5, "{got:?}");
    }

    #[test]
    fn body_that_is_not_json_is_malformed() {
        assert!(matches!(
            parse_new_task(b"{"),
            Err(ApiError::MalformedBody(_))
        ));
        assert!(matches!(
            parse_new_task(b""),
            Err(ApiError::MalformedBody(_))
        ));
    }

    #[test]
    fn body_that_is_not_an_object_is_malformed() {
        for body in [&b"[]"[..], b"\"title\"", b"null", b"42"] {
            assert!(matches!(
                parse_new_task(body),
                Err(ApiError::MalformedBody(_))
            ));
        }
    }

    #[test]
    fn update_with_only_server_owned_fields_changes_nothing_and_is_refused() {
        assert_eq!(
            field_errors(parse_patch(br#"{"id":1}"#)),
            [pair("body", "no_changes")]
        );
        assert_eq!(
            field_errors(parse_patch(b"{}")),
            [pair("body", "no_changes")]
        );
    }

    #[test]
    fn update_may_clear_description_and_due_date() {
        let p = parse_patch(br#"{"description":null,"due_date":null}"#).unwrap();
        assert_eq!(p.description(), Some(None));
        assert_eq!(p.due_date(), Some(None));
        assert_eq!(p.title(), None);
    }

    #[test]
    fn update_refuses_null_for_title_priority_and_completed() {
        let got = field_errors(parse_patch(
            br#"{"title":null,"priority":null,"completed":null}"#,
        ));
        assert_eq!(
            got,
            [
                pair("completed", "null"),
                pair("priority", "null"),
                pair("title", "null")
            ]
        );
    }

    #[test]
    fn completion_without_body_or_with_empty_object_toggles() {
        assert_eq!(parse_completion(b"").unwrap(), Completion::Toggle);
        assert_eq!(parse_completion(b"{}").unwrap(), Completion::Toggle);
    }

    #[test]
    fn completion_with_a_boolean_sets() {
        assert_eq!(
            parse_completion(br#"{"completed":true}"#).unwrap(),
            Completion::Set(true)
        );
        assert_eq!(
            parse_completion(br#"{"completed":false}"#).unwrap(),
            Completion::Set(false)
        );
    }

    #[test]
    fn completion_refuses_other_fields_and_null() {
        assert_eq!(
            field_errors(parse_completion(br#"{"title":"x"}"#)),
            [pair("title", "unknown_field")]
        );
        assert_eq!(
            field_errors(parse_completion(br#"{"completed":null}"#)),
            [pair("completed", "null")]
        );
    }

    #[test]
    fn credentials_report_every_problem() {
        let codes = |body: &str| match parse_credentials(body.as_bytes()) {
            Err(ApiError::Validation(e)) => e
                .into_iter()
                .map(|e| (e.field.into_owned(), e.code))
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            codes(r#"{"email":"nope","password":"short","extra":1}"#),
            [
                ("email".to_owned(), "invalid_email"),
                ("extra".to_owned(), "unknown_field"),
                ("password".to_owned(), "password_length"),
            ]
        );
        assert_eq!(
            codes(r#"{"email":null}"#),
            [
                ("email".to_owned(), "invalid_type"),
                ("password".to_owned(), "required"),
            ]
        );
        assert!(matches!(
            parse_credentials(b"[]"),
            Err(ApiError::MalformedBody(_))
        ));
        let (e, _) = parse_credentials(br#"{"email":" A@B.co ","password":"12345678"}"#).unwrap();
        assert_eq!(e.as_str(), "A@B.co");
    }
}
