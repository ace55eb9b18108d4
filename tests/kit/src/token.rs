//! Minting HS256 tokens with the suites' shared secret (or another one, to forge).

use jwt_simple::prelude::*;

/// The `jwt_secret` every suite configures, so that one helper mints tokens for all.
pub const SECRET: &str = "test secret that is at least 32 bytes long";

/// An HS256 token for `sub` signed with [`SECRET`], issued at `now_secs` and valid for an hour.
pub fn token_at(sub: &str, now_secs: u64) -> String {
    token_signed_with(SECRET, sub, now_secs)
}

/// The same token signed with `secret`.
pub fn token_signed_with(secret: &str, sub: &str, now_secs: u64) -> String {
    let mut claims = Claims::create(Duration::from_hours(1)).with_subject(sub);
    claims.issued_at = Some(Duration::from_secs(now_secs));
    claims.invalid_before = Some(Duration::from_secs(now_secs));
    claims.expires_at = Some(Duration::from_secs(now_secs + 3600));
    HS256Key::from_bytes(secret.as_bytes())
        .authenticate(claims)
        .expect("signing cannot fail with a valid key")
}

/// Seconds since the Unix epoch on the system clock.
pub fn system_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}
