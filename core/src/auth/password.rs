//! Password hashing. Passwords are hashed with Argon2id at `m = 19456 KiB, t = 2, p = 1`
//! (OWASP's minimum recommendation, [`PasswordCost::DEFAULT`]): about 19 MiB per hash, which
//! fits a Wasm instance's memory. The PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) is what is stored; verification reads the
//! parameters from it, so raising the cost later keeps old hashes verifiable.

use std::borrow::Cow;

use argon2::password_hash::{Error as HashError, PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::account::Password;

/// What hashing or checking a password can fail with: never the client's fault (the HTTP
/// layer answers 500 and logs this text).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The cost's parameters are refused by Argon2.
    #[error("bad Argon2 parameters: {0}")]
    Parameters(argon2::Error),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hashing(HashError),
    /// A stored hash that cannot be used.
    #[error("stored password hash is unusable: {0}")]
    UnusableHash(HashError),
}

/// A PHC string of Argon2id with [`PasswordCost::DEFAULT`]'s parameters that no password is
/// expected to match. A login with an unknown email verifies the password against it, so that
/// it costs the same work as a wrong password and gets the same answer.
pub const DUMMY_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$dGFzay1hcGktZHVtbXkhIQ$4iosAIEAF0tTOp2EXqlkbYkLZlqUkt82mS8ZX+H9AjQ";

/// The salt and digest parts of [`DUMMY_PASSWORD_HASH`], reused for other costs.
const DUMMY_TAIL: &str = "dGFzay1hcGktZHVtbXkhIQ$4iosAIEAF0tTOp2EXqlkbYkLZlqUkt82mS8ZX+H9AjQ";
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

    fn hasher(self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(PasswordError::Parameters)?;
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
) -> Result<String, PasswordError> {
    cost.hasher()?
        .hash_password_with_salt(password.bytes(), salt)
        .map(|h| h.to_string())
        .map_err(PasswordError::Hashing)
}

/// Whether `password` matches the PHC string `hash` (with the parameters the string names).
/// A string that cannot be used is an internal error, never a match.
pub(crate) fn verify_password(password: &Password, hash: &str) -> Result<bool, PasswordError> {
    match Argon2::default().verify_password(password.bytes(), hash) {
        Ok(()) => Ok(true),
        Err(HashError::PasswordInvalid) => Ok(false),
        Err(e) => Err(PasswordError::UnusableHash(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: PasswordCost = PasswordCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

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
}
