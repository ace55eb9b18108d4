//! The tokens the built-in accounts issue: HS256, signed with the shared secret, with explicit
//! times so that any verifier (ours included) reads them alike.

use jwt_simple::prelude::*;

use crate::auth::algorithm::JwtSecret;
use crate::domain::ids::UserId;
use crate::domain::time::Timestamp;

/// Signing a token failed: never the client's fault (the HTTP layer answers 500 and logs
/// this text).
#[derive(Debug, thiserror::Error)]
#[error("signing a token failed: {0}")]
pub struct TokenError(String);

/// Default lifetime of an issued access token, in seconds (`access_token_ttl`, one day).
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 86_400;
/// Longest accepted `access_token_ttl`, in seconds (30 days).
pub const MAX_ACCESS_TOKEN_TTL_SECS: u64 = 30 * 86_400;
/// Shortest accepted `access_token_ttl`, in seconds.
pub const MIN_ACCESS_TOKEN_TTL_SECS: u64 = 60;
/// What an issued token says besides its subject.
#[derive(Clone, Debug)]
pub(crate) struct TokenSettings {
    pub(crate) secret: JwtSecret,
    pub(crate) ttl_secs: u64,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<String>,
}

impl TokenSettings {
    /// An HS256 token for `user`: `iat` = `nbf` = `now`, `exp` = `now + ttl`, `iss`/`aud` when
    /// configured.
    pub(crate) fn issue(&self, user: &UserId, now: Timestamp) -> Result<String, TokenError> {
        let now = Duration::from_secs(u64::try_from(now.as_secs()).unwrap_or(0));
        let claims = JWTClaims {
            issued_at: Some(now),
            expires_at: Some(now + Duration::from_secs(self.ttl_secs)),
            invalid_before: Some(now),
            issuer: self.issuer.clone(),
            subject: Some(user.as_str().to_owned()),
            audiences: self.audience.clone().map(Audiences::AsString),
            jwt_id: None,
            nonce: None,
            custom: NoCustomClaims {},
        };
        HS256Key::from_bytes(self.secret.expose())
            .authenticate(claims)
            .map_err(|e| TokenError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::verifier::JwtVerifier;

    #[test]
    fn issued_tokens_carry_explicit_times_and_verify() {
        let secret = JwtSecret::new("0123456789abcdef0123456789abcdef").unwrap();
        let settings = TokenSettings {
            secret: secret.clone(),
            ttl_secs: 3600,
            issuer: Some("https://tasks.example".into()),
            audience: Some("tasks".into()),
        };
        let user = UserId::parse("u_0123456789abcdef01234567").unwrap();
        let now = Timestamp::from_millis(1_800_000_000_500);
        let token = settings.issue(&user, now).unwrap();
        let claims = HS256Key::from_bytes(secret.expose())
            .verify_token::<NoCustomClaims>(
                &token,
                Some(VerificationOptions {
                    artificial_time: Some(Duration::from_secs(1_800_000_000)),
                    ..Default::default()
                }),
            )
            .unwrap();
        assert_eq!(claims.issued_at, Some(Duration::from_secs(1_800_000_000)));
        assert_eq!(claims.invalid_before, claims.issued_at);
        assert_eq!(claims.expires_at, Some(Duration::from_secs(1_800_003_600)));
        assert_eq!(claims.subject.as_deref(), Some(user.as_str()));
        assert_eq!(claims.issuer.as_deref(), Some("https://tasks.example"));
        let verifier = JwtVerifier::new(secret)
            .with_issuers(["https://tasks.example".to_owned()].into())
            .with_audiences(["tasks".to_owned()].into());
        assert_eq!(verifier.verify(&token, now).unwrap(), user);
        let later = Timestamp::from_millis(1_800_003_600_000 + 61_000);
        assert!(verifier.verify(&token, later).is_err());
    }
}
