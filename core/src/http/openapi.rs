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
use crate::http::body::{MAX_BODY_BYTES, MAX_IMPORT_BYTES, SERVER_OWNED};
use crate::http::feed::{DEFAULT_FEED_LIMIT, MAX_FEED_LIMIT};
use crate::http::response::VERSION;
use crate::http::routes::{Endpoint, OTHER_PATHS, TASK_BASES, TASK_PATHS};
use crate::store::changes::{MAX_BATCH_OPERATIONS, MAX_IMPORT_TASKS};
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
        for (path, endpoint) in TASK_PATHS {
            let suffix = if path == "/tasks/{id}/toggle-status" {
                format!("{suffix}ToggleStatus")
            } else {
                suffix.to_owned()
            };
            paths.insert(format!("{base}{path}"), path_item(endpoint, &suffix, user));
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
        Endpoint::TaskChanges => (changes_item(&base), base.parameters(false)),
        Endpoint::TaskBatch => (batch_item(&base), base.parameters(false)),
        Endpoint::TaskExport => (export_item(&base), base.parameters(false)),
        Endpoint::TaskImport => (import_item(&base), base.parameters(false)),
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

    /// The 400 of a route with none of its own: a user-scoped base's path user.
    fn path_user_bad_request(&self) -> Option<Value> {
        self.scoped().then(|| {
            problem("The path's user_id is not a user id (invalid_parameter naming user_id)")
        })
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

// What the sync routes' code does not export (yet), written here (docs/sync.md).
/// The `tombstone_retention_days` setting's default (a text default in `config::SETTINGS`).
const TOMBSTONE_RETENTION_DAYS: u32 = 30; // TODO(const): tombstone_retention_days' default
/// The header row of a CSV export (`http::transfer`'s private `CSV_COLUMNS`).
const EXPORT_CSV_HEADER: &str =
    "id,title,description,completed,priority,due_date,created_at,updated_at,completed_at"; // TODO(const): the export's CSV columns

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

/// `/tasks/changes`: the change feed.
fn changes_item(base: &Base<'_>) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("get".into(), base.op("listTaskChanges", "The changes to the user's tasks after since, in the order they committed: each changed task once, in its latest state (an upsert) or as a tombstone (a delete). See docs/sync.md", json!({
                "parameters": [{ "$ref": "#/components/parameters/Since" }, { "$ref": "#/components/parameters/ChangesLimit" }],
                "responses": responses(json!({
                    "200": { "description": "The changes, oldest first; pass meta.next as since next time, at once while meta.has_more", "content": json_of("ChangeFeed") },
                    "400": base.bad_request(&format!("since is not a token this service issued, or limit is not an integer from 1 to {MAX_FEED_LIMIT}; each is named in errors (invalid_parameter)")),
                    "410": problem(&format!("since is older than what the service keeps (tombstones are kept tombstone_retention_days, default {TOMBSTONE_RETENTION_DAYS}) or comes from another database (a restore, a move): drop the replica and start again without since (sync_reset)")),
                }), &base.task_shared(&[])),
            })));
    item
}

/// `/tasks/batch`: creates, updates and deletes applied in order, all or none.
fn batch_item(base: &Base<'_>) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("post".into(), base.op("batchTasks", &format!("Apply 1 to {MAX_BATCH_OPERATIONS} creates, updates and deletes in order, all or none; the batch's changes share one position in the change feed"), json!({
                "requestBody": { "required": true, "content": json_of("BatchRequest") },
                "responses": responses(json!({
                    "200": { "description": "Every operation applied: one result per operation, in order", "content": json_of("BatchResult") },
                    "400": base.bad_request("Malformed JSON or not an object (malformed_body)"),
                    "404": batch_problem("Nothing applied: the first operation that cannot apply updates or deletes a task this user does not have, or replays (same idempotency_key and task) a create whose task was deleted since (not_found, with index and op)"),
                    "412": batch_problem("Nothing applied: the first operation that cannot apply has an if_match that does not match the task's current ETag (precondition_failed, with index and op)"),
                    "422": batch_problem("Nothing applied. A malformed body or operation, before anything is tried: every problem is listed, each field a path into the body such as operations[2].task.title, operations[0].op or operations[1].if_match (validation_failed); or the first operation that cannot apply is a create whose idempotency_key was used with another task in the last 24 hours (idempotency_key_reused, with index and op)"),
                }), &base.task_shared(&["413", "415"])),
            })));
    item
}

/// `/tasks/export`: every task of the user, streamed.
fn export_item(base: &Base<'_>) -> Map<String, Value> {
    let mut own = json!({
        "200": { "description": format!("Every task of the user, by id, not paged, streamed. application/x-ndjson (when Accept prefers it, or allows anything, or is absent): one task JSON object per line, as the other routes render it. text/csv: CSV (RFC 4180) with the header row {EXPORT_CSV_HEADER}. Not a snapshot: a task created or deleted during the export may or may not be in it; every task that exists from its start to its end is in it once."),
                 "headers": { "Vary": { "$ref": "#/components/headers/VaryAccept" } },
                 "content": { "application/x-ndjson": { "schema": { "type": "string" } }, "text/csv": { "schema": { "type": "string" } } } },
        "406": problem("Accept admits neither application/x-ndjson nor text/csv (not_acceptable)"),
    });
    if let Some(p) = base.path_user_bad_request() {
        own["400"] = p;
    }
    let mut item = Map::new();
    item.insert(
        "get".into(),
        base.op(
            "exportTasks",
            "Every task of the user, as NDJSON or CSV (by Accept)",
            json!({
                "responses": responses(own, &base.task_shared(&[])),
            }),
        ),
    );
    item
}

/// `/tasks/import`: tasks from NDJSON or CSV, all or none.
fn import_item(base: &Base<'_>) -> Map<String, Value> {
    let text = json!({ "schema": { "type": "string" } });
    let mut item = Map::new();
    item.insert("post".into(), base.op("importTasks", "Create tasks from NDJSON or CSV records, all or none; new ids are assigned", json!({
                "parameters": [{ "$ref": "#/components/parameters/IdempotencyKey" }],
                "requestBody": { "required": true,
                                 "description": format!("application/x-ndjson (one JSON object per line, blank lines ignored) or text/csv (RFC 4180, a header row naming the columns, in any order); at most {} MiB and {MAX_IMPORT_TASKS} records. Each record: title (required), description, priority, due_date, completed (true/false), created_at, updated_at, completed_at (RFC 3339). id, user_id and version are ignored (an export imports as it is); any other field or column is a 422. created_at (default: now), completed, completed_at and due_date are kept; updated_at defaults to the latest of created_at and completed_at; a completed task without completed_at gets its updated_at.", MAX_IMPORT_BYTES / (1024 * 1024)),
                                 "content": { "application/x-ndjson": text, "text/csv": text } },
                "responses": responses(json!({
                    "201": { "description": "Imported (or replayed for the same Idempotency-Key and body within 24 hours: the first import's answer, nothing imported again)",
                             "headers": { "Idempotent-Replayed": { "description": "On a replay only", "schema": { "const": "true" } } },
                             "content": json_of("Imported") },
                    "400": base.bad_request(&format!("The body is not UTF-8 or not CSV, such as an unclosed quote (malformed_body), or an Idempotency-Key that is not 1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters (invalid_header)")),
                    "413": problem(&format!("Body larger than {} MiB (payload_too_large)", MAX_IMPORT_BYTES / (1024 * 1024))),
                    "415": problem("Body is neither application/x-ndjson nor text/csv (unsupported_media_type)"),
                    "422": problem(&format!("Nothing imported: a record is not valid, every problem listed, each field as records[i].title with i counting records from 0, the CSV header excluded; or a field or CSV column an import does not take; or more than {MAX_IMPORT_TASKS} records (validation_failed). Or the Idempotency-Key was used with another body in the last 24 hours (idempotency_key_reused)")),
                }), &base.task_shared(&[])),
            })));
    item
}

/// A batch's problem: [`problem`] with `index` and `op` when an operation could not apply.
fn batch_problem(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/BatchProblem" } } } })
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
        "Since": { "name": "since", "in": "query", "description": "The meta.next of an earlier answer of the change feed; without it, the feed starts at the beginning of what the service keeps. Only a token this service issued is valid: any other is a 400 naming since; one older than what is kept, or from another database, is a 410 (sync_reset).", "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]+$" } },
        "ChangesLimit": { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_FEED_LIMIT, "default": DEFAULT_FEED_LIMIT } },
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
    let task_id = json!({ "type": "integer", "minimum": 1, "maximum": i64::MAX });
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
    let mut all = json!({
        "Task": {
            "type": "object",
            "required": ["id", "user_id", "title", "description", "completed", "priority", "due_date", "created_at", "updated_at", "completed_at"],
            "properties": {
                "id": task_id,
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
    });
    if let (Value::Object(all), Value::Object(sync)) = (&mut all, sync_schemas(&task_id, timestamp))
    {
        all.extend(sync);
    }
    all
}

/// The sync routes' schemas (docs/sync.md); `task_id` and `timestamp` are [`schemas`]'.
fn sync_schemas(task_id: &Value, timestamp: &str) -> Value {
    let ops = ["create", "update", "delete"];
    json!({
        "ChangeFeed": {
            "type": "object", "required": ["data", "meta"],
            "properties": {
                "data": { "type": "array", "description": "The changes after since, in the order they committed; a task changed several times appears once, in its latest state, at the position of its latest change",
                          "items": { "$ref": "#/components/schemas/Change" } },
                "meta": { "type": "object", "required": ["next", "has_more", "limit"], "properties": {
                    "next": { "type": "string", "pattern": "^[A-Za-z0-9_-]+$", "description": "Always present: the since of the next request" },
                    "has_more": { "type": "boolean", "description": "More changes are waiting now: ask again at once" },
                    "limit": { "type": "integer", "minimum": 1, "maximum": MAX_FEED_LIMIT },
                } },
            },
        },
        "Change": {
            "type": "object", "required": ["kind", "id"],
            "description": "Apply in order: an upsert inserts or replaces the task by id, a delete removes it by id",
            "properties": { "kind": { "enum": ["upsert", "delete"] }, "id": task_id },
            "oneOf": [{ "$ref": "#/components/schemas/ChangeUpsert" }, { "$ref": "#/components/schemas/ChangeDelete" }],
        },
        "ChangeUpsert": {
            "type": "object", "required": ["kind", "id", "task"],
            "properties": { "kind": { "const": "upsert" }, "id": task_id, "task": { "$ref": "#/components/schemas/Task" } },
        },
        "ChangeDelete": {
            "type": "object", "required": ["kind", "id", "deleted_at"], "description": "A tombstone",
            "properties": { "kind": { "const": "delete" }, "id": task_id, "deleted_at": { "type": "string", "format": "date-time", "pattern": timestamp } },
        },
        "BatchRequest": {
            "type": "object", "required": ["operations"], "additionalProperties": false,
            "properties": { "operations": { "type": "array", "minItems": 1, "maxItems": MAX_BATCH_OPERATIONS, "description": "Applied in order, all or none",
                                            "items": { "$ref": "#/components/schemas/BatchOperation" } } },
        },
        "BatchOperation": {
            "oneOf": [
                { "$ref": "#/components/schemas/BatchCreate" },
                { "$ref": "#/components/schemas/BatchUpdate" },
                { "$ref": "#/components/schemas/BatchDelete" },
            ],
        },
        "BatchCreate": {
            "type": "object", "required": ["op", "task"], "additionalProperties": false,
            "description": "As POST /tasks",
            "properties": {
                "op": { "const": "create" },
                "task": { "$ref": "#/components/schemas/NewTask" },
                "idempotency_key": { "type": "string", "pattern": format!("^[ -~]{{1,{IDEMPOTENCY_KEY_MAX_CHARS}}}$"),
                                     "description": format!("Optional; the Idempotency-Key rules: 1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters. The same key and task within 24 hours replays the first create; the same key with another task is a 422 (idempotency_key_reused).") },
            },
        },
        "BatchUpdate": {
            "type": "object", "required": ["op", "id", "task"], "additionalProperties": false,
            "description": "As PATCH /tasks/{id}",
            "properties": {
                "op": { "const": "update" },
                "id": task_id,
                "task": { "$ref": "#/components/schemas/TaskUpdate" },
                "if_match": { "type": "string", "pattern": entity_tags_pattern(), "description": "Optional; the If-Match syntax: * or a list of entity tags" },
            },
        },
        "BatchDelete": {
            "type": "object", "required": ["op", "id"], "additionalProperties": false,
            "description": "As DELETE /tasks/{id}",
            "properties": {
                "op": { "const": "delete" },
                "id": task_id,
                "if_match": { "type": "string", "pattern": entity_tags_pattern(), "description": "Optional; the If-Match syntax: * or a list of entity tags" },
            },
        },
        "BatchResult": {
            "type": "object", "required": ["data"],
            "properties": { "data": { "type": "array", "minItems": 1, "maxItems": MAX_BATCH_OPERATIONS, "description": "One result per operation, in order",
                                      "items": { "oneOf": [
                { "type": "object", "required": ["op", "status", "task"], "properties": {
                    "op": { "const": "create" }, "status": { "const": 201 }, "task": { "$ref": "#/components/schemas/Task" },
                    "replayed": { "const": true, "description": "Only on a create replayed from its idempotency_key" } } },
                { "type": "object", "required": ["op", "status", "task"], "properties": {
                    "op": { "const": "update" }, "status": { "const": 200 }, "task": { "$ref": "#/components/schemas/Task" } } },
                { "type": "object", "required": ["op", "status", "id"], "properties": {
                    "op": { "const": "delete" }, "status": { "const": 204 }, "id": task_id } },
            ] } } },
        },
        "BatchProblem": {
            "description": "A batch's problem. Nothing was applied. When an operation could not apply (every code but validation_failed), index (0-based) and op name it.",
            "allOf": [{ "$ref": "#/components/schemas/Problem" }],
            "properties": {
                "index": { "type": "integer", "minimum": 0, "maximum": MAX_BATCH_OPERATIONS - 1 },
                "op": { "type": "string", "enum": ops },
            },
            "if": { "properties": { "code": { "const": "validation_failed" } } },
            "else": { "required": ["index", "op"] },
        },
        "Imported": { "type": "object", "required": ["data"], "properties": { "data": { "type": "object", "required": ["imported"], "properties": { "imported": { "type": "integer", "minimum": 0, "maximum": MAX_IMPORT_TASKS } } } } },
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
    fn the_sync_routes_are_documented_under_every_base_beside_the_task_item() {
        let doc = document();
        for base in TASK_BASES {
            assert!(doc["paths"][format!("{base}/tasks/{{id}}")]["get"].is_object());
            for (path, method) in [
                ("/tasks/changes", "get"),
                ("/tasks/batch", "post"),
                ("/tasks/export", "get"),
                ("/tasks/import", "post"),
            ] {
                let item = &doc["paths"][format!("{base}{path}")];
                assert!(item[method]["responses"].is_object(), "{base}{path}");
                assert_eq!(documented(&doc, &format!("{base}{path}")).len(), 1);
                assert_eq!(
                    item["parameters"].as_array().map_or(0, Vec::len),
                    usize::from(base.contains("{user_id}")),
                    "{base}{path}"
                );
            }
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
