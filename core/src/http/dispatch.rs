//! The HTTP contract: an `http::Request` in, an `http::Response` out.
//!
//! [`Api::handle`] resolves the route, answers CORS and method questions, authenticates,
//! reads the body, calls the store once, and renders the envelope or the problem. Every
//! response gets an `X-Request-Id` and a [`RequestLog`] in its extensions, which the host
//! writes to its log (the core does no I/O).

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;

use crate::accounts::{
    self, AccountStore, MAX_FAILED_LOGINS_PER_ADDR, MAX_FAILED_LOGINS_PER_EMAIL,
    MAX_REGISTRATIONS_PER_ADDR, ThrottleKey, User, Window,
};
use crate::config::{Config, ConfigError};
use crate::error::{ApiError, RETRY_AFTER_SECS};
use crate::listing::ListQuery;
use crate::openapi;
use crate::routes::{self, Endpoint, Route};
use crate::store::{Idempotency, StoreError, TaskStore};
use crate::task::{Task, TaskId, UserId, Version};
use crate::time::Timestamp;
use crate::validation;
use crate::web;
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
    /// The configuration's warnings ([`Config::warnings`]), on `/health/ready` only.
    pub warnings: Vec<&'static str>,
}

/// The API over a store and a configuration.
///
/// A configuration that failed to load still serves `/health` and `/openapi.json`; task
/// routes then answer 500 with a problem naming the bad settings.
///
/// The built-in accounts' throttle keeps its counters in the store
/// ([`AccountStore::count_attempt`]), so every instance of a service that shares a store
/// shares the limits.
#[derive(Debug)]
pub struct Api<S> {
    store: S,
    config: Result<Config, ConfigError>,
}

impl<S: TaskStore> Api<S> {
    /// An API over `store` with a checked `config`.
    pub fn new(store: S, config: Config) -> Self {
        Self::with_config_result(store, Ok(config))
    }

    /// An API over `store` with the result of loading the configuration, good or bad.
    pub fn with_config_result(store: S, config: Result<Config, ConfigError>) -> Self {
        Api { store, config }
    }
}

impl<S> Api<S> {
    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: TaskStore + AccountStore> Api<S> {
    /// Answers one request. Never panics on any input; never returns a 5xx for a client's
    /// mistake.
    pub async fn handle(
        &self,
        request: Request<Vec<u8>>,
        ctx: RequestContext,
    ) -> Response<Vec<u8>> {
        let request_id =
            inbound_request_id(request.headers()).unwrap_or_else(|| ctx.request_id.clone());
        // With accounts off, their routes do not exist: 404 for every method, no CORS. The
        // same for the web page's files with `web_ui` off.
        let accounts_off = matches!(&self.config, Ok(c) if !c.accounts);
        let web_off = matches!(&self.config, Ok(c) if !c.web_ui);
        let route = routes::resolve(request.uri().path()).filter(|r| {
            let off = (accounts_off && r.endpoint.is_account())
                || (web_off && r.endpoint == Endpoint::WebAsset);
            !off
        });
        let mut log = RequestLog {
            request_id: request_id.clone(),
            route: route
                .as_ref()
                .map_or_else(|| "-".to_owned(), Route::pattern),
            user_id: None,
            error: None,
            warnings: Vec::new(),
        };
        let is_head = request.method() == Method::HEAD;
        let mut response = match self
            .dispatch(&request, route.as_ref(), &ctx, &mut log)
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
        // A host may read `cors_origins` only for requests with an `Origin`
        // (`SettingsScope`), so whether CORS is on is unknown here for the others: every
        // answer says it may depend on `Origin`, which keeps a shared cache from serving a
        // response without CORS headers to a browser.
        if !headers
            .get_all(header::VARY)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"origin"))
        {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
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
        ctx: &RequestContext,
        log: &mut RequestLog,
    ) -> Result<Response<Vec<u8>>, ApiError> {
        let now = ctx.now;
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
        if ctx.incomplete_body {
            // Only a prefix of what the client sent arrived: never act on it.
            return Err(ApiError::MalformedBody(
                "the body could not be read completely",
            ));
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
            // Without a usable configuration, `/` is the JSON index: the page's setting is
            // unknown, and `/health/ready` names the problem.
            Endpoint::Index => Ok(web::index(
                req,
                self.config.as_ref().is_ok_and(|c| c.web_ui),
            )),
            Endpoint::WebAsset => {
                self.config
                    .as_ref()
                    .map_err(|e| ApiError::Misconfigured(e.clone()))?;
                web::asset(req, &route.pattern()).ok_or(ApiError::NotFound)
            }
            e if e.is_account() => {
                let config = self
                    .config
                    .as_ref()
                    .map_err(|e| ApiError::Misconfigured(e.clone()))?;
                let call = AccountCall {
                    store: &self.store,
                    config,
                    req,
                    ctx,
                    log,
                };
                call.run(e).await
            }
            _ => {
                let config = self
                    .config
                    .as_ref()
                    .map_err(|e| ApiError::Misconfigured(e.clone()))?;
                let user = config.verifier.authenticate(req.headers(), now)?;
                log.user_id = Some(user.clone());
                if route.path_user()?.is_some_and(|p| p != user) {
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
        // A bad setting, or a database that refuses this service for good, is not a
        // reason to wait and retry: the probe gets the same 500 problem as the task routes.
        let permanent = match (&self.config, self.store.ping().await) {
            (Err(e), _) => Err(ApiError::Misconfigured(e.clone())),
            (Ok(_), Err(e @ StoreError::Misconfigured(_))) => Err(ApiError::from(e)),
            (Ok(_), ping) => Ok(ping),
        };
        if let Ok(config) = &self.config {
            log.warnings = config.warnings().to_vec();
        }
        let ping = match permanent {
            Ok(ping) => ping,
            Err(e) => {
                log.error = e.log_cause();
                return e.to_response(&log.request_id);
            }
        };
        match ping {
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

    fn json_body(&self, optional: bool) -> Result<&[u8], ApiError> {
        json_body(self.req, optional)
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

/// The body, checked to be JSON. With `optional`, an empty body is allowed whatever its
/// content type (a toggle sends none).
fn json_body(req: &Request<Vec<u8>>, optional: bool) -> Result<&[u8], ApiError> {
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
        Err(ApiError::UnsupportedMediaType)
    }
}

/// One call to a built-in accounts route (accounts are on).
struct AccountCall<'a, S> {
    store: &'a S,
    config: &'a Config,
    req: &'a Request<Vec<u8>>,
    ctx: &'a RequestContext,
    log: &'a mut RequestLog,
}

impl<S: AccountStore> AccountCall<'_, S> {
    async fn run(self, endpoint: Endpoint) -> Result<Response<Vec<u8>>, ApiError> {
        match endpoint {
            Endpoint::Register => self.register().await,
            Endpoint::Login => self.login().await,
            // Tokens are stateless: nothing to revoke, so no token is required or checked.
            Endpoint::Logout => Ok(empty(StatusCode::NO_CONTENT)),
            _ => self.me().await,
        }
    }

    async fn register(self) -> Result<Response<Vec<u8>>, ApiError> {
        let (email, password) = accounts::parse_credentials(json_body(self.req, false)?)?;
        // Each registration costs a hash and may create an account: counted per address
        // before either, and never forgiven.
        let window = Window::at(self.ctx.now);
        if let Some(addr) = self.client_addr() {
            let key = ThrottleKey::new(&format!("register:addr:{addr}"), window.start);
            if self.count(&key, &window).await? > MAX_REGISTRATIONS_PER_ADDR {
                return Err(ApiError::TooManyAttempts(window.retry_after));
            }
        }
        let entropy = self
            .ctx
            .entropy
            .ok_or_else(|| ApiError::Internal("the host provided no entropy".into()))?;
        let (salt, rest) = entropy.split_at(16);
        let mut id_bytes = [0u8; 12];
        id_bytes.copy_from_slice(&rest[..12]);
        let hash = accounts::hash_password(&password, salt, self.config.password_cost)?;
        let user = User {
            id: accounts::new_user_id(&id_bytes),
            email,
            created_at: self.ctx.now,
        };
        self.store.create_user(&user, &hash).await?;
        self.log.user_id = Some(user.id.clone());
        self.token_envelope(StatusCode::CREATED, &user)
    }

    async fn login(self) -> Result<Response<Vec<u8>>, ApiError> {
        let (email, password) = accounts::parse_credentials(json_body(self.req, false)?)?;
        // Count the attempt first, atomically, so that parallel guesses cannot all pass a
        // check made before any of them is counted; over a limit, no hash is computed.
        let window = Window::at(self.ctx.now);
        let email_key = ThrottleKey::new(&format!("login:email:{}", email.folded()), window.start);
        let addr_key = self
            .client_addr()
            .map(|addr| ThrottleKey::new(&format!("login:addr:{addr}"), window.start));
        // The address first: an address over its limit must not go on counting against
        // the emails it names, or one client could lock every account out.
        if let Some(key) = &addr_key
            && self.count(key, &window).await? > MAX_FAILED_LOGINS_PER_ADDR
        {
            return Err(ApiError::TooManyAttempts(window.retry_after));
        }
        if self.count(&email_key, &window).await? > MAX_FAILED_LOGINS_PER_EMAIL {
            return Err(ApiError::TooManyAttempts(window.retry_after));
        }
        let record = self.store.login_record(&email).await?;
        let user = match record {
            Some((user, hash)) => accounts::verify_password(&password, &hash)?.then_some(user),
            None => {
                // The same work as a wrong password, and the same answer.
                let dummy = self.config.password_cost.dummy_hash();
                accounts::verify_password(&password, &dummy)?;
                None
            }
        };
        let Some(user) = user else {
            return Err(ApiError::InvalidCredentials);
        };
        // Only failures add up: a login that succeeded takes its count back.
        self.store.forgive_attempt(&email_key).await?;
        if let Some(key) = &addr_key {
            self.store.forgive_attempt(key).await?;
        }
        self.log.user_id = Some(user.id.clone());
        self.token_envelope(StatusCode::OK, &user)
    }

    /// Counts this attempt under `key` until the window ends.
    async fn count(&self, key: &ThrottleKey, window: &Window) -> Result<u64, ApiError> {
        Ok(self
            .store
            .count_attempt(key, window.end, self.ctx.now)
            .await?)
    }

    /// The client's address as the throttle keys it: the hop a trusted proxy added to the
    /// configured header (`client_addr_header`), else the host's report.
    fn client_addr(&self) -> Option<String> {
        let forwarded = self
            .config
            .client_addr_header
            .as_deref()
            .and_then(|header| accounts::forwarded_addr(self.req.headers(), header))
            .and_then(accounts::normalize_addr);
        // Without a usable forwarded hop (no header, or one that does not parse), the host's
        // report still counts: a request must never escape the address limit by leaving
        // the header out.
        forwarded.or_else(|| self.ctx.client_addr.clone())
    }

    async fn me(self) -> Result<Response<Vec<u8>>, ApiError> {
        let id = self
            .config
            .verifier
            .authenticate(self.req.headers(), self.ctx.now)?;
        self.log.user_id = Some(id.clone());
        // A valid token of a user without a built-in account (another issuer's): 404.
        let user = self.store.user(&id).await?.ok_or(ApiError::NotFound)?;
        Ok(json(StatusCode::OK, &serde_json::json!({ "data": user })))
    }

    fn token_envelope(
        &self,
        status: StatusCode,
        user: &User,
    ) -> Result<Response<Vec<u8>>, ApiError> {
        // Configuration checks guarantee a secret when accounts are on.
        let tokens =
            self.config.tokens.as_ref().ok_or_else(|| {
                ApiError::Internal("accounts are on but no jwt_secret is set".into())
            })?;
        let token = tokens.issue(&user.id, self.ctx.now)?;
        let mut r = json(
            status,
            &serde_json::json!({ "data": {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": tokens.ttl_secs,
                "user": user,
            }}),
        );
        // RFC 6749 section 5.1: responses carrying tokens are not cached.
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
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
