//! The bearer token of a request and what checking it can fail with: the 401 answers.

use http::HeaderMap;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 60;
/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a request is not authenticated. Every case is a 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("missing bearer token")]
    Missing,
    /// Not `Bearer <token>`, or not a JWT.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm that is not configured (including `none`).
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The signature does not verify with the configured secret or public key.
    #[error("bad signature")]
    BadSignature,
    /// The token's `kid` names no key of the JWKS (or, without a `kid`, the JWKS does not
    /// hold exactly one key of the token's type).
    #[error("unknown key")]
    UnknownKey,
    /// The key the token's `kid` names is of another type than the token's algorithm needs.
    #[error("key type mismatch")]
    KeyTypeMismatch,
    /// The JWKS could not be fetched, so asymmetric tokens cannot be checked.
    #[error("keys unavailable")]
    KeysUnavailable,
    /// `exp` is more than the leeway in the past.
    #[error("expired")]
    Expired,
    /// `nbf` is more than the leeway in the future.
    #[error("not yet valid")]
    NotYetValid,
    /// `iat` is more than the leeway in the future.
    #[error("issued in the future")]
    IssuedInFuture,
    /// No `exp` claim.
    #[error("no exp")]
    MissingExpiry,
    /// `sub` is missing, empty, too long, not a string, or holds a control character.
    #[error("bad sub")]
    BadSubject,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not name the configured audience.
    #[error("wrong audience")]
    WrongAudience,
}

impl AuthError {
    /// The `error_description` sent to the client.
    pub fn description(self) -> &'static str {
        match self {
            AuthError::Missing => "a bearer token is required",
            AuthError::Malformed => "the bearer token is malformed",
            AuthError::AlgorithmNotAllowed => "the token's algorithm is not accepted",
            AuthError::BadSignature => "the token's signature is invalid",
            AuthError::UnknownKey => "the token's signing key is not known",
            AuthError::KeyTypeMismatch => "the token's algorithm does not match its signing key",
            AuthError::KeysUnavailable => "the signing keys could not be fetched",
            AuthError::Expired => "the token has expired",
            AuthError::NotYetValid => "the token is not valid yet",
            AuthError::IssuedInFuture => "the token is issued in the future",
            AuthError::MissingExpiry => "the token has no exp claim",
            AuthError::BadSubject => {
                "the token's sub must be a string of 1 to 128 characters without control characters"
            }
            AuthError::WrongIssuer => "the token's issuer is not accepted",
            AuthError::WrongAudience => "the token's audience is not accepted",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750): no `error` when no token was sent.
    pub fn www_authenticate(self) -> String {
        match self {
            AuthError::Missing => "Bearer realm=\"tasks\"".to_owned(),
            other => format!(
                "Bearer realm=\"tasks\", error=\"invalid_token\", error_description=\"{}\"",
                other.description()
            ),
        }
    }
}

/// The token of the request's `Authorization: Bearer <token>` header (scheme
/// case-insensitive; one header only).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    let value = value.to_str().map_err(|_| AuthError::Malformed)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}
