//! One structured line per request on stderr, which Spin collects as the component's log.
//! It never holds a token, a password or a body: only what [`RequestLog`] carries.

use std::time::Duration;

use task_api_core::RequestLog;

/// Writes the line for a request answered with `response` after `elapsed`.
pub fn request(method: &http::Method, response: &http::Response<Vec<u8>>, elapsed: Duration) {
    let log = response.extensions().get::<RequestLog>();
    let status = response.status().as_u16();
    let line = serde_json::json!({
        "level": if status >= 500 { "error" } else { "info" },
        "request_id": log.map(|l| l.request_id.as_str()),
        "method": method.as_str(),
        "route": log.map(|l| l.route.as_str()),
        "status": status,
        "duration_ms": (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "user_id": log.and_then(|l| l.user_id.as_ref()).map(|u| u.as_str()),
        "error": log.and_then(|l| l.error.as_deref()),
    });
    eprintln!("{line}");
}

/// Writes the line for a JWKS that could not be fetched or cached: the URL (configuration,
/// never a token) and what went wrong. The request goes on.
pub fn jwks(url: &str, problem: &str) {
    let line = serde_json::json!({
        "level": "warn",
        "event": "jwks",
        "jwks_url": url,
        "error": problem,
    });
    eprintln!("{line}");
}
