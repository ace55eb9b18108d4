//! The `cors_origins` setting: which origins may call the API from a browser. The headers that
//! tell a browser so are the HTTP layer's (`http/cors.rs`).

/// The configured origins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CorsOrigins {
    /// `*`: any origin (sent as `Access-Control-Allow-Origin: *`; bearer tokens need no
    /// credentials mode, so this works for them).
    Any,
    /// Exactly these origins (`scheme://host[:port]`); empty means CORS is off.
    List(Vec<String>),
}

impl CorsOrigins {
    /// Parses `*` or a comma-separated list of origins. A trailing slash is forgiven.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.trim() == "*" {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::new();
        for item in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let origin = item.strip_suffix('/').unwrap_or(item);
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            match host {
                Some(h) if !h.is_empty() && !h.contains(['/', '?', '#', ' ', '*']) => {
                    origins.push(origin.to_ascii_lowercase());
                }
                _ => return Err(
                    "must be * or a comma-separated list of origins like https://app.example.com"
                        .into(),
                ),
            }
        }
        Ok(CorsOrigins::List(origins))
    }
}
