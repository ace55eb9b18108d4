//! The HTTP contract: an `http::Request` in, an `http::Response` out.
//!
//! [`Api::handle`] resolves the route, answers CORS and method questions, authenticates,
//! reads the body, calls the store once, and renders the envelope or the problem. Every
//! response gets an `X-Request-Id` and a [`RequestLog`] in its extensions, which the host
//! writes to its log (the core does no I/O).

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;

use crate::config::{Config, ConfigError};
use crate::error::{ApiError, RETRY_AFTER_SECS};
use crate::listing::ListQuery;
use crate::openapi;
use crate::routes::{self, Endpoint, Route};
use crate::store::{Idempotency, StoreError, TaskStore};
use crate::task::{Task, TaskId, UserId, Version};
use crate::time::Timestamp;
use crate::validation;
use crate::{IdempotencyKey, RequestContext};

/// Largest accepted request body, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The service version, as reported by `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the host should log about a request, found in the response's extensions.
///
/// It never holds a token, a password or a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    /// The request id sent back in `X-Request-Id`.
    pub request_id: String,
    /// The matched route template (`/api/{user_id}/tasks/{id}`), or `-` if none matched.
    pub route: String,
    /// The authenticated user, if any.
    pub user_id: Option<UserId>,
    /// The cause of a 5xx, for the log only.
    pub error: Option<String>,
}

/// The API over a store and a configuration.
///
/// A configuration that failed to load still serves `/health` and `/openapi.json`; task
/// routes then answer 500 with a problem naming the bad settings.
#[derive(Debug)]
pub struct Api<S> {
    store: S,
    config: Result<Config, ConfigError>,
}

impl<S: TaskStore> Api<S> {
    /// An API over `store` with a checked `config`.
    pub fn new(store: S, config: Config) -> Self {
        Api {
            store,
            config: Ok(config),
        }
    }

    /// An API over `store` with the result of loading the configuration, good or bad.
    pub fn with_config_result(store: S, config: Result<Config, ConfigError>) -> Self {
        Api { store, config }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Answers one request. Never panics on any input; never returns a 5xx for a client's
    /// mistake.
    pub async fn handle(
        &self,
        request: Request<Vec<u8>>,
        ctx: RequestContext,
    ) -> Response<Vec<u8>> {
        let request_id = inbound_request_id(request.headers()).unwrap_or(ctx.request_id);
        let route = routes::resolve(request.uri().path());
        let mut log = RequestLog {
            request_id: request_id.clone(),
            route: route
                .as_ref()
                .map_or_else(|| "-".to_owned(), Route::pattern),
            user_id: None,
            error: None,
        };
        let is_head = request.method() == Method::HEAD;
        let mut response = match self
            .dispatch(&request, route.as_ref(), ctx.now, &mut log)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                log.error = e.log_cause();
                e.to_response(&request_id)
            }
        };
        let origin = request.headers().get(header::ORIGIN);
        let headers = response.headers_mut();
        if let Ok(cfg) = &self.config {
            match route.as_ref() {
                Some(r) if is_preflight(&request) => {
                    cfg.cors.preflight(origin, r.endpoint.allow(), headers)
                }
                _ => cfg.cors.decorate(origin, headers),
            }
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", v);
        }
        if is_head {
            response.body_mut().clear();
        }
        response.extensions_mut().insert(log);
        response
    }

    async fn dispatch(
        &self,
        req: &Request<Vec<u8>>,
        route: Option<&Route<'_>>,
        now: Timestamp,
        log: &mut RequestLog,
    ) -> Result<Response<Vec<u8>>, ApiError> {
        let route = route.ok_or(ApiError::NotFound)?;
        let method = req.method();
        if method == Method::OPTIONS {
            let mut r = empty(StatusCode::NO_CONTENT);
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static(route.endpoint.allow()),
            );
            return Ok(r);
        }
        if !route.endpoint.allows(method) {
            return Err(ApiError::MethodNotAllowed(route.endpoint.allow()));
        }
        if req.body().len() > MAX_BODY_BYTES || declared_length(req.headers()) > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        match route.endpoint {
            Endpoint::Health => Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "status": "ok", "version": VERSION }),
            )),
            Endpoint::Ready => Ok(self.readiness(log).await),
            Endpoint::OpenApi => {
                let mut r = Response::new(openapi::document_bytes().to_vec());
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Ok(r)
            }
            _ => {
                let config = self
                    .config
                    .as_ref()
                    .map_err(|e| ApiError::Misconfigured(e.clone()))?;
                let user = config.verifier.authenticate(req.headers(), now)?;
                log.user_id = Some(user.clone());
                if route
                    .path_user
                    .as_deref()
                    .is_some_and(|p| p != user.as_str())
                {
                    return Err(ApiError::Forbidden);
                }
                let call = TaskCall {
                    store: &self.store,
                    req,
                    route,
                    user: &user,
                    now,
                };
                call.run().await
            }
        }
    }

    async fn readiness(&self, log: &mut RequestLog) -> Response<Vec<u8>> {
        match self.store.ping().await {
            Ok(()) => json(
                StatusCode::OK,
                &serde_json::json!({ "status": "ok", "database": "ok" }),
            ),
            Err(e) => {
                log.error = Some(e.to_string());
                let mut r = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({ "status": "unavailable", "database": "unreachable" }),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
                r
            }
        }
    }
}

/// One authenticated call to a task route.
struct TaskCall<'a, S> {
    store: &'a S,
    req: &'a Request<Vec<u8>>,
    route: &'a Route<'a>,
    user: &'a UserId,
    now: Timestamp,
}

impl<S: TaskStore> TaskCall<'_, S> {
    async fn run(self) -> Result<Response<Vec<u8>>, ApiError> {
        let method = self.req.method().clone();
        if self.route.endpoint == Endpoint::TaskCollection {
            return match method {
                Method::POST => self.create().await,
                Method::DELETE => self.clear_completed().await,
                _ => self.list().await,
            };
        }
        // A malformed id names no task of this user: the same 404 as a missing one.
        let id = self
            .route
            .task_id
            .and_then(TaskId::parse)
            .ok_or(ApiError::NotFound)?;
        match (self.route.endpoint, method) {
            (Endpoint::TaskCompletion, _) => {
                let completion = validation::parse_completion(self.json_body(true)?)?;
                let expected = self.if_match(id).await?;
                let task = self
                    .store
                    .set_completion(self.user, id, completion, expected, self.now)
                    .await?;
                Ok(item(StatusCode::OK, &task))
            }
            (_, Method::PUT | Method::PATCH) => {
                let patch = validation::parse_patch(self.json_body(false)?)?;
                let expected = self.if_match(id).await?;
                let task = self
                    .store
                    .update(self.user, id, &patch, expected, self.now)
                    .await?;
                Ok(item(StatusCode::OK, &task))
            }
            (_, Method::DELETE) => {
                let expected = self.if_match(id).await?;
                self.store.delete(self.user, id, expected).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            _ => {
                let task = self.store.get(self.user, id).await?;
                if if_none_match(self.req.headers(), task.version)? {
                    let mut r = empty(StatusCode::NOT_MODIFIED);
                    set_etag(r.headers_mut(), task.version);
                    return Ok(r);
                }
                Ok(item(StatusCode::OK, &task))
            }
        }
    }

    async fn create(self) -> Result<Response<Vec<u8>>, ApiError> {
        let new = validation::parse_new_task(self.json_body(false)?)?;
        let idempotency = match self.req.headers().get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v
                    .to_str()
                    .ok()
                    .and_then(IdempotencyKey::parse)
                    .ok_or(ApiError::InvalidHeader("Idempotency-Key"))?;
                Some(Idempotency {
                    key,
                    fingerprint: new.fingerprint(),
                })
            }
        };
        let created = self
            .store
            .create(self.user, new, idempotency, self.now)
            .await?;
        let mut r = item(StatusCode::CREATED, &created.task);
        let location = format!("{}/tasks/{}", self.route.base, created.task.id);
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        if created.replayed {
            // Same status and body as the first answer; this tells a client (and a log)
            // that nothing new was created.
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        Ok(r)
    }

    async fn list(self) -> Result<Response<Vec<u8>>, ApiError> {
        let query = ListQuery::parse(self.req.uri().query().unwrap_or(""))?;
        let page = self.store.list(self.user, &query).await?;
        let next_cursor = match page.tasks.last() {
            Some(last) if page.has_more => Some(query.cursor_after(last)),
            _ => None,
        };
        #[derive(Serialize)]
        struct Meta {
            total: u64,
            limit: u32,
            next_cursor: Option<String>,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            data: &'a [Task],
            meta: Meta,
        }
        Ok(json(
            StatusCode::OK,
            &Envelope {
                data: &page.tasks,
                meta: Meta {
                    total: page.total,
                    limit: query.limit(),
                    next_cursor,
                },
            },
        ))
    }

    async fn clear_completed(self) -> Result<Response<Vec<u8>>, ApiError> {
        let status = form_urlencoded::parse(self.req.uri().query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k == "status")
            .last()
            .map(|(_, v)| v.into_owned());
        if status.as_deref() != Some("completed") {
            return Err(ApiError::InvalidQuery(vec![crate::FieldError::new(
                "status",
                "invalid_value",
                "DELETE /tasks needs status=completed: only completed tasks can be cleared at once",
            )]));
        }
        let deleted = self.store.clear_completed(self.user).await?;
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "data": { "deleted": deleted } }),
        ))
    }

    /// The body, checked to be JSON. With `optional`, an empty body is allowed whatever its
    /// content type (a toggle sends none).
    fn json_body(&self, optional: bool) -> Result<&[u8], ApiError> {
        let body = self.req.body().as_slice();
        if optional && body.iter().all(u8::is_ascii_whitespace) {
            return Ok(b"");
        }
        let is_json = self
            .req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if is_json {
            Ok(body)
        } else {
            Err(ApiError::UnsupportedMediaType)
        }
    }

    /// The version `If-Match` requires, if any.
    ///
    /// `*` requires only that the task exists. A single tag of ours names its version; tags
    /// that are not ours (weak, or from elsewhere) can never match. With several of our tags,
    /// the current version is read and kept if listed: the store still checks it atomically.
    async fn if_match(&self, id: TaskId) -> Result<Option<Version>, ApiError> {
        let Some(tags) = entity_tags(self.req.headers(), header::IF_MATCH)? else {
            return Ok(None);
        };
        if tags.iter().any(|t| t == "*") {
            return Ok(None);
        }
        let ours: Vec<Version> = tags.iter().filter_map(|t| Version::from_etag(t)).collect();
        match ours.as_slice() {
            [] => Ok(Some(Version::new(0))),
            [one] => Ok(Some(*one)),
            many => {
                let current = self.store.get(self.user, id).await?.version;
                if many.contains(&current) {
                    Ok(Some(current))
                } else {
                    Err(StoreError::VersionConflict.into())
                }
            }
        }
    }
}

/// Whether `If-None-Match` matches `version` (weak comparison), so a 304 is due.
fn if_none_match(headers: &HeaderMap, version: Version) -> Result<bool, ApiError> {
    let Some(tags) = entity_tags(headers, header::IF_NONE_MATCH)? else {
        return Ok(false);
    };
    Ok(tags.iter().any(|t| {
        t == "*" || Version::from_etag(t.strip_prefix("W/").unwrap_or(t)) == Some(version)
    }))
}

/// The entity tags of a conditional header, or `None` if it is absent. A value that is not
/// `*` or a list of quoted tags is a 400 naming the header.
fn entity_tags(
    headers: &HeaderMap,
    name: header::HeaderName,
) -> Result<Option<Vec<String>>, ApiError> {
    let label = if name == header::IF_MATCH {
        "If-Match"
    } else {
        "If-None-Match"
    };
    let mut tags = Vec::new();
    let mut seen = false;
    for value in headers.get_all(&name) {
        seen = true;
        let value = value.to_str().map_err(|_| ApiError::InvalidHeader(label))?;
        for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let opaque = tag.strip_prefix("W/").unwrap_or(tag);
            let well_formed = tag == "*"
                || (opaque.len() >= 2
                    && opaque.starts_with('"')
                    && opaque.ends_with('"')
                    && !opaque[1..opaque.len() - 1].contains('"'));
            if !well_formed {
                return Err(ApiError::InvalidHeader(label));
            }
            tags.push(tag.to_owned());
        }
    }
    if seen && tags.is_empty() {
        return Err(ApiError::InvalidHeader(label));
    }
    Ok(seen.then_some(tags))
}

/// The caller's `X-Request-Id`, if sane: 1 to 128 characters of letters, digits and `-_.:`.
fn inbound_request_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("x-request-id")?.to_str().ok()?;
    let sane = (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    sane.then(|| v.to_owned())
}

fn declared_length(headers: &HeaderMap) -> usize {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn is_preflight(req: &Request<Vec<u8>>) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn set_etag(headers: &mut HeaderMap, version: Version) {
    if let Ok(v) = HeaderValue::from_str(&version.etag()) {
        headers.insert(header::ETAG, v);
    }
}

fn item(status: StatusCode, task: &Task) -> Response<Vec<u8>> {
    #[derive(Serialize)]
    struct Item<'a> {
        data: &'a Task,
    }
    let mut r = json(status, &Item { data: task });
    set_etag(r.headers_mut(), task.version);
    r
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Vec<u8>> {
    // Serializing these plain structs cannot fail; an empty body would be the only effect.
    let mut r = Response::new(serde_json::to_vec(body).unwrap_or_default());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn empty(status: StatusCode) -> Response<Vec<u8>> {
    let mut r = Response::new(Vec::new());
    *r.status_mut() = status;
    r
}
