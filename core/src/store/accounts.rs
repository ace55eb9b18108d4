//! Where built-in accounts live: the account store's trait, and the throttle counter's key
//! (hashed, so that no store keeps an email or a client address in the clear).

use crate::domain::account::{Email, User};
use crate::domain::ids::UserId;
use crate::domain::time::Timestamp;
use crate::store::tasks::StoreError;

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
