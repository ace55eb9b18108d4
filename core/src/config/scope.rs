//! Which settings a request can use: a host reads only those, because in Spin every read of a
//! setting is a host call. Which scope a request falls in is decided by the HTTP layer, which
//! knows the routes (`http/scope.rs`).

/// Which of the settings a request can use, so that a host reads only those: in Spin every
/// setting is a variable, and every read of one is a host call (about 16 µs on Spin 4).
///
/// The JWT settings other than the key set (`jwt_secret`, `jwt_algorithms`, `jwt_issuer`,
/// `jwt_audience`) are always read. The key set (`jwt_jwks`, `jwt_jwks_url`,
/// `jwt_jwks_ttl`) is read only for a request whose bearer token names an asymmetric
/// algorithm, `cors_origins` only for a request with an `Origin`, the accounts settings
/// only on the `/auth` routes, `tombstone_retention_days` only where tombstones are made or
/// read (deletes, batches, the change feed), and `web_ui` only where the page may be served (`/` asked for
/// by a browser, and the page's files). `/health/ready` reads everything, so that a readiness
/// probe reports any bad setting. See [`Config::for_request`](crate::Config::for_request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingsScope {
    /// `jwt_jwks`, `jwt_jwks_url` and `jwt_jwks_ttl`.
    pub jwks: bool,
    /// `cors_origins`.
    pub cors: bool,
    /// `accounts`, `access_token_ttl` and `client_addr_header`.
    pub accounts: bool,
    /// `web_ui`.
    pub web: bool,
    /// `tombstone_retention_days`: the change feed, batches and deletes.
    pub sync: bool,
}

impl SettingsScope {
    /// Every setting.
    pub const ALL: SettingsScope = SettingsScope {
        jwks: true,
        cors: true,
        accounts: true,
        web: true,
        sync: true,
    };

    /// Whether the setting `name` is in this scope.
    pub(crate) fn covers(self, name: &str) -> bool {
        match name {
            "jwt_jwks" | "jwt_jwks_url" | "jwt_jwks_ttl" => self.jwks,
            "cors_origins" => self.cors,
            "accounts" | "access_token_ttl" | "client_addr_header" => self.accounts,
            "web_ui" => self.web,
            "tombstone_retention_days" => self.sync,
            _ => true,
        }
    }
}
