//! The built-in accounts of the contract (docs/contract.md, "Built-in accounts"), through
//! the public `Api::handle` over the in-memory store and throttle.
//!
//! Passwords are hashed at a test-only low cost (`Config::with_password_cost`): a debug build
//! takes about half a second per hash at the production cost.

mod support;

use std::cell::Cell;

use http::Request;
use serde_json::{Value, json};
use support::{InProcess, Reply, Transport};
use task_api_core::{
    Config, LOGIN_WINDOW_SECS, MAX_FAILED_LOGINS_PER_ADDR, MAX_FAILED_LOGINS_PER_EMAIL,
    PasswordCost, RequestLog,
};

/// An app with accounts on, cheap hashes, and a fresh 32 bytes of entropy per request.
struct Accounts {
    app: InProcess,
    seed: Cell<u8>,
}

fn cheap(config: Config) -> Config {
    config.with_password_cost(PasswordCost::new(64, 1, 1).unwrap())
}

impl Accounts {
    fn new() -> Self {
        Self::with(&[])
    }

    fn with(extra: &[(&str, &str)]) -> Self {
        let mut settings = vec![("accounts", "true")];
        settings.extend_from_slice(extra);
        let config = support::config(&settings).map(cheap);
        Accounts {
            app: InProcess::over(task_api_core::MemoryStore::new(), config),
            seed: Cell::new(0),
        }
    }

    /// A request from `addr` (if any), with entropy (if `entropy`).
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
        addr: Option<&str>,
        entropy: bool,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = body.map(|v| v.to_string().into_bytes()).unwrap_or_default();
        self.seed.set(self.seed.get().wrapping_add(1));
        let seed = self.seed.get();
        self.app.send_in(b.body(body).unwrap(), |mut ctx| {
            if entropy {
                let mut bytes = [0u8; 32];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = seed.wrapping_mul(31).wrapping_add(i as u8);
                }
                ctx = ctx.with_entropy(bytes);
            }
            if let Some(a) = addr {
                ctx = ctx.with_client_addr(a);
            }
            ctx
        })
    }

    fn register(&self, email: &str, password: &str) -> Reply {
        let body = json!({ "email": email, "password": password });
        self.send("POST", "/auth/register", Some(body), &[], None, true)
    }

    fn login(&self, email: &str, password: &str) -> Reply {
        self.login_from(email, password, Some("203.0.113.7:41000"))
    }

    fn login_from(&self, email: &str, password: &str, addr: Option<&str>) -> Reply {
        let body = json!({ "email": email, "password": password });
        self.send("POST", "/auth/login", Some(body), &[], addr, false)
    }

    fn me(&self, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        self.send(
            "GET",
            "/auth/me",
            None,
            &[("authorization", &auth)],
            None,
            false,
        )
    }
}

fn token(r: &Reply) -> String {
    r.json["data"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token envelope: {}", r.json))
        .to_owned()
}

fn without_request_id(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("request_id");
    v
}

const PASSWORD: &str = "correct horse battery";

#[test]
fn register_login_me_logout() {
    let a = Accounts::new();
    let r = a.register("ann@example.com", PASSWORD);
    assert_eq!(r.status, 201, "{}", r.json);
    let data = &r.json["data"];
    assert_eq!(data["token_type"], "bearer");
    assert_eq!(data["expires_in"], 86_400);
    assert_eq!(data["user"]["email"], "ann@example.com");
    let id = data["user"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("u_") && id.len() == 26, "{id}");
    assert!(
        id[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(data["user"]["created_at"].as_str().unwrap().len(), 24);
    assert_eq!(
        data.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access_token", "expires_in", "token_type", "user"]
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let log = r.raw.extensions().get::<RequestLog>().unwrap();
    assert_eq!(log.route, "/auth/register");
    assert_eq!(log.user_id.as_ref().map(|u| u.as_str()), Some(id.as_str()));

    let l = a.login("ann@example.com", PASSWORD);
    assert_eq!(l.status, 200, "{}", l.json);
    assert_eq!(l.json["data"]["user"], r.json["data"]["user"]);
    assert_eq!(l.header("cache-control"), Some("no-store"));

    let me = a.me(&token(&l));
    assert_eq!(me.status, 200, "{}", me.json);
    assert_eq!(me.json, json!({ "data": r.json["data"]["user"] }));

    let out = a.send("POST", "/auth/logout", None, &[], None, false);
    assert_eq!(out.status, 204);
    assert!(out.raw.body().is_empty());
    // Stateless: the token still works until it expires.
    assert_eq!(a.me(&token(&l)).status, 200);
}

#[test]
fn every_route_also_lives_under_api() {
    let a = Accounts::new();
    let body = json!({ "email": "bob@example.com", "password": PASSWORD });
    let r = a.send(
        "POST",
        "/api/auth/register",
        Some(body.clone()),
        &[],
        None,
        true,
    );
    assert_eq!(r.status, 201);
    let l = a.send("POST", "/api/auth/login", Some(body), &[], None, false);
    assert_eq!(l.status, 200);
    let auth = format!("Bearer {}", token(&l));
    let me = a.send(
        "GET",
        "/api/auth/me",
        None,
        &[("authorization", &auth)],
        None,
        false,
    );
    assert_eq!(me.status, 200);
    let out = a.send("POST", "/api/auth/logout/", None, &[], None, false);
    assert_eq!(out.status, 204);
}

#[test]
fn issued_tokens_work_on_the_task_routes() {
    let a = Accounts::new();
    let r = a.register("ann@example.com", PASSWORD);
    let id = r.json["data"]["user"]["id"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {}", token(&r));
    let created = a.send(
        "POST",
        "/api/tasks",
        Some(json!({ "title": "Buy milk" })),
        &[("authorization", &auth)],
        None,
        false,
    );
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["data"]["user_id"], id);
    let scoped = a.send(
        "GET",
        &format!("/api/{id}/tasks"),
        None,
        &[("authorization", &auth)],
        None,
        false,
    );
    assert_eq!(scoped.status, 200);
    assert_eq!(scoped.json["meta"]["total"], 1);
}

#[test]
fn issued_tokens_carry_the_configured_issuer_and_audience() {
    let a = Accounts::with(&[
        ("jwt_issuer", "https://tasks.example, https://other.example"),
        ("jwt_audience", "tasks"),
        ("access_token_ttl", "600"),
    ]);
    let r = a.register("ann@example.com", PASSWORD);
    assert_eq!(r.status, 201);
    assert_eq!(r.json["data"]["expires_in"], 600);
    // The verifier requires iss and aud here, so this also checks they were set.
    assert_eq!(a.me(&token(&r)).status, 200);
    a.app.advance_ms((600 + 61) * 1000);
    assert_eq!(a.me(&token(&r)).status, 401);
}

#[test]
fn emails_are_trimmed_and_case_insensitive() {
    let a = Accounts::new();
    let r = a.register(" Ann@Example.com ", PASSWORD);
    assert_eq!(r.status, 201);
    assert_eq!(r.json["data"]["user"]["email"], "Ann@Example.com");
    let l = a.login("ann@example.com", PASSWORD);
    assert_eq!(l.status, 200, "{}", l.json);
    assert_eq!(l.json["data"]["user"]["email"], "Ann@Example.com");
}

#[test]
fn an_email_differing_only_in_case_is_taken() {
    let a = Accounts::new();
    assert_eq!(a.register("ann@example.com", PASSWORD).status, 201);
    let r = a.register("ANN@example.COM", "another password");
    assert_eq!(r.status, 409);
    assert_eq!(r.json["code"], "email_taken");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    // The first account is untouched.
    assert_eq!(a.login("ann@example.com", PASSWORD).status, 200);
}

#[test]
fn invalid_emails_and_passwords_are_422_with_every_problem() {
    let a = Accounts::new();
    let r = a.register("not-an-email", &"x".repeat(7));
    assert_eq!(r.status, 422);
    assert_eq!(
        r.field_errors(),
        [
            ("email".to_owned(), "invalid_email".to_owned()),
            ("password".to_owned(), "password_length".to_owned()),
        ]
    );
    let r = a.register("ann@example.com", &"x".repeat(129));
    assert_eq!(
        r.field_errors(),
        [("password".to_owned(), "password_length".to_owned())]
    );
    assert_eq!(a.register("ann@example.com", &"x".repeat(8)).status, 201);
    assert_eq!(a.register("bob@example.com", &"é".repeat(128)).status, 201);
    let body = json!({ "email": "cy@example.com", "password": PASSWORD, "name": "Cy" });
    let r = a.send("POST", "/auth/register", Some(body), &[], None, true);
    assert_eq!(r.status, 422);
    assert_eq!(
        r.field_errors(),
        [("name".to_owned(), "unknown_field".to_owned())]
    );
    // Login validates the body the same way.
    let r = a.login("nope", "short");
    assert_eq!(r.status, 422);
    assert_eq!(r.field_errors().len(), 2);
}

#[test]
fn an_email_too_long_once_lower_cased_is_422() {
    let a = Accounts::new();
    // 135 characters as sent; "İ" lower-cases to two characters, so 265 once folded, over
    // the 254 that the stored (folded) form may have.
    let email = format!("{}@a.co", "İ".repeat(130));
    for r in [a.register(&email, PASSWORD), a.login(&email, PASSWORD)] {
        assert_eq!(r.status, 422);
        assert_eq!(
            r.field_errors(),
            [("email".to_owned(), "invalid_email".to_owned())]
        );
    }
    // At the limit once folded, it is an address like any other.
    let email = format!("{}@a.co", "İ".repeat(124));
    assert_eq!(a.register(&email, PASSWORD).status, 201);
    assert_eq!(a.login(&email.to_lowercase(), PASSWORD).status, 200);
}

#[test]
fn an_email_with_a_control_character_is_422() {
    let a = Accounts::new();
    for email in [
        "ann\u{0}@example.com",
        "ann@exam\u{1f}ple.com",
        "ann\u{7f}@example.com",
        "ann@example.com\u{9b}x",
    ] {
        for r in [a.register(email, PASSWORD), a.login(email, PASSWORD)] {
            assert_eq!(r.status, 422, "{email:?}");
            assert_eq!(
                r.field_errors(),
                [("email".to_owned(), "invalid_email".to_owned())],
                "{email:?}"
            );
        }
    }
}

#[test]
fn bodies_must_be_json() {
    let a = Accounts::new();
    let r = a.app.send(
        Request::post("/auth/login")
            .header("content-type", "text/plain")
            .body(b"{}".to_vec())
            .unwrap(),
    );
    assert_eq!(r.status, 415);
    let r = a.app.send(
        Request::post("/auth/register")
            .header("content-type", "application/json")
            .body(b"{".to_vec())
            .unwrap(),
    );
    assert_eq!(r.status, 400);
    let r = a.send("GET", "/auth/login", None, &[], None, false);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST, OPTIONS")));
}

#[test]
fn unknown_email_and_wrong_password_get_the_same_401() {
    let a = Accounts::new();
    a.register("ann@example.com", PASSWORD);
    let unknown = a.login("nobody@example.com", PASSWORD);
    let wrong = a.login("ann@example.com", "wrong password");
    assert_eq!((unknown.status, wrong.status), (401, 401));
    assert_eq!(unknown.json["code"], "invalid_credentials");
    assert_eq!(
        unknown.json["detail"],
        "the email or password is not correct"
    );
    assert_ne!(unknown.json["request_id"], wrong.json["request_id"]);
    assert_eq!(
        without_request_id(unknown.json.clone()),
        without_request_id(wrong.json.clone())
    );
    let header_names = |r: &Reply| {
        let mut h: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
        h.sort();
        h
    };
    assert_eq!(header_names(&unknown), header_names(&wrong));
}

#[test]
fn five_failures_lock_the_email_until_the_window_ends() {
    let a = Accounts::new();
    a.register("ann@example.com", PASSWORD);
    for _ in 0..MAX_FAILED_LOGINS_PER_EMAIL {
        assert_eq!(a.login("ann@example.com", "wrong password").status, 401);
    }
    // Locked: even the right password (checked before any hash), from another address.
    let r = a.login_from("ANN@example.com", PASSWORD, Some("198.51.100.1"));
    assert_eq!(r.status, 429, "{}", r.json);
    assert_eq!(r.json["code"], "too_many_attempts");
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=LOGIN_WINDOW_SECS).contains(&retry), "{retry}");
    // Another email is not affected.
    a.register("bob@example.com", PASSWORD);
    assert_eq!(a.login("bob@example.com", PASSWORD).status, 200);
    // The window passes.
    a.app.advance_ms(retry * 1000);
    assert_eq!(a.login("ann@example.com", PASSWORD).status, 200);
}

#[test]
fn successes_do_not_count() {
    let a = Accounts::new();
    a.register("ann@example.com", PASSWORD);
    for _ in 0..MAX_FAILED_LOGINS_PER_EMAIL + 2 {
        assert_eq!(a.login("ann@example.com", PASSWORD).status, 200);
    }
}

#[test]
fn twenty_failures_lock_the_client_address() {
    let a = Accounts::new();
    a.register("ann@example.com", PASSWORD);
    let addr = "192.0.2.9";
    for i in 0..MAX_FAILED_LOGINS_PER_ADDR {
        let r = a.login_from(&format!("user{i}@example.com"), PASSWORD, Some(addr));
        assert_eq!(r.status, 401);
    }
    // The port does not make another address.
    let r = a.login_from("ann@example.com", PASSWORD, Some("192.0.2.9:1234"));
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        a.login_from("ann@example.com", PASSWORD, Some("192.0.2.10"))
            .status,
        200
    );
    // Without an address, only the email limit applies.
    assert_eq!(a.login_from("ann@example.com", PASSWORD, None).status, 200);
}

#[test]
fn an_address_over_its_limit_does_not_lock_the_emails_it_names() {
    let a = Accounts::new();
    a.register("ann@example.com", PASSWORD);
    let attacker = "198.51.100.66";
    for i in 0..MAX_FAILED_LOGINS_PER_ADDR {
        let r = a.login_from(
            &format!("user{i}@example.com"),
            "a wrong guess",
            Some(attacker),
        );
        assert_eq!(r.status, 401);
    }
    // Past its limit, the attacker's address is refused before any email is counted, so
    // naming ann's email many times does not lock ann out.
    for _ in 0..10 {
        let r = a.login_from("ann@example.com", "a wrong guess", Some(attacker));
        assert_eq!(r.status, 429);
    }
    let r = a.login_from("ann@example.com", PASSWORD, Some("192.0.2.44"));
    assert_eq!(r.status, 200, "{:?}", r.json);
}

#[test]
fn passwords_never_leave_the_service() {
    let a = Accounts::new();
    let secret = "S3cret-Passw0rd!";
    let replies = [
        a.register("ann@example.com", secret),
        a.register("ann@example.com", secret),
        a.login("ann@example.com", secret),
        a.login("ann@example.com", "Wrong-Passw0rd!"),
        a.login("nobody@example.com", secret),
        a.register("bad", secret),
    ];
    for r in &replies {
        let body = String::from_utf8_lossy(r.raw.body());
        assert!(!body.contains("Passw0rd"), "{body}");
        assert!(!body.contains("argon2"), "{body}");
        let log = r.raw.extensions().get::<RequestLog>().unwrap();
        assert!(!format!("{log:?}").contains("Passw0rd"));
        for (_, v) in r.headers.iter() {
            assert!(!v.to_str().unwrap_or("").contains("Passw0rd"));
        }
    }
}

#[test]
fn account_routes_are_404_when_accounts_are_off() {
    let app = InProcess::new();
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/logout",
        "/auth/me",
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/me",
    ] {
        for method in ["POST", "GET", "OPTIONS"] {
            let r = app.call(method, path, None, Some(json!({})));
            assert_eq!(r.status, 404, "{method} {path}");
            assert_eq!(r.json["code"], "not_found");
        }
    }
    let doc = app.call("GET", "/openapi.json", None, None);
    assert!(doc.json["paths"]["/auth/login"]["post"].is_object());
}

#[test]
fn register_without_entropy_is_a_500() {
    let a = Accounts::new();
    let body = json!({ "email": "ann@example.com", "password": PASSWORD });
    let r = a.send("POST", "/auth/register", Some(body), &[], None, false);
    assert_eq!(r.status, 500);
    assert_eq!(r.json["code"], "internal_error");
    let log = r.raw.extensions().get::<RequestLog>().unwrap();
    assert!(
        log.error
            .as_deref()
            .unwrap()
            .contains("the host provided no entropy")
    );
    // Nothing was created.
    assert_eq!(a.login("ann@example.com", PASSWORD).status, 401);
}

#[test]
fn me_needs_a_valid_token_of_an_account() {
    let a = Accounts::new();
    let r = a.send("GET", "/auth/me", None, &[], None, false);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"tasks\""));
    let r = a.me("not.a.token");
    assert_eq!(r.status, 401);
    // A valid token of a user without a built-in account (another issuer's).
    let external = a.app.token("u1");
    let r = a.me(&external);
    assert_eq!(r.status, 404);
    assert_eq!(r.json["code"], "not_found");
}

#[test]
fn accounts_need_a_secret_and_hs256() {
    let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    let load = |pairs: &[(&str, &str)]| {
        Config::from_lookup(|n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        })
    };
    let err = load(&[("accounts", "true"), ("jwt_jwks", jwks)]).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].setting, "jwt_secret");
    assert!(err.problems[0].message.contains("accounts"));
    let err = load(&[
        ("accounts", "true"),
        ("jwt_secret", support::SECRET),
        ("jwt_algorithms", "HS512"),
    ])
    .unwrap_err();
    assert_eq!(err.problems[0].setting, "accounts");
    let err = load(&[("jwt_secret", support::SECRET), ("access_token_ttl", "10")]).unwrap_err();
    assert_eq!(err.problems[0].setting, "access_token_ttl");
    // Without accounts, a JWKS alone is still enough.
    assert!(load(&[("jwt_jwks", jwks)]).is_ok());
}

#[test]
fn a_misconfigured_service_answers_account_routes_with_500() {
    let app = InProcess::over(
        task_api_core::MemoryStore::new(),
        support::config(&[("accounts", "maybe")]),
    );
    let r = app.call("POST", "/auth/login", None, Some(json!({})));
    assert_eq!(r.status, 500);
    assert_eq!(r.json["code"], "configuration_error");
}
