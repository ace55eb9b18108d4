//! What a host should log about a request: the core does no I/O, so each response carries
//! its log entry in its extensions, and the host writes it.

use crate::domain::ids::UserId;

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
    /// The configuration's warnings ([`Config::warnings`](crate::Config::warnings)), on `/health/ready` only.
    pub warnings: Vec<&'static str>,
}
