//! `GET /openapi.json`: an OpenAPI 3.1 document of the whole contract.
//!
//! Paths are generated from the route table, so every route appears under each of its
//! bases; operations, schemas and responses are written once here. A test walks the
//! document against the router so that neither can drift from the other.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::http::response::VERSION;
use crate::http::routes::{Endpoint, OTHER_PATHS, TASK_BASES, TASK_PATHS};

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
        paths.insert(path.to_owned(), path_item(endpoint, suffix, false));
    }
    for (b, base) in TASK_BASES.iter().enumerate() {
        let scoped = base.contains("{user_id}");
        let suffix = ["ForUser", "ForUserV1", "", "V1"][b];
        for (p, (path, endpoint)) in TASK_PATHS.iter().enumerate() {
            let suffix = if p == 3 {
                format!("{suffix}ToggleStatus")
            } else {
                suffix.to_owned()
            };
            paths.insert(
                format!("{base}{path}"),
                path_item(*endpoint, &suffix, scoped),
            );
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Task API",
            "version": VERSION,
            "description": "A multi-user task service. Every task route exists under four bases: `/api/{user_id}` and `/api/v1/{user_id}` (the path names the user, who must be the token's user, else 403) and `/api`, `/api/v1` (the token's user). The built-in accounts routes (`/auth/…`, also under `/api/auth/…`) exist only when the `accounts` setting is on; otherwise they are 404. `/` answers a JSON index; with the `web_ui` setting on, a browser gets a web page there that uses this API (its files are under `/web/`). Errors are RFC 9457 problem documents.",
        },
        "paths": paths,
        "components": components(),
    })
}

fn path_item(endpoint: Endpoint, suffix: &str, scoped: bool) -> Value {
    let mut item = Map::new();
    let mut params = Vec::new();
    if scoped {
        params.push(json!({ "$ref": "#/components/parameters/UserId" }));
    }
    let op = |id: &str, summary: &str, extra: Value| -> Value {
        let mut o = json!({
            "operationId": format!("{id}{suffix}"),
            "summary": summary,
            "security": [{ "bearer": [] }],
        });
        if let (Value::Object(o), Value::Object(extra)) = (&mut o, extra) {
            o.extend(extra);
        }
        o
    };
    match endpoint {
        Endpoint::Health => {
            item.insert("get".into(), json!({
                "operationId": "health", "summary": "Liveness: no auth, no database",
                "responses": { "200": { "description": "Alive", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Health" } } } } }
            }));
        }
        Endpoint::Ready => {
            item.insert("get".into(), json!({
                "operationId": "ready", "summary": "Readiness: one cheap database round trip",
                "responses": {
                    "200": { "description": "Ready", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Ready" } } } },
                    "503": { "description": "Database unreachable", "headers": { "Retry-After": { "$ref": "#/components/headers/RetryAfter" } },
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Ready" } } } }
                }
            }));
        }
        Endpoint::Index => {
            item.insert("get".into(), json!({
                "operationId": "index",
                "summary": "A JSON index of the service; a browser (Accept preferring text/html) gets the web page instead when the web_ui setting is on",
                "parameters": [{ "$ref": "#/components/parameters/IfNoneMatch" }],
                "responses": {
                    "200": { "description": "The index (or the page)", "headers": { "Vary": { "schema": { "const": "Accept" } } },
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Index" } }, "text/html": { "schema": { "type": "string" } } } },
                    "304": { "description": "The page, not modified (If-None-Match matched)", "headers": { "ETag": { "$ref": "#/components/headers/ETag" } } },
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
                "summary": format!("The web page's {kind}; 404 unless the web_ui setting is on"),
                "parameters": [{ "$ref": "#/components/parameters/IfNoneMatch" }],
                "responses": {
                    "200": { "description": format!("The {kind}"), "headers": { "ETag": { "$ref": "#/components/headers/ETag" } }, "content": { (media): { "schema": { "type": "string" } } } },
                    "304": { "description": "Not modified (If-None-Match matched)", "headers": { "ETag": { "$ref": "#/components/headers/ETag" } } },
                    "404": problem("The web_ui setting is off"),
                }
            }));
        }
        Endpoint::OpenApi => {
            item.insert("get".into(), json!({
                "operationId": "openapi", "summary": "This document",
                "responses": { "200": { "description": "The OpenAPI document", "content": { "application/json": {} } } }
            }));
        }
        Endpoint::Register | Endpoint::Login => {
            let (id, summary, ok) = if endpoint == Endpoint::Register {
                (
                    "register",
                    "Create an account and get a token",
                    json!({
                        "201": { "description": "Registered", "content": json_of("TokenItem") },
                        "409": problem("An account with this email exists (email_taken)"),
                    }),
                )
            } else {
                (
                    "login",
                    "Exchange an email and password for a token",
                    json!({
                        "200": { "description": "Logged in", "content": json_of("TokenItem") },
                        "401": problem("The email or password is not correct (invalid_credentials): one answer for both"),
                        "429": { "description": "Too many failed logins for this email or client address in this 15-minute window (too_many_attempts)",
                                 "headers": { "Retry-After": { "$ref": "#/components/headers/RetryAfter" } },
                                 "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
                    }),
                )
            };
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
                "summary": "Tokens are stateless: the client drops its token. No body; a token is not required and not checked",
                "security": [],
                "responses": { "204": { "description": "Logged out" } },
            }));
        }
        Endpoint::Me => {
            item.insert("get".into(), op("me", "The account of the token's user", json!({
                "responses": responses(json!({
                    "200": { "description": "The account", "content": json_of("UserItem") },
                    "404": problem("The token is valid but its user has no built-in account (a token from another issuer)"),
                }), &["401", "500", "503"]),
            })));
        }
        Endpoint::TaskCollection => {
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
            item.insert("get".into(), op("listTasks", "List the user's tasks", json!({
                "parameters": list_params,
                "responses": responses(json!({
                    "200": { "description": "One page", "content": json_of("TaskList") },
                    "400": problem("A query parameter is not valid or is empty; each is named in errors"),
                }), &["401", "403", "500", "503"]),
            })));
            item.insert("post".into(), op("createTask", "Create a task", json!({
                "parameters": [{ "$ref": "#/components/parameters/IdempotencyKey" }],
                "requestBody": { "required": true, "content": json_of("NewTask") },
                "responses": responses(json!({
                    "201": { "description": "Created (or replayed for the same Idempotency-Key and body)",
                             "headers": { "Location": { "schema": { "type": "string" } }, "ETag": { "$ref": "#/components/headers/ETag" } },
                             "content": json_of("TaskItem") },
                    "400": problem("Malformed JSON, or a bad Idempotency-Key"),
                    "422": problem("Validation failed, or idempotency_key_reused"),
                }), &["401", "403", "413", "415", "500", "503"]),
            })));
            item.insert("delete".into(), op("clearCompletedTasks", "Delete the user's completed tasks (status=completed is required)", json!({
                "parameters": [{ "name": "status", "in": "query", "required": true, "schema": { "const": "completed" } }],
                "responses": responses(json!({
                    "200": { "description": "How many were deleted", "content": json_of("Deleted") },
                    "400": problem("status=completed is missing"),
                }), &["401", "403", "500", "503"]),
            })));
        }
        Endpoint::TaskItem => {
            params.push(json!({ "$ref": "#/components/parameters/TaskId" }));
            item.insert("get".into(), op("getTask", "One task", json!({
                "parameters": [{ "$ref": "#/components/parameters/IfNoneMatch" }],
                "responses": responses(json!({
                    "200": task_response("The task"),
                    "304": { "description": "Not modified (If-None-Match matched)", "headers": { "ETag": { "$ref": "#/components/headers/ETag" } } },
                }), &["400", "401", "403", "404", "500", "503"]),
            })));
            for (method, id) in [("put", "replaceTask"), ("patch", "updateTask")] {
                item.insert(method.into(), op(id, "Partial update: fields sent change, fields absent stay", json!({
                    "parameters": [{ "$ref": "#/components/parameters/IfMatch" }],
                    "requestBody": { "required": true, "content": json_of("TaskUpdate") },
                    "responses": responses(json!({ "200": task_response("The task as updated") }),
                        &["400", "401", "403", "404", "412", "413", "415", "422", "500", "503"]),
                })));
            }
            item.insert(
                "delete".into(),
                op(
                    "deleteTask",
                    "Delete a task",
                    json!({
                        "parameters": [{ "$ref": "#/components/parameters/IfMatch" }],
                        "responses": responses(json!({ "204": { "description": "Deleted" } }),
                            &["400", "401", "403", "404", "412", "500", "503"]),
                    }),
                ),
            );
        }
        Endpoint::TaskCompletion => {
            params.push(json!({ "$ref": "#/components/parameters/TaskId" }));
            item.insert("patch".into(), op("completeTask", "No body or {}: toggle; {\"completed\": bool}: set", json!({
                "parameters": [{ "$ref": "#/components/parameters/IfMatch" }],
                "requestBody": { "required": false, "content": json_of("Completion") },
                "responses": responses(json!({ "200": task_response("The task as changed") }),
                    &["400", "401", "403", "404", "412", "413", "415", "422", "500", "503"]),
            })));
        }
    }
    if !params.is_empty() {
        item.insert("parameters".into(), Value::Array(params));
    }
    Value::Object(item)
}

fn json_of(schema: &str) -> Value {
    json!({ "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } })
}

fn problem(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
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

fn components() -> Value {
    let date = json!({ "type": ["string", "null"], "format": "date", "examples": ["2026-12-01"] });
    json!({
        "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
        "headers": {
            "ETag": { "description": "Strong entity tag of the task", "schema": { "type": "string" } },
            "RetryAfter": { "description": "Seconds to wait", "schema": { "type": "integer" } },
        },
        "parameters": {
            "UserId": { "name": "user_id", "in": "path", "required": true, "description": "Must equal the token's sub (else 403); not 1 to 128 characters of UTF-8 without control characters is a 400", "schema": { "type": "string", "minLength": 1, "maxLength": 128 } },
            "TaskId": { "name": "id", "in": "path", "required": true, "description": "A positive 64-bit integer; anything else is a 404", "schema": { "type": "integer", "minimum": 1 } },
            "Status": { "name": "status", "in": "query", "schema": { "enum": ["all", "pending", "completed"], "default": "all" } },
            "Priority": { "name": "priority", "in": "query", "description": "One or more of low, medium, high, comma-separated", "schema": { "type": "string" } },
            "Q": { "name": "q", "in": "query", "description": "Text searched case-insensitively in title and description; trimmed; no control characters", "schema": { "type": "string", "minLength": 1, "maxLength": 200 } },
            "DueBefore": { "name": "due_before", "in": "query", "description": "Inclusive", "schema": { "type": "string", "format": "date" } },
            "DueAfter": { "name": "due_after", "in": "query", "description": "Inclusive", "schema": { "type": "string", "format": "date" } },
            "Sort": { "name": "sort", "in": "query", "schema": { "enum": ["created_at", "-created_at", "updated_at", "-updated_at", "title", "-title", "priority", "-priority", "due_date", "-due_date"], "default": "-created_at" } },
            "Limit": { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 50 } },
            "Cursor": { "name": "cursor", "in": "query", "description": "The next_cursor of the previous page of the same query", "schema": { "type": "string" } },
            "IdempotencyKey": { "name": "Idempotency-Key", "in": "header", "schema": { "type": "string", "minLength": 1, "maxLength": 255 } },
            "IfMatch": { "name": "If-Match", "in": "header", "description": "A stale ETag is a 412 and changes nothing", "schema": { "type": "string" } },
            "IfNoneMatch": { "name": "If-None-Match", "in": "header", "schema": { "type": "string" } },
        },
        "responses": {
            "400": problem("Malformed request"),
            "401": { "description": "Missing or invalid bearer token", "headers": { "WWW-Authenticate": { "schema": { "type": "string" } } },
                     "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
            "403": problem("The path names another user than the token"),
            "404": problem("No such task for this user (or a malformed id)"),
            "412": problem("If-Match does not match the current ETag"),
            "413": problem("Body larger than 64 KiB"),
            "415": problem("Body is not application/json"),
            "422": problem("Validation failed; every field problem is listed"),
            "500": problem("Internal error or misconfiguration; details are logged under the request_id"),
            "503": { "description": "Database unreachable", "headers": { "Retry-After": { "$ref": "#/components/headers/RetryAfter" } },
                     "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } },
        },
        "schemas": {
            "Task": {
                "type": "object",
                "required": ["id", "user_id", "title", "description", "completed", "priority", "due_date", "created_at", "updated_at", "completed_at"],
                "properties": {
                    "id": { "type": "integer", "minimum": 1 },
                    "user_id": { "type": "string" },
                    "title": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "description": { "type": ["string", "null"], "maxLength": 2000 },
                    "completed": { "type": "boolean" },
                    "priority": { "$ref": "#/components/schemas/Priority" },
                    "due_date": date,
                    "created_at": { "type": "string", "format": "date-time" },
                    "updated_at": { "type": "string", "format": "date-time" },
                    "completed_at": { "type": ["string", "null"], "format": "date-time" },
                },
            },
            "Priority": { "enum": ["low", "medium", "high"] },
            "NewTask": {
                "type": "object",
                "description": "Server-owned fields (id, user_id, created_at, updated_at, completed_at) are ignored; any other unknown field is a 422.",
                "required": ["title"],
                "properties": {
                    "title": { "type": "string", "description": "Trimmed; 1 to 200 characters; no control characters" },
                    "description": { "type": ["string", "null"], "description": "At most 2000 characters; trailing whitespace trimmed; empty is null" },
                    "priority": { "$ref": "#/components/schemas/Priority", "default": "medium" },
                    "due_date": date,
                    "completed": { "type": "boolean", "default": false },
                },
            },
            "TaskUpdate": {
                "type": "object",
                "description": "At least one changeable field; null is refused for title, priority and completed.",
                "minProperties": 1,
                "properties": {
                    "title": { "type": "string" },
                    "description": { "type": ["string", "null"] },
                    "priority": { "$ref": "#/components/schemas/Priority" },
                    "due_date": date,
                    "completed": { "type": "boolean" },
                },
            },
            "Completion": { "type": "object", "properties": { "completed": { "type": "boolean" } } },
            "TaskItem": { "type": "object", "required": ["data"], "properties": { "data": { "$ref": "#/components/schemas/Task" } } },
            "TaskList": {
                "type": "object", "required": ["data", "meta"],
                "properties": {
                    "data": { "type": "array", "items": { "$ref": "#/components/schemas/Task" } },
                    "meta": { "type": "object", "required": ["total", "limit", "next_cursor"], "properties": {
                        "total": { "type": "integer", "description": "Tasks matching the filters, not only this page" },
                        "limit": { "type": "integer" },
                        "next_cursor": { "type": ["string", "null"] },
                    } },
                },
            },
            "Deleted": { "type": "object", "properties": { "data": { "type": "object", "properties": { "deleted": { "type": "integer" } } } } },
            "Index": {
                "type": "object", "required": ["name", "version", "links"],
                "properties": {
                    "name": { "const": "task-api" },
                    "version": { "type": "string" },
                    "links": { "type": "object", "required": ["openapi", "health", "ready"], "properties": {
                        "openapi": { "const": "/openapi.json" }, "health": { "const": "/health" }, "ready": { "const": "/health/ready" },
                    } },
                },
            },
            "Health": { "type": "object", "properties": { "status": { "const": "ok" }, "version": { "type": "string" } } },
            "Ready": { "type": "object", "properties": { "status": { "enum": ["ok", "unavailable"] }, "database": { "enum": ["ok", "unreachable"] } } },
            "Credentials": {
                "type": "object", "required": ["email", "password"], "additionalProperties": false,
                "properties": {
                    "email": { "type": "string", "maxLength": 254, "description": "Trimmed; one @, a domain with a dot; compared case-insensitively (invalid_email)" },
                    "password": { "type": "string", "minLength": 8, "maxLength": 128, "description": "8 to 128 characters, taken as sent (password_length)" },
                },
            },
            "User": {
                "type": "object", "required": ["id", "email", "created_at"],
                "properties": {
                    "id": { "type": "string", "pattern": "^u_[0-9a-f]{24}$" },
                    "email": { "type": "string" },
                    "created_at": { "type": "string", "format": "date-time" },
                },
            },
            "UserItem": { "type": "object", "required": ["data"], "properties": { "data": { "$ref": "#/components/schemas/User" } } },
            "TokenItem": {
                "type": "object", "required": ["data"],
                "properties": { "data": { "type": "object", "required": ["access_token", "token_type", "expires_in", "user"], "properties": {
                    "access_token": { "type": "string", "description": "An HS256 JWT whose sub is the user id" },
                    "token_type": { "const": "bearer" },
                    "expires_in": { "type": "integer", "description": "Seconds until the token expires" },
                    "user": { "$ref": "#/components/schemas/User" },
                } } },
            },
            "Problem": {
                "type": "object", "required": ["type", "title", "status", "detail", "code", "request_id"],
                "properties": {
                    "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
                    "detail": { "type": "string" }, "code": { "type": "string" }, "request_id": { "type": "string" },
                    "errors": { "type": "array", "items": { "type": "object", "properties": {
                        "field": { "type": "string" }, "code": { "type": "string" }, "message": { "type": "string" } } } },
                },
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
