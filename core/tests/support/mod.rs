//! Shared helpers for the contract tests: tokens, requests and a fresh API per test; the
//! SQL stores' test executors and fresh databases are in `postgres` and `sqlite`.

#![allow(dead_code)] // each test binary uses a different part of these helpers

pub mod hostile;
#[cfg(feature = "sql")]
pub mod postgres;
#[cfg(feature = "sql")]
pub mod sqlite;

use std::cell::Cell;

use http::{Request, Response};
use jwt_simple::prelude::*;
use serde_json::Value;
use task_api_core::{
    AccountStore, Api, Config, ConfigError, MemoryStore, RequestContext, TaskStore, Timestamp,
};

pub const SECRET: &str = "test secret that is at least 32 bytes long";
/// 2026-11-21T10:15:30Z, the tests' "now" (advanced by each request).
pub const START_MS: i64 = 1_795_256_130_000;

/// An HS256 token for `sub`, valid for an hour from `now_secs`.
pub fn token_at(sub: &str, now_secs: u64) -> String {
    let mut claims = Claims::create(Duration::from_hours(1)).with_subject(sub);
    claims.issued_at = Some(Duration::from_secs(now_secs));
    claims.invalid_before = Some(Duration::from_secs(now_secs));
    claims.expires_at = Some(Duration::from_secs(now_secs + 3600));
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(claims)
        .expect("signing cannot fail with a valid key")
}

pub fn config(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| {
        extra
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| (name == "jwt_secret").then(|| SECRET.to_owned()))
    })
}

/// A response with its body parsed as JSON (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub json: Value,
    pub raw: Response<Vec<u8>>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `data` of an item envelope.
    pub fn task(&self) -> &Value {
        &self.json["data"]
    }

    pub fn id(&self) -> i64 {
        self.json["data"]["id"].as_i64().expect("an item envelope")
    }

    /// The `(field, code)` pairs of a problem's `errors`.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.json["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap().to_owned(),
                            e["code"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An API over a store, with a clock that moves one millisecond per request.
pub struct TestApp<S: TaskStore + AccountStore = MemoryStore> {
    pub api: Api<S>,
    clock: Cell<i64>,
    counter: Cell<u64>,
}

impl TestApp<MemoryStore> {
    pub fn new() -> Self {
        Self::with_config(&[])
    }

    pub fn with_config(extra: &[(&str, &str)]) -> Self {
        Self::over(MemoryStore::new(), config(extra))
    }
}

impl<S: TaskStore + AccountStore> TestApp<S> {
    pub fn over(store: S, config: Result<Config, ConfigError>) -> Self {
        TestApp {
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

    pub fn token(&self, user: &str) -> String {
        token_at(user, (self.clock.get() / 1000) as u64)
    }

    /// Sends a prepared request as is.
    pub fn send(&self, request: Request<Vec<u8>>) -> Reply {
        self.send_in(request, |ctx| ctx)
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
        let raw = pollster::block_on(self.api.handle(request, adjust(ctx)));
        let json = if raw.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(raw.body()).expect("every body is JSON")
        };
        Reply {
            status: raw.status().as_u16(),
            headers: raw.headers().clone(),
            json,
            raw,
        }
    }

    /// A request as `user` (no Authorization header when `None`), with a JSON body if given.
    pub fn call(&self, method: &str, path: &str, user: Option<&str>, body: Option<Value>) -> Reply {
        self.call_with(method, path, user, body, &[])
    }

    pub fn call_with(
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
    pub fn create(&self, user: &str, body: Value) -> Reply {
        let r = self.call("POST", "/api/tasks", Some(user), Some(body));
        assert_eq!(r.status, 201, "create failed: {:?}", r.json);
        r
    }

    pub fn list(&self, user: &str, query: &str) -> Reply {
        let r = self.call("GET", &format!("/api/tasks?{query}"), Some(user), None);
        assert_eq!(r.status, 200, "list failed: {:?}", r.json);
        r
    }

    /// Every task id of every page of `query`, following `next_cursor`.
    pub fn page_through(&self, user: &str, query: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("{query}&cursor={c}"),
                None => query.to_owned(),
            };
            let r = self.list(user, &q);
            ids.extend(
                r.json["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["id"].as_i64().unwrap()),
            );
            match r.json["meta"]["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
            assert!(ids.len() < 100_000, "paging does not end");
        }
    }
}
