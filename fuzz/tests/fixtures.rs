//! The targets' fixtures are what they claim: the tokens verify, the seeded store lists,
//! the cheap accounts configuration registers. Without this a target could spend all its
//! executions on 401s. Run with `cargo test --release` in `fuzz/`.

use http::Request;
use task_api_core::{
    Api, Config, JwtSecret, JwtVerifier, MemoryStore, PasswordCost, RequestContext, Timestamp,
};
use task_api_fuzz::*;

fn now() -> Timestamp {
    Timestamp::from_millis(START_MS)
}

#[test]
fn hs256_and_eddsa_tokens_verify() {
    let v = JwtVerifier::new(JwtSecret::new(SECRET.as_bytes()).unwrap());
    assert_eq!(v.verify(&hs256_token(OWNER), now()).unwrap().as_str(), OWNER);
    let jwks = jwks_document();
    let config = Config::from_lookup(|name| match name {
        "jwt_secret" => Some(SECRET.to_owned()),
        "jwt_jwks" => Some(jwks.clone()),
        _ => None,
    })
    .unwrap();
    let claims = format!(r#"{{"sub":"{OWNER}","exp":{}}}"#, START_SECS + 60);
    let token = sign_eddsa(r#"{"alg":"EdDSA","kid":"ed"}"#, &claims);
    assert_eq!(config.verifier().verify(&token, now()).unwrap().as_str(), OWNER);
}

#[test]
fn the_seeded_store_lists_and_registering_works() {
    let config = Config::from_lookup(|name| match name {
        "jwt_secret" => Some(SECRET.to_owned()),
        "accounts" => Some("true".to_owned()),
        _ => None,
    })
    .unwrap()
    .with_password_cost(PasswordCost::new(8, 1, 1).unwrap());
    let store = MemoryStore::new();
    seed(&store);
    let api = Api::new(store, config);
    let list = Request::get("/api/tasks?limit=3")
        .header("authorization", format!("Bearer {}", hs256_token(OWNER)))
        .body(Vec::new())
        .unwrap();
    let r = pollster::block_on(api.handle(list, RequestContext::new(now(), "r1")));
    assert_eq!(r.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
    assert_eq!(json["meta"]["total"], 10);
    assert!(json["meta"]["next_cursor"].is_string());

    let register = Request::post("/auth/register")
        .header("content-type", "application/json")
        .body(br#"{"email":"ann@example.com","password":"correct horse battery"}"#.to_vec())
        .unwrap();
    let ctx = RequestContext::new(now(), "r2").with_entropy([1; 32]);
    let r = pollster::block_on(api.handle(register, ctx));
    assert_eq!(r.status(), 201, "{}", String::from_utf8_lossy(r.body()));
}
