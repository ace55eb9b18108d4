//! Public signing keys (a JWKS, RFC 7517) for asymmetric bearer tokens, and the pure rules a
//! host follows to keep a fetched copy fresh.
//!
//! Better Auth's JWT plugin signs tokens with Ed25519 (`EdDSA`) by default and publishes
//! its public keys at `/api/auth/jwks`. The core does no I/O: a deployment either pins the
//! keys (`jwt_jwks`, parsed when the configuration loads) or names a URL (`jwt_jwks_url`),
//! which the host fetches, caches and hands over per request with
//! [`Config::with_fetched_jwks`](crate::Config::with_fetched_jwks), or, when no usable copy
//! exists, [`Config::with_jwks_unavailable`](crate::Config::with_jwks_unavailable).
//!
//! What a key set holds is documented on [`JwkSet`], the host's refresh rules on
//! [`JwksCache`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike, JWTClaims,
    NoCustomClaims, RS256PublicKey, RSAPublicKeyLike, Token, TokenMetadata, VerificationOptions,
};
use serde_json::{Map, Value};

use crate::auth::algorithm::{Algorithm, KeyType};
use crate::auth::bearer::{AuthError, LEEWAY_SECS, MAX_TOKEN_BYTES, bearer_token};
use crate::domain::time::Timestamp;

/// Largest JWKS document accepted, in bytes (64 KiB: dozens of RSA keys).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// Shortest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Seconds a fetched JWKS stays fresh when `jwt_jwks_ttl` is not set (5 minutes).
pub const DEFAULT_JWKS_TTL_SECS: u64 = 300;
/// Shortest time between two fetch attempts outside the TTL schedule (an unknown `kid`, or
/// a retry after a failed fetch), in seconds.
pub const JWKS_REFRESH_INTERVAL_SECS: u64 = 60;
/// How long past its TTL a cached JWKS may still be used while refreshing it fails, in
/// seconds (one day). Keys are public; the risk of an old copy is only that a key the
/// identity provider withdrew keeps verifying, which rotation with a grace period already
/// allows for a while.
pub const JWKS_MAX_STALE_SECS: u64 = 86_400;

#[derive(Clone)]
enum PublicKey {
    Ed25519(Ed25519PublicKey),
    P256(ES256PublicKey),
    // Boxed: an RSA key is several times the size of the others.
    Rsa(Box<RS256PublicKey>),
}

/// One usable public key of a [`JwkSet`].
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    key: PublicKey,
}

impl Jwk {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        match self.key {
            PublicKey::Ed25519(_) => KeyType::Ed25519,
            PublicKey::P256(_) => KeyType::P256,
            PublicKey::Rsa(_) => KeyType::Rsa,
        }
    }

    /// The one algorithm the key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.key_type().algorithm()
    }

    /// Verifies `token` with this key. jwt-simple also checks that the header's `alg` is
    /// the key's own, so a key never verifies a token of another algorithm.
    pub(crate) fn verify(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<NoCustomClaims>, jwt_simple::Error> {
        match &self.key {
            PublicKey::Ed25519(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
            PublicKey::P256(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
            PublicKey::Rsa(k) => k.verify_token::<NoCustomClaims>(token, Some(options)),
        }
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("key_type", &self.key_type())
            .finish()
    }
}

/// Why a JWKS document cannot be used. The messages never quote the document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("the document is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not JSON, or not an object with a `keys` array of objects.
    #[error("the document is not a JSON object with a keys array of objects")]
    NotAJwks,
    /// A key of a supported type is malformed (its position in `keys`, from 0).
    #[error("key {index} {reason}")]
    BadKey {
        /// The key's position in `keys`, from 0.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No key is usable (no Ed25519, P-256 or RSA signing key).
    #[error("the document holds no usable signing key (Ed25519, P-256 or RSA)")]
    NoUsableKey,
}

/// The usable public keys of a JWKS document, in document order.
///
/// # What a key set holds
///
/// [`JwkSet::parse`] keeps the keys the service can verify with: `OKP`/`Ed25519` (for
/// `EdDSA`), `EC`/`P-256` (for `ES256`) and `RSA` of 2048 to 4096 bits with exponent 65537
/// (for `RS256`). A key of another type or curve, with a `use` other than `sig`, with
/// `key_ops` not naming `verify`, with an `alg` its type cannot serve (an RSA key marked
/// `PS256`), or an RSA key over 4096 bits or with another exponent is skipped, and listed
/// in [`JwkSet::skipped`] for the host to log: one key the service cannot use must not cost
/// the tokens of every other. A document that is not JSON, a supported key whose members are
/// missing, not base64url or not a valid key, a key carrying private material, two keys of
/// one type sharing a `kid`, or a document left with no usable key is an error: a host then
/// keeps its previous copy rather than trusting part of a broken one.
#[derive(Clone)]
pub struct JwkSet {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

/// A key of a JWKS document that [`JwkSet::parse`] skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its position in the document's `keys`.
    pub index: usize,
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// Why the service does not use it.
    pub reason: &'static str,
}

impl JwkSet {
    /// Parses a JWKS document (`{"keys": [...]}`), keeping the keys the service can verify
    /// with and skipping the others (see [`JwkSet`]).
    ///
    /// ```
    /// use task_api_core::{Algorithm, JwkSet, JwksError};
    ///
    /// // One Ed25519 key as Better Auth publishes it, and an X25519 key, which is skipped.
    /// let doc = r#"{"keys": [
    ///   {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "k1",
    ///    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
    ///   {"kty": "OKP", "crv": "X25519", "kid": "enc",
    ///    "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}
    /// ]}"#;
    /// let keys = JwkSet::parse(doc).unwrap();
    /// assert_eq!(keys.len(), 1);
    /// assert!(keys.contains_kid("k1") && !keys.contains_kid("enc"));
    /// assert_eq!(keys.algorithms(), [Algorithm::EdDSA]);
    ///
    /// assert_eq!(JwkSet::parse(r#"{"keys": []}"#).unwrap_err(), JwksError::NoUsableKey);
    /// assert!(matches!(
    ///     JwkSet::parse(r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "not base64!"}]}"#),
    ///     Err(JwksError::BadKey { index: 0, .. })
    /// ));
    /// ```
    pub fn parse(json: &str) -> Result<JwkSet, JwksError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let doc: Value = serde_json::from_str(json).map_err(|_| JwksError::NotAJwks)?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NotAJwks)?;
        let mut keys: Vec<Jwk> = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.as_object().ok_or(JwksError::NotAJwks)?;
            let bad = |reason| JwksError::BadKey { index, reason };
            let key = match parse_key(entry).map_err(bad)? {
                Entry::Usable(key) => key,
                Entry::Skipped(reason) => {
                    skipped.push(SkippedKey {
                        index,
                        kid: entry.get("kid").and_then(Value::as_str).map(str::to_owned),
                        reason,
                    });
                    continue;
                }
            };
            if key.kid.is_some()
                && keys
                    .iter()
                    .any(|k| k.kid == key.kid && k.key_type() == key.key_type())
            {
                return Err(bad("repeats the kid of an earlier key of the same type"));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(JwkSet { keys, skipped })
    }

    /// The keys of the document that were skipped, in document order, for the host to log.
    ///
    /// ```
    /// use task_api_core::JwkSet;
    /// let doc = r#"{"keys": [
    ///   {"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
    ///   {"kty": "OKP", "crv": "X25519", "kid": "enc", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}
    /// ]}"#;
    /// let set = JwkSet::parse(doc).unwrap();
    /// assert_eq!(set.skipped()[0].kid.as_deref(), Some("enc"));
    /// ```
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// How many usable keys the set holds (never 0 for a parsed set).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key (never true for a parsed set).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a usable key has this `kid`.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The algorithms the keys verify, each once, in the order of first appearance.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut out = Vec::new();
        for k in &self.keys {
            if !out.contains(&k.algorithm()) {
                out.push(k.algorithm());
            }
        }
        out
    }

    /// Whether some key is of type `key_type`.
    pub(crate) fn has_type(&self, key_type: KeyType) -> bool {
        self.keys.iter().any(|k| k.key_type() == key_type)
    }

    /// The key for a token of type `key_type` naming `kid`: the key with that `kid` (an
    /// unknown `kid` is [`AuthError::UnknownKey`], a `kid` of another type of key
    /// [`AuthError::KeyTypeMismatch`]); without a `kid`, the only key of that type, if there
    /// is exactly one.
    pub(crate) fn select(&self, kid: Option<&str>, key_type: KeyType) -> Result<&Jwk, AuthError> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(AuthError::UnknownKey);
                }
                named
                    .find(|k| k.key_type() == key_type)
                    .ok_or(AuthError::KeyTypeMismatch)
            }
            None => {
                let mut of_type = self.keys.iter().filter(|k| k.key_type() == key_type);
                match (of_type.next(), of_type.next()) {
                    (Some(only), None) => Ok(only),
                    _ => Err(AuthError::UnknownKey),
                }
            }
        }
    }
}

impl fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

/// What one JWKS entry is to the service.
enum Entry {
    /// A key it verifies with.
    Usable(Jwk),
    /// A well-formed key it does not use, and why.
    Skipped(&'static str),
}

/// The largest RSA modulus used, in bits (longer keys cost more to verify than any
/// identity provider needs; jwt-simple refuses them).
const MAX_RSA_BITS: usize = 4096;

/// The usable key of one JWKS entry, a key of a kind the service skips, or what is wrong
/// with it.
fn parse_key(entry: &Map<String, Value>) -> Result<Entry, &'static str> {
    let text = |name: &str| -> Result<Option<&str>, &'static str> {
        match entry.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err("has a member that should be a string and is not"),
        }
    };
    let kty = text("kty")?.ok_or("has no kty")?;
    let kid = text("kid")?.map(str::to_owned);
    if text("use")?.is_some_and(|u| u != "sig") {
        return Ok(Entry::Skipped("is not a signing key (use)"));
    }
    if let Some(ops) = entry.get("key_ops") {
        let ops = ops.as_array().ok_or("has a key_ops that is not an array")?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Ok(Entry::Skipped("is not for verifying (key_ops)"));
        }
    }
    let alg = text("alg")?;
    let key_type = match (kty, text("crv")?) {
        ("OKP", Some("Ed25519")) => KeyType::Ed25519,
        ("EC", Some("P-256")) => KeyType::P256,
        ("RSA", _) => KeyType::Rsa,
        ("OKP" | "EC", None) => return Err("has no crv"),
        _ => {
            return Ok(Entry::Skipped(
                "is of a type or curve the service does not verify",
            ));
        }
    };
    // An `alg` the key's type cannot serve (RSA keys for PS256, RS512…) means the key is
    // meant for another algorithm: skip it rather than use it for ours.
    if alg.is_some_and(|a| Algorithm::parse(a) != Some(key_type.algorithm())) {
        return Ok(Entry::Skipped(
            "is for an algorithm the service does not accept (alg)",
        ));
    }
    let private: &[&str] = match key_type {
        KeyType::Ed25519 | KeyType::P256 => &["d"],
        KeyType::Rsa => &["d", "p", "q", "dp", "dq", "qi", "oth"],
    };
    if private.iter().any(|m| entry.contains_key(*m)) {
        return Err("holds private key material (publish only public keys)");
    }
    // The key itself is jwt-simple's to decode, under its strict JWK rules (canonical
    // base64url, exact sizes, points on the curve, no members of other key types). What
    // stays here is this service's policy: which keys to skip rather than refuse.
    let jwk = Value::Object(entry.clone()).to_string();
    let key = match key_type {
        KeyType::Ed25519 => PublicKey::Ed25519(
            Ed25519PublicKey::from_jwk(&jwk).map_err(|_| "is not a valid Ed25519 key")?,
        ),
        KeyType::P256 => {
            PublicKey::P256(ES256PublicKey::from_jwk(&jwk).map_err(|_| "is not a valid P-256 key")?)
        }
        KeyType::Rsa => {
            // Skipped, not refused: a well-formed RSA key outside the range the service
            // verifies with must not cost the tokens of the document's other keys.
            let member = |name: &str| -> Result<Vec<u8>, &'static str> {
                let value = text(name)?.ok_or("lacks a member its key type needs")?;
                URL_SAFE_NO_PAD
                    .decode(value)
                    .map_err(|_| "has a member that is not base64url without padding")
            };
            let (n, e) = (member("n")?, member("e")?);
            if bit_length(&n) < MIN_RSA_BITS {
                return Err("has an RSA modulus shorter than 2048 bits");
            }
            if bit_length(&n) > MAX_RSA_BITS {
                return Ok(Entry::Skipped("is an RSA key over 4096 bits"));
            }
            if e.iter().skip_while(|&&b| b == 0).ne([1u8, 0, 1].iter()) {
                return Ok(Entry::Skipped("is an RSA key whose exponent is not 65537"));
            }
            PublicKey::Rsa(Box::new(
                RS256PublicKey::from_jwk(&jwk).map_err(|_| "is not a valid RSA key")?,
            ))
        }
    };
    Ok(Entry::Usable(Jwk { kid, key }))
}

/// The number of significant bits of a big-endian unsigned integer.
fn bit_length(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
    }
}

/// A fetched JWKS document and when it was fetched: what a host keeps in its cache (for
/// example Spin's key-value store, as [`JwksCache::to_json`]).
///
/// # The host's refresh rules
///
/// Every rule is a pure function of times the host stores, so the host only does the I/O:
///
/// 1. For a request whose token [`bearer_uses_jwks`] (HS256 traffic needs none of this),
///    read the cached [`JwksCache`] (for example from Spin's key-value store) and the time
///    of the last fetch attempt.
/// 2. Call [`should_refresh`] with the request's [`bearer_key_id`] checked against the
///    cached set: it says to fetch when there is no copy, when the copy is older than
///    `jwt_jwks_ttl` ([`JwksCache::is_fresh`]), or when the token names a `kid` the copy does
///    not hold (a key rotated in), but never more than once per
///    [`JWKS_REFRESH_INTERVAL_SECS`] ([`refresh_allowed`]), so tokens with made-up `kid`s
///    cannot make the service hammer the identity provider.
/// 3. Before fetching, record the attempt's time. On success, store a new [`JwksCache`]
///    (only if the document parses). On failure, keep the old copy.
/// 4. Hand the core the newest copy that [`JwksCache::is_usable`] (up to
///    [`JWKS_MAX_STALE_SECS`] past its TTL, so an identity provider's outage does not log
///    everyone out), or tell it the keys are unavailable: asymmetric tokens are then a 401
///    saying so, and HS256 tokens keep working.
///
/// ```
/// use task_api_core::{JwksCache, Timestamp};
/// let fetched = Timestamp::from_millis(1_800_000_000_000);
/// let cache = JwksCache::new(fetched, r#"{"keys":[]}"#);
/// assert_eq!(JwksCache::from_json(&cache.to_json()), Some(cache.clone()));
/// assert!(cache.is_fresh(fetched.plus_millis(299_000), 300));
/// assert!(!cache.is_fresh(fetched.plus_millis(300_000), 300));
/// assert!(cache.is_usable(fetched.plus_millis(300_000), 300));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JwksCache {
    /// When the document was fetched (stored as milliseconds since the epoch).
    #[serde(rename = "fetched_at_ms", with = "millis")]
    pub fetched_at: Timestamp,
    /// The document as fetched.
    pub document: String,
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::time::Timestamp;

    pub(super) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.as_millis())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        i64::deserialize(d).map(Timestamp::from_millis)
    }
}

impl JwksCache {
    /// A cache entry for `document`, fetched at `fetched_at`.
    pub fn new(fetched_at: Timestamp, document: impl Into<String>) -> Self {
        JwksCache {
            fetched_at,
            document: document.into(),
        }
    }

    /// The entry as JSON, for a key-value store.
    pub fn to_json(&self) -> String {
        // Serializing a string and an integer cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An entry read back from [`JwksCache::to_json`]; `None` if it is not one.
    pub fn from_json(json: &str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }

    /// The keys of the cached document.
    pub fn key_set(&self) -> Result<JwkSet, JwksError> {
        JwkSet::parse(&self.document)
    }

    /// Whether the entry is younger than `ttl_secs` at `now`. An entry stamped more than
    /// [`LEEWAY_SECS`](crate::LEEWAY_SECS) in the future (another instance's clock) is not
    /// fresh, so a wrong clock cannot pin a copy forever.
    pub fn is_fresh(&self, now: Timestamp, ttl_secs: u64) -> bool {
        self.age_within(now, ttl_secs)
    }

    /// Whether the entry may still be used when refreshing it fails: until
    /// [`JWKS_MAX_STALE_SECS`] after it stopped being fresh.
    pub fn is_usable(&self, now: Timestamp, ttl_secs: u64) -> bool {
        self.age_within(now, ttl_secs.saturating_add(JWKS_MAX_STALE_SECS))
    }

    fn age_within(&self, now: Timestamp, secs: u64) -> bool {
        let age_ms = i128::from(now.as_millis()) - i128::from(self.fetched_at.as_millis());
        age_ms >= -i128::from(LEEWAY_SECS) * 1000 && age_ms < i128::from(secs) * 1000
    }
}

/// Whether a fetch outside the TTL schedule (for an unknown `kid`, or to retry after a
/// failure) is allowed at `now`, given when the last attempt was made: at most one per
/// [`JWKS_REFRESH_INTERVAL_SECS`]. An attempt stamped in the future (another instance's
/// clock) does not block.
///
/// ```
/// use task_api_core::{JWKS_REFRESH_INTERVAL_SECS, Timestamp, refresh_allowed};
/// let t = Timestamp::from_millis(1_800_000_000_000);
/// assert!(refresh_allowed(t, None));
/// assert!(!refresh_allowed(t.plus_millis(59_999), Some(t)));
/// assert!(refresh_allowed(t.plus_millis(JWKS_REFRESH_INTERVAL_SECS as i64 * 1000), Some(t)));
/// ```
pub fn refresh_allowed(now: Timestamp, last_attempt: Option<Timestamp>) -> bool {
    match last_attempt {
        None => true,
        Some(last) => {
            let since_ms = i128::from(now.as_millis()) - i128::from(last.as_millis());
            since_ms < 0 || since_ms >= i128::from(JWKS_REFRESH_INTERVAL_SECS) * 1000
        }
    }
}

/// Whether the host should fetch the JWKS before handling a request: there is no cached
/// copy, or it is not fresh, or the request's token names a `kid` the copy lacks
/// (`unknown_kid`), and [`refresh_allowed`] says an attempt may be made now.
///
/// ```
/// use task_api_core::{JwksCache, Timestamp, should_refresh};
/// let t = Timestamp::from_millis(1_800_000_000_000);
/// let cache = JwksCache::new(t, "…");
/// assert!(should_refresh(t, 300, None, false, None));
/// assert!(!should_refresh(t.plus_millis(1_000), 300, Some(&cache), false, None));
/// // A rotated-in kid refreshes at once, but a second unknown kid waits a minute.
/// assert!(!should_refresh(t.plus_millis(1_000), 300, Some(&cache), true, Some(t)));
/// assert!(should_refresh(t.plus_millis(61_000), 300, Some(&cache), true, Some(t)));
/// ```
pub fn should_refresh(
    now: Timestamp,
    ttl_secs: u64,
    cached: Option<&JwksCache>,
    unknown_kid: bool,
    last_attempt: Option<Timestamp>,
) -> bool {
    let wanted = match cached {
        None => true,
        Some(c) => unknown_kid || !c.is_fresh(now, ttl_secs),
    };
    wanted && refresh_allowed(now, last_attempt)
}

/// The unverified `kid` of the request's bearer token, if the token is a JWT signed with
/// an asymmetric algorithm (`EdDSA`, `ES256`, `RS256`) and names one. HMAC tokens never
/// need the JWKS, so they give `None`, as do a missing or malformed token and a token
/// without `kid`.
///
/// A host uses it to decide whether to refresh its cached JWKS before
/// [`Api::handle`](crate::Api::handle); nothing here is trusted until the signature is.
///
/// ```
/// use http::HeaderMap;
/// use jwt_simple::prelude::*;
/// use task_api_core::bearer_key_id;
///
/// let key = Ed25519KeyPair::generate().with_key_id("k1");
/// let token = key.sign(Claims::create(Duration::from_mins(5)).with_subject("u1")).unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
/// assert_eq!(bearer_key_id(&headers).as_deref(), Some("k1"));
/// assert_eq!(bearer_key_id(&HeaderMap::new()), None);
/// ```
pub fn bearer_key_id(headers: &HeaderMap) -> Option<String> {
    asymmetric_metadata(headers)?.key_id().map(str::to_owned)
}

/// Whether the request's bearer token is a JWT of an asymmetric algorithm (`EdDSA`,
/// `ES256`, `RS256`), with or without `kid`: the only requests for which a host needs to
/// load the JWKS. Unverified, like [`bearer_key_id`].
///
/// ```
/// use http::HeaderMap;
/// use jwt_simple::prelude::*;
/// use task_api_core::bearer_uses_jwks;
///
/// let claims = || Claims::create(Duration::from_mins(5)).with_subject("u1");
/// let mut headers = HeaderMap::new();
/// let token = Ed25519KeyPair::generate().sign(claims()).unwrap();
/// headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
/// assert!(bearer_uses_jwks(&headers));
/// let token = HS256Key::generate().authenticate(claims()).unwrap();
/// headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
/// assert!(!bearer_uses_jwks(&headers));
/// ```
pub fn bearer_uses_jwks(headers: &HeaderMap) -> bool {
    asymmetric_metadata(headers).is_some()
}

/// The header of the request's bearer token, if it names an asymmetric algorithm.
fn asymmetric_metadata(headers: &HeaderMap) -> Option<TokenMetadata> {
    let token = bearer_token(headers).ok()?;
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let metadata = Token::decode_metadata(token).ok()?;
    KeyType::for_algorithm(Algorithm::parse(metadata.algorithm())?)?;
    Some(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::{ES256KeyPair, Ed25519KeyPair};

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn ed25519_jwk(kid: &str) -> Value {
        let key = Ed25519KeyPair::generate().public_key().to_bytes();
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": kid, "x": b64(&key)})
    }

    fn p256_jwk(kid: &str) -> Value {
        let point = ES256KeyPair::generate()
            .public_key()
            .public_key()
            .to_bytes_uncompressed();
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..])})
    }

    fn doc(keys: &[Value]) -> String {
        serde_json::json!({ "keys": keys }).to_string()
    }

    #[test]
    fn ed25519_and_p256_keys_are_kept_with_their_kid_and_type() {
        let set = JwkSet::parse(&doc(&[ed25519_jwk("a"), p256_jwk("b")])).unwrap();
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty());
        assert!(set.contains_kid("a") && set.contains_kid("b") && !set.contains_kid("c"));
        assert_eq!(set.keys()[0].kid(), Some("a"));
        assert_eq!(set.keys()[0].key_type(), KeyType::Ed25519);
        assert_eq!(set.keys()[1].algorithm(), Algorithm::ES256);
        assert_eq!(set.algorithms(), [Algorithm::EdDSA, Algorithm::ES256]);
    }

    #[test]
    fn unsupported_keys_are_skipped() {
        let mut enc = ed25519_jwk("enc");
        enc["use"] = "enc".into();
        let mut sign_only = ed25519_jwk("sign-only");
        sign_only["key_ops"] = serde_json::json!(["sign"]);
        let mut p384 = p256_jwk("p384");
        p384["crv"] = "P-384".into();
        let mut wrong_alg = ed25519_jwk("wrong-alg");
        wrong_alg["alg"] = "ES256".into();
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "oct"});
        let x25519 = serde_json::json!({"kty": "OKP", "crv": "X25519", "x": b64(&[9; 32])});
        let set = JwkSet::parse(&doc(&[
            enc,
            sign_only,
            p384,
            wrong_alg,
            oct,
            x25519,
            ed25519_jwk("good"),
        ]))
        .unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.contains_kid("good"));
    }

    #[test]
    fn key_ops_naming_verify_and_the_ed25519_alias_are_accepted() {
        let mut k = ed25519_jwk("a");
        k["key_ops"] = serde_json::json!(["verify"]);
        k["alg"] = "Ed25519".into();
        assert_eq!(JwkSet::parse(&doc(&[k])).unwrap().len(), 1);
    }

    #[test]
    fn a_document_with_no_usable_key_is_an_error() {
        let mut enc = ed25519_jwk("enc");
        enc["use"] = "enc".into();
        assert_eq!(
            JwkSet::parse(&doc(&[enc])).unwrap_err(),
            JwksError::NoUsableKey
        );
        assert_eq!(
            JwkSet::parse(r#"{"keys":[]}"#).unwrap_err(),
            JwksError::NoUsableKey
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"keys":{}}"#,
            r#"{"keys":[1]}"#,
        ] {
            assert_eq!(
                JwkSet::parse(bad).unwrap_err(),
                JwksError::NotAJwks,
                "{bad}"
            );
        }
        let huge = format!(r#"{{"keys":[], "pad":"{}"}}"#, "x".repeat(MAX_JWKS_BYTES));
        assert_eq!(JwkSet::parse(&huge).unwrap_err(), JwksError::TooLarge);
    }

    #[test]
    fn malformed_keys_are_errors_naming_their_position() {
        let cases: Vec<(Value, &str)> = vec![
            (
                serde_json::json!({"crv": "Ed25519", "x": b64(&[1; 32])}),
                "kty",
            ),
            (serde_json::json!({"kty": "OKP", "x": b64(&[1; 32])}), "crv"),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519"}),
                "valid Ed25519",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "a+b/"}),
                "valid Ed25519",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": format!("{}=", b64(&[1; 32]))}),
                "valid Ed25519",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 31])}),
                "valid Ed25519",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 32]), "kid": 7}),
                "string",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1; 32]), "d": b64(&[2; 32])}),
                "private",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[1; 31])}),
                "valid P-256",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[1; 32])}),
                "valid P-256",
            ),
            (
                serde_json::json!({"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB"}),
                "2048",
            ),
            (serde_json::json!({"kty": "RSA", "e": "AQAB"}), "lacks"),
            (
                // A modulus of the right size whose encoding is not minimal (two zero
                // bytes in front): jwt-simple's strict rules refuse it.
                serde_json::json!({"kty": "RSA", "n": b64(&[[0u8, 0].as_slice(), &[0xc5; 256]].concat()), "e": "AQAB"}),
                "valid RSA",
            ),
            // (An exponent other than 65537 is skipped, not an error: see
            // tests/jwks.rs `rsa_keys_the_service_cannot_use_are_skipped_…`.)
        ];
        for (key, expected) in cases {
            let err = JwkSet::parse(&doc(&[ed25519_jwk("ok"), key.clone()])).unwrap_err();
            match &err {
                JwksError::BadKey { index: 1, reason } => {
                    assert!(reason.contains(expected), "{key}: {reason}")
                }
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_kid_repeated_within_one_key_type_is_an_error_but_not_across_types() {
        assert!(matches!(
            JwkSet::parse(&doc(&[ed25519_jwk("a"), ed25519_jwk("a")])),
            Err(JwksError::BadKey { index: 1, .. })
        ));
        assert_eq!(
            JwkSet::parse(&doc(&[ed25519_jwk("a"), p256_jwk("a")]))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn error_messages_never_quote_the_document() {
        let secretish = "zzzz-unique-marker";
        let key = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": secretish});
        let err = JwkSet::parse(&doc(&[key])).unwrap_err();
        assert!(!err.to_string().contains(secretish));
    }

    #[test]
    fn selection_by_kid_and_type() {
        let set = JwkSet::parse(&doc(&[ed25519_jwk("a"), p256_jwk("b")])).unwrap();
        assert_eq!(
            set.select(Some("a"), KeyType::Ed25519).unwrap().kid(),
            Some("a")
        );
        assert_eq!(
            set.select(Some("a"), KeyType::P256).unwrap_err(),
            AuthError::KeyTypeMismatch
        );
        assert_eq!(
            set.select(Some("zz"), KeyType::Ed25519).unwrap_err(),
            AuthError::UnknownKey
        );
        // Without a kid: the only key of the type, if exactly one.
        assert_eq!(set.select(None, KeyType::P256).unwrap().kid(), Some("b"));
        assert_eq!(
            set.select(None, KeyType::Rsa).unwrap_err(),
            AuthError::UnknownKey
        );
        let two = JwkSet::parse(&doc(&[ed25519_jwk("a"), ed25519_jwk("c")])).unwrap();
        assert_eq!(
            two.select(None, KeyType::Ed25519).unwrap_err(),
            AuthError::UnknownKey
        );
    }

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0, 1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0, 0x7f, 0xff]), 15);
    }

    const T: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    #[test]
    fn cache_round_trips_through_json() {
        let cache = JwksCache::new(T, doc(&[ed25519_jwk("a")]));
        let json = cache.to_json();
        assert!(json.contains("\"fetched_at_ms\":1800000000000"), "{json}");
        let back = JwksCache::from_json(&json).unwrap();
        assert_eq!(back, cache);
        assert!(back.key_set().unwrap().contains_kid("a"));
        assert_eq!(JwksCache::from_json("{}"), None);
        assert_eq!(JwksCache::from_json("nonsense"), None);
    }

    #[test]
    fn freshness_follows_the_ttl_and_distrusts_future_stamps() {
        let cache = JwksCache::new(T, "{}");
        assert!(cache.is_fresh(T, 300));
        assert!(cache.is_fresh(T.plus_millis(299_999), 300));
        assert!(!cache.is_fresh(T.plus_millis(300_000), 300));
        // Another instance's clock a little ahead is fine; far ahead is not.
        assert!(cache.is_fresh(T.plus_millis(-60_000), 300));
        assert!(!cache.is_fresh(T.plus_millis(-60_001), 300));
    }

    #[test]
    fn a_stale_copy_is_usable_for_a_day_after_its_ttl() {
        let cache = JwksCache::new(T, "{}");
        let ttl = 300;
        let limit = (ttl + JWKS_MAX_STALE_SECS) as i64 * 1000;
        assert!(cache.is_usable(T.plus_millis(limit - 1), ttl));
        assert!(!cache.is_usable(T.plus_millis(limit), ttl));
    }

    #[test]
    fn refreshes_outside_the_schedule_are_throttled() {
        let interval = JWKS_REFRESH_INTERVAL_SECS as i64 * 1000;
        assert!(refresh_allowed(T, None));
        assert!(!refresh_allowed(T, Some(T)));
        assert!(!refresh_allowed(T.plus_millis(interval - 1), Some(T)));
        assert!(refresh_allowed(T.plus_millis(interval), Some(T)));
        assert!(refresh_allowed(T, Some(T.plus_millis(1))));
    }

    #[test]
    fn should_refresh_combines_the_rules() {
        let cache = JwksCache::new(T, "{}");
        let soon = T.plus_millis(1_000);
        let late = T.plus_millis(301_000);
        // No copy: fetch, unless an attempt was just made.
        assert!(should_refresh(soon, 300, None, false, None));
        assert!(!should_refresh(soon, 300, None, false, Some(T)));
        // A fresh copy and a known kid: nothing to do.
        assert!(!should_refresh(soon, 300, Some(&cache), false, None));
        // A stale copy, or an unknown kid: fetch, throttled.
        assert!(should_refresh(late, 300, Some(&cache), false, Some(T)));
        assert!(!should_refresh(late, 300, Some(&cache), false, Some(late)));
        assert!(should_refresh(soon, 300, Some(&cache), true, None));
        assert!(!should_refresh(soon, 300, Some(&cache), true, Some(T)));
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", value.parse().unwrap());
        h
    }

    #[test]
    fn bearer_helpers_read_asymmetric_tokens_only() {
        use jwt_simple::prelude::*;
        let claims = || Claims::create(Duration::from_mins(5)).with_subject("u1");
        let ed = Ed25519KeyPair::generate().with_key_id("ed-1");
        let token = ed.sign(claims()).unwrap();
        assert_eq!(
            bearer_key_id(&headers(&format!("bearer {token}"))).as_deref(),
            Some("ed-1")
        );
        assert!(bearer_uses_jwks(&headers(&format!("Bearer {token}"))));
        let no_kid = Ed25519KeyPair::generate().sign(claims()).unwrap();
        assert_eq!(bearer_key_id(&headers(&format!("Bearer {no_kid}"))), None);
        assert!(bearer_uses_jwks(&headers(&format!("Bearer {no_kid}"))));
        let hs = HS256Key::from_bytes(b"0123456789abcdef0123456789abcdef")
            .with_key_id("hs")
            .authenticate(claims())
            .unwrap();
        assert_eq!(bearer_key_id(&headers(&format!("Bearer {hs}"))), None);
        assert!(!bearer_uses_jwks(&headers(&format!("Bearer {hs}"))));
        assert!(!bearer_uses_jwks(&HeaderMap::new()));
        assert_eq!(bearer_key_id(&headers("Bearer not-a-jwt")), None);
        assert_eq!(bearer_key_id(&headers(&format!("Basic {token}"))), None);
        assert_eq!(bearer_key_id(&HeaderMap::new()), None);
    }
}
