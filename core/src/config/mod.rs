//! Configuration: the service's settings, their names, defaults and checks, in one place.
//!
//! # What this layer owns
//!
//! - `load.rs`: [`Config`](crate::Config), read through a host's lookup function into typed
//!   values, or every problem at once ([`ConfigError`](crate::ConfigError)), each naming the
//!   setting and never its value; the list of [`SETTINGS`](crate::SETTINGS).
//! - `scope.rs`: [`SettingsScope`](crate::SettingsScope), which settings a request can
//!   use, so that a host reads only those.
//! - `cors.rs`: the `cors_origins` setting, parsed.
//! - `jwks_refresh.rs`: the JWKS refresh sequence for `jwt_jwks_url`
//!   ([`prepare_jwks`](crate::prepare_jwks)): a configuration made ready for one request
//!   with the key set its host's I/O ([`JwksHost`](crate::JwksHost)) fetched or cached.
//!
//! # What it may import
//!
//! `domain`, `store` and `auth`: a configuration builds the token verifier, the issued
//! tokens' settings and the password cost. Never `http`: which scope a request falls in
//! needs the route table, so [`SettingsScope::of`](crate::SettingsScope::of) is written in
//! `http/scope.rs`, and the CORS headers in `http/cors.rs`.

pub(crate) mod cors;
pub(crate) mod jwks_refresh;
pub(crate) mod load;
pub(crate) mod scope;
