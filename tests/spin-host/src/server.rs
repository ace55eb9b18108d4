//! The HTTP side: hyper 1.x over HTTP/1.1, one fresh instance of the pre-instantiated
//! component per request, Spin's routing of the `[[trigger.http]]` routes and Spin's
//! `spin-*` request headers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Frame, Incoming};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::host_calls::{Counters, HOST_CALLS_HEADER};
use crate::state::{Shared, State};

/// How long [`crate::RunningHost::shutdown`] waits for requests in progress.
const GRACE: Duration = Duration::from_secs(5);

pub(crate) struct Inner {
    pre: ProxyPre<State>,
    pub(crate) shared: Arc<Shared>,
    instances: Arc<Semaphore>,
    routes: Vec<Route>,
}

/// One `[[trigger.http]]` route, with the application's base path applied.
struct Route {
    /// As written, e.g. `/...` or `/api/...`.
    raw: String,
    /// The path it matches: everything under it for a wildcard, else exactly it.
    prefix: String,
    wildcard: bool,
}

impl Route {
    fn new(base: &str, raw: &str) -> Route {
        let (path, wildcard) = match raw.strip_suffix("/...") {
            Some(p) => (p, true),
            None => (raw, false),
        };
        let joined = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let prefix = if wildcard {
            joined.trim_end_matches('/').to_owned()
        } else {
            joined
        };
        Route {
            raw: raw.to_owned(),
            prefix,
            wildcard,
        }
    }

    /// The path info (what follows the route) when `path` matches.
    fn matches<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.wildcard {
            let rest = path.strip_prefix(self.prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some(rest)
        } else {
            (path == self.prefix).then_some("")
        }
    }
}

impl Inner {
    pub(crate) fn new(pre: ProxyPre<State>, shared: Arc<Shared>, max_instances: u32) -> Inner {
        let mut routes: Vec<Route> = shared
            .app
            .routes
            .iter()
            .map(|r| Route::new(&shared.app.base, r))
            .collect();
        // Like Spin, the most specific route wins: exact before wildcard, longer first.
        routes.sort_by(|a, b| {
            a.wildcard
                .cmp(&b.wildcard)
                .then(b.prefix.len().cmp(&a.prefix.len()))
        });
        Inner {
            pre,
            shared,
            instances: Arc::new(Semaphore::new(max_instances as usize)),
            routes,
        }
    }
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    inner: Arc<Inner>,
    mut stop: watch::Receiver<bool>,
) {
    let local = listener.local_addr().ok();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, local, inner.clone(), stop.clone()));
                }
                Err(e) => {
                    eprintln!("spin-test-host: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    inner: Arc<Inner>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request| {
        let inner = inner.clone();
        async move { Ok::<_, Infallible>(handle(inner, request, peer, local).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result
                && !e.is_incomplete_message()
            {
                eprintln!("spin-test-host: connection from {peer}: {e}");
            }
        }
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

/// Adds Spin's `spin-*` request headers AFTER the client's, as Spin does: its
/// `prepare_request_headers` (spinframework/spin crates/trigger-http/src/headers.rs) lists
/// the client's headers first and then pushes the `compute_default_headers` pairs, and
/// `prepare_request` (crates/trigger-http/src/wasi.rs) does `req.headers_mut().clear();
/// req.headers_mut().extend(headers…)`, and `HeaderMap::extend` appends. So a header the
/// client sent itself, say `spin-client-addr: 203.0.113.9:1`, stays, first, and Spin's own
/// value comes after it: a guest reading the first value reads the client's.
fn append_spin_headers(headers: &mut HeaderMap, spin: Vec<(&'static str, String)>) {
    for (name, value) in spin {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
}

/// Serves one request; with `HostBuilder::count_host_calls`, adds `x-host-calls` (all
/// zeros when no instance ran, e.g. for a 404).
async fn handle(
    inner: Arc<Inner>,
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> Response<HyperOutgoingBody> {
    let count = inner.shared.count_host_calls;
    let (mut response, calls) = run(inner, request, peer, local).await;
    if count {
        let calls = calls.map(|c| c.snapshot()).unwrap_or_default();
        if let Ok(value) = HeaderValue::from_str(&calls.to_string()) {
            response.headers_mut().insert(HOST_CALLS_HEADER, value);
        }
    }
    response
}

async fn run(
    inner: Arc<Inner>,
    mut request: hyper::Request<Incoming>,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> (Response<HyperOutgoingBody>, Option<Arc<Counters>>) {
    let path = request.uri().path().to_owned();
    let Some((route, path_info)) = inner
        .routes
        .iter()
        .find_map(|r| r.matches(&path).map(|info| (r, info.to_owned())))
    else {
        return (plain(StatusCode::NOT_FOUND, "Not Found"), None);
    };

    // The headers Spin adds for the component, in the order of Spin's
    // `compute_default_headers`.
    let host = match request.headers().get(http::header::HOST) {
        Some(h) => h.to_str().unwrap_or_default().to_owned(),
        None => local
            .map(|a| a.to_string())
            .unwrap_or_else(|| "localhost".into()),
    };
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let spin_headers = vec![
        ("spin-path-info", path_info),
        ("spin-full-url", format!("http://{host}{path_and_query}")),
        ("spin-matched-route", route.raw.clone()),
        ("spin-base-path", inner.shared.app.base.clone()),
        ("spin-raw-component-route", route.raw.clone()),
        (
            "spin-component-route",
            route
                .raw
                .strip_suffix("/...")
                .unwrap_or(&route.raw)
                .to_owned(),
        ),
        ("spin-client-addr", peer.to_string()),
    ];
    let headers = request.headers_mut();
    append_spin_headers(headers, spin_headers);
    if !headers.contains_key(http::header::HOST)
        && let Ok(value) = HeaderValue::from_str(&host)
    {
        headers.insert(http::header::HOST, value);
    }

    let Ok(permit) = inner.instances.clone().acquire_owned().await else {
        return (
            plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
            None,
        );
    };
    let now_ms = if inner.shared.test_clock {
        headers
            .remove(crate::state::TEST_NOW_HEADER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    } else {
        None
    };
    let mut store = Store::new(inner.pre.engine(), State::new(inner.shared.clone(), now_ms));
    // Refuses nothing: only records how far the guest's linear memory grows.
    store.limiter(|state| &mut state.memory);
    let calls = store.data().calls.clone();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let prepared = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)
        .and_then(|req| Ok((req, store.data_mut().http().new_response_outparam(sender)?)));
    let (req, out) = match prepared {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("spin-test-host: could not pass the request to the component: {e:?}");
            return (
                plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
                Some(calls),
            );
        }
    };
    let pre = inner.pre.clone();
    // The instance runs in its own task: it may still be writing the body after the
    // response head has been returned.
    let task = tokio::spawn(async move {
        let _permit = permit;
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    });
    let report = |result: Result<wasmtime::Result<()>, tokio::task::JoinError>| match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("spin-test-host: the component failed after responding: {e:?}"),
        Err(e) => eprintln!("spin-test-host: the component task failed: {e}"),
    };
    // Counting host calls: every call of the instance must be in the header, including
    // those after the response head (body, logging), so the body is read to the end
    // while the instance finishes, and only then is the response sent.
    let count = inner.shared.count_host_calls;

    let response = match receiver.await {
        Ok(Ok(response)) if count => {
            let (parts, body) = response.into_parts();
            let (body, result) = tokio::join!(Replay::record(body), task);
            report(result);
            Response::from_parts(parts, body.boxed_unsync())
        }
        Ok(Ok(response)) => {
            tokio::spawn(async move { report(task.await) });
            response
        }
        Ok(Err(code)) => {
            eprintln!("spin-test-host: the component answered with an error: {code:?}");
            if count {
                report(task.await);
            }
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Err(_) => {
            match task.await {
                Ok(Ok(())) => {
                    eprintln!("spin-test-host: the component returned without a response")
                }
                Ok(Err(e)) => eprintln!("spin-test-host: the component failed: {e:?}"),
                Err(e) => eprintln!("spin-test-host: the component task failed: {e}"),
            }
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    (response, Some(calls))
}

type BodyError = wasmtime_wasi_http::Error;

/// A response body read to its end and played back frame by frame, error included, so
/// that a body the component failed to finish still fails for the client.
struct Replay(VecDeque<Result<Frame<Bytes>, BodyError>>);

impl Replay {
    async fn record(mut body: HyperOutgoingBody) -> Replay {
        let mut frames = VecDeque::new();
        while let Some(frame) = body.frame().await {
            let failed = frame.is_err();
            frames.push_back(frame);
            if failed {
                break;
            }
        }
        Replay(frames)
    }
}

impl hyper::body::Body for Replay {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Poll::Ready(self.0.pop_front())
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};

    use super::{Route, append_spin_headers};

    #[test]
    fn spin_headers_come_after_the_clients_own() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "spin-client-addr",
            HeaderValue::from_static("203.0.113.9:1"),
        );
        headers.insert("accept", HeaderValue::from_static("*/*"));
        append_spin_headers(
            &mut headers,
            vec![
                ("spin-path-info", "/tasks".into()),
                ("spin-client-addr", "127.0.0.1:5555".into()),
            ],
        );
        let addrs: Vec<_> = headers.get_all("spin-client-addr").iter().collect();
        assert_eq!(addrs, ["203.0.113.9:1", "127.0.0.1:5555"]);
        // `get` is the first value: the client's, as a guest sees it in Spin.
        assert_eq!(headers["spin-client-addr"], "203.0.113.9:1");
        assert_eq!(headers["spin-path-info"], "/tasks");
        assert_eq!(headers["accept"], "*/*");
    }

    #[test]
    fn routes_match_like_spin() {
        let all = Route::new("/", "/...");
        assert_eq!(all.matches("/"), Some("/"));
        assert_eq!(all.matches("/health"), Some("/health"));
        let api = Route::new("/", "/api/...");
        assert_eq!(api.matches("/api"), Some(""));
        assert_eq!(api.matches("/api/tasks"), Some("/tasks"));
        assert_eq!(api.matches("/apix"), None);
        let exact = Route::new("/", "/health");
        assert_eq!(exact.matches("/health"), Some(""));
        assert_eq!(exact.matches("/health/ready"), None);
        let based = Route::new("/base", "/x/...");
        assert_eq!(based.matches("/base/x/y"), Some("/y"));
    }
}
