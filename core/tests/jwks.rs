//! Asymmetric bearer tokens verified against a JWKS (Better Auth's JWT plugin), end to end
//! through `Api::handle`, next to the shared-secret HS256 tokens.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Request;
use jwt_simple::prelude::*;
use serde_json::json;
use support::{InProcess, Reply, SECRET, START_MS, Transport, token_at};
use task_api_core::{
    Config, ConfigError, DEFAULT_JWKS_TTL_SECS, JWKS_MAX_STALE_SECS, JWKS_REFRESH_INTERVAL_SECS,
    JwkSet, JwksCache, JwksHost, MemoryStore, Timestamp, bearer_key_id, jwks_store_keys,
    prepare_jwks, should_refresh,
};

const JWKS_URL: &str = "https://app.example/api/auth/jwks";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn ed25519() -> &'static Ed25519KeyPair {
    static KEY: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEY.get_or_init(|| Ed25519KeyPair::generate().with_key_id("ed-1"))
}

fn p256() -> &'static ES256KeyPair {
    static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec-1"))
}

/// RSA key generation is slow in debug builds: once per test binary.
fn rsa() -> &'static RS256KeyPair {
    static KEY: OnceLock<RS256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        RS256KeyPair::generate(2048)
            .expect("2048-bit RSA key generation")
            .with_key_id("rsa-1")
    })
}

/// The public JWK of an Ed25519 key, as Better Auth publishes it.
fn ed25519_jwk(kid: &str, key: &Ed25519KeyPair) -> serde_json::Value {
    json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
        "x": b64(&key.public_key().to_bytes())})
}

fn p256_jwk(kid: &str, key: &ES256KeyPair) -> serde_json::Value {
    let point = key.public_key().public_key().to_bytes_uncompressed();
    json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": b64(&point[1..33]), "y": b64(&point[33..])})
}

fn rsa_jwk(kid: &str, key: &RS256KeyPair) -> serde_json::Value {
    let c = key.public_key().to_components();
    json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": b64(&c.n), "e": b64(&c.e)})
}

fn document(keys: &[serde_json::Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// The JWKS of the three test keys.
fn all_keys() -> String {
    document(&[
        ed25519_jwk("ed-1", ed25519()),
        p256_jwk("ec-1", p256()),
        rsa_jwk("rsa-1", rsa()),
    ])
}

fn lookup(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

/// An app whose host fetched `jwks` from `jwt_jwks_url` (with the shared secret too).
fn app_with_fetched(jwks: &str) -> InProcess {
    let config = lookup(&[("jwt_secret", SECRET), ("jwt_jwks_url", JWKS_URL)])
        .unwrap()
        .with_fetched_jwks(JwkSet::parse(jwks).unwrap());
    InProcess::over(MemoryStore::new(), Ok(config))
}

/// Claims for `sub`, issued at the app's clock, valid for an hour.
fn claims_at(app: &InProcess, sub: &str) -> JWTClaims<NoCustomClaims> {
    let now = (app.now().as_millis() / 1000) as u64;
    let mut c = Claims::create(Duration::from_hours(1)).with_subject(sub);
    c.issued_at = Some(Duration::from_secs(now));
    c.invalid_before = Some(Duration::from_secs(now));
    c.expires_at = Some(Duration::from_secs(now + 3600));
    c
}

fn send(app: &InProcess, method: &str, path: &str, token: &str, body: Option<&str>) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let body = body.map(|s| s.as_bytes().to_vec()).unwrap_or_default();
    app.send(b.body(body).unwrap())
}

fn create(app: &InProcess, token: &str) -> Reply {
    send(
        app,
        "POST",
        "/api/tasks",
        token,
        Some(r#"{"title":"Buy milk"}"#),
    )
}

/// A 401 whose `WWW-Authenticate` and `detail` carry `description`.
fn assert_401(r: &Reply, description: &str) {
    assert_eq!(r.status, 401, "{:?}", r.json);
    let h = r.header("www-authenticate").unwrap();
    assert!(
        h.contains("error=\"invalid_token\"")
            && h.contains(&format!("error_description=\"{description}\"")),
        "{h}"
    );
    assert_eq!(r.json["code"], "unauthorized");
    assert_eq!(r.json["detail"], description);
}

// ---------------------------------------------------------------- accepted tokens

#[test]
fn an_eddsa_token_creates_a_task() {
    let app = app_with_fetched(&all_keys());
    let token = ed25519().sign(claims_at(&app, "u1")).unwrap();
    let r = create(&app, &token);
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(r.task()["user_id"], "u1");
    assert_eq!(
        r.raw
            .extensions()
            .get::<task_api_core::RequestLog>()
            .unwrap()
            .user_id
            .as_ref()
            .unwrap()
            .as_str(),
        "u1"
    );
}

#[test]
fn rsa_keys_the_service_cannot_use_are_skipped_and_the_others_still_verify() {
    // An RSA modulus of 8193 bits, and a 2048-bit one with exponent 3: well-formed keys the
    // service will not use. Refusing the whole document for them would, once the cached copy
    // went stale, answer every asymmetric token with a 401.
    let mut huge = vec![0x01];
    huge.extend(std::iter::repeat_n(0xff, 1024));
    let small_e = json!({"kty": "RSA", "kid": "e3", "n": b64(&[0xc5; 256]), "e": b64(&[3])});
    let doc = document(&[
        json!({"kty": "RSA", "kid": "big", "n": b64(&huge), "e": b64(&[1, 0, 1])}),
        small_e,
        ed25519_jwk("ed-1", ed25519()),
    ]);
    let set = JwkSet::parse(&doc).unwrap();
    let skipped: Vec<_> = set
        .skipped()
        .iter()
        .map(|k| (k.index, k.kid.as_deref(), k.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            (0, Some("big"), "is an RSA key over 4096 bits"),
            (1, Some("e3"), "is an RSA key whose exponent is not 65537"),
        ]
    );
    let app = app_with_fetched(&doc);
    let token = ed25519().sign(claims_at(&app, "u1")).unwrap();
    assert_eq!(create(&app, &token).status, 201);
}

#[test]
fn every_algorithm_and_the_shared_secret_reach_the_same_user() {
    let app = app_with_fetched(&all_keys());
    let id = create(&app, &ed25519().sign(claims_at(&app, "u1")).unwrap()).id();
    let tokens = [
        p256().sign(claims_at(&app, "u1")).unwrap(),
        rsa().sign(claims_at(&app, "u1")).unwrap(),
        app.token("u1"),
    ];
    for token in tokens {
        let r = send(&app, "GET", &format!("/api/u1/tasks/{id}"), &token, None);
        assert_eq!(r.status, 200, "{:?}", r.json);
    }
    // The path user is still checked against the token's.
    let other = ed25519().sign(claims_at(&app, "u2")).unwrap();
    let r = send(&app, "GET", &format!("/api/u1/tasks/{id}"), &other, None);
    assert_eq!(r.status, 403);
    let r = send(&app, "GET", &format!("/api/tasks/{id}"), &other, None);
    assert_eq!(r.status, 404);
}

#[test]
fn a_pinned_jwks_without_a_secret_is_a_valid_configuration() {
    let config = lookup(&[("jwt_jwks", &all_keys())]).unwrap();
    assert_eq!(config.jwks_url(), None);
    let app = InProcess::over(MemoryStore::new(), Ok(config));
    let token = ed25519().sign(claims_at(&app, "u1")).unwrap();
    assert_eq!(create(&app, &token).status, 201);
    // No secret: HS256 tokens are not accepted at all.
    let r = send(&app, "GET", "/api/tasks", &app.token("u1"), None);
    assert_401(&r, "the token's algorithm is not accepted");
}

#[test]
fn a_rotated_in_key_works_once_the_new_jwks_is_fetched() {
    let next = Ed25519KeyPair::generate().with_key_id("ed-2");
    let old_doc = document(&[ed25519_jwk("ed-1", ed25519())]);
    let new_doc = document(&[ed25519_jwk("ed-1", ed25519()), ed25519_jwk("ed-2", &next)]);

    // Before the refresh the new kid is unknown.
    let app = app_with_fetched(&old_doc);
    let token = next.sign(claims_at(&app, "u1")).unwrap();
    assert_401(
        &create(&app, &token),
        "the token's signing key is not known",
    );

    // The host's decision, as the component will make it: the cached copy is fresh, but
    // the token names a kid it lacks, and no attempt was made in the last minute.
    let mut request = Request::post("/api/tasks").body(Vec::<u8>::new()).unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let kid = bearer_key_id(request.headers()).unwrap();
    assert_eq!(kid, "ed-2");
    let now = Timestamp::from_millis(START_MS);
    let cache = JwksCache::new(now.plus_millis(-10_000), old_doc);
    let cached = cache.key_set().unwrap();
    let unknown = !cached.contains_kid(&kid);
    assert!(should_refresh(now, 300, Some(&cache), unknown, None));
    // A second unknown kid within the minute does not fetch again.
    assert!(!should_refresh(
        now,
        300,
        Some(&cache),
        unknown,
        Some(now.plus_millis(-30_000))
    ));

    // After the refresh both keys work.
    let app = app_with_fetched(&new_doc);
    let token = next.sign(claims_at(&app, "u1")).unwrap();
    assert_eq!(create(&app, &token).status, 201);
    let token = ed25519().sign(claims_at(&app, "u1")).unwrap();
    assert_eq!(create(&app, &token).status, 201);
}

// ---------------------------------------------------------------- refused tokens

#[test]
fn an_unknown_kid_is_401_saying_so() {
    let app = app_with_fetched(&all_keys());
    let stranger = Ed25519KeyPair::generate().with_key_id("not-published");
    let r = create(&app, &stranger.sign(claims_at(&app, "u1")).unwrap());
    assert_401(&r, "the token's signing key is not known");
}

#[test]
fn a_kid_of_another_key_type_than_the_algorithm_is_401() {
    let app = app_with_fetched(&all_keys());
    // An ES256 token naming the Ed25519 key, and an RS256 token naming the EC key.
    let es = ES256KeyPair::from_bytes(&p256().to_bytes())
        .unwrap()
        .with_key_id("ed-1")
        .sign(claims_at(&app, "u1"))
        .unwrap();
    assert_401(
        &create(&app, &es),
        "the token's algorithm does not match its signing key",
    );
    let rs = RS256KeyPair::from_der(&rsa().to_der().unwrap())
        .unwrap()
        .with_key_id("ec-1")
        .sign(claims_at(&app, "u1"))
        .unwrap();
    assert_eq!(create(&app, &rs).status, 401);
}

#[test]
fn an_algorithm_with_no_key_of_its_type_is_not_accepted() {
    let app = app_with_fetched(&document(&[ed25519_jwk("ed-1", ed25519())]));
    let r = create(&app, &p256().sign(claims_at(&app, "u1")).unwrap());
    assert_401(&r, "the token's algorithm is not accepted");
}

#[test]
fn hs256_signed_with_a_public_key_is_401() {
    let app = app_with_fetched(&all_keys());
    let public = ed25519().public_key().to_bytes();
    for key in [
        public.clone(),
        b64(&public).into_bytes(),
        all_keys().into_bytes(),
    ] {
        let forged = HS256Key::from_bytes(&key)
            .with_key_id("ed-1")
            .authenticate(claims_at(&app, "u1"))
            .unwrap();
        assert_401(&create(&app, &forged), "the token's signature is invalid");
    }
    // Without a secret, HS256 is not even considered.
    let config = lookup(&[("jwt_jwks", &all_keys())]).unwrap();
    let app = InProcess::over(MemoryStore::new(), Ok(config));
    let forged = HS256Key::from_bytes(&public)
        .authenticate(claims_at(&app, "u1"))
        .unwrap();
    assert_401(
        &create(&app, &forged),
        "the token's algorithm is not accepted",
    );
}

#[test]
fn alg_none_is_401() {
    let app = app_with_fetched(&all_keys());
    let now = (app.now().as_millis() / 1000) as u64;
    let b = |s: String| b64(s.as_bytes());
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"ed-1"}}"#)),
            b(format!(r#"{{"sub":"u1","exp":{}}}"#, now + 600))
        );
        assert_401(
            &create(&app, &token),
            "the token's algorithm is not accepted",
        );
    }
}

#[test]
fn expired_and_not_yet_valid_eddsa_tokens_are_401() {
    let app = app_with_fetched(&all_keys());
    let now = (app.now().as_millis() / 1000) as u64;
    let mut c = claims_at(&app, "u1");
    c.expires_at = Some(Duration::from_secs(now - 61));
    assert_401(
        &create(&app, &ed25519().sign(c).unwrap()),
        "the token has expired",
    );
    let mut c = claims_at(&app, "u1");
    c.invalid_before = Some(Duration::from_secs(now + 120));
    assert_401(
        &create(&app, &ed25519().sign(c).unwrap()),
        "the token is not valid yet",
    );
    let mut c = claims_at(&app, "u1");
    c.expires_at = None;
    assert_401(
        &create(&app, &ed25519().sign(c).unwrap()),
        "the token has no exp claim",
    );
    // Within the leeway it is still accepted.
    let mut c = claims_at(&app, "u1");
    c.expires_at = Some(Duration::from_secs(now - 30));
    assert_eq!(create(&app, &ed25519().sign(c).unwrap()).status, 201);
}

#[test]
fn issuer_and_audience_apply_to_eddsa_tokens() {
    let config = lookup(&[
        ("jwt_jwks", &all_keys()),
        ("jwt_issuer", "https://app.example"),
        ("jwt_audience", "https://app.example"),
    ])
    .unwrap();
    let app = InProcess::over(MemoryStore::new(), Ok(config));
    let bare = ed25519().sign(claims_at(&app, "u1")).unwrap();
    assert_401(&create(&app, &bare), "the token's issuer is not accepted");
    let good = claims_at(&app, "u1")
        .with_issuer("https://app.example")
        .with_audience("https://app.example");
    assert_eq!(create(&app, &ed25519().sign(good).unwrap()).status, 201);
}

// ---------------------------------------------------------------- keys unavailable

#[test]
fn unavailable_keys_refuse_asymmetric_tokens_while_hs256_keeps_working() {
    // The host could not fetch the JWKS and has no usable cached copy.
    let config = lookup(&[("jwt_secret", SECRET), ("jwt_jwks_url", JWKS_URL)])
        .unwrap()
        .with_jwks_unavailable();
    let app = InProcess::over(MemoryStore::new(), Ok(config));
    for token in [
        ed25519().sign(claims_at(&app, "u1")).unwrap(),
        p256().sign(claims_at(&app, "u1")).unwrap(),
        rsa().sign(claims_at(&app, "u1")).unwrap(),
    ] {
        assert_401(
            &create(&app, &token),
            "the signing keys could not be fetched",
        );
    }
    assert_eq!(create(&app, &app.token("u1")).status, 201);
}

#[test]
fn a_jwks_url_whose_keys_were_never_handed_over_counts_as_unavailable() {
    let config = lookup(&[("jwt_secret", SECRET), ("jwt_jwks_url", JWKS_URL)]).unwrap();
    assert_eq!(config.jwks_url(), Some(JWKS_URL));
    let app = InProcess::over(MemoryStore::new(), Ok(config));
    let r = create(&app, &ed25519().sign(claims_at(&app, "u1")).unwrap());
    assert_401(&r, "the signing keys could not be fetched");
    assert_eq!(create(&app, &app.token("u1")).status, 201);
}

#[test]
fn fetched_keys_replace_an_unavailable_state() {
    let config = lookup(&[("jwt_jwks_url", JWKS_URL)])
        .unwrap()
        .with_jwks_unavailable()
        .with_fetched_jwks(JwkSet::parse(&all_keys()).unwrap());
    let app = InProcess::over(MemoryStore::new(), Ok(config));
    assert_eq!(
        create(&app, &ed25519().sign(claims_at(&app, "u1")).unwrap()).status,
        201
    );
}

// ---------------------------------------------------------------- configuration

#[test]
fn neither_secret_nor_jwks_is_a_jwt_secret_problem() {
    let err = lookup(&[]).unwrap_err();
    let names: Vec<_> = err.problems.iter().map(|p| p.setting).collect();
    assert_eq!(names, ["jwt_secret"]);
    let app = InProcess::over(MemoryStore::new(), Err(err));
    let r = create(&app, &token_at("u1", (START_MS / 1000) as u64));
    assert_eq!(r.status, 500);
    assert_eq!(r.json["code"], "configuration_error");
    assert!(r.json["detail"].as_str().unwrap().contains("jwt_secret"));
}

#[test]
fn a_bad_inline_jwks_is_a_jwt_jwks_problem_that_never_shows_the_value() {
    let marker = "AAAA-this-is-not-a-key-AAAA";
    let bad = document(&[json!({"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": marker})]);
    for value in [bad.as_str(), "{\"keys\": [", "[]", r#"{"keys":[]}"#] {
        let err = lookup(&[("jwt_secret", SECRET), ("jwt_jwks", value)]).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.setting).collect();
        assert_eq!(names, ["jwt_jwks"], "{value}");
        let app = InProcess::over(MemoryStore::new(), Err(err));
        let r = create(&app, &app.token("u1"));
        assert_eq!(r.status, 500);
        let detail = r.json["detail"].as_str().unwrap();
        assert!(detail.contains("jwt_jwks"), "{detail}");
        assert!(
            !detail.contains(marker) && !detail.contains("\"keys\""),
            "{detail}"
        );
    }
}

#[test]
fn a_bad_jwks_url_or_ttl_is_named() {
    let err = lookup(&[
        ("jwt_jwks_url", "ftp://app.example/jwks"),
        ("jwt_jwks_ttl", "soon"),
    ])
    .unwrap_err();
    let names: Vec<_> = err.problems.iter().map(|p| p.setting).collect();
    assert_eq!(names, ["jwt_jwks_url", "jwt_jwks_ttl"]);
    let config = lookup(&[("jwt_jwks_url", JWKS_URL), ("jwt_jwks_ttl", "120")]).unwrap();
    assert_eq!(config.jwks_ttl_secs(), 120);
}

// ---------------------------------------------------------------- the refresh sequence
//
// `prepare_jwks` over a host that records what it was asked, then the request through
// `Api::handle` with the configuration it produced.

/// A [`JwksHost`] in memory: the store's values, what the next fetch answers, whether
/// recording the attempt fails, and every call and log line in order.
struct RecordingHost {
    values: RefCell<HashMap<String, String>>,
    document: RefCell<Result<String, String>>,
    refuse_writes_of_attempts: Cell<bool>,
    calls: RefCell<Vec<String>>,
    logs: RefCell<Vec<String>>,
}

impl RecordingHost {
    fn serving(document: &str) -> Self {
        RecordingHost {
            values: RefCell::default(),
            document: RefCell::new(Ok(document.to_owned())),
            refuse_writes_of_attempts: Cell::new(false),
            calls: RefCell::default(),
            logs: RefCell::default(),
        }
    }

    fn serve(&self, document: Result<String, String>) {
        *self.document.borrow_mut() = document;
    }

    /// The calls since the last look, with the key names shortened to their kind.
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }
}

impl JwksHost for RecordingHost {
    async fn get(&self, key: &str) -> Result<Option<String>, String> {
        self.calls.borrow_mut().push(format!("get {}", kind(key)));
        Ok(self.values.borrow().get(key).cloned())
    }

    async fn set(&self, key: &str, value: &str) -> Result<(), String> {
        self.calls.borrow_mut().push(format!("set {}", kind(key)));
        if kind(key) == "attempt" && self.refuse_writes_of_attempts.get() {
            return Err("the store is read-only".into());
        }
        self.values
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn fetch(&self, url: &str) -> Result<String, String> {
        assert_eq!(url, JWKS_URL);
        self.calls.borrow_mut().push("fetch".into());
        self.document.borrow().clone()
    }

    fn log(&self, url: &str, message: &str) {
        assert_eq!(url, JWKS_URL);
        self.logs.borrow_mut().push(message.to_owned());
    }
}

fn kind(key: &str) -> &'static str {
    let (cache, attempt) = jwks_store_keys(JWKS_URL);
    match key {
        k if k == cache => "cache",
        k if k == attempt => "attempt",
        _ => panic!("a key the refresh does not use: {key}"),
    }
}

/// The status of a create with `token`, after `prepare_jwks` at `START_MS + at_ms`.
fn create_after_prepare(host: &RecordingHost, token: &str, at_ms: i64) -> Reply {
    let config = lookup(&[("jwt_secret", SECRET), ("jwt_jwks_url", JWKS_URL)]).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let now = Timestamp::from_millis(START_MS + at_ms);
    let config = pollster::block_on(prepare_jwks(config, &headers, now, host));
    let app = InProcess::over(MemoryStore::new(), Ok(config));
    create(&app, token)
}

fn eddsa_token(key: &Ed25519KeyPair) -> String {
    let app = InProcess::new();
    key.sign(claims_at(&app, "u1")).unwrap()
}

#[test]
fn the_first_asymmetric_request_records_the_attempt_then_fetches_and_stores() {
    let host = RecordingHost::serving(&all_keys());
    let token = eddsa_token(ed25519());
    assert_eq!(create_after_prepare(&host, &token, 0).status, 201);
    assert_eq!(
        host.take_calls(),
        [
            "get cache",
            "get attempt",
            "set attempt",
            "fetch",
            "set cache"
        ]
    );
    // Within the TTL the stored copy serves, with no fetch.
    assert_eq!(create_after_prepare(&host, &token, 1_000).status, 201);
    assert_eq!(host.take_calls(), ["get cache", "get attempt"]);
    assert!(host.logs.borrow().is_empty(), "{:?}", host.logs.borrow());
}

#[test]
fn hs256_requests_never_touch_the_host() {
    let host = RecordingHost::serving(&all_keys());
    let app = InProcess::new();
    assert_eq!(create_after_prepare(&host, &app.token("u1"), 0).status, 201);
    assert!(host.take_calls().is_empty());
}

#[test]
fn a_rotated_in_kid_refetches_at_once_and_a_second_unknown_kid_waits_the_interval() {
    let next = Ed25519KeyPair::generate().with_key_id("ed-2");
    let host = RecordingHost::serving(&document(&[ed25519_jwk("ed-1", ed25519())]));
    assert_eq!(
        create_after_prepare(&host, &eddsa_token(ed25519()), 0).status,
        201
    );
    host.serve(Ok(document(&[
        ed25519_jwk("ed-1", ed25519()),
        ed25519_jwk("ed-2", &next),
    ])));
    // 61 s on, still within the TTL: the unknown kid alone triggers the fetch.
    let interval_ms = JWKS_REFRESH_INTERVAL_SECS as i64 * 1000;
    host.take_calls();
    let r = create_after_prepare(&host, &eddsa_token(&next), interval_ms + 1_000);
    assert_eq!(r.status, 201);
    assert!(host.take_calls().contains(&"fetch".to_owned()));
    // Another made-up kid within the minute is refused from the cache, unfetched.
    let stranger = Ed25519KeyPair::generate().with_key_id("ed-3");
    let r = create_after_prepare(&host, &eddsa_token(&stranger), interval_ms + 2_000);
    assert_401(&r, "the token's signing key is not known");
    assert!(!host.take_calls().contains(&"fetch".to_owned()));
}

#[test]
fn a_failed_fetch_falls_back_to_the_stale_copy_until_it_is_too_old() {
    let host = RecordingHost::serving(&all_keys());
    let token = eddsa_token(ed25519());
    assert_eq!(create_after_prepare(&host, &token, 0).status, 201);
    host.serve(Err("the answer's status is 503, not 200".into()));
    let stale_ms = (DEFAULT_JWKS_TTL_SECS as i64 + 1) * 1000;
    assert_eq!(create_after_prepare(&host, &token, stale_ms).status, 201);
    assert_eq!(
        host.logs.borrow().as_slice(),
        ["the answer's status is 503, not 200"]
    );
    let too_old_ms = (JWKS_MAX_STALE_SECS as i64 + 1) * 1000 + stale_ms;
    let r = create_after_prepare(&host, &token, too_old_ms);
    assert_401(&r, "the signing keys could not be fetched");
}

#[test]
fn a_document_that_is_not_a_key_set_is_logged_and_not_stored() {
    let host = RecordingHost::serving("<html>sign in</html>");
    let r = create_after_prepare(&host, &eddsa_token(ed25519()), 0);
    assert_401(&r, "the signing keys could not be fetched");
    assert!(!host.take_calls().contains(&"set cache".to_owned()));
    let logs = host.logs.borrow();
    assert!(
        logs.len() == 1 && logs[0].starts_with("the document is not a usable JWKS"),
        "{logs:?}"
    );
}

#[test]
fn without_a_recorded_attempt_nothing_is_fetched() {
    let host = RecordingHost::serving(&all_keys());
    host.refuse_writes_of_attempts.set(true);
    let r = create_after_prepare(&host, &eddsa_token(ed25519()), 0);
    assert_401(&r, "the signing keys could not be fetched");
    assert!(!host.take_calls().contains(&"fetch".to_owned()));
    assert_eq!(
        host.logs.borrow().as_slice(),
        ["not fetching: cannot record the attempt in the key-value store: the store is read-only"]
    );
}

#[test]
fn keys_the_service_skips_are_logged_once_per_fetch() {
    let small_e = json!({"kty": "RSA", "kid": "e3", "n": b64(&[0xc5; 256]), "e": b64(&[3])});
    let host = RecordingHost::serving(&document(&[small_e, ed25519_jwk("ed-1", ed25519())]));
    let token = eddsa_token(ed25519());
    assert_eq!(create_after_prepare(&host, &token, 0).status, 201);
    assert_eq!(create_after_prepare(&host, &token, 1_000).status, 201);
    assert_eq!(
        host.logs.borrow().as_slice(),
        ["key 0 (kid e3) skipped: it is an RSA key whose exponent is not 65537"]
    );
}
