//! The algorithms a token may be signed with, the kind of public key each asymmetric one
//! needs, and the shared HMAC secret: the vocabulary the verifier and the key set share.

use std::fmt;

/// Shortest accepted shared secret, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

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
    /// Ed25519 signatures (Better Auth's JWT plugin's default); needs a JWKS. The header
    /// name `Ed25519` (RFC 9864) is read as this too.
    EdDSA,
    /// ECDSA on P-256 with SHA-256; needs a JWKS.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256; needs a JWKS.
    RS256,
}

impl Algorithm {
    /// The algorithm named `s` as in a JWT header (`HS256`, `EdDSA`, …), if supported.
    ///
    /// ```
    /// use task_api_core::Algorithm;
    /// assert_eq!(Algorithm::parse("EdDSA"), Some(Algorithm::EdDSA));
    /// assert_eq!(Algorithm::parse("Ed25519"), Some(Algorithm::EdDSA));
    /// assert_eq!(Algorithm::parse("none"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HS256" => Some(Algorithm::HS256),
            "HS384" => Some(Algorithm::HS384),
            "HS512" => Some(Algorithm::HS512),
            "EdDSA" | "Ed25519" => Some(Algorithm::EdDSA),
            "ES256" => Some(Algorithm::ES256),
            "RS256" => Some(Algorithm::RS256),
            _ => None,
        }
    }

    /// The algorithm's name in a JWT header.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
        }
    }

    /// Whether the algorithm is an HMAC, verified with the shared secret.
    pub fn is_hmac(self) -> bool {
        KeyType::for_algorithm(self).is_none()
    }
}

/// The kind of public key, which fixes the one algorithm it verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `kty: OKP`, `crv: Ed25519`: verifies `EdDSA`.
    Ed25519,
    /// `kty: EC`, `crv: P-256`: verifies `ES256`.
    P256,
    /// `kty: RSA`: verifies `RS256`.
    Rsa,
}

impl KeyType {
    /// The only algorithm a key of this type verifies.
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyType::Ed25519 => Algorithm::EdDSA,
            KeyType::P256 => Algorithm::ES256,
            KeyType::Rsa => Algorithm::RS256,
        }
    }

    /// The key type an asymmetric algorithm needs; `None` for the HMAC algorithms.
    pub fn for_algorithm(algorithm: Algorithm) -> Option<KeyType> {
        match algorithm {
            Algorithm::EdDSA => Some(KeyType::Ed25519),
            Algorithm::ES256 => Some(KeyType::P256),
            Algorithm::RS256 => Some(KeyType::Rsa),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
        }
    }
}
