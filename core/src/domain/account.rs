//! Built-in accounts: emails, passwords, users, password hashing, issued tokens, the account
//! store and the login throttle.
//!
//! The core does no I/O here either: the host hands each request 32 bytes of entropy
//! ([`crate::RequestContext::with_entropy`]) for salts and user ids, the client's address
//! ([`crate::RequestContext::with_client_addr`]) for the per-address limits, and a store that
//! keeps users and the throttle's counters ([`AccountStore`]).
//!
//! **The throttle counts before it hashes.** Each login first counts itself, atomically, under
//! its email's and its client address's keys ([`AccountStore::count_attempt`]); once a count
//! is over its limit the attempt is refused with a 429 and never reaches Argon2. A login that
//! succeeds takes its count back ([`AccountStore::forgive_attempt`]), so only failures add
//! up. Counting first is what bounds parallel guessing: fifty wrong passwords sent at once
//! for one email get at most [`MAX_FAILED_LOGINS_PER_EMAIL`] password checks, not fifty.
//! Registrations count under their client address the same way, and are not forgiven (each
//! costs a hash and may create an account). The counters live in the account store, so that
//! every instance of the service shares them (a SQL store keeps them in a table, with their
//! expiry).
//!
//! Passwords are hashed with Argon2id at `m = 19456 KiB, t = 2, p = 1` (OWASP's minimum
//! recommendation, [`PasswordCost::DEFAULT`]): about 19 MiB per hash, which fits a Wasm
//! instance's memory. The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) is what
//! is stored; verification reads the parameters from it, so raising the cost later keeps old
//! hashes verifiable.

use std::borrow::Cow;
use std::fmt;

use argon2::password_hash::{Error as HashError, PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use jwt_simple::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::JwtSecret;
use crate::error::ApiError;
use crate::store::StoreError;
use crate::task::UserId;
use crate::time::Timestamp;
use crate::validation::{FieldError, is_control};

/// Longest accepted email address, in characters (after trimming), as sent and lower-cased
/// alike: both forms are stored, and lower-casing can lengthen an address ("İ" becomes two
/// characters).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Shortest accepted password, in Unicode scalar values.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest accepted password, in Unicode scalar values.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Length of the login throttle's fixed windows, in seconds (15 minutes).
pub const LOGIN_WINDOW_SECS: i64 = 15 * 60;
/// Failed logins allowed per email address and window; the next attempt is a 429.
pub const MAX_FAILED_LOGINS_PER_EMAIL: u64 = 5;
/// Failed logins allowed per client address and window; the next attempt is a 429.
pub const MAX_FAILED_LOGINS_PER_ADDR: u64 = 20;
/// Registrations allowed per client address and window; the next one is a 429.
pub const MAX_REGISTRATIONS_PER_ADDR: u64 = 10;
/// Default lifetime of an issued access token, in seconds (`access_token_ttl`, one day).
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 86_400;
/// Longest accepted `access_token_ttl`, in seconds (30 days).
pub const MAX_ACCESS_TOKEN_TTL_SECS: u64 = 30 * 86_400;
/// Shortest accepted `access_token_ttl`, in seconds.
pub const MIN_ACCESS_TOKEN_TTL_SECS: u64 = 60;

/// A PHC string of Argon2id with [`PasswordCost::DEFAULT`]'s parameters that no password is
/// expected to match. A login with an unknown email verifies the password against it, so that
/// it costs the same work as a wrong password and gets the same answer.
pub const DUMMY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$dGFzay1hcGktZHVtbXkhIQ$4iosAIEAF0tTOp2EXqlkbYkLZlqUkt82mS8ZX+H9AjQ";

/// The salt and digest parts of [`DUMMY_PASSWORD_HASH`], reused for other costs.
const DUMMY_TAIL: &str = "dGFzay1hcGktZHVtbXkhIQ$4iosAIEAF0tTOp2EXqlkbYkLZlqUkt82mS8ZX+H9AjQ";

/// An email address: trimmed, at most [`EMAIL_MAX_CHARS`] characters also once lower-cased,
/// exactly one `@` with a non-empty local part and a domain of dot-separated non-empty labels
/// (at least two), no whitespace or control characters. Two addresses are equal when their
/// lower-cased forms ([`Email::folded`]) are; the address keeps the case it was registered
/// with.
///
/// ```
/// use task_api_core::Email;
/// let a = Email::parse("  Ann@Example.com ").unwrap();
/// assert_eq!(a.as_str(), "Ann@Example.com");
/// assert_eq!(a.folded(), "ann@example.com");
/// assert_eq!(a, Email::parse("ann@example.COM").unwrap());
/// assert!(Email::parse("ann@localhost").is_none());
/// assert!(Email::parse("a@b@c.d").is_none());
/// assert!(Email::parse("ann smith@example.com").is_none());
/// // 135 characters as sent, 265 once lower-cased: too long for the stored form.
/// assert!(Email::parse(&format!("{}@a.co", "İ".repeat(130))).is_none());
/// ```
#[derive(Clone, Debug, Eq)]
pub struct Email {
    raw: String,
    folded: String,
}

impl Email {
    /// The address, if `s` (trimmed) follows the rules above.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let folded = s.to_lowercase();
        // Lower-casing never shortens a string (each character becomes one to three), so
        // the folded form bounds both stored forms.
        if s.is_empty()
            || folded.chars().count() > EMAIL_MAX_CHARS
            || s.chars().any(|c| c.is_whitespace() || is_control(c))
        {
            return None;
        }
        let (local, domain) = s.split_once('@')?;
        let domain_ok = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || domain.contains('@') || !domain_ok {
            return None;
        }
        Some(Email {
            raw: s.to_owned(),
            folded,
        })
    }

    /// The address as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The lower-cased form, used to compare and look up addresses.
    pub fn folded(&self) -> &str {
        &self.folded
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.folded == other.folded
    }
}

impl std::hash::Hash for Email {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.folded.hash(state);
    }
}

impl Serialize for Email {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

/// A password: [`PASSWORD_MIN_CHARS`] to [`PASSWORD_MAX_CHARS`] Unicode scalar values, taken
/// as sent (not trimmed). It cannot be displayed or serialized, and its `Debug` shows a
/// placeholder, so it never reaches a log.
///
/// ```
/// use task_api_core::Password;
/// let p = Password::parse("correct horse").unwrap();
/// assert_eq!(format!("{p:?}"), "Password(<redacted>)");
/// assert!(Password::parse("short").is_none());
/// assert!(Password::parse(&"é".repeat(128)).is_some());
/// ```
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The password, if it has 8 to 128 characters.
    pub fn parse(s: &str) -> Option<Self> {
        (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS)
            .contains(&s.chars().count())
            .then(|| Password(s.to_owned()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An account, as the API shows it: `{"id", "email", "created_at"}`.
///
/// ```
/// use task_api_core::{Email, Timestamp, User, UserId};
/// let user = User {
///     id: UserId::parse("u_0123456789abcdef01234567").unwrap(),
///     email: Email::parse("ann@example.com").unwrap(),
///     created_at: Timestamp::from_millis(0),
/// };
/// let json = serde_json::to_value(&user).unwrap();
/// assert_eq!(json["email"], "ann@example.com");
/// assert_eq!(json["created_at"], "1970-01-01T00:00:00.000Z");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// `u_` and 24 lowercase hex digits; the `sub` of the tokens issued to the user.
    pub id: UserId,
    /// The address, as registered.
    pub email: Email,
    /// When the account was registered.
    pub created_at: Timestamp,
}

/// The Argon2id cost of new password hashes. Production uses [`PasswordCost::DEFAULT`]; a
/// lower cost is for tests only ([`crate::Config::with_password_cost`]).
///
/// ```
/// use task_api_core::PasswordCost;
/// assert_eq!(PasswordCost::DEFAULT.memory_kib(), 19_456);
/// assert!(PasswordCost::new(8, 1, 1).is_some());
/// assert!(PasswordCost::new(0, 1, 1).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordCost {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl PasswordCost {
    /// `m = 19456 KiB, t = 2, p = 1`: OWASP's minimum for Argon2id.
    pub const DEFAULT: PasswordCost = PasswordCost {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    /// A cost, if Argon2 accepts these parameters.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Option<Self> {
        Params::new(memory_kib, iterations, parallelism, Some(32)).ok()?;
        Some(PasswordCost {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// Memory, in KiB (`m`).
    pub fn memory_kib(self) -> u32 {
        self.memory_kib
    }

    /// Passes over memory (`t`).
    pub fn iterations(self) -> u32 {
        self.iterations
    }

    /// Lanes (`p`).
    pub fn parallelism(self) -> u32 {
        self.parallelism
    }

    fn hasher(self) -> Result<Argon2<'static>, ApiError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| ApiError::Internal(format!("bad Argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// A PHC string at this cost that no password is expected to match.
    pub(crate) fn dummy_hash(self) -> Cow<'static, str> {
        if self == PasswordCost::DEFAULT {
            Cow::Borrowed(DUMMY_PASSWORD_HASH)
        } else {
            Cow::Owned(format!(
                "$argon2id$v=19$m={},t={},p={}${DUMMY_TAIL}",
                self.memory_kib, self.iterations, self.parallelism
            ))
        }
    }
}

impl Default for PasswordCost {
    fn default() -> Self {
        PasswordCost::DEFAULT
    }
}

/// The PHC string of `password` hashed with `salt` at `cost`.
pub(crate) fn hash_password(
    password: &Password,
    salt: &[u8],
    cost: PasswordCost,
) -> Result<String, ApiError> {
    cost.hasher()?
        .hash_password_with_salt(password.bytes(), salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string `hash` (with the parameters the string names).
/// A string that cannot be used is an internal error, never a match.
pub(crate) fn verify_password(password: &Password, hash: &str) -> Result<bool, ApiError> {
    match Argon2::default().verify_password(password.bytes(), hash) {
        Ok(()) => Ok(true),
        Err(HashError::PasswordInvalid) => Ok(false),
        Err(e) => Err(ApiError::Internal(format!(
            "stored password hash is unusable: {e}"
        ))),
    }
}

/// A new user id from 12 bytes of host entropy: `u_` and 24 lowercase hex digits.
pub(crate) fn new_user_id(entropy: &[u8; 12]) -> UserId {
    let mut s = String::with_capacity(26);
    s.push_str("u_");
    for b in entropy {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    UserId::parse(&s).expect("26 characters is a valid user id")
}

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
    pub(crate) fn issue(&self, user: &UserId, now: Timestamp) -> Result<String, ApiError> {
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
            .map_err(|e| ApiError::Internal(format!("signing a token failed: {e}")))
    }
}

/// The body of `POST /auth/register` and `POST /auth/login`: every problem at once.
pub(crate) fn parse_credentials(body: &[u8]) -> Result<(Email, Password), ApiError> {
    let map: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(ApiError::MalformedBody("the body must be a JSON object")),
        Err(_) => return Err(ApiError::MalformedBody("the body is not valid JSON")),
    };
    let mut errors = Vec::new();
    let (mut email, mut password) = (None, None);
    let (mut email_seen, mut password_seen) = (false, false);
    for (key, value) in map {
        match (key.as_str(), value) {
            ("email", Value::String(s)) => {
                email_seen = true;
                email = Email::parse(&s);
                if email.is_none() {
                    errors.push(FieldError::new(
                        "email",
                        "invalid_email",
                        "email must be an address like name@example.com of at most 254 characters",
                    ));
                }
            }
            ("password", Value::String(s)) => {
                password_seen = true;
                password = Password::parse(&s);
                if password.is_none() {
                    errors.push(FieldError::new(
                        "password",
                        "password_length",
                        "password must be 8 to 128 characters",
                    ));
                }
            }
            (field @ ("email" | "password"), _) => {
                if field == "email" {
                    email_seen = true;
                } else {
                    password_seen = true;
                }
                errors.push(FieldError::new(
                    field.to_owned(),
                    "invalid_type",
                    format!("{field} must be a string"),
                ));
            }
            _ => {
                let message = format!("{key} is not a field of this request");
                errors.push(FieldError::new(key, "unknown_field", message));
            }
        }
    }
    for (seen, field) in [(email_seen, "email"), (password_seen, "password")] {
        if !seen {
            errors.push(FieldError::new(
                field,
                "required",
                format!("{field} is required"),
            ));
        }
    }
    match (email, password) {
        (Some(e), Some(p)) if errors.is_empty() => Ok((e, p)),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Where accounts live. Every method has a default that fails with
/// [`StoreError::Other`] ("this store does not keep accounts"), so a [`crate::TaskStore`]
/// that does not keep accounts implements this trait with one empty `impl` line; the
/// account routes then answer 500 (they are 404 anyway unless `accounts` is on).
///
/// ```
/// use task_api_core::{AccountStore, Email, MemoryStore, StoreError, Timestamp, User, UserId};
/// let store = MemoryStore::new();
/// let user = User {
///     id: UserId::parse("u_0123456789abcdef01234567").unwrap(),
///     email: Email::parse("Ann@Example.com").unwrap(),
///     created_at: Timestamp::from_millis(0),
/// };
/// pollster::block_on(store.create_user(&user, "$argon2id$…")).unwrap();
/// let again = User { id: UserId::parse("u_other").unwrap(), ..user.clone() };
/// assert_eq!(pollster::block_on(store.create_user(&again, "x")), Err(StoreError::EmailTaken));
/// let found = pollster::block_on(store.login_record(&Email::parse("ann@example.com").unwrap()));
/// assert_eq!(found.unwrap().unwrap().0, user);
/// ```
#[allow(async_fn_in_trait)] // Send-ness follows the implementing type, as for `TaskStore`
pub trait AccountStore {
    /// Stores a new account with its PHC password hash; [`StoreError::EmailTaken`] if an
    /// account with the same folded email exists.
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<(), StoreError> {
        let _ = (user, password_hash);
        Err(no_accounts())
    }

    /// The account with this email (compared folded) and its PHC password hash.
    async fn login_record(&self, email: &Email) -> Result<Option<(User, String)>, StoreError> {
        let _ = email;
        Err(no_accounts())
    }

    /// The account `id`.
    async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let _ = id;
        Err(no_accounts())
    }

    /// Counts one attempt under `key`, atomically, and returns the count including it. The
    /// count may be forgotten once `expires_at` has passed (the key's window is over: later
    /// windows have other keys), and a store drops such counts as it goes, so they never
    /// pile up. Every instance of a service must see the same counts.
    async fn count_attempt(
        &self,
        key: &ThrottleKey,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let _ = (key, expires_at, now);
        Err(no_accounts())
    }

    /// Takes back one attempt counted under `key` (a login that succeeded); nothing if
    /// there is none.
    async fn forgive_attempt(&self, key: &ThrottleKey) -> Result<(), StoreError> {
        let _ = key;
        Err(no_accounts())
    }
}

fn no_accounts() -> StoreError {
    StoreError::Other("this store does not keep accounts".into())
}

/// A throttle counter's key: the SHA-256 (hex) of what it counts (`login:email:<folded
/// email>`, `login:addr:<address>` or `register:addr:<address>`) and the start of its fixed
/// window, so that a store holds no email address or client address in the clear, and every
/// key has the same small size (whatever the email's length: some key-value stores refuse
/// keys over 255 bytes).
///
/// ```
/// use task_api_core::ThrottleKey;
/// let k = ThrottleKey::new("login:addr:192.0.2.1", 900);
/// assert_eq!(k.as_str().len(), 64);
/// assert_ne!(k, ThrottleKey::new("login:addr:192.0.2.1", 1800));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// The key of `subject` in the window starting at `window_start` (seconds).
    pub fn new(subject: &str, window_start: i64) -> ThrottleKey {
        let digest = hmac_sha256::Hash::hash(format!("{subject}:{window_start}").as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        ThrottleKey(hex)
    }

    /// The key as stored: 64 lower-case hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fixed window that `now` falls in: its end and the seconds until then.
pub(crate) struct Window {
    pub start: i64,
    pub end: Timestamp,
    pub retry_after: u64,
}

impl Window {
    pub(crate) fn at(now: Timestamp) -> Window {
        let secs = now.as_secs();
        let start = secs.div_euclid(LOGIN_WINDOW_SECS) * LOGIN_WINDOW_SECS;
        Window {
            start,
            end: Timestamp::from_millis((start + LOGIN_WINDOW_SECS) * 1000),
            retry_after: u64::try_from(start + LOGIN_WINDOW_SECS - secs).unwrap_or(1),
        }
    }
}

/// The client address as the throttle keys it: the IP alone when the host sent
/// `ip:port` or `[ipv6]:port`; nothing when empty or longer than 128 bytes.
pub(crate) fn normalize_addr(addr: &str) -> Option<String> {
    let addr = addr.trim();
    if addr.is_empty() || addr.len() > 128 || addr.chars().any(is_control) {
        return None;
    }
    let ip = addr
        .parse::<std::net::SocketAddr>()
        .map(|sock| sock.ip())
        .or_else(|_| addr.parse::<std::net::IpAddr>());
    Some(match ip {
        Ok(ip) => keyed_ip(ip),
        Err(_) => addr.to_owned(),
    })
}

/// An IP address as the throttle keys it: IPv4 whole; IPv6 by its /64 prefix, because one
/// client (one home or one cloud machine) is usually given a whole /64 and can pick any
/// address in it. An IPv4 address mapped into IPv6 counts as the IPv4 address.
fn keyed_ip(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

/// The client's address as a trusted proxy reported it in `header`: the last entry of the
/// header's last value (`X-Forwarded-For: client, proxy1` lists the hops that each proxy
/// added after what the client sent itself, so only the last one was written by the proxy
/// in front of the service; anything before it is the client's claim).
pub(crate) fn forwarded_addr<'a>(headers: &'a http::HeaderMap, header: &str) -> Option<&'a str> {
    let value = headers.get_all(header).iter().next_back()?.as_bytes();
    // Only the last entry needs to be text: what the client wrote before it may be anything.
    let last = value.rsplit(|&b| b == b',').next()?;
    std::str::from_utf8(last)
        .ok()
        .map(str::trim)
        .filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::JwtVerifier;

    const CHEAP: PasswordCost = PasswordCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn emails_follow_the_rules() {
        for good in [
            "a@b.co",
            " Ann.Smith+tag@Mail.Example.org ",
            "ü@exämple.de",
            &format!("{}@example.com", "a".repeat(242)),
        ] {
            assert!(Email::parse(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "   ",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "ann@.com",
            "ann@example.",
            "ann@exa..mple.com",
            "a@b@example.com",
            "ann smith@example.com",
            "ann@exam\tple.com",
            "ann\u{7}@example.com",
            &format!("{}@example.com", "a".repeat(243)),
        ] {
            assert!(Email::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_bounded_once_folded_too() {
        // "İ" lower-cases to "i" and a combining dot: two characters.
        assert_eq!("İ".to_lowercase().chars().count(), 2);
        let at_limit = format!("{}@a.co", "İ".repeat(124));
        assert_eq!(
            Email::parse(&at_limit).unwrap().folded().chars().count(),
            253
        );
        for over in [
            format!("{}@a.co", "İ".repeat(125)),
            format!("{}@a.co", "İ".repeat(130)),
        ] {
            assert!(over.chars().count() <= EMAIL_MAX_CHARS);
            assert!(Email::parse(&over).is_none(), "{over}");
        }
    }

    #[test]
    fn emails_refuse_every_control_character() {
        for c in ['\0', '\u{1b}', '\u{7f}', '\u{80}', '\u{9b}'] {
            assert!(
                Email::parse(&format!("an{c}n@example.com")).is_none(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn emails_compare_folded() {
        let a = Email::parse("ANN@EXAMPLE.COM").unwrap();
        assert_eq!(a.folded(), "ann@example.com");
        assert_eq!(a, Email::parse("ann@example.com").unwrap());
        assert_eq!(serde_json::to_value(&a).unwrap(), "ANN@EXAMPLE.COM");
    }

    #[test]
    fn password_bounds_count_characters() {
        assert!(Password::parse(&"x".repeat(7)).is_none());
        assert!(Password::parse(&"x".repeat(8)).is_some());
        assert!(Password::parse(&"x".repeat(128)).is_some());
        assert!(Password::parse(&"x".repeat(129)).is_none());
        // 8 characters, 16 bytes.
        assert!(Password::parse(&"é".repeat(8)).is_some());
        // Not trimmed: spaces count.
        assert!(Password::parse("  abcdef").is_some());
        let p = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter"));
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let p = Password::parse("correct horse").unwrap();
        let h = hash_password(&p, &[7; 16], CHEAP).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        assert!(verify_password(&p, &h).unwrap());
        let wrong = Password::parse("correct horsf").unwrap();
        assert!(!verify_password(&wrong, &h).unwrap());
        // Another salt, another hash.
        assert_ne!(h, hash_password(&p, &[8; 16], CHEAP).unwrap());
        assert!(verify_password(&p, "not a phc string").is_err());
    }

    #[test]
    fn the_default_cost_is_owasps_minimum() {
        let d = PasswordCost::DEFAULT;
        assert_eq!(
            (d.memory_kib(), d.iterations(), d.parallelism()),
            (19_456, 2, 1)
        );
        assert_eq!(PasswordCost::default(), d);
    }

    /// The dummy hash is a well-formed Argon2id PHC string with the production parameters,
    /// so verifying against it costs exactly what verifying a real hash costs. (One
    /// production-cost hash: slow in debug builds.)
    #[test]
    fn the_dummy_hash_is_valid_and_matches_nothing() {
        let parsed = argon2::password_hash::phc::PasswordHash::new(DUMMY_PASSWORD_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.version, Some(19));
        let params = Params::try_from(&parsed).unwrap();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (19_456, 2, 1)
        );
        assert_eq!(parsed.salt.unwrap().len(), 16);
        assert_eq!(PasswordCost::DEFAULT.dummy_hash(), DUMMY_PASSWORD_HASH);
        let p = Password::parse("password").unwrap();
        assert!(!verify_password(&p, DUMMY_PASSWORD_HASH).unwrap());
        // At another cost: same shape, that cost's parameters.
        let cheap = CHEAP.dummy_hash();
        assert!(cheap.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(!verify_password(&p, &cheap).unwrap());
    }

    #[test]
    fn user_ids_are_u_and_24_hex_digits() {
        let id = new_user_id(&[0xab, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff]);
        assert_eq!(id.as_str(), "u_ab00010203040506070809ff");
    }

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

    #[test]
    fn credentials_report_every_problem() {
        let codes = |body: &str| match parse_credentials(body.as_bytes()) {
            Err(ApiError::Validation(e)) => e
                .into_iter()
                .map(|e| (e.field.into_owned(), e.code))
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            codes(r#"{"email":"nope","password":"short","extra":1}"#),
            [
                ("email".to_owned(), "invalid_email"),
                ("extra".to_owned(), "unknown_field"),
                ("password".to_owned(), "password_length"),
            ]
        );
        assert_eq!(
            codes(r#"{"email":null}"#),
            [
                ("email".to_owned(), "invalid_type"),
                ("password".to_owned(), "required"),
            ]
        );
        assert!(matches!(
            parse_credentials(b"[]"),
            Err(ApiError::MalformedBody(_))
        ));
        let (e, _) = parse_credentials(br#"{"email":" A@B.co ","password":"12345678"}"#).unwrap();
        assert_eq!(e.as_str(), "A@B.co");
    }

    #[test]
    fn throttle_windows_are_fixed_and_keys_hold_no_address() {
        let now = Timestamp::from_millis(1_800_000_100_000);
        let w = Window::at(now);
        assert_eq!(w.start, 1_800_000_000);
        assert_eq!(w.end, Timestamp::from_millis(1_800_000_900_000));
        assert_eq!(w.retry_after, 800);
        let k = ThrottleKey::new("login:email:ann@example.com", w.start);
        assert!(!k.as_str().contains("ann"));
        assert_eq!(k, ThrottleKey::new("login:email:ann@example.com", w.start));
        assert_eq!(normalize_addr("10.0.0.1:5555").unwrap(), "10.0.0.1");
        assert_eq!(normalize_addr(" "), None);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_prefix() {
        assert_eq!(
            normalize_addr("[2001:db8:1:2:aaaa::1]:443").unwrap(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            normalize_addr("2001:db8:1:2:ffff::9").unwrap(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(normalize_addr("::ffff:192.0.2.7").unwrap(), "192.0.2.7");
        assert_ne!(
            normalize_addr("2001:db8:1:3::1"),
            normalize_addr("2001:db8:1:2::1")
        );
    }

    #[test]
    fn a_forwarded_address_is_the_hop_the_proxy_added() {
        let mut h = http::HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        assert_eq!(forwarded_addr(&h, "x-forwarded-for"), Some("203.0.113.9"));
        h.append("x-forwarded-for", "198.51.100.4".parse().unwrap());
        assert_eq!(forwarded_addr(&h, "x-forwarded-for"), Some("198.51.100.4"));
        assert_eq!(forwarded_addr(&h, "x-real-ip"), None);
        // Bytes that are not text before the proxy's hop do not hide the hop.
        let mut raw = http::HeaderMap::new();
        raw.append(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.9").unwrap(),
        );
        assert_eq!(forwarded_addr(&raw, "x-forwarded-for"), Some("203.0.113.9"));
    }

    #[test]
    fn the_memory_store_counts_attempts_forgives_them_and_sweeps_expired_ones() {
        let store = crate::MemoryStore::new();
        let at = Timestamp::from_millis;
        let count = |key: &ThrottleKey, now: i64| {
            pollster::block_on(store.count_attempt(key, at(900_000), at(now))).unwrap()
        };
        let k = ThrottleKey::new("login:email:a@b.co", 0);
        assert_eq!(count(&k, 1), 1);
        assert_eq!(count(&k, 2), 2);
        pollster::block_on(store.forgive_attempt(&k)).unwrap();
        assert_eq!(count(&k, 3), 2);
        // Past their window, counts are dropped.
        let late = ThrottleKey::new("login:addr:late", 900);
        assert_eq!(
            pollster::block_on(store.count_attempt(&late, at(1_800_000), at(900_001))).unwrap(),
            1
        );
        assert_eq!(count(&k, 900_002), 1, "the old window's count was swept");
    }
}
