//! Verifying a bearer token: the JWT's signature, times, issuer and audience, and its `sub`.
//!
//! Verification is `jwt-simple`'s, with the current time passed in (`artificial_time`), so
//! the same token gives the same answer in a test on any day. Only the configured
//! algorithms are accepted, and `none` is never among them. The algorithm in the token's
//! header picks the kind of key: the HMAC algorithms use only the shared secret, the
//! asymmetric ones (`EdDSA`, `ES256`, `RS256`) only a public key of the matching type from
//! the [`JwkSet`], chosen by the header's `kid`. No key ever serves another algorithm.

use std::collections::HashSet;

use http::HeaderMap;
use jwt_simple::JWTError;
use jwt_simple::prelude::*;

use crate::auth::algorithm::{Algorithm, JwtSecret, KeyType};
use crate::auth::bearer::{AuthError, LEEWAY_SECS, MAX_TOKEN_BYTES, bearer_token};
use crate::auth::jwks::JwkSet;
use crate::domain::ids::UserId;
use crate::domain::time::Timestamp;

/// Where the public keys for asymmetric tokens come from.
#[derive(Clone, Debug)]
enum Keys {
    /// No JWKS is configured: asymmetric tokens are never accepted.
    None,
    /// The current key set.
    Set(JwkSet),
    /// A JWKS is configured but could not be fetched (or was not handed over yet).
    Unavailable,
}

/// Checks bearer tokens against the configured secret, public keys, algorithms, issuer and
/// audience.
///
/// Accepted algorithms: the list given to [`JwtVerifier::with_algorithms`], or, without
/// one, HS256 when a secret is set plus the algorithm of each type of key in the JWKS
/// (every asymmetric algorithm while the JWKS is unavailable, so such tokens get
/// [`AuthError::KeysUnavailable`] rather than a misleading answer).
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    secret: Option<JwtSecret>,
    keys: Keys,
    algorithms: Option<Vec<Algorithm>>,
    issuers: Option<HashSet<String>>,
    audiences: Option<HashSet<String>>,
}

impl JwtVerifier {
    /// A verifier accepting HS256 with `secret`, any issuer and audience.
    pub fn new(secret: JwtSecret) -> Self {
        JwtVerifier {
            secret: Some(secret),
            keys: Keys::None,
            algorithms: None,
            issuers: None,
            audiences: None,
        }
    }

    /// A verifier with no shared secret, accepting tokens signed by the keys of `keys`
    /// (with their algorithms, unless [`JwtVerifier::with_algorithms`] says otherwise).
    /// HMAC tokens are always refused.
    pub fn from_jwks(keys: JwkSet) -> Self {
        JwtVerifier {
            secret: None,
            keys: Keys::Set(keys),
            algorithms: None,
            issuers: None,
            audiences: None,
        }
    }

    /// A verifier with `secret` if any, whose JWKS is not known yet (asymmetric tokens get
    /// [`AuthError::KeysUnavailable`] until [`JwtVerifier::with_jwks`]).
    pub(crate) fn awaiting_jwks(secret: Option<JwtSecret>) -> Self {
        JwtVerifier {
            secret,
            keys: Keys::Unavailable,
            algorithms: None,
            issuers: None,
            audiences: None,
        }
    }

    /// Accept only these algorithms.
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Self {
        self.algorithms = Some(algorithms);
        self
    }

    /// Verify asymmetric tokens with these public keys (replacing any earlier set).
    pub fn with_jwks(mut self, keys: JwkSet) -> Self {
        self.keys = Keys::Set(keys);
        self
    }

    /// The JWKS could not be fetched: asymmetric tokens get [`AuthError::KeysUnavailable`];
    /// HMAC tokens are checked as before.
    pub fn with_jwks_unavailable(mut self) -> Self {
        self.keys = Keys::Unavailable;
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

    /// Whether a token of `algorithm` is accepted now.
    ///
    /// ```
    /// use task_api_core::{Algorithm, JwtSecret, JwtVerifier};
    /// let v = JwtVerifier::new(JwtSecret::new("an example secret of at least 32 bytes!").unwrap());
    /// assert!(v.accepts(Algorithm::HS256));
    /// assert!(!v.accepts(Algorithm::HS512) && !v.accepts(Algorithm::EdDSA));
    /// assert!(v.with_jwks_unavailable().accepts(Algorithm::EdDSA));
    /// ```
    pub fn accepts(&self, algorithm: Algorithm) -> bool {
        if let Some(list) = &self.algorithms {
            return list.contains(&algorithm);
        }
        match (KeyType::for_algorithm(algorithm), &self.keys) {
            (None, _) => algorithm == Algorithm::HS256 && self.secret.is_some(),
            (Some(_), Keys::None) => false,
            (Some(_), Keys::Unavailable) => true,
            (Some(key_type), Keys::Set(set)) => set.has_type(key_type),
        }
    }

    /// The user named by the request's bearer token.
    pub fn authenticate(&self, headers: &HeaderMap, now: Timestamp) -> Result<UserId, AuthError> {
        self.verify(bearer_token(headers)?, now)
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
        let claims = match self.only_hmac() {
            // With one HMAC algorithm and no public keys, jwt-simple's own check of the
            // header's `alg` against the key's suffices (a mismatch is `AlgorithmMismatch`),
            // and saves decoding the header twice.
            Some(algorithm) => self.verify_hmac(algorithm, token, options)?,
            None => {
                let metadata = Token::decode_metadata(token).map_err(|_| AuthError::Malformed)?;
                let algorithm = Algorithm::parse(metadata.algorithm())
                    .filter(|a| self.accepts(*a))
                    .ok_or(AuthError::AlgorithmNotAllowed)?;
                match KeyType::for_algorithm(algorithm) {
                    None => self.verify_hmac(algorithm, token, options)?,
                    Some(key_type) => {
                        let jwk = match &self.keys {
                            Keys::None => return Err(AuthError::AlgorithmNotAllowed),
                            Keys::Unavailable => return Err(AuthError::KeysUnavailable),
                            Keys::Set(set) => set.select(metadata.key_id(), key_type)?,
                        };
                        jwk.verify(token, options).map_err(|e| classify(&e))?
                    }
                }
            }
        };
        if claims.expires_at.is_none() {
            return Err(AuthError::MissingExpiry);
        }
        claims
            .subject
            .as_deref()
            .and_then(UserId::parse)
            .ok_or(AuthError::BadSubject)
    }

    /// The one algorithm accepted, if it is an HMAC and no public keys are configured.
    fn only_hmac(&self) -> Option<Algorithm> {
        if !matches!(self.keys, Keys::None) || self.secret.is_none() {
            return None;
        }
        match self.algorithms.as_deref() {
            None => Some(Algorithm::HS256),
            Some([only]) if only.is_hmac() => Some(*only),
            Some(_) => None,
        }
    }

    /// Verifies an HMAC token with the shared secret, and only with it.
    fn verify_hmac(
        &self,
        algorithm: Algorithm,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<NoCustomClaims>, AuthError> {
        let key = self
            .secret
            .as_ref()
            .ok_or(AuthError::AlgorithmNotAllowed)?
            .expose();
        match algorithm {
            Algorithm::HS256 => {
                HS256Key::from_bytes(key).verify_token::<NoCustomClaims>(token, Some(options))
            }
            Algorithm::HS384 => {
                HS384Key::from_bytes(key).verify_token::<NoCustomClaims>(token, Some(options))
            }
            Algorithm::HS512 => {
                HS512Key::from_bytes(key).verify_token::<NoCustomClaims>(token, Some(options))
            }
            Algorithm::EdDSA | Algorithm::ES256 | Algorithm::RS256 => {
                return Err(AuthError::AlgorithmNotAllowed);
            }
        }
        .map_err(|e| classify(&e))
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
    fn sub_with_a_control_character_is_refused() {
        for sub in ["u\u{0}1", "u\u{1f}", "\u{7f}", "u\u{9b}1"] {
            assert_eq!(
                verifier().verify(&hs256(claims(sub)), now()),
                Err(AuthError::BadSubject),
                "{sub:?}"
            );
        }
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

    mod asymmetric {
        use std::sync::OnceLock;

        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;

        use super::*;

        fn b64(bytes: &[u8]) -> String {
            URL_SAFE_NO_PAD.encode(bytes)
        }

        fn ed25519() -> &'static Ed25519KeyPair {
            static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
            KEY.get_or_init(|| Ed25519KeyPair::generate().with_key_id("ed"))
        }

        fn p256() -> &'static ES256KeyPair {
            static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
            KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec"))
        }

        /// RSA key generation is slow in debug builds: once per test binary.
        fn rsa() -> &'static RS256KeyPair {
            static KEY: OnceLock<RS256KeyPair> = OnceLock::new();
            KEY.get_or_init(|| RS256KeyPair::generate(2048).unwrap().with_key_id("rsa"))
        }

        fn ed25519_jwk(kid: &str, key: &Ed25519KeyPair) -> String {
            format!(
                r#"{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"{kid}","x":"{}"}}"#,
                b64(&key.public_key().to_bytes())
            )
        }

        fn p256_jwk(kid: &str, key: &ES256KeyPair) -> String {
            let point = key.public_key().public_key().to_bytes_uncompressed();
            format!(
                r#"{{"kty":"EC","crv":"P-256","kid":"{kid}","x":"{}","y":"{}"}}"#,
                b64(&point[1..33]),
                b64(&point[33..])
            )
        }

        fn rsa_jwk(kid: &str, key: &RS256KeyPair) -> String {
            let c = key.public_key().to_components();
            format!(
                r#"{{"kty":"RSA","alg":"RS256","kid":"{kid}","n":"{}","e":"{}"}}"#,
                b64(&c.n),
                b64(&c.e)
            )
        }

        fn set(jwks: &[String]) -> JwkSet {
            JwkSet::parse(&format!(r#"{{"keys":[{}]}}"#, jwks.join(","))).unwrap()
        }

        fn all_keys() -> JwkSet {
            set(&[
                ed25519_jwk("ed", ed25519()),
                p256_jwk("ec", p256()),
                rsa_jwk("rsa", rsa()),
            ])
        }

        /// HS256 with the secret, and every key of the test JWKS.
        fn mixed() -> JwtVerifier {
            verifier().with_jwks(all_keys())
        }

        fn ed_token(c: JWTClaims<NoCustomClaims>) -> String {
            ed25519().sign(c).unwrap()
        }

        #[test]
        fn each_algorithm_verifies_with_its_key() {
            let v = mixed();
            assert_eq!(
                v.verify(&ed_token(claims("u1")), now()).unwrap().as_str(),
                "u1"
            );
            let es = p256().sign(claims("u2")).unwrap();
            assert_eq!(v.verify(&es, now()).unwrap().as_str(), "u2");
            let rs = rsa().sign(claims("u3")).unwrap();
            assert_eq!(v.verify(&rs, now()).unwrap().as_str(), "u3");
            assert_eq!(
                v.verify(&hs256(claims("u4")), now()).unwrap().as_str(),
                "u4"
            );
        }

        #[test]
        fn without_a_secret_only_the_keys_verify() {
            let v = JwtVerifier::from_jwks(all_keys());
            assert!(v.verify(&ed_token(claims("u1")), now()).is_ok());
            assert_eq!(
                v.verify(&hs256(claims("u1")), now()),
                Err(AuthError::AlgorithmNotAllowed)
            );
        }

        #[test]
        fn hs256_signed_with_a_public_key_is_refused() {
            let public = ed25519().public_key().to_bytes();
            let forged = HS256Key::from_bytes(&public)
                .with_key_id("ed")
                .authenticate(claims("admin"))
                .unwrap();
            assert_eq!(mixed().verify(&forged, now()), Err(AuthError::BadSignature));
            assert_eq!(
                JwtVerifier::from_jwks(all_keys()).verify(&forged, now()),
                Err(AuthError::AlgorithmNotAllowed)
            );
            // The JWK's encoded form as the HMAC key fares no better.
            let x = b64(&public);
            let forged = HS256Key::from_bytes(x.as_bytes())
                .authenticate(claims("admin"))
                .unwrap();
            assert_eq!(mixed().verify(&forged, now()), Err(AuthError::BadSignature));
        }

        #[test]
        fn a_kid_naming_a_key_of_another_type_is_refused() {
            // An ES256 token whose kid names the Ed25519 key.
            let es = ES256KeyPair::from_bytes(&p256().to_bytes())
                .unwrap()
                .with_key_id("ed")
                .sign(claims("u1"))
                .unwrap();
            assert_eq!(mixed().verify(&es, now()), Err(AuthError::KeyTypeMismatch));
        }

        #[test]
        fn an_algorithm_without_a_key_of_its_type_is_not_accepted() {
            let v = verifier().with_jwks(set(&[ed25519_jwk("ed", ed25519())]));
            assert!(!v.accepts(Algorithm::ES256));
            let es = p256().sign(claims("u1")).unwrap();
            assert_eq!(v.verify(&es, now()), Err(AuthError::AlgorithmNotAllowed));
        }

        #[test]
        fn an_unknown_kid_is_its_own_error() {
            let other = Ed25519KeyPair::generate().with_key_id("rotated-in");
            assert_eq!(
                mixed().verify(&other.sign(claims("u1")).unwrap(), now()),
                Err(AuthError::UnknownKey)
            );
            assert_eq!(
                AuthError::UnknownKey.description(),
                "the token's signing key is not known"
            );
        }

        #[test]
        fn a_token_without_kid_uses_the_only_key_of_its_type() {
            let bare = Ed25519KeyPair::from_bytes(&ed25519().to_bytes()).unwrap();
            let token = bare.sign(claims("u1")).unwrap();
            assert!(mixed().verify(&token, now()).is_ok());
            let two = set(&[
                ed25519_jwk("ed", ed25519()),
                ed25519_jwk("ed2", &Ed25519KeyPair::generate()),
            ]);
            assert_eq!(
                verifier().with_jwks(two).verify(&token, now()),
                Err(AuthError::UnknownKey)
            );
        }

        #[test]
        fn a_right_kid_with_another_key_s_signature_is_a_bad_signature() {
            let impostor = Ed25519KeyPair::generate().with_key_id("ed");
            assert_eq!(
                mixed().verify(&impostor.sign(claims("u1")).unwrap(), now()),
                Err(AuthError::BadSignature)
            );
        }

        #[test]
        fn unavailable_keys_refuse_asymmetric_tokens_only() {
            let v = verifier().with_jwks_unavailable();
            assert_eq!(
                v.verify(&ed_token(claims("u1")), now()),
                Err(AuthError::KeysUnavailable)
            );
            assert_eq!(
                v.verify(&rsa().sign(claims("u1")).unwrap(), now()),
                Err(AuthError::KeysUnavailable)
            );
            assert!(v.verify(&hs256(claims("u1")), now()).is_ok());
            assert_eq!(
                AuthError::KeysUnavailable.description(),
                "the signing keys could not be fetched"
            );
        }

        #[test]
        fn configured_algorithms_bound_the_keys() {
            let v = mixed().with_algorithms(vec![Algorithm::EdDSA]);
            assert!(v.verify(&ed_token(claims("u1")), now()).is_ok());
            assert_eq!(
                v.verify(&hs256(claims("u1")), now()),
                Err(AuthError::AlgorithmNotAllowed)
            );
            assert_eq!(
                v.verify(&p256().sign(claims("u1")).unwrap(), now()),
                Err(AuthError::AlgorithmNotAllowed)
            );
            // HS256 only, as by default without a JWKS: the keys are not used.
            let v = mixed().with_algorithms(vec![Algorithm::HS256]);
            assert_eq!(
                v.verify(&ed_token(claims("u1")), now()),
                Err(AuthError::AlgorithmNotAllowed)
            );
        }

        #[test]
        fn alg_none_is_refused_with_keys_too() {
            let token = format!(
                "{}.{}.",
                super::b64(r#"{"alg":"none","kid":"ed"}"#),
                super::b64(r#"{"sub":"u1","exp":9999999999}"#)
            );
            assert_eq!(
                mixed().verify(&token, now()),
                Err(AuthError::AlgorithmNotAllowed)
            );
        }

        #[test]
        fn claim_rules_apply_to_asymmetric_tokens() {
            let mut c = claims("u1");
            c.expires_at = Some(Duration::from_secs(NOW - 61));
            assert_eq!(mixed().verify(&ed_token(c), now()), Err(AuthError::Expired));
            let mut c = claims("u1");
            c.invalid_before = Some(Duration::from_secs(NOW + 61));
            assert_eq!(
                mixed().verify(&ed_token(c), now()),
                Err(AuthError::NotYetValid)
            );
            let mut c = claims("u1");
            c.expires_at = None;
            assert_eq!(
                mixed().verify(&ed_token(c), now()),
                Err(AuthError::MissingExpiry)
            );
            assert_eq!(
                mixed().verify(&ed_token(claims("")), now()),
                Err(AuthError::BadSubject)
            );
            let v = mixed().with_issuers(HashSet::from(["https://app.example".to_owned()]));
            assert_eq!(
                v.verify(&ed_token(claims("u1")), now()),
                Err(AuthError::WrongIssuer)
            );
            let good = claims("u1").with_issuer("https://app.example");
            assert!(v.verify(&ed_token(good), now()).is_ok());
        }

        #[test]
        fn a_tampered_asymmetric_token_is_a_bad_signature() {
            let token = ed_token(claims("u1"));
            let parts: Vec<&str> = token.split('.').collect();
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                super::b64(&format!(r#"{{"sub":"admin","exp":{}}}"#, NOW + 60)),
                parts[2]
            );
            assert_eq!(mixed().verify(&forged, now()), Err(AuthError::BadSignature));
        }

        #[test]
        fn algorithm_names_round_trip() {
            for a in [
                Algorithm::HS256,
                Algorithm::HS384,
                Algorithm::HS512,
                Algorithm::EdDSA,
                Algorithm::ES256,
                Algorithm::RS256,
            ] {
                assert_eq!(Algorithm::parse(a.name()), Some(a));
                assert_eq!(a.is_hmac(), a.name().starts_with("HS"));
            }
        }
    }
}
