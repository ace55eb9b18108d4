//! The HTTP side: hyper 1.x over HTTP/1.1, one fresh instance of the pre-instantiated
//! component per request, Spin's routing of the `[[trigger.http]]` routes and Spin's
//! `spin-*` request headers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

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

async fn handle(
    inner: Arc<Inner>,
    mut request: hyper::Request<Incoming>,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> Response<HyperOutgoingBody> {
    let path = request.uri().path().to_owned();
    let Some((route, path_info)) = inner
        .routes
        .iter()
        .find_map(|r| r.matches(&path).map(|info| (r, info.to_owned())))
    else {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    };

    // The headers Spin adds for the component.
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
    let spin_headers = [
        ("spin-full-url", format!("http://{host}{path_and_query}")),
        ("spin-path-info", path_info),
        ("spin-matched-route", route.raw.clone()),
        ("spin-raw-component-route", route.raw.clone()),
        (
            "spin-component-route",
            route
                .raw
                .strip_suffix("/...")
                .unwrap_or(&route.raw)
                .to_owned(),
        ),
        ("spin-base-path", inner.shared.app.base.clone()),
        ("spin-client-addr", peer.to_string()),
    ];
    let headers = request.headers_mut();
    for (name, value) in spin_headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if !headers.contains_key(http::header::HOST)
        && let Ok(value) = HeaderValue::from_str(&host)
    {
        headers.insert(http::header::HOST, value);
    }

    let Ok(permit) = inner.instances.clone().acquire_owned().await else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    let now_ms = if inner.shared.test_clock {
        headers
            .remove(crate::state::TEST_NOW_HEADER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    } else {
        None
    };
    let mut store = Store::new(inner.pre.engine(), State::new(inner.shared.clone(), now_ms));
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
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
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

    match receiver.await {
        Ok(Ok(response)) => {
            tokio::spawn(async move {
                match task.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        eprintln!("spin-test-host: the component failed after responding: {e:?}")
                    }
                    Err(e) => eprintln!("spin-test-host: the component task failed: {e}"),
                }
            });
            response
        }
        Ok(Err(code)) => {
            eprintln!("spin-test-host: the component answered with an error: {code:?}");
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
    }
}

#[cfg(test)]
mod tests {
    use super::Route;

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
