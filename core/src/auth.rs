//! Bearer tokens: reading the `Authorization` header, verifying the JWT, and the 401 answers.
//!
//! Verification is `jwt-simple`'s, with the current time passed in (`artificial_time`), so
//! the same token gives the same answer in a test on any day. Only the configured
//! algorithms are accepted; the algorithm in the token's header picks the key, and `none`
//! is never among them.

use std::collections::HashSet;
use std::fmt;

use http::HeaderMap;
use jwt_simple::JWTError;
use jwt_simple::prelude::*;

use crate::task::UserId;
use crate::time::Timestamp;

/// Shortest accepted shared secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECS: u64 = 60;
/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The shared HMAC secret. Its `Debug` never shows the bytes.
///
/// ```
/// use task_api_core::JwtSecret;
/// let secret = JwtSecret::new("an example secret of at least 32 bytes!").unwrap();
/// assert_eq!(format!("{secret:?}"), "JwtSecret(<redacted>)");
/// assert!(JwtSecret::new("too short").is_none());
/// ```
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    /// The secret, if it is at least [`MIN_SECRET_BYTES`] long.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        let bytes = bytes.into();
        (bytes.len() >= MIN_SECRET_BYTES).then_some(JwtSecret(bytes))
    }

    /// The raw bytes, for signing tokens (tests, built-in accounts).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(<redacted>)")
    }
}

/// A JWT signing algorithm the service can be configured to accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256, the default (Better Auth's shared-secret tokens).
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
}

impl Algorithm {
    /// The algorithm named `s` as in a JWT header (`HS256`, …), if supported.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HS256" => Some(Algorithm::HS256),
            "HS384" => Some(Algorithm::HS384),
            "HS512" => Some(Algorithm::HS512),
            _ => None,
        }
    }
}

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
    /// The signature does not verify with the configured secret.
    #[error("bad signature")]
    BadSignature,
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
    /// `sub` is missing, empty, too long or not a string.
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
            AuthError::Expired => "the token has expired",
            AuthError::NotYetValid => "the token is not valid yet",
            AuthError::IssuedInFuture => "the token is issued in the future",
            AuthError::MissingExpiry => "the token has no exp claim",
            AuthError::BadSubject => "the token's sub must be a string of 1 to 128 characters",
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

/// Checks bearer tokens against the configured secret, algorithms, issuer and audience.
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    secret: JwtSecret,
    algorithms: Vec<Algorithm>,
    issuers: Option<HashSet<String>>,
    audiences: Option<HashSet<String>>,
}

impl JwtVerifier {
    /// A verifier accepting HS256 with `secret`, any issuer and audience.
    pub fn new(secret: JwtSecret) -> Self {
        JwtVerifier {
            secret,
            algorithms: vec![Algorithm::HS256],
            issuers: None,
            audiences: None,
        }
    }

    /// Accept only these algorithms.
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Require `iss` to be one of these.
    pub fn with_issuers(mut self, issuers: HashSet<String>) -> Self {
        self.issuers = Some(issuers);
        self
    }

    /// Require `aud` to name one of these.
    pub fn with_audiences(mut self, audiences: HashSet<String>) -> Self {
        self.audiences = Some(audiences);
        self
    }

    /// The user named by the request's bearer token.
    pub fn authenticate(&self, headers: &HeaderMap, now: Timestamp) -> Result<UserId, AuthError> {
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
        self.verify(token.trim(), now)
    }

    /// The user named by `token`, if it verifies at time `now`.
    ///
    /// ```
    /// use jwt_simple::prelude::*;
    /// use task_api_core::{JwtSecret, JwtVerifier, Timestamp};
    /// let secret = b"an example secret of at least 32 bytes!";
    /// let claims = Claims::create(Duration::from_mins(5)).with_subject("u1");
    /// let token = HS256Key::from_bytes(secret).authenticate(claims).unwrap();
    /// let verifier = JwtVerifier::new(JwtSecret::new(&secret[..]).unwrap());
    /// let now = Timestamp::from_system_time(std::time::SystemTime::now());
    /// assert_eq!(verifier.verify(&token, now).unwrap().as_str(), "u1");
    /// ```
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<UserId, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::Malformed);
        }
        // With one algorithm allowed, jwt-simple's own check of the header's `alg` against
        // the key's suffices (a mismatch is `AlgorithmMismatch`), and saves decoding the
        // header twice.
        let algorithm = match self.algorithms.as_slice() {
            [only] => *only,
            allowed => {
                let metadata = Token::decode_metadata(token).map_err(|_| AuthError::Malformed)?;
                Algorithm::parse(metadata.algorithm())
                    .filter(|a| allowed.contains(a))
                    .ok_or(AuthError::AlgorithmNotAllowed)?
            }
        };
        let options = VerificationOptions {
            time_tolerance: Some(Duration::from_secs(LEEWAY_SECS)),
            artificial_time: Some(Duration::from_secs(
                u64::try_from(now.as_secs()).unwrap_or(0),
            )),
            allowed_issuers: self.issuers.clone(),
            allowed_audiences: self.audiences.clone(),
            max_token_length: Some(MAX_TOKEN_BYTES),
            ..Default::default()
        };
        let key = self.secret.expose();
        let claims = match algorithm {
            Algorithm::HS256 => {
                HS256Key::from_bytes(key).verify_token::<NoCustomClaims>(token, Some(options))
            }
            Algorithm::HS384 => {
                HS384Key::from_bytes(key).verify_token::<NoCustomClaims>(token, Some(options))
            }
            Algorithm::HS512 => {
                HS512Key::from_bytes(key).verify_token::<NoCustomClaims>(token, Some(options))
            }
        }
        .map_err(|e| classify(&e))?;
        if claims.expires_at.is_none() {
            return Err(AuthError::MissingExpiry);
        }
        claims
            .subject
            .as_deref()
            .and_then(UserId::parse)
            .ok_or(AuthError::BadSubject)
    }
}

fn classify(e: &jwt_simple::Error) -> AuthError {
    match e.downcast_ref::<JWTError>() {
        Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => {
            AuthError::BadSignature
        }
        Some(JWTError::TokenHasExpired) => AuthError::Expired,
        Some(JWTError::TokenNotValidYet) => AuthError::NotYetValid,
        Some(JWTError::ClockDrift) => AuthError::IssuedInFuture,
        Some(JWTError::RequiredIssuerMismatch | JWTError::RequiredIssuerMissing) => {
            AuthError::WrongIssuer
        }
        Some(JWTError::RequiredAudienceMismatch | JWTError::RequiredAudienceMissing) => {
            AuthError::WrongAudience
        }
        Some(JWTError::AlgorithmMismatch) => AuthError::AlgorithmNotAllowed,
        _ => AuthError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn now() -> Timestamp {
        Timestamp::from_millis(NOW as i64 * 1000)
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(JwtSecret::new(SECRET).unwrap())
    }

    /// Claims issued at NOW, valid for an hour, for `sub`.
    fn claims(sub: &str) -> JWTClaims<NoCustomClaims> {
        let mut c = Claims::create(Duration::from_hours(1)).with_subject(sub);
        c.issued_at = Some(Duration::from_secs(NOW));
        c.invalid_before = Some(Duration::from_secs(NOW));
        c.expires_at = Some(Duration::from_secs(NOW + 3600));
        c
    }

    fn hs256(c: JWTClaims<NoCustomClaims>) -> String {
        HS256Key::from_bytes(SECRET).authenticate(c).unwrap()
    }

    fn b64(s: &str) -> String {
        Base64UrlSafeNoPadding::encode_to_string(s).unwrap()
    }

    /// A token signed with HS256 over hand-written claims JSON.
    fn raw_token(claims_json: &str) -> String {
        let signing_input = format!(
            "{}.{}",
            b64(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64(claims_json)
        );
        let tag = hmac_sha256::HMAC::mac(signing_input.as_bytes(), SECRET);
        format!(
            "{signing_input}.{}",
            Base64UrlSafeNoPadding::encode_to_string(tag).unwrap()
        )
    }

    #[test]
    fn valid_token_names_its_subject() {
        assert_eq!(
            verifier()
                .verify(&hs256(claims("u1")), now())
                .unwrap()
                .as_str(),
            "u1"
        );
    }

    #[test]
    fn tampered_payload_is_a_bad_signature() {
        let token = hs256(claims("u1"));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&format!(r#"{{"sub":"admin","exp":{}}}"#, NOW + 60)),
            parts[2]
        );
        assert_eq!(
            verifier().verify(&forged, now()),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn token_signed_with_another_secret_is_a_bad_signature() {
        let token = HS256Key::from_bytes(b"another secret that is 32 bytes!!")
            .authenticate(claims("u1"))
            .unwrap();
        assert_eq!(
            verifier().verify(&token, now()),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn expired_token_is_refused_after_the_leeway() {
        let mut c = claims("u1");
        c.expires_at = Some(Duration::from_secs(NOW - 61));
        assert_eq!(verifier().verify(&hs256(c), now()), Err(AuthError::Expired));
    }

    #[test]
    fn token_expired_within_the_leeway_is_accepted() {
        let mut c = claims("u1");
        c.expires_at = Some(Duration::from_secs(NOW - 59));
        assert!(verifier().verify(&hs256(c), now()).is_ok());
    }

    #[test]
    fn not_yet_valid_token_is_refused_after_the_leeway() {
        let mut c = claims("u1");
        c.invalid_before = Some(Duration::from_secs(NOW + 61));
        assert_eq!(
            verifier().verify(&hs256(c), now()),
            Err(AuthError::NotYetValid)
        );
        let mut c = claims("u1");
        c.invalid_before = Some(Duration::from_secs(NOW + 59));
        assert!(verifier().verify(&hs256(c), now()).is_ok());
    }

    #[test]
    fn token_issued_in_the_future_is_refused_after_the_leeway() {
        let mut c = claims("u1");
        c.issued_at = Some(Duration::from_secs(NOW + 61));
        c.invalid_before = None;
        assert_eq!(
            verifier().verify(&hs256(c), now()),
            Err(AuthError::IssuedInFuture)
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let token = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(r#"{"sub":"u1","exp":9999999999}"#)
        );
        assert_eq!(
            verifier().verify(&token, now()),
            Err(AuthError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn hs512_is_refused_when_only_hs256_is_allowed() {
        let token = HS512Key::from_bytes(SECRET)
            .authenticate(claims("u1"))
            .unwrap();
        assert_eq!(
            verifier().verify(&token, now()),
            Err(AuthError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn hs512_is_accepted_when_configured() {
        let token = HS512Key::from_bytes(SECRET)
            .authenticate(claims("u1"))
            .unwrap();
        let v = verifier().with_algorithms(vec![Algorithm::HS256, Algorithm::HS512]);
        assert_eq!(v.verify(&token, now()).unwrap().as_str(), "u1");
    }

    #[test]
    fn missing_sub_is_refused() {
        let token = raw_token(&format!(r#"{{"exp":{}}}"#, NOW + 60));
        assert_eq!(verifier().verify(&token, now()), Err(AuthError::BadSubject));
    }

    #[test]
    fn empty_sub_is_refused() {
        assert_eq!(
            verifier().verify(&hs256(claims("")), now()),
            Err(AuthError::BadSubject)
        );
    }

    #[test]
    fn sub_of_128_characters_is_accepted_and_129_refused() {
        assert!(
            verifier()
                .verify(&hs256(claims(&"é".repeat(128))), now())
                .is_ok()
        );
        assert_eq!(
            verifier().verify(&hs256(claims(&"é".repeat(129))), now()),
            Err(AuthError::BadSubject)
        );
    }

    #[test]
    fn non_string_sub_is_refused() {
        let token = raw_token(&format!(r#"{{"sub":42,"exp":{}}}"#, NOW + 60));
        assert!(verifier().verify(&token, now()).is_err());
    }

    #[test]
    fn missing_exp_is_refused() {
        let token = raw_token(r#"{"sub":"u1"}"#);
        assert_eq!(
            verifier().verify(&token, now()),
            Err(AuthError::MissingExpiry)
        );
    }

    #[test]
    fn hand_made_token_with_exp_is_accepted() {
        let token = raw_token(&format!(r#"{{"sub":"u1","exp":{}}}"#, NOW + 60));
        assert_eq!(verifier().verify(&token, now()).unwrap().as_str(), "u1");
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let v = verifier()
            .with_issuers(HashSet::from(["https://app.example".to_owned()]))
            .with_audiences(HashSet::from(["tasks".to_owned()]));
        let good = claims("u1")
            .with_issuer("https://app.example")
            .with_audience("tasks");
        assert!(v.verify(&hs256(good), now()).is_ok());
        let wrong_iss = claims("u1")
            .with_issuer("https://evil.example")
            .with_audience("tasks");
        assert_eq!(
            v.verify(&hs256(wrong_iss), now()),
            Err(AuthError::WrongIssuer)
        );
        let no_aud = claims("u1").with_issuer("https://app.example");
        assert_eq!(
            v.verify(&hs256(no_aud), now()),
            Err(AuthError::WrongAudience)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for t in ["", "abc", "a.b.c", &"x".repeat(MAX_TOKEN_BYTES + 1)] {
            assert_eq!(
                verifier().verify(t, now()),
                Err(AuthError::Malformed),
                "{t:.20}"
            );
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            format!("bEaReR {}", hs256(claims("u1"))).parse().unwrap(),
        );
        assert!(verifier().authenticate(&h, now()).is_ok());
    }

    #[test]
    fn missing_header_is_missing_and_other_schemes_are_malformed() {
        assert_eq!(
            verifier().authenticate(&HeaderMap::new(), now()),
            Err(AuthError::Missing)
        );
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic dTE6cHc=".parse().unwrap());
        assert_eq!(
            verifier().authenticate(&h, now()),
            Err(AuthError::Malformed)
        );
        h.insert("authorization", "Bearer".parse().unwrap());
        assert_eq!(
            verifier().authenticate(&h, now()),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn www_authenticate_has_no_error_when_the_token_is_missing() {
        assert_eq!(
            AuthError::Missing.www_authenticate(),
            "Bearer realm=\"tasks\""
        );
        assert!(
            AuthError::Expired
                .www_authenticate()
                .contains("error=\"invalid_token\"")
        );
    }
}
