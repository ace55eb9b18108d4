//! One structured line per request on stderr, which Spin collects as the component's log.
//! It never holds a token, a password or a body: only what [`RequestLog`] carries.
//!
//! Each line is rendered whole and written with a single `write` of at most
//! [`MAX_LINE_BYTES`]: Spin forwards every write of every instance to the same log as it
//! comes, so a line written in pieces (as `eprintln!` of a JSON value does, one write per
//! token) interleaves with other requests' lines under load, and every piece costs a host
//! call. A WASI output stream takes at most 4096 bytes per blocking write.

use std::io::Write as _;
use std::time::Duration;

use task_api_core::RequestLog;

/// The longest line written, newline included; a longer `error` text is cut to fit.
pub const MAX_LINE_BYTES: usize = 4096;

/// Writes the line for a request answered with `response` after `elapsed`.
pub fn request(method: &http::Method, response: &http::Response<Vec<u8>>, elapsed: Duration) {
    let log = response.extensions().get::<RequestLog>();
    let status = response.status().as_u16();
    let mut line = serde_json::json!({
        "level": if status >= 500 { "error" } else { "info" },
        "request_id": log.map(|l| l.request_id.as_str()),
        "method": method.as_str(),
        "route": log.map(|l| l.route.as_str()),
        "status": status,
        "duration_ms": (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        "user_id": log.and_then(|l| l.user_id.as_ref()).map(|u| u.as_str()),
        "error": log.and_then(|l| l.error.as_deref()).map(|e| first_line(e, 1024)),
    });
    let warnings = log.map(|l| l.warnings.as_slice()).unwrap_or_default();
    if !warnings.is_empty() {
        if status < 500 {
            line["level"] = serde_json::Value::from("warn");
        }
        line["warnings"] = serde_json::Value::from(warnings.to_vec());
    }
    write_line(line);
}

/// Writes the line for a JWKS that could not be fetched or cached: the URL (configuration,
/// never a token) and what went wrong. The request goes on.
pub fn jwks(url: &str, problem: &str) {
    let line = serde_json::json!({
        "level": "warn",
        "event": "jwks",
        "jwks_url": first_line(url, 1024),
        "error": first_line(problem, 1024),
    });
    write_line(line);
}

/// Writes a line about something that happened outside a request's answer (`event`), with
/// what went wrong.
pub fn event(level: &str, event: &str, problem: &str) {
    let line = serde_json::json!({
        "level": level,
        "event": event,
        "error": first_line(problem, 1024),
    });
    write_line(line);
}

/// The first line of `text`, at most `max` bytes.
fn first_line(text: &str, max: usize) -> &str {
    let line = text.lines().next().unwrap_or("");
    let mut end = line.len().min(max);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// Renders `line` and writes it in one call, newline included.
fn write_line(line: serde_json::Value) {
    let _ = std::io::stderr().write_all(&render(&line));
}

/// `line` as JSON plus a newline, at most [`MAX_LINE_BYTES`] long: the fields are cut to
/// their first line above, so only a pathological value is longer, and then its `error`
/// gives way.
fn render(line: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    if bytes.len() >= MAX_LINE_BYTES {
        let mut shorter = line.clone();
        shorter["error"] = serde_json::Value::from("(too long to log)");
        shorter["jwks_url"] = serde_json::Value::Null;
        bytes = serde_json::to_vec(&shorter).unwrap_or_default();
        bytes.truncate(MAX_LINE_BYTES - 1);
    }
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_and_a_newline_under_the_limit() {
        let line = serde_json::json!({"level": "error", "error": "x".repeat(10_000)});
        let bytes = render(&line);
        assert!(bytes.len() <= MAX_LINE_BYTES);
        assert_eq!(bytes.last(), Some(&b'\n'));
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed["level"], "error");
    }

    #[test]
    fn only_the_first_line_of_a_cause_is_kept() {
        assert_eq!(first_line("boom\nStack backtrace:\n 0: x", 100), "boom");
        assert_eq!(first_line("é".repeat(10).as_str(), 5), "éé");
    }
}
