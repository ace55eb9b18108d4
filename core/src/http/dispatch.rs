//! The HTTP contract: an `http::Request` in, an `http::Response` out.
//!
//! [`Api::handle`] resolves the route, answers CORS and method questions, authenticates,
//! reads the body, calls the store once, and renders the envelope or the problem. Every
//! response gets an `X-Request-Id` and a [`RequestLog`] in its extensions, which the host
//! writes to its log (the core does no I/O).

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};

use crate::RequestContext;
use crate::config::load::{Config, ConfigError};
use crate::http::accounts::AccountCall;
use crate::http::body::body_limit;
use crate::http::error::{ApiError, RETRY_AFTER_SECS};
use crate::http::log::RequestLog;
use crate::http::response::{VERSION, empty, json};
use crate::http::routes::{self, Endpoint, Route};
use crate::http::tasks::TaskCall;
use crate::http::transfer::{ExportCursor, Holder, MoreBody};
use crate::http::{openapi, web};
use crate::store::accounts::AccountStore;
use crate::store::tasks::{StoreError, TaskStore};

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
    ///
    /// The whole body is in the response, an export's included; a host that streams
    /// responses calls [`Api::handle_streaming`] instead, which holds one page of an
    /// export at a time.
    pub async fn handle(
        &self,
        request: Request<Vec<u8>>,
        ctx: RequestContext,
    ) -> Response<Vec<u8>> {
        let (mut response, mut more) = self.handle_streaming(request, ctx).await;
        loop {
            match more.next_chunk().await {
                Ok(Some(chunk)) => response.body_mut().extend_from_slice(&chunk),
                Ok(None) => return response,
                Err(e) => {
                    // Nothing is sent yet: the answer can still be the error's.
                    let log = response.extensions_mut().remove::<RequestLog>();
                    let e = ApiError::from(e);
                    let request_id = log.as_ref().map_or("", |l| l.request_id.as_str());
                    let mut failed = e.to_response(request_id);
                    for name in ["x-request-id", "vary", "access-control-allow-origin"] {
                        for v in response.headers().get_all(name) {
                            failed.headers_mut().append(name, v.clone());
                        }
                    }
                    if let Some(mut log) = log {
                        log.error = e.log_cause();
                        failed.extensions_mut().insert(log);
                    }
                    return failed;
                }
            }
        }
    }

    /// Answers one request like [`Api::handle`], but an export's body comes in parts: the
    /// response holds the first, and [`MoreBody::next_chunk`] gives the others (for every
    /// other route it gives none). A host sends the response's head and body, then each
    /// chunk as it comes, so that memory stays bounded whatever the number of tasks.
    pub async fn handle_streaming(
        &self,
        request: Request<Vec<u8>>,
        ctx: RequestContext,
    ) -> (Response<Vec<u8>>, MoreBody<'_, S>) {
        let mut response = self.answer(request, ctx).await;
        let cursor = response.extensions_mut().remove::<ExportCursor>();
        (
            response,
            MoreBody {
                store: Holder::Borrowed(&self.store),
                cursor,
            },
        )
    }

    /// [`Api::handle_streaming`] for an API made for one request: the rest of the body owns
    /// the store, so a host can hand it to a body stream that must be `'static` (axum's,
    /// hyper's).
    pub async fn into_streaming(
        self,
        request: Request<Vec<u8>>,
        ctx: RequestContext,
    ) -> (Response<Vec<u8>>, MoreBody<'static, S>)
    where
        S: 'static,
    {
        let mut response = self.answer(request, ctx).await;
        let cursor = response.extensions_mut().remove::<ExportCursor>();
        (
            response,
            MoreBody {
                store: Holder::Owned(self.store),
                cursor,
            },
        )
    }

    async fn answer(&self, request: Request<Vec<u8>>, ctx: RequestContext) -> Response<Vec<u8>> {
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
            response.extensions_mut().remove::<ExportCursor>();
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
        let limit = body_limit(route.endpoint);
        if req.body().len() > limit || declared_length(req.headers()) > limit {
            return Err(ApiError::PayloadTooLarge(limit));
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
                    retention_ms: config.tombstone_retention_ms,
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
