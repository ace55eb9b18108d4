//! The task routes: one authenticated call, one store operation, one envelope or problem.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde::Serialize;

use crate::domain::field::FieldError;
use crate::domain::ids::{TaskId, UserId, Version};
use crate::domain::listing::ListQuery;
use crate::domain::task::Task;
use crate::domain::time::Timestamp;
use crate::http::conditional::{entity_tags, if_none_match};
use crate::http::error::ApiError;
use crate::http::response::{empty, item, json, set_etag};
use crate::http::routes::{Endpoint, Route};
use crate::http::{batch, body, feed, transfer};
use crate::store::changes::Clock;
use crate::store::tasks::{Idempotency, IdempotencyKey, StoreError, TaskStore};

/// One authenticated call to a task route.
pub(crate) struct TaskCall<'a, S> {
    pub(crate) store: &'a S,
    pub(crate) req: &'a Request<Vec<u8>>,
    pub(crate) route: &'a Route<'a>,
    pub(crate) user: &'a UserId,
    pub(crate) now: Timestamp,
    /// How long tombstones are kept (`tombstone_retention_days`), in ms.
    pub(crate) retention_ms: i64,
}

impl<S: TaskStore> TaskCall<'_, S> {
    pub(crate) async fn run(self) -> Result<Response<Vec<u8>>, ApiError> {
        let method = self.req.method().clone();
        let clock = Clock::new(self.now, self.retention_ms);
        match self.route.endpoint {
            Endpoint::TaskChanges => {
                let query = self.req.uri().query().unwrap_or("");
                return feed::changes(self.store, query, self.user, self.now, self.retention_ms)
                    .await;
            }
            Endpoint::TaskBatch => {
                return batch::run(self.store, self.json_body(false)?, self.user, clock).await;
            }
            Endpoint::TaskExport => return transfer::export(self.store, self.req, self.user).await,
            Endpoint::TaskImport => {
                return transfer::import(self.store, self.req, self.user, self.now).await;
            }
            _ => {}
        }
        if self.route.endpoint == Endpoint::TaskCollection {
            return match method {
                Method::POST => self.create().await,
                Method::DELETE => self.clear_completed().await,
                _ => self.list().await,
            };
        }
        // A malformed id names no task of this user: the same 404 as a missing one.
        let id = self
            .route
            .task_id
            .and_then(TaskId::parse)
            .ok_or(ApiError::NotFound)?;
        match (self.route.endpoint, method) {
            (Endpoint::TaskCompletion, _) => {
                let completion = body::parse_completion(self.json_body(true)?)?;
                let expected = self.if_match(id).await?;
                let task = self
                    .store
                    .set_completion(self.user, id, completion, expected, self.now)
                    .await?;
                Ok(item(StatusCode::OK, &task))
            }
            (_, Method::PUT | Method::PATCH) => {
                let patch = body::parse_patch(self.json_body(false)?)?;
                let expected = self.if_match(id).await?;
                let task = self
                    .store
                    .update(self.user, id, &patch, expected, self.now)
                    .await?;
                Ok(item(StatusCode::OK, &task))
            }
            (_, Method::DELETE) => {
                let expected = self.if_match(id).await?;
                self.store.delete(self.user, id, expected, clock).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            _ => {
                let task = self.store.get(self.user, id).await?;
                if if_none_match(self.req.headers(), task.version)? {
                    let mut r = empty(StatusCode::NOT_MODIFIED);
                    set_etag(r.headers_mut(), task.version);
                    return Ok(r);
                }
                Ok(item(StatusCode::OK, &task))
            }
        }
    }

    async fn create(self) -> Result<Response<Vec<u8>>, ApiError> {
        let new = body::parse_new_task(self.json_body(false)?)?;
        let idempotency = match self.req.headers().get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v
                    .to_str()
                    .ok()
                    .and_then(IdempotencyKey::parse)
                    .ok_or(ApiError::InvalidHeader("Idempotency-Key"))?;
                Some(Idempotency {
                    key,
                    fingerprint: new.fingerprint(),
                })
            }
        };
        let created = self
            .store
            .create(self.user, new, idempotency, self.now)
            .await?;
        let mut r = item(StatusCode::CREATED, &created.task);
        let location = format!("{}/tasks/{}", self.route.base, created.task.id);
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        if created.replayed {
            // Same status and body as the first answer; this tells a client (and a log)
            // that nothing new was created.
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        Ok(r)
    }

    async fn list(self) -> Result<Response<Vec<u8>>, ApiError> {
        let query = ListQuery::parse(self.req.uri().query().unwrap_or(""))?;
        let page = self.store.list(self.user, &query).await?;
        let next_cursor = match page.tasks.last() {
            Some(last) if page.has_more => Some(query.cursor_after(last)),
            _ => None,
        };
        #[derive(Serialize)]
        struct Meta {
            total: u64,
            limit: u32,
            next_cursor: Option<String>,
        }
        #[derive(Serialize)]
        struct Envelope<'a> {
            data: &'a [Task],
            meta: Meta,
        }
        Ok(json(
            StatusCode::OK,
            &Envelope {
                data: &page.tasks,
                meta: Meta {
                    total: page.total,
                    limit: query.limit(),
                    next_cursor,
                },
            },
        ))
    }

    async fn clear_completed(self) -> Result<Response<Vec<u8>>, ApiError> {
        let status = form_urlencoded::parse(self.req.uri().query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k == "status")
            .last()
            .map(|(_, v)| v.into_owned());
        if status.as_deref() != Some("completed") {
            return Err(ApiError::InvalidQuery(vec![FieldError::new(
                "status",
                "invalid_value",
                "DELETE /tasks needs status=completed: only completed tasks can be cleared at once",
            )]));
        }
        let clock = Clock::new(self.now, self.retention_ms);
        let deleted = self.store.clear_completed(self.user, clock).await?;
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "data": { "deleted": deleted } }),
        ))
    }

    fn json_body(&self, optional: bool) -> Result<&[u8], ApiError> {
        body::json_body(self.req, optional)
    }

    /// The version `If-Match` requires, if any.
    ///
    /// `*` requires only that the task exists. A single tag of ours names its version; tags
    /// that are not ours (weak, or from elsewhere) can never match. With several of our tags,
    /// the current version is read and kept if listed: the store still checks it atomically.
    async fn if_match(&self, id: TaskId) -> Result<Option<Version>, ApiError> {
        let Some(tags) = entity_tags(self.req.headers(), header::IF_MATCH)? else {
            return Ok(None);
        };
        if tags.iter().any(|t| t == "*") {
            return Ok(None);
        }
        let ours: Vec<Version> = tags.iter().filter_map(|t| Version::from_etag(t)).collect();
        match ours.as_slice() {
            [] => Ok(Some(Version::new(0))),
            [one] => Ok(Some(*one)),
            many => {
                let current = self.store.get(self.user, id).await?.version;
                if many.contains(&current) {
                    Ok(Some(current))
                } else {
                    Err(StoreError::VersionConflict.into())
                }
            }
        }
    }
}
