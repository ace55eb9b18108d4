//! Authentication: who a request's bearer token names, and the built-in accounts' secrets.
//!
//! # What this layer owns
//!
//! - `algorithm.rs`: the accepted algorithms, the key type each asymmetric one needs, and
//!   the shared HMAC secret.
//! - `bearer.rs`: reading `Authorization: Bearer`, and [`AuthError`](crate::AuthError), the
//!   reasons a token is refused (each a 401 with its `WWW-Authenticate`).
//! - `jwks.rs`: public signing keys (a JWKS) and the host's rules to keep a fetched copy
//!   fresh.
//! - `verifier.rs`: [`JwtVerifier`](crate::JwtVerifier), checking a token against the
//!   secret or the key set.
//! - `password.rs`: Argon2id hashing and checking of passwords.
//! - `tokens.rs`: the tokens the built-in accounts issue.
//! - `throttle.rs`: the login throttle's windows and limits, and the client address it keys.
//!
//! # What it may import
//!
//! `domain` and `store` (the throttle counts in the account store). Never `config` or
//! `http`: its errors are its own ([`AuthError`](crate::AuthError), `PasswordError`,
//! `TokenError`) and `http/error.rs` maps them. Inside the layer, files import one way:
//! `algorithm` ← `bearer` ← `jwks` ← `verifier` ← `tokens`; `password` and `throttle`
//! stand alone.

pub(crate) mod algorithm;
pub(crate) mod bearer;
pub(crate) mod jwks;
pub(crate) mod password;
pub(crate) mod throttle;
pub(crate) mod tokens;
pub(crate) mod verifier;
