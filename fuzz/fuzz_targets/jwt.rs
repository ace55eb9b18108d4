//! Bearer-token verification and JWKS parsing on arbitrary bytes.
//!
//! * An `Authorization` header (raw bytes, `Bearer <any text>`, or a JWT built from any
//!   header and claims JSON, signed with the HS256 secret, the JWKS's Ed25519 key, or not at
//!   all) through `JwtVerifier::authenticate` of four verifiers (HS256 only; HMAC family;
//!   JWKS + secret + issuer + audience; the same with the keys unavailable), plus
//!   `bearer_key_id` and `bearer_uses_jwks`.
//! * `JwkSet::parse` on any text and on structured documents (known members, key material
//!   of chosen lengths); a set that parses verifies a token too. `JwksCache::from_json` on
//!   any text.
//!
//! Asserts: no panic, and a token whose signature is not ours never verifies.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use task_api_core::{
    Algorithm, Config, JwkSet, JwksCache, JwtSecret, JwtVerifier, Timestamp, bearer_key_id,
    bearer_uses_jwks,
};
use task_api_fuzz::*;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Seconds from the fixed clock.
    now_offset: i32,
    case: Case,
}

#[derive(Arbitrary, Debug)]
enum Case {
    /// The whole `Authorization` value.
    Header(Vec<u8>),
    /// `<scheme> <text>`.
    Bearer { scheme: u8, text: String },
    /// A JWT from structured parts.
    Token(Token),
    /// A JWT whose parts are the base64url of any text (or not base64 at all).
    Parts { header: String, claims: String, signature: Vec<u8>, raw: bool, extra_dots: u8 },
    /// A JWKS document as text.
    Jwks(String),
    /// A JWKS document from structured keys, then a token against it.
    JwksKeys { keys: Vec<Vec<(Key, Scalar)>>, token: Token },
    /// A cached JWKS as the host stores it.
    Cache(String),
}

#[derive(Arbitrary, Debug)]
struct Token {
    header: HeaderPick,
    claims: Json,
    signature: Signature,
}

#[derive(Arbitrary, Debug)]
enum HeaderPick {
    Alg { alg: u8, kid: Option<Scalar>, typ: bool },
    Json(Json),
}

const ALGS: &[&str] = &["HS256", "HS384", "HS512", "EdDSA", "ES256", "RS256", "none", "hs256",
    "PS256", ""];

#[derive(Arbitrary, Debug)]
enum Signature {
    /// HS256 with the configured secret: the claims are then parsed.
    Hs256,
    /// EdDSA with the JWKS's key.
    EdDSA,
    /// Any bytes: must never verify.
    Forged(Vec<u8>),
    /// No signature part content.
    Empty,
}

const SCHEMES: &[&str] = &["Bearer", "bearer", "BEARER", "Basic", "Bearer ", "", "Token"];

struct Verifiers {
    list: Vec<JwtVerifier>,
}

fn verifiers() -> &'static Verifiers {
    static V: OnceLock<Verifiers> = OnceLock::new();
    V.get_or_init(|| {
        let secret = || JwtSecret::new(SECRET.as_bytes()).expect("a long enough secret");
        let jwks = jwks_document();
        let config = Config::from_lookup(|name| match name {
            "jwt_secret" => Some(SECRET.to_owned()),
            "jwt_jwks" => Some(jwks.clone()),
            "jwt_issuer" => Some("https://issuer.example".to_owned()),
            "jwt_audience" => Some("tasks, other".to_owned()),
            _ => None,
        })
        .expect("a valid configuration");
        let with_jwks = config.verifier().clone();
        Verifiers {
            list: vec![
                JwtVerifier::new(secret()),
                JwtVerifier::new(secret()).with_algorithms(vec![
                    Algorithm::HS256,
                    Algorithm::HS384,
                    Algorithm::HS512,
                ]),
                with_jwks.clone(),
                with_jwks.with_jwks_unavailable(),
            ],
        }
    })
}

fn header_json(h: &HeaderPick) -> String {
    match h {
        HeaderPick::Alg { alg, kid, typ } => {
            let mut out = format!("{{\"alg\":\"{}\"", ALGS[*alg as usize % ALGS.len()]);
            if let Some(kid) = kid {
                out.push_str(",\"kid\":");
                kid.render(&mut out);
            }
            if *typ {
                out.push_str(",\"typ\":\"JWT\"");
            }
            out.push('}');
            out
        }
        HeaderPick::Json(j) => j.render(),
    }
}

/// The token, and whether its signature is one of ours (so it may verify).
fn token_of(t: &Token) -> (String, bool) {
    let header = header_json(&t.header);
    let claims = t.claims.render();
    match &t.signature {
        Signature::Hs256 => (sign_hs256(&header, &claims, SECRET.as_bytes()), true),
        Signature::EdDSA => (sign_eddsa(&header, &claims), true),
        Signature::Forged(sig) => (format!("{}.{}.{}", b64(&header), b64(&claims), b64(sig)), false),
        Signature::Empty => (format!("{}.{}.", b64(&header), b64(&claims)), false),
    }
}

fn headers_with(value: &[u8]) -> Option<HeaderMap> {
    let v = HeaderValue::from_bytes(value).ok()?;
    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, v);
    Some(h)
}

/// Runs every verifier over `headers`; panics if a token that may not verify does.
fn check(headers: &HeaderMap, now: Timestamp, may_verify: bool, extra: Option<&JwtVerifier>) {
    let _ = bearer_key_id(headers);
    let _ = bearer_uses_jwks(headers);
    for v in verifiers().list.iter().chain(extra) {
        if let Ok(user) = v.authenticate(headers, now) {
            assert!(may_verify, "a token with a forged signature verified as {user:?}");
        }
    }
}

fuzz_target!(|input: Input| {
    let now = Timestamp::from_millis(START_MS + i64::from(input.now_offset) * 1000);
    match &input.case {
        Case::Header(bytes) => {
            if let Some(h) = headers_with(bytes) {
                // Raw bytes can only verify if they happen to be a signed token: not checked.
                check(&h, now, true, None);
            }
        }
        Case::Bearer { scheme, text } => {
            let value = format!("{} {text}", SCHEMES[*scheme as usize % SCHEMES.len()]);
            if let Some(h) = headers_with(value.as_bytes()) {
                check(&h, now, true, None);
            }
        }
        Case::Token(t) => {
            let (token, ours) = token_of(t);
            if let Some(h) = headers_with(format!("Bearer {token}").as_bytes()) {
                check(&h, now, ours, None);
            }
        }
        Case::Parts { header, claims, signature, raw, extra_dots } => {
            let token = if *raw {
                format!("{header}.{claims}.{}", b64(signature))
            } else {
                format!("{}.{}.{}", b64(header), b64(claims), b64(signature))
            };
            let token = format!("{token}{}", ".".repeat(*extra_dots as usize % 4));
            if let Some(h) = headers_with(format!("Bearer {token}").as_bytes()) {
                check(&h, now, false, None);
            }
        }
        Case::Jwks(text) => {
            if let Ok(set) = JwkSet::parse(text) {
                let _ = (set.len(), set.algorithms(), set.skipped().len());
                let _ = JwtVerifier::from_jwks(set);
            }
        }
        Case::JwksKeys { keys, token } => {
            let mut doc = String::from("{\"keys\":[");
            for (i, key) in keys.iter().take(4).enumerate() {
                if i > 0 {
                    doc.push(',');
                }
                doc.push_str(&Json::Object(key.clone()).render());
            }
            doc.push_str("]}");
            if let Ok(set) = JwkSet::parse(&doc) {
                let _ = (set.len(), set.algorithms(), set.skipped().len());
                for k in set.keys() {
                    let _ = (k.kid(), k.key_type(), k.algorithm());
                }
                let verifier = JwtVerifier::from_jwks(set);
                let (token, _) = token_of(token);
                if let Some(h) = headers_with(format!("Bearer {token}").as_bytes()) {
                    // A fuzzed key set may hold the Ed25519 key: any outcome is allowed.
                    let _ = bearer_key_id(&h);
                    let _ = verifier.authenticate(&h, now);
                }
            }
        }
        Case::Cache(text) => {
            if let Some(cache) = JwksCache::from_json(text) {
                let _ = cache.key_set();
                let _ = cache.is_fresh(now, 300);
                let _ = cache.is_usable(now, 86_400);
                let _ = cache.to_json();
            }
        }
    }
});
