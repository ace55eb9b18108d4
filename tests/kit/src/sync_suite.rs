//! The change feed, batches, export and import of every [`TaskStore`], at the store's own
//! interface: the memory store, PostgreSQL and SQLite run exactly these functions (see
//! `core/tests/store_memory.rs`, `store_postgres.rs`, `store_sqlite.rs`). The routes over
//! them are the contract suite's (`contract_sync.rs`).
//!
//! [`sync_suite_tests!`](crate::sync_suite_tests) turns every function into one
//! `#[tokio::test]`, as [`store_suite_tests!`](crate::store_suite_tests) does.

use task_api_core::{
    BatchOp, BatchResult, Change, FeedPosition, ImportedTask, Priority, StoreError, TaskPatch,
    TaskStore, Timestamp, Version,
};

use crate::store_suite::{RETENTION_MS, at, clock, key, new_task, title, user};

/// Generates one `#[tokio::test]` per function of this suite, each on a fresh store from
/// `$fresh` (as [`store_suite_tests!`](crate::store_suite_tests)).
#[macro_export]
macro_rules! sync_suite_tests {
    ($fresh:path) => {
        $crate::sync_suite_tests!(@each $fresh;
            feed_lists_each_change_once_in_commit_order,
            feed_pages_never_repeat_or_skip,
            feed_is_per_user,
            tombstones_past_the_retention_are_pruned_and_recorded,
            batch_applies_in_order_as_one_change,
            batch_failure_applies_nothing_and_names_the_operation,
            batch_cannot_reach_another_users_task,
            batch_keys_replay_and_refuse_like_single_creates,
            import_keeps_times_and_replays_by_key,
            export_pages_in_creation_order,
        );
    };
    (@each $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((_guard, store)) = $fresh().await else {
                    return;
                };
                $crate::sync_suite::$name(&store).await;
            }
        )*
    };
}

/// Long enough before `at(0)` that no tombstone counts as pruned.
fn horizon() -> Timestamp {
    at(-RETENTION_MS)
}

/// Every change after `after`, in pages of `limit`, with the last page's head.
async fn drain<S: TaskStore>(
    store: &S,
    u: &task_api_core::UserId,
    mut after: FeedPosition,
    limit: u32,
) -> Vec<(FeedPosition, Change)> {
    let mut all = Vec::new();
    loop {
        let page = store.changes(u, after, limit, horizon()).await.unwrap();
        assert!(page.changes.len() <= limit as usize);
        if let Some((last, _)) = page.changes.last() {
            after = *last;
        }
        all.extend(page.changes);
        if !page.has_more {
            return all;
        }
    }
}

pub async fn feed_lists_each_change_once_in_commit_order<S: TaskStore>(store: &S) {
    let u = user("alice");
    let a = store
        .create(&u, new_task("a"), None, at(1))
        .await
        .unwrap()
        .task;
    let b = store
        .create(&u, new_task("b"), None, at(2))
        .await
        .unwrap()
        .task;
    let patch = TaskPatch::builder().title(title("a2")).build().unwrap();
    let a2 = store.update(&u, a.id, &patch, None, at(3)).await.unwrap();
    store.delete(&u, b.id, None, clock(4)).await.unwrap();
    let c = store
        .create(&u, new_task("c"), None, at(5))
        .await
        .unwrap()
        .task;

    let page = store
        .changes(&u, FeedPosition::START, 100, horizon())
        .await
        .unwrap();
    assert!(!page.has_more);
    assert!(
        page.head >= 5,
        "five writes took five numbers: {}",
        page.head
    );
    assert_ne!(page.epoch, 0, "the first write drew the epoch");
    let positions: Vec<FeedPosition> = page.changes.iter().map(|(p, _)| *p).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let changes: Vec<Change> = page.changes.into_iter().map(|(_, c)| c).collect();
    // `a` once, at its update; `b` as its tombstone; `c` last.
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0], Change::Upsert(a2));
    assert!(
        matches!(&changes[1], Change::Delete { id, deleted_at } if *id == b.id && *deleted_at == at(4))
    );
    assert_eq!(changes[2], Change::Upsert(c));
    // The epoch stays.
    let again = store
        .changes(&u, FeedPosition::START, 1, horizon())
        .await
        .unwrap();
    assert_eq!(again.epoch, page.epoch);
}

pub async fn feed_pages_never_repeat_or_skip<S: TaskStore>(store: &S) {
    let u = user("alice");
    let mut ids = Vec::new();
    for i in 0..7 {
        let t = store
            .create(&u, new_task(&format!("t{i}")), None, at(i))
            .await
            .unwrap()
            .task;
        ids.push(t.id);
    }
    let seen = drain(store, &u, FeedPosition::START, 3).await;
    let mut got: Vec<_> = seen.iter().map(|(_, c)| c.task_id()).collect();
    assert_eq!(got.len(), 7, "{got:?}");
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    // After the last position, nothing, until the next change.
    let last = seen.last().unwrap().0;
    assert!(drain(store, &u, last, 3).await.is_empty());
    let patch = TaskPatch::builder().completed(true).build().unwrap();
    store.update(&u, ids[3], &patch, None, at(9)).await.unwrap();
    let next = drain(store, &u, last, 3).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1.task_id(), ids[3]);
    assert!(next[0].0 > last);
}

pub async fn feed_is_per_user<S: TaskStore>(store: &S) {
    let (a, b) = (user("alice"), user("bob"));
    let t = store
        .create(&a, new_task("mine"), None, at(1))
        .await
        .unwrap()
        .task;
    store.delete(&a, t.id, None, clock(2)).await.unwrap();
    store
        .create(&a, new_task("kept"), None, at(3))
        .await
        .unwrap();
    let page = store
        .changes(&b, FeedPosition::START, 100, horizon())
        .await
        .unwrap();
    assert!(page.changes.is_empty(), "{page:?}");
    assert_eq!((page.head, page.epoch), (0, 0));
    store
        .create(&b, new_task("bob's"), None, at(4))
        .await
        .unwrap();
    let page = store
        .changes(&b, FeedPosition::START, 100, horizon())
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 1);
    assert_eq!(page.head, 1, "bob's counter is his own");
}

pub async fn tombstones_past_the_retention_are_pruned_and_recorded<S: TaskStore>(store: &S) {
    let u = user("alice");
    let old = store
        .create(&u, new_task("old"), None, at(1))
        .await
        .unwrap()
        .task;
    store.delete(&u, old.id, None, clock(2)).await.unwrap();
    let first = store
        .changes(&u, FeedPosition::START, 100, horizon())
        .await
        .unwrap();
    let tomb = first.changes[0].0;
    assert_eq!(first.pruned_through, 0);

    // A delete more than the retention later prunes the old tombstone.
    let later = RETENTION_MS + 10;
    let other = store
        .create(&u, new_task("other"), None, at(later))
        .await
        .unwrap()
        .task;
    store
        .delete(&u, other.id, None, clock(later + 1))
        .await
        .unwrap();
    let now_horizon = at(later + 1 - RETENTION_MS);
    let page = store
        .changes(&u, FeedPosition::START, 100, now_horizon)
        .await
        .unwrap();
    assert!(page.pruned_through >= tomb.seq, "{page:?}");
    let ids: Vec<_> = page.changes.iter().map(|(_, c)| c.task_id()).collect();
    assert_eq!(ids, [other.id], "only the recent tombstone is left");
}

pub async fn batch_applies_in_order_as_one_change<S: TaskStore>(store: &S) {
    let u = user("alice");
    let a = store
        .create(&u, new_task("a"), None, at(1))
        .await
        .unwrap()
        .task;
    let b = store
        .create(&u, new_task("b"), None, at(2))
        .await
        .unwrap()
        .task;
    let before = store
        .changes(&u, FeedPosition::START, 100, horizon())
        .await
        .unwrap();
    let last = before.changes.last().unwrap().0;
    let ops = [
        BatchOp::Create {
            task: new_task("c"),
            idempotency: None,
        },
        BatchOp::Update {
            id: a.id,
            patch: TaskPatch::builder()
                .priority(Priority::High)
                .build()
                .unwrap(),
            expected: Some(a.version),
        },
        BatchOp::Update {
            id: a.id,
            patch: TaskPatch::builder().completed(true).build().unwrap(),
            expected: Some(a.version.next()),
        },
        BatchOp::Delete {
            id: b.id,
            expected: None,
        },
    ];
    let results = store.batch(&u, &ops, clock(10)).await.unwrap();
    assert_eq!(results.len(), 4);
    let BatchResult::Created(c) = &results[0] else {
        panic!("{results:?}")
    };
    assert!(!c.replayed);
    assert_eq!(c.task.created_at, at(10));
    let BatchResult::Updated(a3) = &results[2] else {
        panic!("{results:?}")
    };
    assert_eq!(a3.version, a.version.next().next());
    assert_eq!(a3.priority, Priority::High);
    assert_eq!(a3.completed_at, Some(at(10)));
    assert_eq!(results[3], BatchResult::Deleted(b.id));
    assert_eq!(store.get(&u, a.id).await.unwrap(), *a3);
    assert_eq!(store.get(&u, b.id).await, Err(StoreError::NotFound));

    // The batch's changes, and nothing else, follow the position before it (one number on
    // PostgreSQL and in memory, consecutive numbers on SQLite).
    let after = drain(store, &u, last, 100).await;
    assert_eq!(after.len(), 3, "c, a and b's tombstone: {after:?}");
    let mut ids: Vec<_> = after.iter().map(|(_, c)| c.task_id()).collect();
    ids.sort();
    let mut expected = vec![c.task.id, a.id, b.id];
    expected.sort();
    assert_eq!(ids, expected);
}

pub async fn batch_failure_applies_nothing_and_names_the_operation<S: TaskStore>(store: &S) {
    let u = user("alice");
    let a = store
        .create(&u, new_task("a"), None, at(1))
        .await
        .unwrap()
        .task;
    let b = store
        .create(&u, new_task("b"), None, at(2))
        .await
        .unwrap()
        .task;
    let ops = [
        BatchOp::Create {
            task: new_task("never"),
            idempotency: key("k", &new_task("never")),
        },
        BatchOp::Delete {
            id: b.id,
            expected: None,
        },
        BatchOp::Update {
            id: a.id,
            patch: TaskPatch::builder().title(title("x")).build().unwrap(),
            expected: Some(Version::new(99)),
        },
    ];
    let failure = store.batch(&u, &ops, clock(5)).await.unwrap_err();
    assert_eq!(failure.index, Some(2));
    assert_eq!(failure.error, StoreError::VersionConflict);
    // Nothing of it is left: no new task, `b` still there, `a` unchanged, the key free.
    let page = store
        .list(&u, &task_api_core::ListQuery::parse("").unwrap())
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(store.get(&u, a.id).await.unwrap(), a);
    assert_eq!(store.get(&u, b.id).await.unwrap(), b);
    let created = store
        .create(
            &u,
            new_task("other body"),
            key("k", &new_task("other body")),
            at(6),
        )
        .await
        .unwrap();
    assert!(!created.replayed, "the failed batch's key claim was undone");
    // A missing task is a 404 at its index.
    let missing = [BatchOp::Delete {
        id: task_api_core::TaskId::new(9_007_199_254_740_990).unwrap(),
        expected: None,
    }];
    let failure = store.batch(&u, &missing, clock(7)).await.unwrap_err();
    assert_eq!(
        (failure.index, failure.error),
        (Some(0), StoreError::NotFound)
    );
}

pub async fn batch_cannot_reach_another_users_task<S: TaskStore>(store: &S) {
    let (a, m) = (user("alice"), user("mallory"));
    let t = store
        .create(&a, new_task("alice's"), None, at(1))
        .await
        .unwrap()
        .task;
    for op in [
        BatchOp::Update {
            id: t.id,
            patch: TaskPatch::builder().title(title("pwned")).build().unwrap(),
            expected: None,
        },
        BatchOp::Update {
            id: t.id,
            patch: TaskPatch::builder().title(title("pwned")).build().unwrap(),
            expected: Some(t.version),
        },
        BatchOp::Delete {
            id: t.id,
            expected: None,
        },
        BatchOp::Delete {
            id: t.id,
            expected: Some(t.version),
        },
    ] {
        let ops = [
            BatchOp::Create {
                task: new_task("m"),
                idempotency: None,
            },
            op,
        ];
        let failure = store.batch(&m, &ops, clock(2)).await.unwrap_err();
        assert_eq!(
            (failure.index, failure.error),
            (Some(1), StoreError::NotFound)
        );
    }
    assert_eq!(store.get(&a, t.id).await.unwrap(), t);
    let mine = store
        .list(&m, &task_api_core::ListQuery::parse("").unwrap())
        .await
        .unwrap();
    assert_eq!(mine.total, 0);
}

pub async fn batch_keys_replay_and_refuse_like_single_creates<S: TaskStore>(store: &S) {
    let u = user("alice");
    let body = new_task("once");
    let first = store
        .create(&u, body.clone(), key("k1", &body), at(1))
        .await
        .unwrap();
    let ops = [
        BatchOp::Create {
            task: body.clone(),
            idempotency: key("k1", &body),
        },
        BatchOp::Create {
            task: new_task("two"),
            idempotency: key("k2", &new_task("two")),
        },
        BatchOp::Create {
            task: new_task("two"),
            idempotency: key("k2", &new_task("two")),
        },
    ];
    let results = store.batch(&u, &ops, clock(2)).await.unwrap();
    let [
        BatchResult::Created(r0),
        BatchResult::Created(r1),
        BatchResult::Created(r2),
    ] = results.as_slice()
    else {
        panic!("{results:?}")
    };
    assert!(r0.replayed && r0.task == first.task, "{r0:?}");
    assert!(!r1.replayed);
    assert!(
        r2.replayed && r2.task.id == r1.task.id,
        "same key in one batch: {r2:?}"
    );
    let reused = [BatchOp::Create {
        task: new_task("different"),
        idempotency: key("k1", &new_task("different")),
    }];
    let failure = store.batch(&u, &reused, clock(3)).await.unwrap_err();
    assert_eq!(
        (failure.index, failure.error),
        (Some(0), StoreError::IdempotencyKeyReused)
    );
}

pub async fn import_keeps_times_and_replays_by_key<S: TaskStore>(store: &S) {
    let u = user("alice");
    let mut done = new_task("done long ago");
    done.completed = true;
    let tasks = [
        ImportedTask {
            task: new_task("old"),
            created_at: at(-5_000),
            updated_at: at(-4_000),
            completed_at: None,
        },
        ImportedTask {
            task: done,
            created_at: at(-3_000),
            updated_at: at(-1_000),
            completed_at: Some(at(-2_000)),
        },
    ];
    let idem = task_api_core::Idempotency {
        key: task_api_core::IdempotencyKey::parse("import-1").unwrap(),
        fingerprint: "import:abc".into(),
    };
    let imported = store
        .import(&u, &tasks, Some(idem.clone()), at(0))
        .await
        .unwrap();
    assert_eq!((imported.count, imported.replayed), (2, false));
    let again = store
        .import(&u, &tasks, Some(idem.clone()), at(1))
        .await
        .unwrap();
    assert_eq!((again.count, again.replayed), (2, true));
    let other = task_api_core::Idempotency {
        fingerprint: "import:other".into(),
        ..idem.clone()
    };
    assert_eq!(
        store.import(&u, &tasks, Some(other), at(2)).await,
        Err(StoreError::IdempotencyKeyReused)
    );
    // A create with the import's key is a reuse too.
    let body = new_task("x");
    assert_eq!(
        store
            .create(&u, body.clone(), key("import-1", &body), at(3))
            .await,
        Err(StoreError::IdempotencyKeyReused)
    );

    let page = store
        .list(
            &u,
            &task_api_core::ListQuery::parse("sort=created_at").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.total, 2, "imported once");
    let (a, b) = (&page.tasks[0], &page.tasks[1]);
    assert_eq!(
        (a.created_at, a.updated_at, a.completed_at),
        (at(-5_000), at(-4_000), None)
    );
    assert_eq!(
        (b.created_at, b.updated_at, b.completed_at, b.completed),
        (at(-3_000), at(-1_000), Some(at(-2_000)), true)
    );
    assert_eq!(a.version, Version::FIRST);
    // Both in the feed.
    let feed = drain(store, &u, FeedPosition::START, 100).await;
    assert_eq!(feed.len(), 2);
}

pub async fn export_pages_in_creation_order<S: TaskStore>(store: &S) {
    let (u, other) = (user("alice"), user("bob"));
    // Creation times out of id order, two of them equal.
    let times = [7, 3, 3, 9, 1, 5, 2];
    for (i, t) in times.iter().enumerate() {
        store
            .create(&u, new_task(&format!("t{i}")), None, at(*t))
            .await
            .unwrap();
    }
    store
        .create(&other, new_task("bob's"), None, at(4))
        .await
        .unwrap();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.export_page(&u, after, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id));
        all.extend(page);
    }
    assert_eq!(all.len(), times.len());
    assert!(all.iter().all(|t| t.user_id == u));
    let keys: Vec<_> = all.iter().map(|t| (t.created_at, t.id)).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
}
