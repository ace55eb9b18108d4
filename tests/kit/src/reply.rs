//! A response as every suite reads it: status, headers, the body parsed as JSON, and the
//! whole response (in-process, with the extensions the core attaches, such as its
//! `RequestLog`; over HTTP, without).

use http::Response;
use serde_json::Value;

/// A response with its body parsed as JSON (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub json: Value,
    pub raw: Response<Vec<u8>>,
}

impl Reply {
    /// Parses `raw`'s body as JSON; panics (with the text) when it is not, since every JSON
    /// body of the contract must parse. A body of another declared type (an export's JSON
    /// lines or CSV) is read with [`Reply::text`] instead, and `json` is `Null`.
    pub fn new(raw: Response<Vec<u8>>) -> Reply {
        let declared_other = raw
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| m != "application/json" && !m.ends_with("+json"));
        let json = if raw.body().is_empty() || declared_other {
            Value::Null
        } else {
            serde_json::from_slice(raw.body()).unwrap_or_else(|e| {
                panic!(
                    "every body is JSON ({e}): {} {:?}",
                    raw.status(),
                    String::from_utf8_lossy(raw.body())
                )
            })
        };
        Reply {
            status: raw.status().as_u16(),
            headers: raw.headers().clone(),
            json,
            raw,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.raw.body()).into_owned()
    }

    /// The `data` of an item envelope.
    pub fn task(&self) -> &Value {
        &self.json["data"]
    }

    pub fn id(&self) -> i64 {
        self.json["data"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("an item envelope: {} {}", self.status, self.json))
    }

    /// The ids of a list envelope's `data`, in order.
    pub fn ids(&self) -> Vec<i64> {
        self.json["data"]
            .as_array()
            .unwrap_or_else(|| panic!("a list envelope: {} {}", self.status, self.json))
            .iter()
            .map(|t| t["id"].as_i64().expect("a task id"))
            .collect()
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
