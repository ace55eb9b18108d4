//! The HTTP boundary's one error type, and the one place that maps errors to HTTP: every
//! lower layer's error (the domain's [`QueryError`], `auth`'s [`AuthError`],
//! [`PasswordError`] and [`TokenError`], the configuration's [`ConfigError`], the store's
//! [`StoreError`]) becomes an [`ApiError`] through a `From` here, and an [`ApiError`] becomes
//! a status and an RFC 9457 problem document here. No layer below `http` knows `ApiError`.

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::auth::bearer::AuthError;
use crate::auth::password::PasswordError;
use crate::auth::tokens::TokenError;
use crate::config::load::ConfigError;
use crate::domain::field::FieldError;
use crate::domain::listing::QueryError;
use crate::store::tasks::{Misconfiguration, StoreError};

/// Seconds a client should wait before retrying when the database cannot be reached.
pub const RETRY_AFTER_SECS: u32 = 5;

/// Everything a request can fail with. [`ApiError::status`] is the only mapping to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON or not an object, or could not be read completely.
    #[error("{0}")]
    MalformedBody(&'static str),
    /// 400: parameters (of the query, or the path's `user_id`) that are not allowed values,
    /// each named.
    #[error("invalid query parameter")]
    InvalidQuery(Vec<FieldError>),
    /// 400: a request header that cannot be understood, named.
    #[error("invalid {0} header")]
    InvalidHeader(&'static str),
    /// 401: no usable bearer token.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// 403: the path names another user than the token.
    #[error("the path names another user than the token")]
    Forbidden,
    /// 404: no such route, or no such task for this user.
    #[error("not found")]
    NotFound,
    /// 405: the route exists with other methods.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// 401: a login whose email or password is not correct (one answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 409: registering an email that already has an account.
    #[error("email taken")]
    EmailTaken,
    /// 429: too many failed logins; retry after this many seconds.
    #[error("too many attempts")]
    TooManyAttempts(u64),
    /// 412: `If-Match` names a version that is not the current one.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 413: the body is larger than the route takes ([`crate::MAX_BODY_BYTES`], or
    /// [`crate::MAX_IMPORT_BYTES`] for an import), which it names in bytes.
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// 415: a body of another media type than the route takes (named, for the detail).
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// 406: an export asked for in a format it does not come in.
    #[error("not acceptable")]
    NotAcceptable,
    /// 410: a change feed token older than the changes kept, or not of this database.
    #[error("sync reset")]
    SyncReset,
    /// One operation of a batch failed, so none applied: its error, with its index and kind.
    #[error("batch operation {index} ({op}): {error}")]
    BatchFailed {
        /// The operation's index, from 0.
        index: usize,
        /// `create`, `update` or `delete`.
        op: &'static str,
        /// Its error, as the single route would answer it.
        error: Box<ApiError>,
    },
    /// 422: field problems, every one found.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 422: an `Idempotency-Key` reused for a different body.
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// 500: the service is misconfigured; names the settings, never their values.
    #[error(transparent)]
    Misconfigured(#[from] ConfigError),
    /// 503: the store cannot be reached now.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// 500 `configuration_error`: the store refuses the service until a setting changes.
    /// The detail names the setting and the hint; the cause is logged only.
    #[error("store misconfigured: {0}")]
    StoreMisconfigured(Misconfiguration),
    /// 500: anything else. The cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::VersionConflict => ApiError::PreconditionFailed,
            StoreError::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            StoreError::EmailTaken => ApiError::EmailTaken,
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
            StoreError::Misconfigured(m) => ApiError::StoreMisconfigured(m),
            StoreError::Other(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::InvalidQuery(e.0)
    }
}

/// A password that cannot be hashed or checked is the server's problem: a 500, its cause
/// logged.
impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// A token that cannot be signed is the server's problem: a 500, its cause logged.
impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// An RFC 9457 problem document, as sent.
#[derive(Debug, Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    code: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    /// For a failed batch: the operation that failed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<&'static str>,
    request_id: &'a str,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedBody(_) | ApiError::InvalidQuery(_) | ApiError::InvalidHeader(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::EmailTaken => StatusCode::CONFLICT,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::SyncReset => StatusCode::GONE,
            ApiError::BatchFailed { error, .. } => error.status(),
            ApiError::Validation(_) | ApiError::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Misconfigured(_)
            | ApiError::StoreMisconfigured(_)
            | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine code sent as the problem's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedBody(_) => "malformed_body",
            ApiError::InvalidQuery(_) => "invalid_parameter",
            ApiError::InvalidHeader(_) => "invalid_header",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::EmailTaken => "email_taken",
            ApiError::TooManyAttempts(_) => "too_many_attempts",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::NotAcceptable => "not_acceptable",
            ApiError::SyncReset => "sync_reset",
            ApiError::BatchFailed { error, .. } => error.code(),
            ApiError::Validation(_) => "validation_failed",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::Misconfigured(_) | ApiError::StoreMisconfigured(_) => "configuration_error",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::MalformedBody(_) => "Malformed body",
            ApiError::InvalidQuery(_) => "Invalid query parameter",
            ApiError::InvalidHeader(_) => "Invalid header",
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials => "Unauthorized",
            ApiError::EmailTaken => "Email taken",
            ApiError::TooManyAttempts(_) => "Too many attempts",
            ApiError::Forbidden => "Forbidden",
            ApiError::NotFound => "Not found",
            ApiError::MethodNotAllowed(_) => "Method not allowed",
            ApiError::PreconditionFailed => "Precondition failed",
            ApiError::PayloadTooLarge(_) => "Payload too large",
            ApiError::UnsupportedMediaType(_) => "Unsupported media type",
            ApiError::NotAcceptable => "Not acceptable",
            ApiError::SyncReset => "Sync reset",
            ApiError::BatchFailed { error, .. } => error.title(),
            ApiError::Validation(_) => "Validation failed",
            ApiError::IdempotencyKeyReused => "Idempotency key reused",
            ApiError::Misconfigured(_) | ApiError::StoreMisconfigured(_) => "Service misconfigured",
            ApiError::Unavailable(_) => "Service unavailable",
            ApiError::Internal(_) => "Internal server error",
        }
    }

    /// One human sentence for `detail`: safe to send, never an internal cause.
    fn detail(&self) -> String {
        match self {
            ApiError::MalformedBody(why) => (*why).to_owned(),
            ApiError::InvalidQuery(errors) | ApiError::Validation(errors) => summary(errors),
            ApiError::InvalidHeader(name) => format!("the {name} header is not valid"),
            ApiError::Unauthorized(e) => e.description().to_owned(),
            ApiError::InvalidCredentials => "the email or password is not correct".to_owned(),
            ApiError::EmailTaken => "an account with this email already exists".to_owned(),
            ApiError::TooManyAttempts(_) => {
                "too many failed logins; retry after the time in Retry-After".to_owned()
            }
            ApiError::Forbidden => "the path names a different user than the token".to_owned(),
            ApiError::NotFound => "no such resource".to_owned(),
            ApiError::MethodNotAllowed(allow) => format!("this route allows {allow}"),
            ApiError::PreconditionFailed => {
                "the task has changed since the ETag in If-Match was issued".to_owned()
            }
            ApiError::PayloadTooLarge(limit) => format!("the body must be at most {limit} bytes"),
            ApiError::UnsupportedMediaType(types) => format!("the body must be {types}"),
            ApiError::NotAcceptable => {
                "an export comes as application/x-ndjson or text/csv only".to_owned()
            }
            ApiError::SyncReset => "the since token is older than the changes kept: list the \
                 tasks afresh, then read the feed again without since"
                .to_owned(),
            ApiError::BatchFailed { index, op, error } => {
                format!(
                    "operation {index} ({op}) failed, so none applied: {}",
                    error.detail()
                )
            }
            ApiError::IdempotencyKeyReused => {
                "this Idempotency-Key was already used with a different body".to_owned()
            }
            ApiError::Misconfigured(e) => e.to_string(),
            ApiError::StoreMisconfigured(m) => {
                format!("the service is misconfigured: {} {}", m.setting, m.hint)
            }
            ApiError::Unavailable(_) => "the database cannot be reached; retry later".to_owned(),
            ApiError::Internal(_) => {
                "an internal error occurred; quote the request_id when reporting it".to_owned()
            }
        }
    }

    /// The cause to log for a server-side failure (never sent to the client).
    pub fn log_cause(&self) -> Option<String> {
        match self {
            ApiError::Internal(_)
            | ApiError::Unavailable(_)
            | ApiError::Misconfigured(_)
            | ApiError::StoreMisconfigured(_) => Some(self.to_string()),
            ApiError::BatchFailed { error, .. } => error.log_cause(),
            _ => None,
        }
    }

    /// The problem+json response, with the headers this error needs.
    pub(crate) fn to_response(&self, request_id: &str) -> Response<Vec<u8>> {
        let (inner, index, op) = match self {
            ApiError::BatchFailed { index, op, error } => (error.as_ref(), Some(*index), Some(*op)),
            other => (other, None, None),
        };
        let errors = match inner {
            ApiError::InvalidQuery(e) | ApiError::Validation(e) => e.as_slice(),
            _ => &[],
        };
        let problem = Problem {
            kind: format!("urn:task-api:problem:{}", self.code()),
            title: self.title(),
            status: self.status().as_u16(),
            detail: self.detail(),
            code: self.code(),
            errors,
            index,
            op,
            request_id,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = Response::new(body);
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match inner {
            ApiError::Unauthorized(e) => {
                if let Ok(v) = HeaderValue::from_str(&e.www_authenticate()) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            ApiError::MethodNotAllowed(allow) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            ApiError::TooManyAttempts(secs) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            _ => {}
        }
        response
    }
}

fn summary(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.message.to_string(),
        many => {
            let mut fields: Vec<&str> = many.iter().map(|e| e.field.as_ref()).collect();
            fields.dedup();
            format!("{} problems found, in: {}", many.len(), fields.join(", "))
        }
    }
}
