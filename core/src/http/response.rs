//! How a successful answer is built: JSON bodies, the item envelope with its `ETag`, empty
//! answers, and the version every answer that names one reports. Problems are built by
//! `error.rs`.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::domain::ids::Version;
use crate::domain::task::Task;

/// The service version, as reported by `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) fn set_etag(headers: &mut HeaderMap, version: Version) {
    if let Ok(v) = HeaderValue::from_str(&version.etag()) {
        headers.insert(header::ETAG, v);
    }
}

pub(crate) fn item(status: StatusCode, task: &Task) -> Response<Vec<u8>> {
    #[derive(Serialize)]
    struct Item<'a> {
        data: &'a Task,
    }
    let mut r = json(status, &Item { data: task });
    set_etag(r.headers_mut(), task.version);
    r
}

pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Response<Vec<u8>> {
    // Serializing these plain structs cannot fail; an empty body would be the only effect.
    let mut r = Response::new(serde_json::to_vec(body).unwrap_or_default());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn empty(status: StatusCode) -> Response<Vec<u8>> {
    let mut r = Response::new(Vec::new());
    *r.status_mut() = status;
    r
}
