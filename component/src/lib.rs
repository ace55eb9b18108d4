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

use std::time::{Instant, SystemTime};

use futures::{Stream, StreamExt};
use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
#[cfg(target_arch = "wasm32")]
use spin_sdk::http_component;
use task_api_core::sql::SqlStore;
use task_api_core::{
    Api, MoreBody, RequestContext, SettingsScope, TaskStore, Timestamp, max_body_bytes,
};

use crate::db::SpinDb;
use crate::settings::Settings;

#[cfg_attr(target_arch = "wasm32", http_component)]
async fn serve(request: IncomingRequest, out: ResponseOutparam) {
    let started = Instant::now();
    let now = Timestamp::from_system_time(SystemTime::now());
    let (request, body_complete) = read_request(request).await;
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
    let api = Api::with_config_result(store, config);
    let mut context = RequestContext::new(now, fresh_request_id()).with_entropy(entropy());
    if let Some(addr) = client_addr(request.headers()) {
        context = context.with_client_addr(addr);
    }
    if !body_complete {
        context = context.with_incomplete_body();
    }
    let (response, more) = api.handle_streaming(request, context).await;
    log::request(&method, &response, started.elapsed());
    write_response(out, response, more).await;
}

/// The request as the core takes it, and whether its body was read completely (else the
/// core answers 400: see [`read_body`]).
async fn read_request(request: IncomingRequest) -> (http::Request<Vec<u8>>, bool) {
    let mut builder = http::Request::builder()
        .method(method_name(&request.method()))
        .uri(request.path_with_query().unwrap_or_else(|| "/".to_owned()));
    for (name, value) in request.headers().entries() {
        builder = builder.header(name, value);
    }
    let path = request.path_with_query().unwrap_or_default();
    let limit = max_body_bytes(path.split('?').next().unwrap_or(""));
    let (body, complete) = match read_body(request.into_body_stream(), limit).await {
        Ok(body) => (body, true),
        Err(e) => {
            log::event(
                "warn",
                "request",
                &format!("the body stream failed part-way: {e}"),
            );
            (Vec::new(), false)
        }
    };
    let request = builder.body(body).unwrap_or_else(|_| {
        // A request Spin accepted but `http` refuses (an exotic header name): answer as a
        // request to no route, which the core turns into a 404 problem.
        http::Request::new(Vec::new())
    });
    (request, complete)
}

/// The body, read up to one chunk past the route's limit (`limit`, from
/// [`max_body_bytes`]), so an oversized body costs no more memory than that and the core
/// answers 413. A stream that fails before its end is an error: what arrived is only part
/// of what the client sent, and must not be taken for the body.
async fn read_body<E>(
    stream: impl Stream<Item = Result<Vec<u8>, E>>,
    limit: usize,
) -> Result<Vec<u8>, E> {
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
        if body.len() > limit {
            break;
        }
    }
    Ok(body)
}

/// The client's address: the last `spin-client-addr` value. Spin appends its own value after
/// any that the client sent, so only the last one is Spin's; an earlier one is whatever the
/// client claims.
fn client_addr(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all("spin-client-addr")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
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

/// Sends the response: its head and body, then the rest of an export's body chunk by chunk,
/// so that memory holds one page at a time. If the store fails part-way, the body is left
/// unfinished, which Spin reports to the client as a broken response (never as a shorter,
/// complete-looking export).
async fn write_response<S: TaskStore>(
    out: ResponseOutparam,
    response: http::Response<Vec<u8>>,
    mut more: MoreBody<'_, S>,
) {
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
    let Ok(sink) = outgoing.body() else {
        log::event("error", "response", "the response body was already taken");
        return;
    };
    out.set(outgoing);
    let Ok(stream) = sink.write() else {
        log::event("error", "response", "the response body is not writable");
        return;
    };
    let mut chunk = body;
    loop {
        if let Err(e) = write_all(&stream, &chunk) {
            log::event(
                "warn",
                "response",
                &format!("could not send the response: {e}"),
            );
            return;
        }
        chunk = match more.next_chunk().await {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => {
                log::event(
                    "error",
                    "response",
                    &format!("the export stopped part-way: {e}"),
                );
                // Dropped without `finish`: the host aborts the response.
                return;
            }
        };
    }
    drop(stream);
    if let Err(e) = OutgoingBody::finish(sink, None) {
        log::event(
            "warn",
            "response",
            &format!("could not finish the response: {e:?}"),
        );
    }
}

/// Writes `bytes` to `stream`, at most 4096 bytes per call (the most
/// `blocking-write-and-flush` takes).
fn write_all(
    stream: &wasi::io::streams::OutputStream,
    bytes: &[u8],
) -> Result<(), wasi::io::streams::StreamError> {
    for part in bytes.chunks(4096) {
        stream.blocking_write_and_flush(part)?;
    }
    Ok(())
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

/// 128 bits straight from the host's randomness (`wasi:random`). Not std's `RandomState`:
/// two made one after the other share their per-thread seed (the second only adds one to
/// the first's key), so the pair would hold far fewer than 128 independent bits.
fn fresh_request_id() -> String {
    let a = wasi::random::random::get_random_u64();
    let b = wasi::random::random::get_random_u64();
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use futures::stream;

    use super::*;

    /// The output of a future that never waits (every stream here is ready).
    fn block_on<T>(future: impl Future<Output = T>) -> T {
        match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the future waited"),
        }
    }

    #[test]
    fn a_body_read_to_its_end_is_complete() {
        let chunks = stream::iter([Ok::<_, String>(b"{\"ti".to_vec()), Ok(b"tle\":1}".to_vec())]);
        assert_eq!(block_on(read_body(chunks, 64)).unwrap(), b"{\"title\":1}");
    }

    #[test]
    fn a_body_whose_stream_fails_part_way_is_an_error_not_a_shorter_body() {
        let chunks = stream::iter([
            Ok(b"{\"title\":\"first half".to_vec()),
            Err("connection reset"),
            Ok(b" second half\"}".to_vec()),
        ]);
        assert_eq!(block_on(read_body(chunks, 1024)), Err("connection reset"));
    }

    #[test]
    fn a_body_is_read_one_chunk_past_the_limit_and_no_further() {
        let limit = task_api_core::MAX_BODY_BYTES;
        let chunk = vec![b'x'; limit / 2 + 1];
        let chunks = stream::iter([Ok(chunk.clone()), Ok(chunk.clone()), Err("never polled")]);
        let body = block_on(read_body(chunks, limit)).unwrap();
        assert_eq!(body.len(), 2 * chunk.len());
        assert!(body.len() > limit);
    }

    #[test]
    fn the_client_address_is_the_last_spin_client_addr_value() {
        let mut headers = http::HeaderMap::new();
        headers.append("spin-client-addr", "203.0.113.9:1".parse().unwrap());
        headers.append("spin-client-addr", "198.51.100.7:4242".parse().unwrap());
        assert_eq!(client_addr(&headers), Some("198.51.100.7:4242"));
        let mut one = http::HeaderMap::new();
        one.insert("spin-client-addr", "10.0.0.1:80".parse().unwrap());
        assert_eq!(client_addr(&one), Some("10.0.0.1:80"));
        assert_eq!(client_addr(&http::HeaderMap::new()), None);
    }
}
