//! How a suite reaches the service: [`Transport`], with the API in process ([`InProcess`],
//! `Api::handle` on a clock of its own) and a server over HTTP ([`Http`], a base URL).

use std::any::Any;
use std::cell::Cell;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use http::{Request, Response};
use serde_json::Value;
use task_api_core::{
    AccountStore, Api, Config, ConfigError, MemoryStore, RequestContext, TaskStore, Timestamp,
};

use crate::reply::Reply;
use crate::token::{SECRET, token_at};

/// Something that answers requests as the service: the suites' one way in.
///
/// Only [`send`](Transport::send), [`now_ms`](Transport::now_ms) and
/// [`let_time_pass`](Transport::let_time_pass) differ between transports; the rest are the
/// suites' shorthands built on them.
pub trait Transport {
    /// Sends a prepared request as is (its URI is the path and query).
    fn send(&self, request: Request<Vec<u8>>) -> Reply;

    /// The service's "now", in milliseconds since the Unix epoch: tokens are issued at it.
    fn now_ms(&self) -> i64;

    /// Lets `ms` milliseconds pass for the service (in process the clock moves; over HTTP
    /// the test sleeps, so keep it short).
    fn let_time_pass(&self, ms: u64);

    /// A token for `user`, valid for an hour from [`now_ms`](Transport::now_ms).
    fn token(&self, user: &str) -> String {
        token_at(user, (self.now_ms() / 1000) as u64)
    }

    /// A request as `user` (no Authorization header when `None`), with a JSON body if given.
    fn call(&self, method: &str, path: &str, user: Option<&str>, body: Option<Value>) -> Reply {
        self.call_with(method, path, user, body, &[])
    }

    /// [`call`](Transport::call) with extra headers.
    fn call_with(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(u) = user {
            b = b.header("authorization", format!("Bearer {}", self.token(u)));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = body.map(|v| v.to_string().into_bytes()).unwrap_or_default();
        self.send(b.body(body).expect("a valid request"))
    }

    /// Creates a task for `user` through `/api/tasks`, returning the reply.
    fn create(&self, user: &str, body: Value) -> Reply {
        let r = self.call("POST", "/api/tasks", Some(user), Some(body));
        assert_eq!(r.status, 201, "create failed: {:?}", r.json);
        r
    }

    /// `GET /api/tasks?query` as `user`, which must be a 200.
    fn list(&self, user: &str, query: &str) -> Reply {
        let r = self.call("GET", &format!("/api/tasks?{query}"), Some(user), None);
        assert_eq!(r.status, 200, "list failed: {:?}", r.json);
        r
    }

    /// Every task id of every page of `query`, following `next_cursor`.
    fn page_through(&self, user: &str, query: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("{query}&cursor={c}"),
                None => query.to_owned(),
            };
            let r = self.list(user, &q);
            ids.extend(r.ids());
            match r.json["meta"]["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
            assert!(ids.len() < 100_000, "paging does not end");
        }
    }
}

// ---------------------------------------------------------------- in process

/// 2026-11-21T10:15:30Z, the in-process clock's start (advanced by each request).
pub const START_MS: i64 = 1_795_256_130_000;

/// The core's configuration from `settings`, with `jwt_secret` = [`SECRET`] unless given.
pub fn config(settings: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| {
        settings
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| (name == "jwt_secret").then(|| SECRET.to_owned()))
    })
}

/// The API in process over a store, with a clock that moves one millisecond per request
/// (so that every timestamp differs, as on a real clock) and a fresh entropy string each.
pub struct InProcess<S: TaskStore + AccountStore = MemoryStore> {
    pub api: Api<S>,
    clock: Cell<i64>,
    counter: Cell<u64>,
}

impl InProcess<MemoryStore> {
    /// Over a fresh [`MemoryStore`] with only `jwt_secret` set.
    pub fn new() -> Self {
        Self::with_config(&[])
    }

    /// Over a fresh [`MemoryStore`] with `settings` (see [`config`]).
    pub fn with_config(settings: &[(&str, &str)]) -> Self {
        Self::over(MemoryStore::new(), config(settings))
    }
}

impl Default for InProcess<MemoryStore> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: TaskStore + AccountStore> InProcess<S> {
    pub fn over(store: S, config: Result<Config, ConfigError>) -> Self {
        InProcess {
            api: Api::with_config_result(store, config),
            clock: Cell::new(START_MS),
            counter: Cell::new(0),
        }
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.clock.get())
    }

    pub fn advance_ms(&self, ms: i64) {
        self.clock.set(self.clock.get() + ms);
    }

    /// Sends a prepared request with a context `adjust` adds to (entropy, client address).
    pub fn send_in(
        &self,
        request: Request<Vec<u8>>,
        adjust: impl FnOnce(RequestContext) -> RequestContext,
    ) -> Reply {
        self.advance_ms(1);
        self.counter.set(self.counter.get() + 1);
        let ctx = RequestContext::new(self.now(), format!("gen-{}", self.counter.get()));
        Reply::new(pollster::block_on(self.api.handle(request, adjust(ctx))))
    }
}

impl<S: TaskStore + AccountStore> Transport for InProcess<S> {
    fn send(&self, request: Request<Vec<u8>>) -> Reply {
        self.send_in(request, |ctx| ctx)
    }

    fn now_ms(&self) -> i64 {
        self.clock.get()
    }

    fn let_time_pass(&self, ms: u64) {
        self.advance_ms(ms as i64);
    }
}

// ---------------------------------------------------------------- over HTTP

/// A server at a base URL (`http://127.0.0.1:PORT`), on the real clock.
///
/// Each request is one HTTP/1.1 connection (`connection: close`), read to its end: simple,
/// and no state carries from one request to the next. Whatever must live as long as the
/// server (the server itself, its data directory) is kept with [`Http::keeping`].
pub struct Http {
    authority: String,
    guards: Vec<Box<dyn Any>>,
    /// When the last response arrived (ms): the next request waits for a later millisecond.
    last: Cell<i64>,
}

impl Http {
    /// A client of the server at `base_url`, `http://host:port` (no TLS, no path).
    pub fn new(base_url: &str) -> Http {
        let authority = base_url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("{base_url}: an http:// base URL"))
            .trim_end_matches('/')
            .to_owned();
        Http {
            authority,
            guards: Vec::new(),
            last: Cell::new(0),
        }
    }

    /// Keeps `guard` alive as long as this transport (it is dropped after the test).
    pub fn keeping(mut self, guard: impl Any) -> Http {
        self.guards.push(Box::new(guard));
        self
    }

    /// `host:port` of the server.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    fn exchange(&self, request: Request<Vec<u8>>) -> std::io::Result<Response<Vec<u8>>> {
        let (parts, body) = request.into_parts();
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let mut head = format!("{} {target} HTTP/1.1\r\n", parts.method).into_bytes();
        if !parts.headers.contains_key(http::header::HOST) {
            head.extend_from_slice(format!("host: {}\r\n", self.authority).as_bytes());
        }
        for (name, value) in &parts.headers {
            // Values are bytes (obs-text included): written as they are.
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        if !parts.headers.contains_key(http::header::CONTENT_LENGTH)
            && !parts.headers.contains_key(http::header::TRANSFER_ENCODING)
        {
            head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        head.extend_from_slice(b"connection: close\r\n\r\n");

        let mut stream = TcpStream::connect(&self.authority)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.write_all(&head)?;
        stream.write_all(&body)?;
        let mut received = Vec::new();
        stream.read_to_end(&mut received)?;
        parse_response(&received, parts.method == http::Method::HEAD)
    }
}

/// A whole HTTP/1.1 response (to a request with `connection: close`), body decoded.
fn parse_response(bytes: &[u8], head_request: bool) -> std::io::Result<Response<Vec<u8>>> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let body_start = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(invalid("a truncated response head".into())),
        Err(e) => return Err(invalid(format!("a malformed response head: {e}"))),
    };
    let mut builder = Response::builder().status(parsed.code.unwrap_or(0));
    let mut chunked = false;
    let mut length = None;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked");
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        }
        builder = builder.header(h.name, h.value);
    }
    let rest = &bytes[body_start..];
    let status = parsed.code.unwrap_or(0);
    let body = if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if chunked {
        dechunk(rest).ok_or_else(|| invalid("a malformed chunked body".into()))?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| invalid(format!("a body shorter than its content-length {n}")))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    builder
        .body(body)
        .map_err(|e| invalid(format!("a response http cannot hold: {e}")))
}

/// The data of a chunked body (trailers ignored), or `None` when it is malformed.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

impl Transport for Http {
    fn send(&self, request: Request<Vec<u8>>) -> Reply {
        // The service stamps a request between its sending and its response: starting each
        // request in a later millisecond than the last response gives every request an
        // instant of its own, in order, as the in-process clock does (creation order is then
        // time order, which the listing's default sort shows).
        while self.now_ms() <= self.last.get() {
            std::thread::sleep(Duration::from_micros(200));
        }
        let described = format!("{} {}", request.method(), request.uri());
        let response = self
            .exchange(request)
            .unwrap_or_else(|e| panic!("{described} to {}: {e}", self.authority));
        self.last.set(self.now_ms());
        Reply::new(response)
    }

    fn now_ms(&self) -> i64 {
        Timestamp::from_system_time(std::time::SystemTime::now()).as_millis()
    }

    fn let_time_pass(&self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}
