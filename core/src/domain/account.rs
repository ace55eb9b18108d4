//! Built-in accounts as values: an email address, a password and a user, each valid by
//! construction, and the id a new user gets. Hashing, tokens and the throttle are `auth`'s;
//! where accounts are kept is `store`'s.

use std::fmt;

use serde::Serialize;

use crate::domain::field::is_control;
use crate::domain::ids::UserId;
use crate::domain::time::Timestamp;

/// Longest accepted email address, in characters (after trimming), as sent and lower-cased
/// alike: both forms are stored, and lower-casing can lengthen an address ("İ" becomes two
/// characters).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Shortest accepted password, in Unicode scalar values.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest accepted password, in Unicode scalar values.
pub const PASSWORD_MAX_CHARS: usize = 128;

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

    pub(crate) fn bytes(&self) -> &[u8] {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn user_ids_are_u_and_24_hex_digits() {
        let id = new_user_id(&[0xab, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff]);
        assert_eq!(id.as_str(), "u_ab00010203040506070809ff");
    }
}
