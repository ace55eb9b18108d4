//! The HTTP contract: an `http::Request` in, an `http::Response` out.
//!
//! # What this layer owns
//!
//! - `dispatch.rs`: [`Api`](crate::Api) and [`Api::handle`](crate::Api::handle), which
//!   resolves the route, answers CORS and method questions, checks the body's size and
//!   calls one of the route modules.
//! - `log.rs`: the [`RequestLog`](crate::RequestLog) every response carries for the host.
//! - `routes.rs`: the route table.
//! - `tasks.rs`, `accounts.rs`: the task routes and the built-in accounts routes.
//! - `feed.rs`, `batch.rs`, `transfer.rs`: the change feed, batches, and export and import,
//!   called from `tasks.rs` (`docs/sync.md`).
//! - `body.rs`: request bodies, JSON into domain values, every problem found.
//! - `conditional.rs`: `If-Match` and `If-None-Match`.
//! - `response.rs`: JSON bodies, envelopes, `ETag`s, the service version.
//! - `error.rs`: [`ApiError`](crate::ApiError), and the one mapping of every lower layer's
//!   error to a status, a problem document and its headers.
//! - `cors.rs`, `scope.rs`: the request-side halves of two settings (the CORS headers,
//!   and which settings a request can use).
//! - `openapi.rs`, `web.rs`: the OpenAPI document and the web page at `/`.
//!
//! # What it may import
//!
//! Everything below it: `domain`, `store`, `auth`, `config`. Nothing imports it but the
//! crate root, so no status code, header or problem leaks into the layers below. Inside
//! the layer, files import one way: `response`, `error`, `log` ← `routes`, `body`, `conditional`,
//! `cors`, `web`, `openapi` ← `feed`, `batch`, `transfer` ← `tasks`, `accounts`, `scope` ←
//! `dispatch`.

pub(crate) mod accounts;
pub(crate) mod batch;
pub(crate) mod body;
pub(crate) mod conditional;
pub(crate) mod cors;
pub(crate) mod dispatch;
pub(crate) mod error;
pub(crate) mod feed;
pub(crate) mod log;
pub(crate) mod openapi;
pub(crate) mod response;
pub(crate) mod routes;
pub(crate) mod scope;
pub(crate) mod tasks;
pub(crate) mod transfer;
pub(crate) mod web;
