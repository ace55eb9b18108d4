//! The task (todo) API as a library: an `http::Request` in, an `http::Response` out.
//!
//! `task-api-core` implements the whole HTTP contract of the task service (routing, JWT
//! checks, validation, per-user isolation, ETags, idempotent creation, keyset paging, CORS,
//! problem+json errors and the OpenAPI document) with no I/O of its own. A host brings the
//! request, the current time, a configuration and a [`TaskStore`]; the Spin component is one
//! such host, an axum server or a test is another.
//!
//! ```
//! use http::Request;
//! use jwt_simple::prelude::*;
//! use task_api_core::{Api, Config, MemoryStore, RequestContext, Timestamp};
//!
//! let secret = "an example secret of at least 32 bytes!";
//! let config = Config::from_lookup(|name| (name == "jwt_secret").then(|| secret.into())).unwrap();
//! let api = Api::new(MemoryStore::new(), config);
//!
//! let claims = Claims::create(Duration::from_hours(1)).with_subject("u1");
//! let token = HS256Key::from_bytes(secret.as_bytes()).authenticate(claims).unwrap();
//! let request = Request::post("/api/tasks")
//!     .header("authorization", format!("Bearer {token}"))
//!     .header("content-type", "application/json")
//!     .body(br#"{"title":"Buy milk"}"#.to_vec())
//!     .unwrap();
//! let now = Timestamp::from_system_time(std::time::SystemTime::now());
//! let response = pollster::block_on(api.handle(request, RequestContext::new(now, "req-1")));
//! assert_eq!(response.status(), 201);
//! assert!(response.headers()["location"].to_str().unwrap().starts_with("/api/tasks/"));
//! ```
//!
//! Bring your own store by implementing [`TaskStore`]: one async method per operation, each
//! taking the owner's [`UserId`].

#![warn(missing_docs)]

// The layers, bottom to top; each may import only the ones before it (`.ci/check-layers`
// checks it), and each folder's `mod.rs` says what it owns.
mod auth;
mod config;
mod domain;
mod http;
mod store;

#[cfg(feature = "sql")]
pub use store::sql;

pub use auth::algorithm::{Algorithm, JwtSecret, KeyType, MIN_SECRET_BYTES};
pub use auth::bearer::{AuthError, LEEWAY_SECS, MAX_TOKEN_BYTES};
pub use auth::jwks::{
    DEFAULT_JWKS_TTL_SECS, JWKS_MAX_STALE_SECS, JWKS_REFRESH_INTERVAL_SECS, Jwk, JwkSet, JwksCache,
    JwksError, MAX_JWKS_BYTES, MIN_RSA_BITS, SkippedKey, bearer_key_id, bearer_uses_jwks,
    refresh_allowed, should_refresh,
};
pub use auth::password::{DUMMY_PASSWORD_HASH, PasswordCost};
pub use auth::throttle::{
    LOGIN_WINDOW_SECS, MAX_FAILED_LOGINS_PER_ADDR, MAX_FAILED_LOGINS_PER_EMAIL,
    MAX_REGISTRATIONS_PER_ADDR,
};
pub use auth::tokens::{
    DEFAULT_ACCESS_TOKEN_TTL_SECS, MAX_ACCESS_TOKEN_TTL_SECS, MIN_ACCESS_TOKEN_TTL_SECS,
};
pub use auth::verifier::JwtVerifier;
pub use config::jwks_refresh::{JwksHost, jwks_store_keys, prepare_jwks};
pub use config::load::{
    Config, ConfigError, ConfigProblem, MAX_JWKS_TTL_SECS, SETTINGS, Setting, parse_flag,
};
pub use config::scope::SettingsScope;
pub use domain::account::{
    EMAIL_MAX_CHARS, Email, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, Password, User,
};
pub use domain::field::FieldError;
pub use domain::ids::{TaskId, USER_ID_MAX_CHARS, UserId, Version};
pub use domain::listing::{
    DEFAULT_LIMIT, Direction, ListQuery, MAX_LIMIT, MAX_SEARCH_CHARS, Position, QueryError, Sort,
    SortKey, SortValue, StatusFilter,
};
pub use domain::task::{
    Completion, DESCRIPTION_MAX_CHARS, Description, NewTask, Priority, TITLE_MAX_CHARS, Task,
    TaskPatch, TaskPatchBuilder, Title,
};
pub use domain::time::{DueDate, Timestamp};
pub use http::body::{MAX_BODY_BYTES, MAX_IMPORT_BYTES, max_body_bytes};
pub use http::cors::{ALLOWED_HEADERS, EXPOSED_HEADERS, MAX_AGE_SECS};
pub use http::dispatch::Api;
pub use http::error::{ApiError, RETRY_AFTER_SECS};
pub use http::feed::{DEFAULT_FEED_LIMIT, MAX_FEED_LIMIT};
pub use http::log::RequestLog;
pub use http::openapi::openapi_document;
pub use http::response::VERSION;
pub use http::transfer::MoreBody;
pub use store::accounts::{AccountStore, ThrottleKey};
pub use store::changes::{
    Change, Changes, Clock, EXPORT_PAGE, FeedPosition, Imported, ImportedTask,
    MAX_BATCH_OPERATIONS, MAX_IMPORT_TASKS,
};
pub use store::memory::MemoryStore;
pub use store::tasks::{
    BatchFailure, BatchOp, BatchResult, Created, IDEMPOTENCY_TTL_MS, Idempotency, IdempotencyKey,
    Misconfiguration, Page, StoreError, TaskStore,
};

// The README's examples compile and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// What a host hands [`Api::handle`] besides the request: the current time, a fresh
/// request id (used when the caller did not send a sane `X-Request-Id`), whether the body
/// could be read completely and, for the built-in accounts, fresh entropy and the client's
/// address.
///
/// Its `Debug` never shows the entropy.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The time of the request.
    pub now: Timestamp,
    /// A new unique id, from the host's randomness.
    pub request_id: String,
    pub(crate) entropy: Option<[u8; 32]>,
    pub(crate) client_addr: Option<String>,
    pub(crate) incomplete_body: bool,
}

impl RequestContext {
    /// A context at `now` with a fresh `request_id`, no entropy and no client address.
    ///
    /// ```
    /// use task_api_core::{RequestContext, Timestamp};
    /// let ctx = RequestContext::new(Timestamp::from_millis(0), "req-1");
    /// assert_eq!(ctx.request_id, "req-1");
    /// ```
    pub fn new(now: Timestamp, request_id: impl Into<String>) -> Self {
        RequestContext {
            now,
            request_id: request_id.into(),
            entropy: None,
            client_addr: None,
            incomplete_body: false,
        }
    }

    /// With 32 fresh bytes from the host's cryptographically secure randomness (WASI
    /// `random`, `getrandom`), used by `POST /auth/register` for the password's salt (bytes 0
    /// to 15) and the user id (bytes 16 to 27). Without it, registering is a 500: the core
    /// never makes up a salt.
    ///
    /// ```
    /// use task_api_core::{RequestContext, Timestamp};
    /// let ctx = RequestContext::new(Timestamp::from_millis(0), "req-1").with_entropy([7; 32]);
    /// assert!(!format!("{ctx:?}").contains("7, 7"));
    /// ```
    pub fn with_entropy(mut self, entropy: [u8; 32]) -> Self {
        self.entropy = Some(entropy);
        self
    }

    /// With the client's network address (`ip`, `ip:port` or `[ipv6]:port`; the port is
    /// dropped), for the per-address limit of failed logins. Without it, only the per-email
    /// limit applies.
    ///
    /// ```
    /// use task_api_core::{RequestContext, Timestamp};
    /// let ctx = RequestContext::new(Timestamp::from_millis(0), "r").with_client_addr("10.0.0.1:5555");
    /// assert_eq!(ctx.client_addr(), Some("10.0.0.1"));
    /// ```
    pub fn with_client_addr(mut self, addr: impl Into<String>) -> Self {
        self.client_addr = auth::throttle::normalize_addr(&addr.into());
        self
    }

    /// The host could not read the request's whole body: its stream failed part-way, so
    /// the bytes in the request are only a prefix of what the client sent. Such a request is
    /// answered 400 `malformed_body` (after the route, method and size checks) and never
    /// handled with the part that arrived.
    ///
    /// ```
    /// use task_api_core::{RequestContext, Timestamp};
    /// let ctx = RequestContext::new(Timestamp::from_millis(0), "r").with_incomplete_body();
    /// assert!(ctx.body_is_incomplete());
    /// ```
    pub fn with_incomplete_body(mut self) -> Self {
        self.incomplete_body = true;
        self
    }

    /// Whether the host reported the body as incomplete.
    pub fn body_is_incomplete(&self) -> bool {
        self.incomplete_body
    }

    /// The client address, as the throttle keys it.
    pub fn client_addr(&self) -> Option<&str> {
        self.client_addr.as_deref()
    }
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("now", &self.now)
            .field("request_id", &self.request_id)
            .field("entropy", &self.entropy.map(|_| "<32 bytes>"))
            .field("client_addr", &self.client_addr)
            .field("incomplete_body", &self.incomplete_body)
            .finish()
    }
}
