//! `GET /tasks/changes`: the change feed, its opaque token, and when a token is too old
//! (410 `sync_reset`). The design is in `docs/sync.md`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Response, StatusCode};
use serde::Serialize;

use crate::domain::field::FieldError;
use crate::domain::ids::{TaskId, UserId};
use crate::domain::task::Task;
use crate::domain::time::Timestamp;
use crate::http::error::ApiError;
use crate::http::response::json;
use crate::store::changes::{Change, FeedPosition};
use crate::store::tasks::TaskStore;

/// Changes per answer when the client gives no `limit`.
pub const DEFAULT_FEED_LIMIT: u32 = 100;
/// The largest `limit` of the change feed.
pub const MAX_FEED_LIMIT: u32 = 1000;

/// A feed token: where the client is, and when the service said so. Opaque to clients
/// (base64url of `f1.<seq>.<id>.<issued ms>.<epoch>`); a token whose time is older than
/// the retention period is refused, so a client away for longer lists afresh, and so is one
/// of another epoch (another database).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FeedToken {
    pub(crate) position: FeedPosition,
    pub(crate) issued_at: Timestamp,
    /// The user's feed epoch when issued (0 before the user's first write).
    pub(crate) epoch: i64,
}

impl FeedToken {
    pub(crate) fn encode(self) -> String {
        let FeedPosition { seq, id } = self.position;
        let (issued, epoch) = (self.issued_at.as_millis(), self.epoch);
        URL_SAFE_NO_PAD.encode(format!("f1.{seq}.{id}.{issued}.{epoch}"))
    }

    pub(crate) fn parse(token: &str) -> Option<FeedToken> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
        let mut parts = raw.strip_prefix("f1.")?.split('.');
        let mut number = || -> Option<i64> {
            let part = parts.next()?;
            // Only the digits this service writes: no sign, no leading zero.
            let canonical = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            canonical.then(|| part.parse().ok()).flatten()
        };
        let (seq, id, issued, epoch) = (number()?, number()?, number()?, number()?);
        if parts.next().is_some() {
            return None;
        }
        Some(FeedToken {
            position: FeedPosition { seq, id },
            issued_at: Timestamp::from_millis(issued),
            epoch,
        })
    }
}

/// The query of `GET /tasks/changes`.
struct FeedQuery {
    since: Option<FeedToken>,
    limit: u32,
}

impl FeedQuery {
    fn parse(query: &str) -> Result<FeedQuery, ApiError> {
        let mut q = FeedQuery {
            since: None,
            limit: DEFAULT_FEED_LIMIT,
        };
        let mut errors = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let name = match name.as_ref() {
                "since" => "since",
                "limit" => "limit",
                _ => continue,
            };
            let value = value.trim();
            if value.is_empty() {
                errors.push(FieldError::new(
                    name,
                    "blank",
                    format!("{name} must not be empty: leave the parameter out instead"),
                ));
            } else if name == "since" {
                match FeedToken::parse(value) {
                    Some(t) => q.since = Some(t),
                    None => errors.push(FieldError::new(
                        "since",
                        "invalid_value",
                        "since must be the next token of an earlier answer of this feed",
                    )),
                }
            } else {
                match value.parse::<u32>() {
                    Ok(n) if (1..=MAX_FEED_LIMIT).contains(&n) => q.limit = n,
                    _ => errors.push(FieldError::new(
                        "limit",
                        "invalid_value",
                        "limit must be a whole number from 1 to 1000",
                    )),
                }
            }
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(ApiError::InvalidQuery(errors))
        }
    }
}

/// One change as sent.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Item<'a> {
    Upsert { id: TaskId, task: &'a Task },
    Delete { id: TaskId, deleted_at: Timestamp },
}

/// Answers `GET /tasks/changes` for `user` at `now`, keeping tombstones for `retention_ms`.
pub(crate) async fn changes<S: TaskStore>(
    store: &S,
    query: &str,
    user: &UserId,
    now: Timestamp,
    retention_ms: i64,
) -> Result<Response<Vec<u8>>, ApiError> {
    let q = FeedQuery::parse(query)?;
    let horizon = Timestamp::from_millis(now.as_millis().saturating_sub(retention_ms));
    if q.since.is_some_and(|t| t.issued_at < horizon) {
        return Err(ApiError::SyncReset);
    }
    let after = q.since.map_or(FeedPosition::START, |t| t.position);
    let page = store.changes(user, after, q.limit, horizon).await?;
    // A token ahead of the counter is not of this database (a restore, a move); one at or
    // before the pruned tombstones may have missed a deletion.
    let pruned = page.pruned_through > 0
        && after
            < (FeedPosition {
                seq: page.pruned_through,
                id: i64::MAX,
            });
    // A token of another epoch is of another database; one of epoch 0 was issued before the
    // user's first write, so it is at the start.
    let other_epoch = match q.since {
        Some(t) if t.epoch == 0 => after.seq > 0,
        Some(t) => t.epoch != page.epoch,
        None => false,
    };
    if after.seq > page.head || pruned || other_epoch {
        return Err(ApiError::SyncReset);
    }
    // Having drained the feed, the client is at the head: every change up to it committed
    // before this read (a user's changes commit in number order), so it needs none of them
    // again, and a tombstone pruned later at the head's number cannot reset it.
    let next = match page.changes.last() {
        Some((position, _)) if page.has_more => *position,
        _ => FeedPosition {
            seq: page.head.max(after.seq),
            id: i64::MAX,
        },
    };
    #[derive(Serialize)]
    struct Meta {
        next: String,
        has_more: bool,
        limit: u32,
    }
    #[derive(Serialize)]
    struct Envelope<'a> {
        data: Vec<Item<'a>>,
        meta: Meta,
    }
    let data = page
        .changes
        .iter()
        .map(|(_, change)| match change {
            Change::Upsert(task) => Item::Upsert { id: task.id, task },
            Change::Delete { id, deleted_at } => Item::Delete {
                id: *id,
                deleted_at: *deleted_at,
            },
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &Envelope {
            data,
            meta: Meta {
                next: FeedToken {
                    position: next,
                    issued_at: now,
                    epoch: page.epoch,
                }
                .encode(),
                has_more: page.has_more,
                limit: q.limit,
            },
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_as_issued() {
        let token = FeedToken {
            position: FeedPosition {
                seq: 12,
                id: i64::MAX,
            },
            issued_at: Timestamp::from_millis(1_700_000_000_000),
            epoch: 77,
        };
        assert_eq!(FeedToken::parse(&token.encode()), Some(token));
    }

    #[test]
    fn forged_tokens_do_not_parse() {
        for raw in [
            "",
            "f1.1.2.3",
            "f1.1.2.3.4.5",
            "f1.-1.2.3.4",
            "f1.01.2.3.4",
            "f1.1.2.+3.4",
            "f2.1.2.3.4",
            "f1.99999999999999999999.2.3.4",
        ] {
            assert_eq!(
                FeedToken::parse(&URL_SAFE_NO_PAD.encode(raw)),
                None,
                "{raw}"
            );
        }
        assert_eq!(FeedToken::parse("not base64!"), None);
    }
}
