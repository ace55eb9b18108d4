//! `GET /openapi.json`: an OpenAPI 3.1 document of the whole contract.
//!
//! Paths are generated from the route table, so every route appears under each of its
//! bases; operations, schemas and responses are written once here. A test walks the
//! document against the router so that neither can drift from the other.
//!
//! The document says exactly what the service accepts, so that a tool generating requests
//! from it (schemathesis, `tests/schemathesis/`) finds every valid request accepted and every
//! invalid one refused: each limit is the constant its validator checks, and each text rule
//! (trimming, control characters, the email's shape, entity tags) is a `pattern` built from
//! the same definitions. `core/tests/openapi_schemas.rs` checks the patterns against the
//! validators and real responses against the schemas.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::auth::throttle::{
    LOGIN_WINDOW_SECS, MAX_FAILED_LOGINS_PER_ADDR, MAX_FAILED_LOGINS_PER_EMAIL,
    MAX_REGISTRATIONS_PER_ADDR,
};
use crate::auth::tokens::{MAX_ACCESS_TOKEN_TTL_SECS, MIN_ACCESS_TOKEN_TTL_SECS};
use crate::domain::account::{EMAIL_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use crate::domain::ids::USER_ID_MAX_CHARS;
use crate::domain::listing::{DEFAULT_LIMIT, MAX_LIMIT, MAX_SEARCH_CHARS, SortKey};
use crate::domain::task::{DESCRIPTION_MAX_CHARS, Priority, TITLE_MAX_CHARS};
use crate::http::body::{MAX_BODY_BYTES, SERVER_OWNED};
use crate::http::response::VERSION;
use crate::http::routes::{Endpoint, OTHER_PATHS, TASK_BASES, TASK_PATHS};
use crate::store::tasks::IDEMPOTENCY_KEY_MAX_CHARS;

/// The document, serialized once.
pub(crate) fn document_bytes() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_vec(&document()).unwrap_or_default())
}

/// The OpenAPI document as JSON.
///
/// ```
/// let doc = task_api_core::openapi_document();
/// assert_eq!(doc["openapi"], "3.1.0");
/// assert!(doc["paths"]["/api/v1/tasks/{id}"]["patch"].is_object());
/// ```
pub fn openapi_document() -> Value {
    document()
}

fn document() -> Value {
    let mut paths = Map::new();
    for (path, endpoint) in OTHER_PATHS {
        let suffix = match path {
            "/web/app.js" => "Script",
            "/web/app.css" => "Styles",
            "/web/icon.svg" => "Icon",
            p if p.starts_with("/api/") => "Api",
            _ => "",
        };
        paths.insert(path.to_owned(), path_item(endpoint, suffix, None));
    }
    for (b, base) in TASK_BASES.iter().enumerate() {
        // The user-scoped bases' `{user_id}`: which segments route elsewhere depends on the
        // base (`/api/v1/tasks` is the token-scoped base, `/api/v1/v1/tasks` user v1's).
        let user = match b {
            0 => Some("UserId"),
            1 => Some("UserIdV1"),
            _ => None,
        };
        let suffix = ["ForUser", "ForUserV1", "", "V1"][b];
        for (p, (path, endpoint)) in TASK_PATHS.iter().enumerate() {
            let suffix = if p == 3 {
                format!("{suffix}ToggleStatus")
            } else {
                suffix.to_owned()
            };
            paths.insert(format!("{base}{path}"), path_item(*endpoint, &suffix, user));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Task API",
            "version": VERSION,
            "description": "A multi-user task service. Every task route exists under four bases: `/api/{user_id}` and `/api/v1/{user_id}` (the path names the user, who must be the token's user, else 403) and `/api`, `/api/v1` (the token's user). The built-in accounts routes (`/auth/…`, also under `/api/auth/…`) exist only when the `accounts` setting is on; otherwise they are 404. `/` answers a JSON index; with the `web_ui` setting on, a browser gets a web page there that uses this API (its files are under `/web/`). Errors are RFC 9457 problem documents. Every response carries `X-Request-Id`; every route also answers `OPTIONS` (204 with `Allow`, or a CORS preflight), every `GET` route `HEAD`, and other methods 405 with `Allow`.",
        },
        "paths": paths,
        "components": components(),
    })
}

/// The operations of one path. `user` names the `{user_id}` parameter of a user-scoped
/// task base; `None` elsewhere.
fn path_item(endpoint: Endpoint, suffix: &str, user: Option<&str>) -> Value {
    let base = Base { suffix, user };
    let (mut item, params) = match endpoint {
        Endpoint::Health
        | Endpoint::Ready
        | Endpoint::Index
        | Endpoint::WebAsset
        | Endpoint::OpenApi => (service_item(endpoint, suffix), Vec::new()),
        Endpoint::Register | Endpoint::Login | Endpoint::Logout | Endpoint::Me => {
            (account_item(endpoint, &base), Vec::new())
        }
        Endpoint::TaskCollection => (collection_item(&base), base.parameters(false)),
        Endpoint::TaskItem => (task_item(&base), base.parameters(true)),
        Endpoint::TaskCompletion => (completion_item(&base), base.parameters(true)),
    };
    if !params.is_empty() {
        item.insert("parameters".into(), Value::Array(params));
    }
    Value::Object(item)
}

/// One of the four bases a task route is served under: its operation ids' `suffix`, and
/// the `{user_id}` parameter of a user-scoped base.
struct Base<'a> {
    suffix: &'a str,
    user: Option<&'a str>,
}

impl Base<'_> {
    fn scoped(&self) -> bool {
        self.user.is_some()
    }

    /// The path's parameters: the base's user, then the task id.
    fn parameters(&self, task_id: bool) -> Vec<Value> {
        let mut params = Vec::new();
        if let Some(user) = self.user {
            params.push(json!({ "$ref": format!("#/components/parameters/{user}") }));
        }
        if task_id {
            params.push(json!({ "$ref": "#/components/parameters/TaskId" }));
        }
        params
    }

    /// An operation behind the bearer token, named for this base.
    fn op(&self, id: &str, summary: &str, extra: Value) -> Value {
        let mut o = json!({
            "operationId": format!("{id}{}", self.suffix),
            "summary": summary,
            "security": [{ "bearer": [] }],
        });
        if let (Value::Object(o), Value::Object(extra)) = (&mut o, extra) {
            o.extend(extra);
        }
        o
    }

    /// A task route's 400: a user-scoped base adds the path user's.
    fn bad_request(&self, what: &str) -> Value {
        if self.scoped() {
            problem(&format!(
                "{what}; or the path's user_id is not a user id (invalid_parameter naming user_id)"
            ))
        } else {
            problem(what)
        }
    }

    /// The statuses every task route shares, and `extra`: a user-scoped base adds the 403.
    fn task_shared(&self, extra: &[&'static str]) -> Vec<&'static str> {
        let mut s = vec!["401", "500", "503"];
        if self.scoped() {
            s.push("403");
        }
        s.extend_from_slice(extra);
        s
    }
}

/// The 400 of a malformed `If-Match`.
const BAD_TAGS: &str = "If-Match is not * or a list of entity tags (invalid_header)";

/// The service's own routes: health, readiness, the index, the web page's files, this
/// document.
fn service_item(endpoint: Endpoint, suffix: &str) -> Map<String, Value> {
    let mut item = Map::new();
    match endpoint {
        Endpoint::Health => {
            item.insert(
                "get".into(),
                json!({
                    "operationId": "health", "summary": "Liveness: no auth, no database",
                    "responses": { "200": { "description": "Alive", "content": json_of("Health") } }
                }),
            );
        }
        Endpoint::Ready => {
            item.insert("get".into(), json!({
                "operationId": "ready", "summary": "Readiness: one cheap database round trip",
                "responses": responses(json!({
                    "200": { "description": "Ready", "content": json_of("Ready") },
                    "503": { "description": "Database unreachable", "headers": { "Retry-After": { "$ref": "#/components/headers/RetryAfter" } },
                             "content": json_of("Ready") },
                }), &["500"]),
            }));
        }
        Endpoint::Index => {
            item.insert("get".into(), json!({
                "operationId": "index",
                "summary": "A JSON index of the service; a browser (Accept preferring text/html) gets the web page instead when the web_ui setting is on",
                "parameters": [{ "$ref": "#/components/parameters/IfNoneMatchFile" }],
                "responses": {
                    "200": { "description": "The index (or the page)", "headers": { "Vary": { "$ref": "#/components/headers/VaryAccept" } },
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Index" } }, "text/html": { "schema": { "type": "string" } } } },
                    "304": { "description": "The page, not modified (If-None-Match matched)", "headers": { "ETag": { "$ref": "#/components/headers/FileETag" } } },
                }
            }));
        }
        Endpoint::WebAsset => {
            let (media, kind) = match suffix {
                "Script" => ("text/javascript", "script"),
                "Styles" => ("text/css", "style sheet"),
                _ => ("image/svg+xml", "icon"),
            };
            item.insert("get".into(), json!({
                "operationId": format!("web{suffix}"),
                "summary": format!("The web page's {kind}; 404 for every method unless the web_ui setting is on"),
                "parameters": [{ "$ref": "#/components/parameters/IfNoneMatchFile" }],
                "responses": responses(json!({
                    "200": { "description": format!("The {kind}"), "headers": { "ETag": { "$ref": "#/components/headers/FileETag" } }, "content": { (media): { "schema": { "type": "string" } } } },
                    "304": { "description": "Not modified (If-None-Match matched)", "headers": { "ETag": { "$ref": "#/components/headers/FileETag" } } },
                    "404": problem("The web_ui setting is off: the file does not exist"),
                }), &["500"]),
            }));
        }
        Endpoint::OpenApi => {
            item.insert("get".into(), json!({
                "operationId": "openapi", "summary": "This document",
                "responses": { "200": { "description": "The OpenAPI document", "content": { "application/json": {} } } }
            }));
        }
        _ => unreachable!("path_item sends only the service's routes here"),
    }
    item
}

/// The built-in accounts' routes.
fn account_item(endpoint: Endpoint, base: &Base<'_>) -> Map<String, Value> {
    let (suffix, op) = (base.suffix, |id: &str, summary: &str, extra: Value| {
        base.op(id, summary, extra)
    });
    let mut item = Map::new();
    match endpoint {
        Endpoint::Register | Endpoint::Login => {
            let (id, summary, mut ok) = if endpoint == Endpoint::Register {
                (
                    "register",
                    "Create an account and get a token",
                    json!({
                        "201": { "description": "Registered", "headers": { "Cache-Control": { "$ref": "#/components/headers/NoStore" } }, "content": json_of("TokenItem") },
                        "409": problem("An account with this email exists (email_taken)"),
                        "429": too_many(&format!("More than {MAX_REGISTRATIONS_PER_ADDR} registrations from this client address in this {}-minute window (too_many_attempts)", LOGIN_WINDOW_SECS / 60)),
                    }),
                )
            } else {
                (
                    "login",
                    "Exchange an email and password for a token",
                    json!({
                        "200": { "description": "Logged in", "headers": { "Cache-Control": { "$ref": "#/components/headers/NoStore" } }, "content": json_of("TokenItem") },
                        "401": problem("The email or password is not correct (invalid_credentials): one answer for both"),
                        "429": too_many(&format!("More than {MAX_FAILED_LOGINS_PER_EMAIL} failed logins for this email, or {MAX_FAILED_LOGINS_PER_ADDR} from this client address, in this {}-minute window (too_many_attempts)", LOGIN_WINDOW_SECS / 60)),
                    }),
                )
            };
            ok["404"] = accounts_off();
            item.insert(
                "post".into(),
                json!({
                    "operationId": format!("{id}{suffix}"), "summary": summary, "security": [],
                    "requestBody": { "required": true, "content": json_of("Credentials") },
                    "responses": responses(ok, &["400", "413", "415", "422", "500", "503"]),
                }),
            );
        }
        Endpoint::Logout => {
            item.insert("post".into(), json!({
                "operationId": format!("logout{suffix}"),
                "summary": "Tokens are stateless: the client drops its token. No body is read; a token is not required and not checked",
                "security": [],
                "responses": responses(json!({ "204": { "description": "Logged out" }, "404": accounts_off() }), &["500"]),
            }));
        }
        Endpoint::Me => {
            item.insert("get".into(), op("me", "The account of the token's user", json!({
                "responses": responses(json!({
                    "200": { "description": "The account", "content": json_of("UserItem") },
                    "404": problem("The token is valid but its user has no built-in account (a token from another issuer); or the accounts setting is off"),
                }), &["401", "500", "503"]),
            })));
        }
        _ => unreachable!("path_item sends only the accounts' routes here"),
    }
    item
}

/// `/tasks`: list, create, clear the completed.
fn collection_item(base: &Base<'_>) -> Map<String, Value> {
    let mut item = Map::new();
    let list_params: Vec<Value> = [
        "Status",
        "Priority",
        "Q",
        "DueBefore",
        "DueAfter",
        "Sort",
        "Limit",
        "Cursor",
    ]
    .iter()
    .map(|p| json!({ "$ref": format!("#/components/parameters/{p}") }))
    .collect();
    item.insert("get".into(), base.op("listTasks", "List the user's tasks", json!({
                "parameters": list_params,
                "responses": responses(json!({
                    "200": { "description": "One page", "content": json_of("TaskList") },
                    "400": base.bad_request("A query parameter is not valid, or is empty, or a cursor was not issued for this query; each is named in errors (invalid_parameter)"),
                }), &base.task_shared(&[])),
            })));
    item.insert("post".into(), base.op("createTask", "Create a task", json!({
                "parameters": [{ "$ref": "#/components/parameters/IdempotencyKey" }],
                "requestBody": { "required": true, "content": json_of("NewTask") },
                "responses": responses(json!({
                    "201": { "description": "Created (or replayed for the same Idempotency-Key and body)",
                             "headers": {
                                 "Location": { "required": true, "description": "The task's URL under the base of the request", "schema": { "type": "string", "pattern": "^/api/.+/[1-9][0-9]*$" } },
                                 "ETag": { "$ref": "#/components/headers/ETag" },
                                 "Idempotent-Replayed": { "description": "On a replay only", "schema": { "const": "true" } },
                             },
                             "content": json_of("TaskItem") },
                    "400": base.bad_request(&format!("Malformed JSON or not an object (malformed_body), or an Idempotency-Key that is not 1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters (invalid_header)")),
                    "404": problem("A replay (same Idempotency-Key and body) of a create whose task was deleted since"),
                    "422": problem("Validation failed (validation_failed), or the Idempotency-Key was used with another body in the last 24 hours (idempotency_key_reused)"),
                }), &base.task_shared(&["413", "415"])),
            })));
    item.insert("delete".into(), base.op("clearCompletedTasks", "Delete the user's completed tasks (status=completed is required)", json!({
                "parameters": [{ "name": "status", "in": "query", "required": true, "schema": { "const": "completed" } }],
                "responses": responses(json!({
                    "200": { "description": "How many were deleted", "content": json_of("Deleted") },
                    "400": base.bad_request("status=completed is missing (invalid_parameter naming status)"),
                }), &base.task_shared(&[])),
            })));
    item
}

/// `/tasks/{id}`: read, update, delete.
fn task_item(base: &Base<'_>) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("get".into(), base.op("getTask", "One task", json!({
                "parameters": [{ "$ref": "#/components/parameters/IfNoneMatch" }],
                "responses": responses(json!({
                    "200": task_response("The task"),
                    "304": { "description": "Not modified (If-None-Match matched)", "headers": { "ETag": { "$ref": "#/components/headers/ETag" } } },
                    "400": base.bad_request("If-None-Match is not * or a list of entity tags (invalid_header)"),
                }), &base.task_shared(&["404"])),
            })));
    for (method, id) in [("put", "replaceTask"), ("patch", "updateTask")] {
        item.insert(method.into(), base.op(id, "Partial update: fields sent change, fields absent stay", json!({
                    "parameters": [{ "$ref": "#/components/parameters/IfMatch" }],
                    "requestBody": { "required": true, "content": json_of("TaskUpdate") },
                    "responses": responses(json!({
                        "200": task_response("The task as updated"),
                        "400": base.bad_request(&format!("Malformed JSON or not an object (malformed_body), or {BAD_TAGS}")),
                    }), &base.task_shared(&["404", "412", "413", "415", "422"])),
                })));
    }
    item.insert(
        "delete".into(),
        base.op(
            "deleteTask",
            "Delete a task",
            json!({
                "parameters": [{ "$ref": "#/components/parameters/IfMatch" }],
                "responses": responses(json!({
                    "204": { "description": "Deleted" },
                    "400": base.bad_request(BAD_TAGS),
                }), &base.task_shared(&["404", "412"])),
            }),
        ),
    );
    item
}

/// `/tasks/{id}/complete` (and its alias): toggle or set.
fn completion_item(base: &Base<'_>) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("patch".into(), base.op("completeTask", "No body or {}: toggle; {\"completed\": bool}: set", json!({
                "parameters": [{ "$ref": "#/components/parameters/IfMatch" }],
                "requestBody": { "required": false, "description": "May be left out, whatever the Content-Type", "content": json_of("Completion") },
                "responses": responses(json!({
                    "200": task_response("The task as changed"),
                    "400": base.bad_request(&format!("Malformed JSON or not an object (malformed_body), or {BAD_TAGS}")),
                }), &base.task_shared(&["404", "412", "413", "415", "422"])),
            })));
    item
}

fn json_of(schema: &str) -> Value {
    json!({ "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } })
}

fn problem(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
}

/// The accounts routes' 404: with `accounts` off they do not exist.
fn accounts_off() -> Value {
    problem("The accounts setting is off: the route does not exist (not_found)")
}

fn too_many(description: &str) -> Value {
    json!({ "description": description,
            "headers": { "Retry-After": { "$ref": "#/components/headers/RetryAfter" } },
            "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
}

fn task_response(description: &str) -> Value {
    json!({ "description": description, "headers": { "ETag": { "$ref": "#/components/headers/ETag" } }, "content": json_of("TaskItem") })
}

/// `own` plus the shared responses named by status.
fn responses(own: Value, shared: &[&str]) -> Value {
    let mut map = match own {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for status in shared {
        map.entry(*status)
            .or_insert_with(|| json!({ "$ref": format!("#/components/responses/{status}") }));
    }
    Value::Object(map)
}

// The text rules as regular-expression pieces (ECMA 262, as JSON Schema's `pattern`, and
// also valid for Python's `re` and Rust's `regex`, which test tools use). Each is the
// definition the validators use, so a pattern built from them says exactly which texts are
// accepted; `core/tests/openapi_schemas.rs` checks them against the validators.

/// Unicode category Cc, as a class body: [`crate::domain::field::is_control`].
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";
/// Cc without tab, newline and carriage return: what a description may not hold.
const CONTROL_BUT_LINE_BREAKS: &str = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f";
/// Unicode White_Space (`char::is_whitespace`), as a class body: what `str::trim` drops.
const WHITESPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A text that is trimmed and must then be 1 to `max` characters without a control
/// character (a title, `q`): whitespace of any kind around, a non-blank middle.
fn trimmed_text(max: usize) -> String {
    let solid = format!("[^{CONTROL}{WHITESPACE}]");
    format!(
        "^[{WHITESPACE}]*{solid}(?:[^{CONTROL}]{{0,{}}}{solid})?[{WHITESPACE}]*$",
        max - 2
    )
}

/// A description: trailing whitespace is trimmed; what is left is at most
/// [`DESCRIPTION_MAX_CHARS`] characters without control characters but tab, newline and
/// carriage return (empty is no description).
fn description_pattern() -> String {
    format!(
        "^(?:[^{CONTROL_BUT_LINE_BREAKS}]{{0,{}}}[^{CONTROL}{WHITESPACE}])?[{WHITESPACE}]*$",
        DESCRIPTION_MAX_CHARS - 1
    )
}

/// An email as [`crate::Email::parse`] takes it: trimmed; one `@`; a non-empty local part;
/// a domain of two or more non-empty dot-separated labels; no whitespace or control
/// character inside.
fn email_pattern() -> String {
    let local = format!("[^@{CONTROL}{WHITESPACE}]+");
    let label = format!("[^@.{CONTROL}{WHITESPACE}]+");
    format!(r"^[{WHITESPACE}]*{local}@{label}(?:\.{label})+[{WHITESPACE}]*$")
}

/// `If-Match` / `If-None-Match` as the handler reads them: `*` or entity tags (strong or
/// `W/`, quoted, no `"` or `,` inside), comma-separated, empty list elements allowed. The
/// opaque part holds what a header value may (visible ASCII, space, tab). HTTP drops
/// whitespace around a header value, so the pattern has none there.
fn entity_tags_pattern() -> String {
    let tag = r#"(?:\*|(?:W/)?"[\t !#-+\x2d-~]*")"#;
    format!(r"^(?:,[ \t]*)*{tag}(?:[ \t]*,(?:[ \t]*{tag})?)*$")
}

/// A path `{user_id}`: a [`crate::UserId`] (1 to [`USER_ID_MAX_CHARS`] characters, no
/// control character), minus the segments that make the path another route.
fn user_id_parameter(name: &str, routes_elsewhere: &[&str]) -> Value {
    let elsewhere = routes_elsewhere
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    json!({
        "name": name, "in": "path", "required": true,
        "description": format!("Must equal the token's sub (else 403); compared after percent-decoding. One that is not 1 to {USER_ID_MAX_CHARS} characters of percent-encoded UTF-8 without control characters is a 400 (invalid_parameter naming user_id). {elsewhere} makes the path the token-scoped base's route (`/api/tasks…`, `/api/v1/tasks…`), answered as that route."),
        "schema": {
            "type": "string", "minLength": 1, "maxLength": USER_ID_MAX_CHARS,
            "pattern": format!("^[^{CONTROL}]*$"),
            "not": { "enum": routes_elsewhere },
        },
    })
}

fn components() -> Value {
    json!({
        "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
        "headers": header_components(),
        "parameters": parameter_components(),
        "responses": response_components(),
        "schemas": schemas(),
    })
}

fn header_components() -> Value {
    json!({
        "ETag": { "description": "Strong entity tag of the task", "required": true, "schema": { "type": "string", "pattern": "^\"v[1-9][0-9]*\"$" } },
        "FileETag": { "description": "Strong entity tag of the file's bytes", "required": true, "schema": { "type": "string", "pattern": "^\"[0-9a-f]{16}\"$" } },
        "RetryAfter": { "description": "Seconds to wait", "required": true, "schema": { "type": "integer", "minimum": 1 } },
        "NoStore": { "description": "Responses carrying a token are not cached", "required": true, "schema": { "const": "no-store" } },
        "VaryAccept": { "description": "The answer depends on Accept (and Origin, as every answer)", "required": true, "schema": { "type": "string", "pattern": "Accept" } },
    })
}

fn parameter_components() -> Value {
    let priorities: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
    let one_priority = format!("(?:{})", priorities.join("|"));
    let sorts: Vec<String> = SortKey::NAMES
        .iter()
        .flat_map(|(name, _)| [(*name).to_owned(), format!("-{name}")])
        .collect();
    json!({
        "UserId": user_id_parameter("user_id", &["tasks", "v1"]),
        "UserIdV1": user_id_parameter("user_id", &["tasks"]),
        "TaskId": { "name": "id", "in": "path", "required": true, "description": "A positive 64-bit integer; anything else is a 404", "schema": { "type": "integer", "minimum": 1, "maximum": i64::MAX } },
        "Status": { "name": "status", "in": "query", "description": "Surrounding whitespace is trimmed", "schema": { "enum": ["all", "pending", "completed"], "default": "all" } },
        "Priority": { "name": "priority", "in": "query", "description": format!("One or more of {}, comma-separated; whitespace around each is trimmed", priorities.join(", ")),
                      "schema": { "type": "string", "pattern": format!("^ *{one_priority} *(?:, *{one_priority} *)*$") } },
        "Q": { "name": "q", "in": "query", "description": format!("Text searched case-insensitively in title and description; trimmed, then 1 to {MAX_SEARCH_CHARS} characters without control characters"),
               "schema": { "type": "string", "pattern": trimmed_text(MAX_SEARCH_CHARS) } },
        "DueBefore": { "name": "due_before", "in": "query", "description": "Inclusive", "schema": { "type": "string", "format": "date" } },
        "DueAfter": { "name": "due_after", "in": "query", "description": "Inclusive", "schema": { "type": "string", "format": "date" } },
        "Sort": { "name": "sort", "in": "query", "description": "Surrounding whitespace is trimmed", "schema": { "enum": sorts, "default": "-created_at" } },
        "Limit": { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT } },
        "Cursor": { "name": "cursor", "in": "query", "description": "The next_cursor of the previous page of the same query (same filters and sort; the limit may change). Only a cursor the service issued is valid: any other is a 400 naming cursor.", "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]+$" } },
        "IdempotencyKey": { "name": "Idempotency-Key", "in": "header",
                            "description": format!("1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters (HTTP drops spaces around a header value). The same key and body within 24 hours replays the first answer; the same key with another body is a 422 (idempotency_key_reused)."),
                            "schema": { "type": "string", "pattern": format!("^[!-~](?:[ -~]{{0,{}}}[!-~])?$", IDEMPOTENCY_KEY_MAX_CHARS - 2) } },
        "IfMatch": { "name": "If-Match", "in": "header", "description": "* or a list of entity tags; weak tags never match. A stale tag is a 412 and changes nothing; a missing task is a 404 all the same.", "schema": { "type": "string", "pattern": entity_tags_pattern() } },
        "IfNoneMatch": { "name": "If-None-Match", "in": "header", "description": "* or a list of entity tags, compared weakly: a match is a 304", "schema": { "type": "string", "pattern": entity_tags_pattern() } },
        "IfNoneMatchFile": { "name": "If-None-Match", "in": "header", "description": "Read only for the web page and its files (web_ui on): * or the file's tag (also weak) among comma-separated values is a 304; any other value is ignored", "schema": { "type": "string" } },
    })
}

fn response_components() -> Value {
    json!({
        "400": problem("Malformed request"),
        "401": { "description": "Missing or invalid bearer token (unauthorized)",
                 "headers": { "WWW-Authenticate": { "required": true, "schema": { "type": "string", "pattern": "^Bearer realm=\"tasks\"" } } },
                 "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
        "403": problem("The path names another user than the token (forbidden)"),
        "404": problem("No such task for this user, or an id that is not a positive 64-bit integer (not_found)"),
        "412": problem("If-Match does not match the current ETag (precondition_failed)"),
        "413": problem(&format!("Body larger than {} KiB (payload_too_large)", MAX_BODY_BYTES / 1024)),
        "415": problem("Body is not application/json (unsupported_media_type)"),
        "422": problem("Validation failed; every field problem is listed (validation_failed)"),
        "500": problem("Internal error or misconfiguration; details are logged under the request_id"),
        "503": { "description": "Database unreachable", "headers": { "Retry-After": { "$ref": "#/components/headers/RetryAfter" } },
                 "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
    })
}

fn schemas() -> Value {
    let date = json!({ "type": ["string", "null"], "format": "date", "examples": ["2026-12-01"] });
    let timestamp = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$";
    let priorities: Vec<&str> = Priority::ALL.iter().map(|p| p.as_str()).collect();
    // Server-owned fields are ignored whatever they hold; any other unknown field is a 422.
    let server_owned = |mut props: Value| -> Value {
        if let Value::Object(p) = &mut props {
            for field in SERVER_OWNED {
                p.insert(
                    field.into(),
                    json!({ "description": "Server-owned: ignored, whatever its value" }),
                );
            }
        }
        props
    };
    let changeable = json!({
        "title": { "type": "string", "pattern": trimmed_text(TITLE_MAX_CHARS),
                   "description": format!("Trimmed, then 1 to {TITLE_MAX_CHARS} characters without control characters (tab and newline included)") },
        "description": { "type": ["string", "null"], "pattern": description_pattern(),
                         "description": format!("Trailing whitespace trimmed, then at most {DESCRIPTION_MAX_CHARS} characters without control characters other than tab, newline and carriage return; empty is null") },
        "priority": { "$ref": "#/components/schemas/Priority" },
        "due_date": date,
        "completed": { "type": "boolean" },
    });
    let mut new_task = changeable.clone();
    new_task["priority"] = json!({ "$ref": "#/components/schemas/Priority", "default": "medium" });
    new_task["completed"] = json!({ "type": "boolean", "default": false });
    // Each branch repeats its property's schema: schemathesis cannot generate bodies for
    // branches that only list `required` beside `additionalProperties: false`.
    let at_least_one: Vec<Value> = changeable
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| json!({ "required": [k], "properties": { (k.as_str()): v } }))
        .collect();
    json!({
        "Task": {
            "type": "object",
            "required": ["id", "user_id", "title", "description", "completed", "priority", "due_date", "created_at", "updated_at", "completed_at"],
            "properties": {
                "id": { "type": "integer", "minimum": 1, "maximum": i64::MAX },
                "user_id": { "type": "string", "minLength": 1, "maxLength": USER_ID_MAX_CHARS, "pattern": format!("^[^{CONTROL}]*$") },
                "title": { "type": "string", "minLength": 1, "maxLength": TITLE_MAX_CHARS, "pattern": trimmed_text(TITLE_MAX_CHARS) },
                "description": { "type": ["string", "null"], "minLength": 1, "maxLength": DESCRIPTION_MAX_CHARS },
                "completed": { "type": "boolean" },
                "priority": { "$ref": "#/components/schemas/Priority" },
                "due_date": date,
                "created_at": { "type": "string", "format": "date-time", "pattern": timestamp },
                "updated_at": { "type": "string", "format": "date-time", "pattern": timestamp },
                "completed_at": { "type": ["string", "null"], "format": "date-time", "pattern": timestamp },
            },
        },
        "Priority": { "enum": priorities },
        "NewTask": {
            "type": "object",
            "description": "Server-owned fields (id, user_id, created_at, updated_at, completed_at) are ignored; any other unknown field is a 422.",
            "required": ["title"],
            "additionalProperties": false,
            "properties": server_owned(new_task),
        },
        "TaskUpdate": {
            "type": "object",
            "description": "At least one changeable field (else 422 no_changes); null is refused for title, priority and completed. Server-owned fields are ignored; any other unknown field is a 422.",
            "additionalProperties": false,
            "anyOf": at_least_one,
            "properties": server_owned(changeable),
        },
        "Completion": {
            "type": "object", "additionalProperties": false,
            "properties": server_owned(json!({ "completed": { "type": "boolean" } })),
        },
        "TaskItem": { "type": "object", "required": ["data"], "properties": { "data": { "$ref": "#/components/schemas/Task" } } },
        "TaskList": {
            "type": "object", "required": ["data", "meta"],
            "properties": {
                "data": { "type": "array", "maxItems": MAX_LIMIT, "items": { "$ref": "#/components/schemas/Task" } },
                "meta": { "type": "object", "required": ["total", "limit", "next_cursor"], "properties": {
                    "total": { "type": "integer", "minimum": 0, "description": "Tasks matching the filters, not only this page" },
                    "limit": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT },
                    "next_cursor": { "type": ["string", "null"], "pattern": "^[A-Za-z0-9_-]+$" },
                } },
            },
        },
        "Deleted": { "type": "object", "required": ["data"], "properties": { "data": { "type": "object", "required": ["deleted"], "properties": { "deleted": { "type": "integer", "minimum": 0 } } } } },
        "Index": {
            "type": "object", "required": ["name", "version", "links"],
            "properties": {
                "name": { "const": "task-api" },
                "version": { "const": VERSION },
                "links": { "type": "object", "required": ["openapi", "health", "ready"], "properties": {
                    "openapi": { "const": "/openapi.json" }, "health": { "const": "/health" }, "ready": { "const": "/health/ready" },
                } },
            },
        },
        "Health": { "type": "object", "required": ["status", "version"], "properties": { "status": { "const": "ok" }, "version": { "const": VERSION } } },
        "Ready": { "type": "object", "required": ["status", "database"], "properties": { "status": { "enum": ["ok", "unavailable"] }, "database": { "enum": ["ok", "unreachable"] } } },
        "Credentials": {
            "type": "object", "required": ["email", "password"], "additionalProperties": false,
            "properties": {
                "email": { "type": "string", "maxLength": EMAIL_MAX_CHARS, "pattern": email_pattern(),
                           "description": format!("Trimmed; one @, a non-empty local part, a domain of two or more non-empty dot-separated labels, no whitespace or control characters; at most {EMAIL_MAX_CHARS} characters also once lower-cased; compared case-insensitively (invalid_email)") },
                "password": { "type": "string", "minLength": PASSWORD_MIN_CHARS, "maxLength": PASSWORD_MAX_CHARS,
                              "description": format!("{PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters, taken as sent (password_length)") },
            },
        },
        "User": {
            "type": "object", "required": ["id", "email", "created_at"],
            "properties": {
                "id": { "type": "string", "pattern": "^u_[0-9a-f]{24}$" },
                "email": { "type": "string", "minLength": 3, "maxLength": EMAIL_MAX_CHARS },
                "created_at": { "type": "string", "format": "date-time", "pattern": timestamp },
            },
        },
        "UserItem": { "type": "object", "required": ["data"], "properties": { "data": { "$ref": "#/components/schemas/User" } } },
        "TokenItem": {
            "type": "object", "required": ["data"],
            "properties": { "data": { "type": "object", "required": ["access_token", "token_type", "expires_in", "user"], "properties": {
                "access_token": { "type": "string", "description": "An HS256 JWT whose sub is the user id" },
                "token_type": { "const": "bearer" },
                "expires_in": { "type": "integer", "minimum": MIN_ACCESS_TOKEN_TTL_SECS, "maximum": MAX_ACCESS_TOKEN_TTL_SECS, "description": "Seconds until the token expires" },
                "user": { "$ref": "#/components/schemas/User" },
            } } },
        },
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "detail", "code", "request_id"],
            "properties": {
                "type": { "type": "string", "pattern": "^urn:task-api:problem:[a-z_]+$" },
                "title": { "type": "string" },
                "status": { "type": "integer", "minimum": 400, "maximum": 599 },
                "detail": { "type": "string" }, "code": { "type": "string", "pattern": "^[a-z_]+$" }, "request_id": { "type": "string", "minLength": 1 },
                "errors": { "type": "array", "minItems": 1, "items": { "type": "object", "required": ["field", "code", "message"], "properties": {
                    "field": { "type": "string" }, "code": { "type": "string" }, "message": { "type": "string" } } } },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::{resolve, templates};

    /// The methods a route documents or allows, without HEAD and OPTIONS (implied for all).
    fn documented(doc: &Value, path: &str) -> Vec<String> {
        let mut m: Vec<String> = doc["paths"][path]
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| *k != "parameters")
                    .map(|k| k.to_uppercase())
                    .collect()
            })
            .unwrap_or_default();
        m.sort();
        m
    }

    #[test]
    fn every_route_is_documented_with_exactly_its_methods() {
        let doc = document();
        for (template, endpoint) in templates() {
            let mut allowed: Vec<String> = endpoint
                .allow()
                .split(", ")
                .filter(|m| !matches!(*m, "HEAD" | "OPTIONS"))
                .map(str::to_owned)
                .collect();
            allowed.sort();
            assert_eq!(documented(&doc, &template), allowed, "{template}");
        }
    }

    #[test]
    fn every_documented_path_routes_to_an_endpoint() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), templates().len());
        for path in paths.keys() {
            let concrete = path.replace("{user_id}", "u1").replace("{id}", "1");
            assert!(
                resolve(&concrete).is_some(),
                "{path} is documented but does not route"
            );
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        out.push(r);
                    }
                    o.values().for_each(|x| walk(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }
}
