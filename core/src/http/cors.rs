//! CORS: the headers that tell a browser whether an origin (configured in `cors_origins`,
//! `config::cors::CorsOrigins`) may call the API.
//!
//! A disallowed origin gets no CORS headers at all (the browser then blocks the response);
//! the request itself is still answered, because CORS protects the browser's user, not the
//! server.

use http::{HeaderMap, HeaderValue, header};

use crate::config::cors::CorsOrigins;

/// Request headers a browser may send.
pub const ALLOWED_HEADERS: &str =
    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-Id";
/// Response headers a browser script may read.
pub const EXPOSED_HEADERS: &str =
    "ETag, Location, X-Request-Id, Retry-After, WWW-Authenticate, Idempotent-Replayed";
/// How long a browser may cache a preflight, in seconds (Chromium caps it at 7200).
pub const MAX_AGE_SECS: u32 = 7200;

impl CorsOrigins {
    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match self {
            CorsOrigins::Any => Some(HeaderValue::from_static("*")),
            CorsOrigins::List(list) => {
                let o = origin.to_str().ok()?;
                list.iter()
                    .any(|a| a.eq_ignore_ascii_case(o))
                    .then(|| origin.clone())
            }
        }
    }

    /// The answer depends on `Origin` whenever origins are listed one by one.
    fn vary(&self, headers: &mut HeaderMap) {
        if matches!(self, CorsOrigins::List(list) if !list.is_empty()) {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }

    /// Adds the headers of an actual (non-preflight) response.
    pub(crate) fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        self.vary(headers);
        if let Some(allow) = origin.and_then(|o| self.allow(o)) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }

    /// Adds the headers of a preflight answer for a route allowing `methods`.
    pub(crate) fn preflight(
        &self,
        origin: Option<&HeaderValue>,
        methods: &'static str,
        headers: &mut HeaderMap,
    ) {
        self.vary(headers);
        if let Some(allow) = origin.and_then(|o| self.allow(o)) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(methods),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(MAX_AGE_SECS),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_origin_is_echoed_and_others_get_nothing() {
        let c = CorsOrigins::parse("https://app.example, http://localhost:3000/").unwrap();
        let mut h = HeaderMap::new();
        c.decorate(
            Some(&HeaderValue::from_static("http://localhost:3000")),
            &mut h,
        );
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:3000"
        );
        let mut h = HeaderMap::new();
        c.decorate(
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut h,
        );
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_eq!(h[header::VARY], "Origin");
    }

    #[test]
    fn star_allows_every_origin() {
        let mut h = HeaderMap::new();
        CorsOrigins::Any.decorate(Some(&HeaderValue::from_static("https://x.example")), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[test]
    fn origins_with_paths_or_without_scheme_are_refused() {
        for bad in [
            "app.example",
            "https://app.example/path",
            "ftp://x",
            "https://",
        ] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
