//! `Api::handle` over a seeded `MemoryStore`, with up to four requests per input built from
//! arbitrary bytes: method, path (a route template filled with arbitrary segments, or any
//! text), query, headers, body and, often, a valid HS256 bearer token so that the task and
//! accounts routes are reached past the 401.
//!
//! Asserts: no panic, and no 5xx at all (the context always carries fresh entropy, distinct
//! per request, so registering never lacks a salt or repeats a user id).

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use http::{HeaderName, HeaderValue, Method, Request};
use libfuzzer_sys::fuzz_target;
use task_api_core::{Api, Config, ListQuery, MemoryStore, PasswordCost, RequestContext, TaskId,
    TaskStore, Timestamp, UserId};
use task_api_fuzz::*;

#[derive(Arbitrary, Debug)]
struct Input {
    config: u8,
    requests: Vec<Req>,
}

#[derive(Arbitrary, Debug)]
struct Req {
    method: MethodPick,
    path: PathPick,
    query: QueryPick,
    auth: AuthPick,
    json_content_type: bool,
    headers: Vec<(HeaderPick, ValuePick)>,
    body: BodyPick,
    advance_ms: u16,
    client_addr: Option<String>,
    incomplete_body: u8,
}

#[derive(Arbitrary, Debug)]
enum MethodPick {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Trace,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum PathPick {
    Task { base: u8, user: UserPick, tail: TailPick, trailing_slash: bool },
    Other { index: u8, api_prefix: bool, trailing_slash: bool },
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum UserPick {
    Owner,
    Other,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum TailPick {
    Collection,
    Item(IdPick),
    Complete(IdPick),
    Toggle(IdPick),
    Extra(IdPick, String),
}

#[derive(Arbitrary, Debug)]
enum IdPick {
    Seeded(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum QueryPick {
    None,
    Raw(String),
    Params(Vec<(ParamPick, ParamValue)>),
    /// The parameters, plus a cursor the API would issue after a seeded task.
    Paged(Vec<(ParamPick, ParamValue)>, u8),
}

#[derive(Arbitrary, Debug)]
enum ParamValue {
    Known(u8),
    Text(String),
}

const VALUES: &[&str] = &["all", "pending", "completed", "low", "medium", "high", "high,low",
    "milk", "BUY", "2026-11-21", "2028-02-29", "created_at", "-created_at", "updated_at",
    "-updated_at", "title", "-title", "priority", "-priority", "due_date", "-due_date", "1",
    "100", "101", "0"];

#[derive(Arbitrary, Debug)]
enum ParamPick {
    Known(u8),
    Raw(String),
}

const PARAMS: &[&str] = &["status", "priority", "q", "due_before", "due_after", "sort", "limit",
    "cursor"];

#[derive(Arbitrary, Debug)]
enum AuthPick {
    None,
    Owner,
    Other,
    /// A valid token for any subject.
    Sub(String),
    /// A token with any header and claims, signed with the secret or not.
    Forged { header: Json, claims: Json, signed: bool },
    /// An EdDSA token with any claims, signed by the JWKS's key.
    Ed25519 { kid: bool, claims: Json },
    /// A valid EdDSA token for the owner, with the issuer and audience of the JWKS config.
    Issued,
    /// The `access_token` of the last response that issued one (register or login), as a
    /// client would use it; none yet: no header.
    Session,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum HeaderPick {
    Known(u8),
    Raw(String),
}

const HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
    "x-request-id",
    "authorization",
    "x-forwarded-for",
    "accept",
    "accept-encoding",
    "user-agent",
    "host",
    "vary",
];

#[derive(Arbitrary, Debug)]
enum ValuePick {
    Raw(Vec<u8>),
    Etag { version: u8, weak: bool },
    Etags(Vec<u8>),
    Literal(u8),
}

const LITERALS: &[&str] = &[
    "*",
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "text/plain",
    "text/html",
    "https://app.example",
    "http://localhost:3000",
    "null",
    "GET",
    "POST",
    "DELETE",
    "content-type, authorization",
    "0",
    "65536",
    "65537",
    "18446744073709551616",
    "-1",
    "key-1",
    "W/\"v1\"",
    "\"v1\", \"v2\"",
    "\"",
    "10.0.0.1",
    "10.0.0.1, 192.0.2.7",
    "[::1]:80",
    "req-1",
];

#[derive(Arbitrary, Debug)]
enum BodyPick {
    Empty,
    Raw(Vec<u8>),
    Json(Json),
    /// A task body: known keys with any values.
    Task(Vec<(u8, Scalar)>),
    /// Credentials for the accounts routes.
    Credentials { email: Scalar, password: Scalar },
}

const TASK_KEYS: &[&str] = &["title", "description", "priority", "due_date", "completed"];

struct Fixture {
    configs: Vec<Config>,
    owner_token: String,
    other_token: String,
    /// A valid EdDSA token for the owner, with the JWKS configuration's issuer and audience.
    issued_token: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cheap = PasswordCost::new(8, 1, 1).expect("valid Argon2 parameters");
        let jwks = jwks_document();
        let make = |extra: &[(&str, &str)]| {
            Config::from_lookup(|name| {
                extra
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
                    .or_else(|| (name == "jwt_secret").then(|| SECRET.to_owned()))
            })
            .expect("a valid configuration")
            .with_password_cost(cheap)
        };
        let configs = vec![
            make(&[("accounts", "true")]),
            make(&[
                ("accounts", "true"),
                ("cors_origins", "https://app.example, http://localhost:3000"),
                ("web_ui", "true"),
                ("client_addr_header", "x-forwarded-for"),
                ("access_token_ttl", "60"),
            ]),
            make(&[
                ("accounts", "true"),
                ("jwt_jwks", jwks.as_str()),
                ("jwt_issuer", "https://issuer.example"),
                ("jwt_audience", "tasks"),
                ("cors_origins", "*"),
            ]),
        ];
        Fixture {
            configs,
            owner_token: hs256_token(OWNER),
            other_token: hs256_token(OTHER),
            issued_token: sign_eddsa(
                r#"{"alg":"EdDSA","kid":"ed"}"#,
                &serde_json::json!({
                    "sub": OWNER, "iss": "https://issuer.example", "aud": "tasks",
                    "iat": START_SECS, "exp": START_SECS + 3600,
                })
                .to_string(),
            ),
        }
    })
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[i as usize % list.len()]
}

fn id_text(id: &IdPick) -> String {
    match id {
        // 0 and 14 to 16: no such task; 11 to 13: another user's.
        IdPick::Seeded(n) => (n % 17).to_string(),
        IdPick::Raw(s) => s.clone(),
    }
}

fn path_of(p: &PathPick) -> String {
    match p {
        PathPick::Task { base, user, tail, trailing_slash } => {
            let user = match user {
                UserPick::Owner => OWNER.to_owned(),
                UserPick::Other => OTHER.to_owned(),
                UserPick::Raw(s) => s.clone(),
            };
            let base = match base % 4 {
                0 => format!("/api/{user}"),
                1 => format!("/api/v1/{user}"),
                2 => "/api".to_owned(),
                _ => "/api/v1".to_owned(),
            };
            let tail = match tail {
                TailPick::Collection => "/tasks".to_owned(),
                TailPick::Item(id) => format!("/tasks/{}", id_text(id)),
                TailPick::Complete(id) => format!("/tasks/{}/complete", id_text(id)),
                TailPick::Toggle(id) => format!("/tasks/{}/toggle-status", id_text(id)),
                TailPick::Extra(id, s) => format!("/tasks/{}/{s}", id_text(id)),
            };
            let slash = if *trailing_slash { "/" } else { "" };
            format!("{base}{tail}{slash}")
        }
        PathPick::Other { index, api_prefix, trailing_slash } => {
            const OTHER_PATHS: &[&str] = &["/", "/web/app.js", "/web/app.css", "/web/icon.svg",
                "/health", "/health/ready", "/openapi.json", "/auth/register", "/auth/login",
                "/auth/logout", "/auth/me"];
            let prefix = if *api_prefix { "/api" } else { "" };
            let slash = if *trailing_slash { "/" } else { "" };
            format!("{prefix}{}{slash}", pick(OTHER_PATHS, *index))
        }
        PathPick::Raw(s) => s.clone(),
    }
}

fn query_string(params: &[(ParamPick, ParamValue)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        let k = match k {
            ParamPick::Known(i) => pick(PARAMS, *i).to_owned(),
            ParamPick::Raw(s) => s.clone(),
        };
        let v = match v {
            ParamValue::Known(i) => pick(VALUES, *i),
            ParamValue::Text(s) => s.as_str(),
        };
        out.append_pair(&k, v);
    }
    out.finish()
}

fn query_of(q: &QueryPick, store: &MemoryStore) -> Option<String> {
    match q {
        QueryPick::None => None,
        QueryPick::Raw(s) => Some(s.clone()),
        QueryPick::Params(p) => Some(query_string(p)),
        QueryPick::Paged(p, n) => {
            let base = query_string(p);
            let Ok(query) = ListQuery::parse(&base) else {
                return Some(base);
            };
            let owner = UserId::parse(OWNER).unwrap();
            let id = TaskId::new(i64::from(n % 10) + 1).unwrap();
            match pollster::block_on(store.get(&owner, id)) {
                Ok(task) => {
                    let cursor = query.cursor_after(&task);
                    let sep = if base.is_empty() { "" } else { "&" };
                    Some(format!("{base}{sep}cursor={cursor}"))
                }
                Err(_) => Some(base),
            }
        }
    }
}

/// Percent-encodes what cannot stand in a URI, keeping `/`, `?`, `&`, `=` and `%`.
const URI_UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

fn uri_of(path: String, query: Option<String>) -> String {
    let raw = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    if raw.parse::<http::Uri>().is_ok() {
        return raw;
    }
    let encoded = percent_encoding::utf8_percent_encode(&raw, URI_UNSAFE).to_string();
    if encoded.starts_with('/') { encoded } else { format!("/{encoded}") }
}

fn value_of(v: &ValuePick) -> Option<HeaderValue> {
    match v {
        ValuePick::Raw(b) => HeaderValue::from_bytes(b).ok(),
        ValuePick::Etag { version, weak } => {
            let w = if *weak { "W/" } else { "" };
            HeaderValue::from_str(&format!("{w}\"v{}\"", version % 5)).ok()
        }
        ValuePick::Etags(vs) => {
            let list: Vec<String> = vs.iter().map(|v| format!("\"v{}\"", v % 5)).collect();
            HeaderValue::from_str(&list.join(", ")).ok()
        }
        ValuePick::Literal(i) => Some(HeaderValue::from_static(pick(LITERALS, *i))),
    }
}

fn body_of(b: &BodyPick) -> Vec<u8> {
    match b {
        BodyPick::Empty => Vec::new(),
        BodyPick::Raw(bytes) => bytes.clone(),
        BodyPick::Json(j) => j.render().into_bytes(),
        BodyPick::Task(members) => {
            let mut out = String::from("{");
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!("\"{}\":", pick(TASK_KEYS, *k)));
                v.render(&mut out);
            }
            out.push('}');
            out.into_bytes()
        }
        BodyPick::Credentials { email, password } => {
            let mut out = String::from("{\"email\":");
            email.render(&mut out);
            out.push_str(",\"password\":");
            password.render(&mut out);
            out.push('}');
            out.into_bytes()
        }
    }
}

fn auth_of(a: &AuthPick, f: &Fixture, session: Option<&str>) -> Option<HeaderValue> {
    let token = match a {
        AuthPick::None => return None,
        AuthPick::Session => session?.to_owned(),
        AuthPick::Owner => f.owner_token.clone(),
        AuthPick::Other => f.other_token.clone(),
        AuthPick::Sub(sub) => hs256_token(sub),
        AuthPick::Forged { header, claims, signed } => {
            let (h, c) = (header.render(), claims.render());
            if *signed {
                sign_hs256(&h, &c, SECRET.as_bytes())
            } else {
                format!("{}.{}.{}", b64(&h), b64(&c), b64(b"not a signature"))
            }
        }
        AuthPick::Ed25519 { kid, claims } => {
            let header = if *kid {
                r#"{"alg":"EdDSA","typ":"JWT","kid":"ed"}"#
            } else {
                r#"{"alg":"EdDSA","typ":"JWT"}"#
            };
            sign_eddsa(header, &claims.render())
        }
        AuthPick::Issued => f.issued_token.clone(),
        AuthPick::Raw(bytes) => return HeaderValue::from_bytes(bytes).ok(),
    };
    HeaderValue::from_str(&format!("Bearer {token}")).ok()
}

/// With `FUZZ_TRACE` set, each request's status, method and route go to stderr: replay
/// the corpus with it (`handle fuzz/corpus/handle/*`) to see which routes and answers the
/// fuzzer reaches.
fn trace() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fuzz_target!(|input: Input| {
    let f = fixture();
    let config = f.configs[input.config as usize % f.configs.len()].clone();
    let store = MemoryStore::new();
    seed(&store);
    let api = Api::new(store, config);
    let mut now = START_MS;
    let mut session: Option<String> = None;
    for (n, r) in input.requests.iter().take(4).enumerate() {
        let method = match &r.method {
            MethodPick::Get => Method::GET,
            MethodPick::Head => Method::HEAD,
            MethodPick::Post => Method::POST,
            MethodPick::Put => Method::PUT,
            MethodPick::Patch => Method::PATCH,
            MethodPick::Delete => Method::DELETE,
            MethodPick::Options => Method::OPTIONS,
            MethodPick::Trace => Method::TRACE,
            MethodPick::Other(s) => match Method::from_bytes(s.as_bytes()) {
                Ok(m) => m,
                Err(_) => continue,
            },
        };
        let uri = uri_of(path_of(&r.path), query_of(&r.query, api.store()));
        let method_name = method.to_string();
        let Ok(mut request) = Request::builder().method(method).uri(&uri).body(body_of(&r.body))
        else {
            continue; // no host can hand the core a request with this URI
        };
        let headers = request.headers_mut();
        if let Some(v) = auth_of(&r.auth, f, session.as_deref()) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        if r.json_content_type {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        for (name, value) in r.headers.iter().take(8) {
            let name = match name {
                HeaderPick::Known(i) => HeaderName::from_static(pick(HEADERS, *i)),
                HeaderPick::Raw(s) => match HeaderName::from_bytes(s.as_bytes()) {
                    Ok(n) => n,
                    Err(_) => continue,
                },
            };
            if let Some(v) = value_of(value) {
                headers.append(name, v);
            }
        }
        now += i64::from(r.advance_ms);
        // Fresh entropy for each request of the input: never the same salt or user id twice.
        let mut entropy = [0u8; 32];
        entropy[0] = n as u8 + 1;
        entropy[16] = n as u8 + 1;
        let mut ctx = RequestContext::new(Timestamp::from_millis(now), format!("fuzz-{n}"))
            .with_entropy(entropy);
        if let Some(addr) = &r.client_addr {
            ctx = ctx.with_client_addr(addr.clone());
        }
        if r.incomplete_body == 0 {
            ctx = ctx.with_incomplete_body();
        }
        let response = pollster::block_on(api.handle(request, ctx));
        let status = response.status();
        if status.is_server_error() {
            let log = response.extensions().get::<task_api_core::RequestLog>();
            panic!(
                "{status} for {uri}: {:?} {}",
                log.and_then(|l| l.error.clone()),
                String::from_utf8_lossy(response.body())
            );
        }
        assert!(response.headers().contains_key("x-request-id"), "no X-Request-Id");
        let issued = response
            .extensions()
            .get::<task_api_core::RequestLog>()
            .is_some_and(|l| l.route.contains("/auth/"))
            && status.is_success();
        if issued {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(response.body()) {
                if let Some(token) = json["data"]["access_token"].as_str() {
                    session = Some(token.to_owned());
                }
            }
        }
        if trace() {
            let route = response.extensions().get::<task_api_core::RequestLog>()
                .map_or("-", |l| l.route.as_str());
            eprintln!("status {status} {method_name} {route}", status = status.as_u16());
        }
    }
});
