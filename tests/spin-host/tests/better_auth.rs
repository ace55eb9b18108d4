//! A real Better Auth in front of the served `.wasm`: `tests/better-auth/server.mjs` runs npm
//! `better-auth` (pinned in `tests/better-auth/package.json`) with email and password
//! sign-up, the JWT plugin's defaults and the in-memory database. Users sign up there, take
//! their token the way a Next.js server does (`auth.api.getToken({ headers })`), and use it
//! on the component, which is pointed at Better Auth's `/api/auth/jwks` with `jwt_jwks_url`,
//! `jwks_host`, `jwt_issuer` and `jwt_audience`, as the README's "Better Auth" section says.
//!
//! Needs `node` and `tests/better-auth/node_modules` (`npm ci --prefix tests/better-auth`).
//! Without them each test says why and passes, except when `CI` is set: then it fails.
//!
//! The component's clock is the host's test clock (`x-test-now-ms`), so the one-minute
//! refetch interval and the JWKS TTL are crossed without waiting; Better Auth signs at the
//! real time, which the test clock starts from.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder as _};
use serde_json::{Value, json};
use spin_test_host::{Host, Response, RunningHost};
use task_api_test_kit::{TempDir, temp_dir};

const UNKNOWN_KEY: &str = "the token's signing key is not known";
/// The core's interval between fetches outside the TTL schedule, plus a second.
const PAST_INTERVAL_MS: u64 = 61_000;
/// `jwt_jwks_ttl`'s default (300 s), plus a second.
const PAST_TTL_MS: u64 = 301_000;
const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------- Better Auth

/// The Better Auth server, killed on drop.
struct BetterAuth {
    child: Child,
    /// Held open: the server exits when it closes (if this process dies without dropping).
    _stdin: ChildStdin,
    _stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
    /// `http://127.0.0.1:<port>`: Better Auth's base URL.
    origin: String,
    /// The `better-auth` version that runs.
    version: String,
}

/// A user signed up in Better Auth.
struct User {
    /// Better Auth's user id, the tokens' `sub`.
    id: String,
    /// `better-auth.session_token=…`, as a browser sends it.
    cookie: String,
}

/// Why the Better Auth server cannot run here, if it cannot.
fn missing(dir: &Path) -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => return Some(format!("`node --version` failed ({})", out.status)),
        Err(e) => return Some(format!("`node` cannot be run ({e})")),
    }
    let package = dir.join("node_modules/better-auth/package.json");
    if !package.exists() {
        return Some(format!("{} is missing", package.display()));
    }
    None
}

impl BetterAuth {
    /// Starts the server with `args` (after the port); `None` when it cannot run here and
    /// `CI` is not set.
    fn start(args: &[&str]) -> Option<BetterAuth> {
        BetterAuth::start_with(args, None)
    }

    /// The same, with the HS256 route handler's secret (`TASK_API_JWT_SECRET`) if `secret`.
    fn start_with(args: &[&str], secret: Option<&str>) -> Option<BetterAuth> {
        let dir = spin_test_host::workspace_root().join("tests/better-auth");
        if let Some(why) = missing(&dir) {
            let install = "install Node.js 20+ and run `npm ci --prefix tests/better-auth`";
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
                panic!("the Better Auth tests cannot run: {why}; CI must {install}");
            }
            eprintln!("skipping the Better Auth test: {why} ({install} to run it)");
            return None;
        }
        let mut command = Command::new("node");
        command
            .arg(dir.join("server.mjs"))
            .arg("0")
            .arg("--exit-on-stdin-close")
            .args(args)
            .current_dir(&dir)
            .env_remove("TASK_API_JWT_SECRET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(secret) = secret {
            command.env("TASK_API_JWT_SECRET", secret);
        }
        let mut child = command.spawn().expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // The first line, read on a thread so that a server that never prints fails the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = stdout.read_line(&mut line);
            let _ = tx.send((read.map(|_| line), stdout));
        });
        let Ok((Ok(line), stdout)) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("the Better Auth server did not say where it listens within 60 s");
        };
        let Ok(started) = serde_json::from_str::<Value>(&line) else {
            let _ = child.kill();
            panic!("the Better Auth server printed {line:?}, not its JSON line");
        };
        let port = started["port"].as_u64().expect("a port") as u16;
        Some(BetterAuth {
            child,
            _stdin: stdin,
            _stdout: stdout,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            origin: started["origin"].as_str().expect("an origin").to_owned(),
            version: started["betterAuth"]
                .as_str()
                .expect("a version")
                .to_owned(),
        })
    }

    async fn send(&self, request: http::request::Builder, body: Option<Value>) -> Response {
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(body.to_string().into_bytes()),
            None => request.body(Vec::new()),
        };
        spin_test_host::client::send(self.addr, request.unwrap())
            .await
            .expect("Better Auth answers")
    }

    /// Signs `email` up with email and password (Better Auth signs the new user in).
    async fn sign_up(&self, email: &str, name: &str) -> User {
        let body = json!({"email": email, "password": PASSWORD, "name": name});
        let r = self
            .send(http::Request::post("/api/auth/sign-up/email"), Some(body))
            .await;
        assert_eq!(r.status, 200, "sign-up: {}", r.text());
        let cookie = r
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("better-auth.session_token="))
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let json = json_of(&r);
        let id = json["user"]["id"].as_str().expect("a user id").to_owned();
        User { id, cookie }
    }

    /// `user`'s JWT, taken the way a Next.js server takes it: `auth.api.getToken({ headers })`
    /// with the request's headers, here the browser's session cookie.
    async fn token(&self, user: &User) -> String {
        let request = http::Request::get("/test/token").header("cookie", &user.cookie);
        let r = self.send(request, None).await;
        assert_eq!(r.status, 200, "token: {}", r.text());
        json_of(&r)["token"].as_str().expect("a token").to_owned()
    }

    /// A token from the README's HS256 route handler (`app/api/token/route.ts`) for `user`.
    async fn hs256_token(&self, user: &User) -> String {
        let request = http::Request::get("/test/hs256-token").header("cookie", &user.cookie);
        let r = self.send(request, None).await;
        assert_eq!(r.status, 200, "hs256 token: {}", r.text());
        json_of(&r)["token"].as_str().expect("a token").to_owned()
    }

    /// Rotates the signing key: the current one expires now (as `jwks.rotationInterval`
    /// would make it), so the plugin signs the next token with a new key. Returns the
    /// expired key's id.
    async fn rotate_key(&self) -> String {
        let r = self
            .send(http::Request::post("/test/rotate-key"), None)
            .await;
        assert_eq!(r.status, 200, "rotate: {}", r.text());
        json_of(&r)["expired"]
            .as_str()
            .expect("a key expired")
            .to_owned()
    }

    /// The `kid`s Better Auth publishes at `/api/auth/jwks` now.
    async fn published_kids(&self) -> Vec<String> {
        let request = http::Request::get("/api/auth/jwks").header("x-test-probe", "1");
        let r = self.send(request, None).await;
        assert_eq!(r.status, 200, "jwks: {}", r.text());
        json_of(&r)["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("a kid").to_owned())
            .collect()
    }

    /// How many times someone other than the test fetched `/api/auth/jwks`.
    async fn jwks_fetches(&self) -> u64 {
        let r = self
            .send(http::Request::get("/test/jwks-fetches"), None)
            .await;
        json_of(&r)["fetches"].as_u64().expect("a count")
    }
}

impl Drop for BetterAuth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------------ component

/// The component served on SQLite in `dir` with the test clock, configured for `auth` as
/// the README says.
async fn serve(auth: &BetterAuth, dir: &TempDir) -> (Host, RunningHost) {
    serve_with(auth, dir, None).await
}

/// The same, also accepting HS256 tokens under `jwt_secret` if `secret`.
async fn serve_with(auth: &BetterAuth, dir: &TempDir, secret: Option<&str>) -> (Host, RunningHost) {
    let mut variables = vec![
        ("jwt_jwks_url", format!("{}/api/auth/jwks", auth.origin)),
        ("jwks_host", auth.origin.clone()),
        ("jwt_issuer", auth.origin.clone()),
        ("jwt_audience", auth.origin.clone()),
    ];
    if let Some(secret) = secret {
        variables.push(("jwt_secret", secret.to_owned()));
    }
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variables(variables)
        .sqlite_dir(dir.path())
        .test_clock(true)
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    (host, running)
}

struct Reply {
    status: u16,
    json: Value,
}

/// `method path` on the component with `token`, at `now_ms` on its clock.
async fn call(
    running: &RunningHost,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    now_ms: u64,
) -> Reply {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("x-test-now-ms", now_ms.to_string());
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let r = running.send(request.body(body).unwrap()).await.unwrap();
    Reply {
        status: r.status,
        json: json_of(&r),
    }
}

/// `POST /api/tasks` titled `title`; the reply must be a 201.
async fn create(running: &RunningHost, token: &str, title: &str, now_ms: u64) -> Value {
    let r = call(
        running,
        "POST",
        "/api/tasks",
        token,
        Some(json!({"title": title})),
        now_ms,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.json);
    r.json["data"].clone()
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

/// Now, to the millisecond: the component's clock starts at Better Auth's.
fn now_ms() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    now.as_millis() as u64
}

/// A token's header and claims, decoded (not verified).
fn decode(token: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        let text = token.split('.').nth(i).expect("three parts");
        let bytes = Base64UrlSafeNoPadding::decode_to_vec(text, None).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    (part(0), part(1))
}

fn kid(token: &str) -> String {
    decode(token).0["kid"].as_str().expect("a kid").to_owned()
}

// ---------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn better_auth_tokens_are_eddsa_by_a_published_kid_for_the_base_url_origin_for_15_minutes() {
    let Some(auth) = BetterAuth::start(&[]) else {
        return;
    };
    assert!(auth.version.starts_with("1."), "{}", auth.version);
    let ann = auth.sign_up("ann@example.com", "Ann").await;
    let token = auth.token(&ann).await;
    let (header, claims) = decode(&token);
    eprintln!(
        "better-auth {}: header {header}, claims {claims}",
        auth.version
    );

    assert_eq!(header["alg"], "EdDSA", "{header}");
    assert_eq!(auth.published_kids().await, [kid(&token)]);
    assert_eq!(claims["iss"], auth.origin.as_str(), "{claims}");
    assert_eq!(claims["aud"], auth.origin.as_str(), "{claims}");
    assert_eq!(claims["sub"], ann.id.as_str(), "{claims}");
    let iat = claims["iat"].as_u64().expect("an iat");
    let exp = claims["exp"].as_u64().expect("an exp");
    assert_eq!(exp - iat, 15 * 60, "{claims}");
    assert!(claims.get("nbf").is_none(), "{claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_better_auth_user_creates_reads_and_lists_tasks_with_a_token_taken_the_nextjs_way() {
    let Some(auth) = BetterAuth::start(&[]) else {
        return;
    };
    let dir = temp_dir("spin-test-host-better-auth");
    let (_host, running) = serve(&auth, &dir).await;
    let ann = auth.sign_up("ann@example.com", "Ann").await;
    let token = auth.token(&ann).await;
    let t = now_ms();

    let task = create(&running, &token, "Buy milk", t).await;
    assert_eq!(task["user_id"], ann.id.as_str(), "{task}");
    let id = task["id"].as_i64().expect("an id");

    let path = format!("/api/tasks/{id}");
    let read = call(&running, "GET", &path, &token, None, t).await;
    assert_eq!(read.status, 200, "{}", read.json);
    assert_eq!(read.json["data"]["title"], "Buy milk");
    assert_eq!(read.json["data"]["user_id"], ann.id.as_str());

    create(&running, &token, "Walk the dog", t).await;
    let list = call(&running, "GET", "/api/tasks?sort=title", &token, None, t).await;
    assert_eq!(list.status, 200, "{}", list.json);
    let titles: Vec<&str> = list.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Buy milk", "Walk the dog"]);
    // One fetch of Better Auth's JWKS served all of it.
    assert_eq!(auth.jwks_fetches().await, 1);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_better_auth_user_gets_404_on_the_first_users_task() {
    let Some(auth) = BetterAuth::start(&[]) else {
        return;
    };
    let dir = temp_dir("spin-test-host-better-auth");
    let (_host, running) = serve(&auth, &dir).await;
    let ann = auth.sign_up("ann@example.com", "Ann").await;
    let bob = auth.sign_up("bob@example.com", "Bob").await;
    let (ann_token, bob_token) = (auth.token(&ann).await, auth.token(&bob).await);
    let t = now_ms();

    let id = create(&running, &ann_token, "Ann's", t).await["id"].clone();
    let path = format!("/api/tasks/{id}");
    for method in ["GET", "DELETE"] {
        let r = call(&running, method, &path, &bob_token, None, t).await;
        assert_eq!(r.status, 404, "{method}: {}", r.json);
    }
    let bobs = call(&running, "GET", "/api/tasks", &bob_token, None, t).await;
    assert_eq!(bobs.json["data"], json!([]), "{}", bobs.json);
    // Ann's task is still there.
    let r = call(&running, "GET", &path, &ann_token, None, t).await;
    assert_eq!(r.status, 200, "{}", r.json);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_key_rotation_the_new_kid_works_after_one_refetch_and_the_old_keys_tokens_keep_working()
 {
    let Some(auth) = BetterAuth::start(&[]) else {
        return;
    };
    let dir = temp_dir("spin-test-host-better-auth");
    let (_host, running) = serve(&auth, &dir).await;
    let ann = auth.sign_up("ann@example.com", "Ann").await;
    let old = auth.token(&ann).await;
    let t0 = now_ms();
    create(&running, &old, "before", t0).await;
    assert_eq!(auth.jwks_fetches().await, 1);

    assert_eq!(auth.rotate_key().await, kid(&old));
    let new = auth.token(&ann).await;
    assert_ne!(kid(&new), kid(&old));
    // Better Auth publishes both: the old key for its grace period.
    assert_eq!(auth.published_kids().await, [kid(&old), kid(&new)]);

    // A minute after the last fetch, the unknown kid makes the component refetch once.
    let t1 = t0 + PAST_INTERVAL_MS;
    let task = create(&running, &new, "after", t1).await;
    assert_eq!(task["user_id"], ann.id.as_str());
    assert_eq!(auth.jwks_fetches().await, 2);
    // The old key's token keeps working, and both come from the refetched copy.
    create(&running, &old, "old key", t1 + 1_000).await;
    create(&running, &new, "new key", t1 + 1_000).await;
    assert_eq!(auth.jwks_fetches().await, 2);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_better_auth_stops_publishing_the_old_key_its_tokens_are_refused_after_the_next_refresh()
 {
    let Some(auth) = BetterAuth::start(&["--grace-period=1"]) else {
        return;
    };
    let dir = temp_dir("spin-test-host-better-auth");
    let (_host, running) = serve(&auth, &dir).await;
    let ann = auth.sign_up("ann@example.com", "Ann").await;
    let old = auth.token(&ann).await;
    let t0 = now_ms();
    create(&running, &old, "before", t0).await;

    auth.rotate_key().await;
    let new = auth.token(&ann).await;
    // Past the one-second grace period Better Auth publishes only the new key.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(auth.published_kids().await, [kid(&new)]);

    // Past the TTL the component refetches, and the old key is gone from its copy too
    // (both tokens are still within their 15 minutes).
    let t1 = t0 + PAST_TTL_MS;
    create(&running, &new, "new key", t1).await;
    assert_eq!(auth.jwks_fetches().await, 2);
    let r = call(&running, "GET", "/api/tasks", &old, None, t1 + 1_000).await;
    assert_eq!(r.status, 401, "{}", r.json);
    assert_eq!(r.json["detail"], UNKNOWN_KEY, "{}", r.json);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_better_auth_token_is_a_401_once_its_15_minutes_and_the_minute_of_leeway_are_over() {
    let Some(auth) = BetterAuth::start(&[]) else {
        return;
    };
    let dir = temp_dir("spin-test-host-better-auth");
    let (_host, running) = serve(&auth, &dir).await;
    let ann = auth.sign_up("ann@example.com", "Ann").await;
    let token = auth.token(&ann).await;
    let exp_ms = decode(&token).1["exp"].as_u64().expect("an exp") * 1000;

    create(&running, &token, "in time", exp_ms - 1_000).await;
    let r = call(&running, "GET", "/api/tasks", &token, None, exp_ms + 61_000).await;
    assert_eq!(r.status, 401, "{}", r.json);
    assert_eq!(r.json["detail"], "the token has expired", "{}", r.json);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_hs256_route_handler_mints_tokens_the_component_accepts_as_the_same_user() {
    const SECRET: &str = "the task API's own HS256 secret, not BETTER_AUTH_SECRET";
    let Some(auth) = BetterAuth::start_with(&[], Some(SECRET)) else {
        return;
    };
    let dir = temp_dir("spin-test-host-better-auth");
    let (_host, running) = serve_with(&auth, &dir, Some(SECRET)).await;
    let ann = auth.sign_up("ann@example.com", "Ann").await;
    let hs256 = auth.hs256_token(&ann).await;
    let (header, claims) = decode(&hs256);
    assert_eq!(header["alg"], "HS256", "{header}");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );
    let t = now_ms();

    let task = create(&running, &hs256, "minted by the app", t).await;
    assert_eq!(task["user_id"], ann.id.as_str(), "{task}");
    // HS256 tokens never load the JWKS.
    assert_eq!(auth.jwks_fetches().await, 0);
    // Better Auth's own token is the same user: it sees the task.
    let eddsa = auth.token(&ann).await;
    let path = format!("/api/tasks/{}", task["id"]);
    let r = call(&running, "GET", &path, &eddsa, None, t).await;
    assert_eq!(r.status, 200, "{}", r.json);
    running.shutdown().await;
}
