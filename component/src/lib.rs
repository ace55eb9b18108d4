//! The Spin HTTP component: it turns Spin's request into the core's, serves it over the SQL
//! store that the settings choose, writes one log line, and turns the core's response back.
//!
//! Nothing here decides anything about tasks: every rule lives in `task-api-core`.
//!
//! The Spin entry point is exported only when building for WebAssembly: a native build
//! (for the unit tests of the settings) would otherwise try to export `wasi:http` names
//! from a shared library. Natively the request path is therefore unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod db;
mod jwks;
mod log;
mod settings;
mod throttle;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Instant, SystemTime};

use futures::StreamExt;
use spin_sdk::http::{Fields, IncomingRequest, Method, OutgoingResponse, ResponseOutparam};
#[cfg(target_arch = "wasm32")]
use spin_sdk::http_component;
use task_api_core::sql::SqlStore;
use task_api_core::{Api, MAX_BODY_BYTES, RequestContext, SettingsScope, Timestamp};

use crate::db::SpinDb;
use crate::settings::Settings;

#[cfg_attr(target_arch = "wasm32", http_component)]
async fn serve(request: IncomingRequest, out: ResponseOutparam) {
    let started = Instant::now();
    let now = Timestamp::from_system_time(SystemTime::now());
    let request = read_request(request).await;
    let method = request.method().clone();
    let settings = Settings::load(SettingsScope::of(&request), |name| {
        spin_sdk::variables::get(name).ok()
    });
    let config = match settings.core {
        Ok(config) => Ok(jwks::prepare(config, request.headers(), now).await),
        Err(e) => Err(e),
    };
    let db = SpinDb::new(settings.database.clone());
    let store =
        SqlStore::new(db, settings.database.dialect()).with_auto_migrate(settings.auto_migrate);
    let api = Api::with_config_result(store, config).with_throttle(throttle::KvThrottle::default());
    let mut context = RequestContext::new(now, fresh_request_id()).with_entropy(entropy());
    if let Some(addr) = request
        .headers()
        .get("spin-client-addr")
        .and_then(|v| v.to_str().ok())
    {
        context = context.with_client_addr(addr);
    }
    let response = api.handle(request, context).await;
    log::request(&method, &response, started.elapsed());
    write_response(out, response).await;
}

/// The request as the core takes it. The body is read up to one byte past the limit, so an
/// oversized body costs no more memory than that and the core answers 413.
async fn read_request(request: IncomingRequest) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::builder()
        .method(method_name(&request.method()))
        .uri(request.path_with_query().unwrap_or_else(|| "/".to_owned()));
    for (name, value) in request.headers().entries() {
        builder = builder.header(name, value);
    }
    let mut body = Vec::new();
    let mut stream = request.into_body_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY_BYTES {
            break;
        }
    }
    builder.body(body).unwrap_or_else(|_| {
        // A request Spin accepted but `http` refuses (an exotic header name): answer as a
        // request to no route, which the core turns into a 404 problem.
        http::Request::new(Vec::new())
    })
}

/// The method's name; the `http` builder refuses one that is not a valid token.
fn method_name(m: &Method) -> &str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        Method::Other(other) => other,
    }
}

async fn write_response(out: ResponseOutparam, response: http::Response<Vec<u8>>) {
    let (parts, body) = response.into_parts();
    let headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let outgoing = OutgoingResponse::new(fields);
    if outgoing.set_status_code(parts.status.as_u16()).is_err() {
        log::event(
            "error",
            "response",
            &format!("could not set status {}", parts.status),
        );
    }
    if let Err(e) = out.set_with_body(outgoing, body).await {
        log::event(
            "warn",
            "response",
            &format!("could not send the response: {e}"),
        );
    }
}

/// 32 bytes from the host's cryptographic randomness (`wasi:random`), for password salts
/// and user ids.
fn entropy() -> [u8; 32] {
    let bytes = wasi::random::random::get_random_bytes(32);
    let mut out = [0u8; 32];
    let n = out.len().min(bytes.len());
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// 128 random bits, from the host's randomness (std seeds `RandomState` from it).
fn fresh_request_id() -> String {
    let a = RandomState::new().hash_one(0u8);
    let b = RandomState::new().hash_one(1u8);
    format!("{a:016x}{b:016x}")
}
