//! One behaviour suite for every [`TaskStore`]: the memory store, PostgreSQL and SQLite run
//! exactly these functions (see `core/tests/store_memory.rs`, `store_postgres.rs`,
//! `store_sqlite.rs`), and so does the served component through a store that speaks HTTP
//! (`tests/spin-host/tests/e2e.rs`).
//!
//! Each function takes a fresh, empty store. [`store_suite_tests!`](crate::store_suite_tests) turns every function into one
//! `#[tokio::test]` given an async factory returning `Option<(guard, store)>` (`None` skips,
//! the guard is dropped after the test, e.g. to drop a database schema).

use task_api_core::{
    Clock, Completion, Description, DueDate, IDEMPOTENCY_TTL_MS, Idempotency, IdempotencyKey,
    ListQuery, NewTask, Priority, StoreError, Task, TaskId, TaskPatch, TaskStore, Timestamp, Title,
    UserId, Version,
};

/// Generates one `#[tokio::test]` per suite function, each on a fresh store from `$fresh`.
/// The crate using it depends on `tokio` (with `macros` and `rt`).
#[macro_export]
macro_rules! store_suite_tests {
    ($fresh:path) => {
        $crate::store_suite_tests!(@each $fresh;
            round_trip_of_every_field,
            unknown_ids_are_not_found,
            ordering_and_paging_under_every_sort,
            totals_follow_the_filters,
            search_is_literal_and_case_insensitive,
            update_changes_only_the_patched_fields,
            version_conflicts_change_nothing,
            completion_rules,
            updated_at_never_goes_backwards,
            idempotent_create,
            other_users_see_nothing,
            clear_completed_counts,
            ids_are_unique_unordered_and_exact_in_javascript,
            ping_answers,
        );
    };
    (@each $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((_guard, store)) = $fresh().await else {
                    return;
                };
                $crate::store_suite::$name(&store).await;
            }
        )*
    };
}

/// An instant well inside the range every store handles.
pub const T0: i64 = 1_795_256_130_123;

pub fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

/// The clock of a write at `at(ms)`, keeping tombstones for 30 days.
pub fn clock(ms: i64) -> Clock {
    Clock::new(at(ms), RETENTION_MS)
}

/// The default retention of tombstones, in ms.
pub const RETENTION_MS: i64 = 30 * 86_400_000;

pub fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

pub fn title(s: &str) -> Title {
    Title::parse(s).unwrap()
}

pub fn new_task(t: &str) -> NewTask {
    NewTask::new(title(t))
}

pub fn date(s: &str) -> Option<DueDate> {
    Some(DueDate::parse(s).unwrap())
}

pub fn key(k: &str, new: &NewTask) -> Option<Idempotency> {
    Some(Idempotency {
        key: IdempotencyKey::parse(k).unwrap(),
        fingerprint: new.fingerprint(),
    })
}

pub async fn create<S: TaskStore>(store: &S, u: &UserId, new: NewTask, now: Timestamp) -> Task {
    let created = store.create(u, new, None, now).await.unwrap();
    assert!(!created.replayed);
    created.task
}

/// Every task of `u` in the default order, through paging.
pub async fn all_tasks<S: TaskStore>(store: &S, u: &UserId) -> Vec<Task> {
    collect_pages(store, u, "limit=100").await.0
}

/// Pages through `base` (a query string without cursor) exactly as a client of the handler
/// does, checking every page's total and has_more; returns the tasks and the total.
pub async fn collect_pages<S: TaskStore>(store: &S, u: &UserId, base: &str) -> (Vec<Task>, u64) {
    let first = ListQuery::parse(base).unwrap();
    let mut query = first.clone();
    let mut tasks = Vec::new();
    let mut total = None;
    for _ in 0..1000 {
        let page = store.list(u, &query).await.unwrap();
        assert!(page.tasks.len() <= query.limit() as usize, "{base}");
        if let Some(t) = total {
            assert_eq!(page.total, t, "total changed between pages of {base}");
        }
        total = Some(page.total);
        tasks.extend(page.tasks.iter().cloned());
        if !page.has_more {
            return (tasks, page.total);
        }
        assert_eq!(page.tasks.len(), query.limit() as usize, "{base}");
        let cursor = first.cursor_after(page.tasks.last().unwrap());
        query = ListQuery::parse(&format!("{base}&cursor={cursor}")).unwrap();
    }
    panic!("paging {base} never ended");
}

/// Checks that paging through `base` yields exactly the reference: `all` filtered by the
/// query's `matches` and sorted by its `Sort::compare`.
pub async fn check_listing<S: TaskStore>(store: &S, u: &UserId, all: &[Task], base: &str) {
    let q = ListQuery::parse(base).unwrap();
    let mut expected: Vec<Task> = all.iter().filter(|t| q.matches(t)).cloned().collect();
    expected.sort_by(|a, b| q.sort().compare_tasks(a, b));
    let (got, total) = collect_pages(store, u, base).await;
    let ids = |v: &[Task]| v.iter().map(|t| t.id.get()).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&expected), "order of {base}");
    assert_eq!(got, expected, "tasks of {base}");
    assert_eq!(total, expected.len() as u64, "total of {base}");
}

const NASTY: [&str; 8] = [
    "it's",
    "say \"hi\"",
    "a; DROP TABLE tasks; --",
    "-- not a comment",
    "100% _done_",
    r"back\slash \% \_",
    "Ünïcödé ✓ 日本語 𝄞 🦀",
    "$1 ?1 :x @y",
];

pub async fn round_trip_of_every_field<S: TaskStore>(store: &S) {
    for (i, text) in NASTY.iter().enumerate() {
        let u = user(&format!("{text}|u{i}"));
        let mut new = new_task(text);
        new.description = Description::parse(&format!("{text}\n\ttab\r\nline")).unwrap();
        new.priority = Priority::ALL[i % 3];
        new.due_date = if i % 2 == 0 { date("2028-02-29") } else { None };
        new.completed = i % 3 == 0;
        let now = at(i as i64);
        let created = store.create(&u, new.clone(), None, now).await.unwrap();
        assert!(!created.replayed);
        let expected = Task::create(created.task.id, u.clone(), new, now);
        assert_eq!(created.task, expected);
        assert_eq!(store.get(&u, created.task.id).await.unwrap(), expected);
        assert_eq!(all_tasks(store, &u).await, std::slice::from_ref(&expected));
    }
    // Longest values, and a value with every field empty.
    let u = user(&"ü".repeat(128));
    let mut new = new_task(&"é".repeat(200));
    new.description = Description::parse(&"ß".repeat(2000)).unwrap();
    new.due_date = date("9999-12-31");
    let t = create(store, &u, new.clone(), at(0)).await;
    assert_eq!(t, Task::create(t.id, u.clone(), new, at(0)));
    assert_eq!(store.get(&u, t.id).await.unwrap(), t);
}

pub async fn unknown_ids_are_not_found<S: TaskStore>(store: &S) {
    let u = user("u1");
    let t = create(store, &u, new_task("x"), at(0)).await;
    let missing = TaskId::new(t.id.get() + 1000).unwrap();
    let patch = TaskPatch::builder().completed(true).build().unwrap();
    assert_eq!(store.get(&u, missing).await, Err(StoreError::NotFound));
    for expected in [None, Some(Version::FIRST)] {
        assert_eq!(
            store.update(&u, missing, &patch, expected, at(1)).await,
            Err(StoreError::NotFound)
        );
        assert_eq!(
            store
                .set_completion(&u, missing, Completion::Toggle, expected, at(1))
                .await,
            Err(StoreError::NotFound)
        );
        assert_eq!(
            store.delete(&u, missing, expected, clock(0)).await,
            Err(StoreError::NotFound)
        );
    }
}

/// Tasks with ties under every sort key: equal folded titles, equal priorities, equal and
/// missing due dates, equal creation and update times.
async fn sortable_tasks<S: TaskStore>(store: &S, u: &UserId) -> Vec<Task> {
    // (title, description, priority, created at, due date)
    type Spec<'a> = (&'a str, Option<&'a str>, Priority, i64, Option<&'a str>);
    let specs: [Spec; 12] = [
        ("b", None, Priority::Low, 0, Some("2026-03-01")),
        ("B", Some("Milk"), Priority::High, 0, None),
        ("a", None, Priority::Medium, 5, Some("2026-03-01")),
        ("é", Some("café"), Priority::Low, 5, None),
        ("Z", None, Priority::High, 5, Some("2025-12-31")),
        ("ä", None, Priority::Medium, 7, Some("2026-03-02")),
        ("Ab", Some("50% off"), Priority::Low, 7, None),
        ("ab", None, Priority::High, 9, Some("2026-03-01")),
        (
            "z",
            Some("under_score"),
            Priority::Medium,
            9,
            Some("2027-01-01"),
        ),
        ("aB", None, Priority::Medium, 9, None),
        ("日本", None, Priority::Low, 12, Some("2026-03-02")),
        ("[x]", Some("B"), Priority::High, 12, Some("2026-01-15")),
    ];
    let mut tasks = Vec::new();
    for (t, d, p, created, due) in specs {
        let mut new = new_task(t);
        new.description = d.and_then(|d| Description::parse(d).unwrap());
        new.priority = p;
        new.due_date = due.and_then(DueDate::parse);
        tasks.push(create(store, u, new, at(created)).await);
    }
    // Vary updated_at (with ties) and completion.
    for (i, when) in [(0, 20), (3, 20), (5, 15), (8, 30)] {
        tasks[i] = store
            .set_completion(u, tasks[i].id, Completion::Toggle, None, at(when))
            .await
            .unwrap();
    }
    tasks
}

const SORTS: [&str; 10] = [
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "title",
    "-title",
    "priority",
    "-priority",
    "due_date",
    "-due_date",
];

pub async fn ordering_and_paging_under_every_sort<S: TaskStore>(store: &S) {
    let u = user("sorter");
    let all = sortable_tasks(store, &u).await;
    // Another user's tasks must never show up.
    create(store, &user("other"), new_task("b"), at(0)).await;
    for sort in SORTS {
        for limit in [1, 2, 5, 100] {
            check_listing(store, &u, &all, &format!("sort={sort}&limit={limit}")).await;
        }
        check_listing(
            store,
            &u,
            &all,
            &format!("sort={sort}&limit=3&status=pending"),
        )
        .await;
    }
    check_listing(store, &u, &all, "").await; // the default order
}

pub async fn totals_follow_the_filters<S: TaskStore>(store: &S) {
    let u = user("filterer");
    let all = sortable_tasks(store, &u).await;
    for filter in [
        "status=pending",
        "status=completed",
        "status=all",
        "priority=low",
        "priority=low,high",
        "priority=high,medium,low",
        "q=b",
        "q=CAF%C3%89",
        "q=%E6%97%A5",
        "q=nothing-matches",
        "due_after=2026-03-01",
        "due_before=2026-03-01",
        "due_after=2026-03-01&due_before=2026-03-01",
        "due_after=2026-01-01&due_before=2026-12-31&status=pending&priority=low,medium",
        "q=a&sort=title&status=pending",
    ] {
        check_listing(store, &u, &all, &format!("{filter}&limit=2")).await;
    }
    let empty = store
        .list(&user("nobody"), &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(
        (empty.tasks.len(), empty.total, empty.has_more),
        (0, 0, false)
    );
}

pub async fn search_is_literal_and_case_insensitive<S: TaskStore>(store: &S) {
    let u = user("searcher");
    let mut all = Vec::new();
    for (t, d) in [
        ("100% done", None),
        ("100 percent", None),
        ("a_b", None),
        ("axb", None),
        (r"back\slash", None),
        ("back slash", None),
        ("plain", Some("has 50% and a_b in it")),
        ("MiXeD CaSe", Some(r"C:\Temp")),
        ("it's", None),
    ] {
        let mut new = new_task(t);
        new.description = d.and_then(|d| Description::parse(d).unwrap());
        all.push(create(store, &u, new, at(0)).await);
    }
    let titles = |q: &str| {
        let q = q.to_owned();
        let all = all.clone();
        async move {
            let query = ListQuery::parse(&format!("q={q}&sort=title")).unwrap();
            let mut expected: Vec<_> = all.iter().filter(|t| query.matches(t)).collect();
            expected.sort_by(|a, b| query.sort().compare_tasks(a, b));
            let expected: Vec<String> = expected.iter().map(|t| t.title.as_str().into()).collect();
            (query, expected)
        }
    };
    for (q, want) in [
        ("%25", vec!["100% done", "plain"]),
        ("_", vec!["a_b", "plain"]),
        ("%5C", vec!["back\\slash", "MiXeD CaSe"]),
        ("mixed+case", vec!["MiXeD CaSe"]),
        ("C%3A%5C", vec!["MiXeD CaSe"]),
        ("%27", vec!["it's"]),
        ("a%25", vec![]),
    ] {
        let (query, expected) = titles(q).await;
        let want: Vec<String> = want.into_iter().map(String::from).collect();
        let mut want_sorted = want.clone();
        want_sorted.sort_by_key(|t| t.to_lowercase());
        assert_eq!(expected, want_sorted, "reference for q={q}");
        let page = store.list(&u, &query).await.unwrap();
        let got: Vec<String> = page.tasks.iter().map(|t| t.title.as_str().into()).collect();
        assert_eq!(got, want_sorted, "q={q}");
        assert_eq!(page.total, want.len() as u64, "q={q}");
    }
}

pub async fn update_changes_only_the_patched_fields<S: TaskStore>(store: &S) {
    let u = user("updater");
    let mut new = new_task("Original");
    new.description = Description::parse("desc").unwrap();
    new.due_date = date("2026-05-05");
    let mut expected = create(store, &u, new, at(0)).await;
    let patches = [
        TaskPatch::builder().title(title("Renamed")).build(),
        TaskPatch::builder().description(None).build(),
        TaskPatch::builder()
            .description(Description::parse("new 'desc'").unwrap())
            .priority(Priority::High)
            .build(),
        TaskPatch::builder().due_date(None).build(),
        TaskPatch::builder().due_date(date("2030-01-01")).build(),
        TaskPatch::builder().completed(true).build(),
        TaskPatch::builder()
            .title(title("All at once"))
            .description(None)
            .priority(Priority::Low)
            .due_date(date("2031-02-03"))
            .completed(false)
            .build(),
    ];
    for (i, patch) in patches.into_iter().enumerate() {
        let patch = patch.unwrap();
        let now = at(10 * (i as i64 + 1));
        let got = store
            .update(&u, expected.id, &patch, Some(expected.version), now)
            .await
            .unwrap();
        expected.apply(&patch, now);
        assert_eq!(got, expected, "patch {i}");
        assert_eq!(store.get(&u, expected.id).await.unwrap(), expected);
    }
    // The title fold follows the title: sorting and searching see the new one.
    let found = store
        .list(&u, &ListQuery::parse("q=all+at").unwrap())
        .await
        .unwrap();
    assert_eq!(found.tasks, [expected.clone()]);
    let stale = store
        .list(&u, &ListQuery::parse("q=original").unwrap())
        .await
        .unwrap();
    assert!(stale.tasks.is_empty());
}

pub async fn version_conflicts_change_nothing<S: TaskStore>(store: &S) {
    let u = user("conflicted");
    let t = create(store, &u, new_task("x"), at(0)).await;
    let stale = Version::new(t.version.get() + 5);
    let patch = TaskPatch::builder().title(title("y")).build().unwrap();
    assert_eq!(
        store.update(&u, t.id, &patch, Some(stale), at(1)).await,
        Err(StoreError::VersionConflict)
    );
    for c in [
        Completion::Toggle,
        Completion::Set(true),
        Completion::Set(false),
    ] {
        assert_eq!(
            store.set_completion(&u, t.id, c, Some(stale), at(1)).await,
            Err(StoreError::VersionConflict)
        );
    }
    assert_eq!(
        store.delete(&u, t.id, Some(stale), clock(0)).await,
        Err(StoreError::VersionConflict)
    );
    assert_eq!(
        store.get(&u, t.id).await.unwrap(),
        t,
        "a conflict changed the task"
    );

    // The current version works, and moves on.
    let t2 = store
        .update(&u, t.id, &patch, Some(t.version), at(2))
        .await
        .unwrap();
    assert_eq!(t2.version, t.version.next());
    assert_eq!(
        store.update(&u, t.id, &patch, Some(t.version), at(3)).await,
        Err(StoreError::VersionConflict)
    );
    let t3 = store
        .set_completion(&u, t.id, Completion::Toggle, Some(t2.version), at(3))
        .await
        .unwrap();
    assert_eq!(t3.version, t2.version.next());
    assert_eq!(
        store.delete(&u, t.id, Some(t2.version), clock(0)).await,
        Err(StoreError::VersionConflict)
    );
    store
        .delete(&u, t.id, Some(t3.version), clock(0))
        .await
        .unwrap();
    assert_eq!(store.get(&u, t.id).await, Err(StoreError::NotFound));
    assert_eq!(
        store.delete(&u, t.id, None, clock(0)).await,
        Err(StoreError::NotFound)
    );
}

pub async fn completion_rules<S: TaskStore>(store: &S) {
    let u = user("completer");
    let t = create(store, &u, new_task("x"), at(0)).await;
    assert_eq!((t.completed, t.completed_at), (false, None));

    // Toggle sets completed_at to now, toggling back clears it.
    let t1 = store
        .set_completion(&u, t.id, Completion::Toggle, None, at(10))
        .await
        .unwrap();
    assert_eq!((t1.completed, t1.completed_at), (true, Some(at(10))));
    let t2 = store
        .set_completion(&u, t.id, Completion::Toggle, None, at(20))
        .await
        .unwrap();
    assert_eq!((t2.completed, t2.completed_at), (false, None));
    assert_eq!(t2.version.get(), 3);

    // Setting completed twice keeps the first completion time, but still counts as a change.
    let t3 = store
        .set_completion(&u, t.id, Completion::Set(true), None, at(30))
        .await
        .unwrap();
    let t4 = store
        .set_completion(&u, t.id, Completion::Set(true), None, at(40))
        .await
        .unwrap();
    assert_eq!(t4.completed_at, Some(at(30)));
    assert_eq!((t4.updated_at, t4.version), (at(40), t3.version.next()));
    // So does completing through an update.
    let patch = TaskPatch::builder().completed(true).build().unwrap();
    let t5 = store.update(&u, t.id, &patch, None, at(50)).await.unwrap();
    assert_eq!(t5.completed_at, Some(at(30)));
    // Setting pending clears it, twice too.
    for when in [60, 70] {
        let p = store
            .set_completion(&u, t.id, Completion::Set(false), None, at(when))
            .await
            .unwrap();
        assert_eq!((p.completed, p.completed_at), (false, None));
    }
    // A task created completed was completed when created.
    let mut new = new_task("done already");
    new.completed = true;
    let c = create(store, &u, new, at(80)).await;
    assert_eq!(c.completed_at, Some(at(80)));

    // An even number of toggles leaves the task as it was (but for version and updated_at).
    let mut last = store.get(&u, t.id).await.unwrap();
    for i in 0..6 {
        last = store
            .set_completion(
                &u,
                t.id,
                Completion::Toggle,
                Some(last.version),
                at(100 + i),
            )
            .await
            .unwrap();
    }
    assert_eq!((last.completed, last.completed_at), (false, None));
    assert_eq!(last.version.get(), 8 + 6);
}

pub async fn updated_at_never_goes_backwards<S: TaskStore>(store: &S) {
    let u = user("clock-skew");
    let t = create(store, &u, new_task("x"), at(1000)).await;
    let patch = TaskPatch::builder()
        .priority(Priority::High)
        .build()
        .unwrap();
    let t1 = store.update(&u, t.id, &patch, None, at(500)).await.unwrap();
    assert_eq!((t1.updated_at, t1.version.get()), (at(1000), 2));
    let t2 = store
        .set_completion(&u, t.id, Completion::Toggle, None, at(400))
        .await
        .unwrap();
    assert_eq!(t2.updated_at, at(1000));
    assert_eq!(t2.completed_at, Some(at(400)));
    let t3 = store
        .update(&u, t.id, &patch, None, at(2000))
        .await
        .unwrap();
    assert_eq!(t3.updated_at, at(2000));
}

pub async fn idempotent_create<S: TaskStore>(store: &S) {
    let (alice, bob) = (user("alice"), user("bob"));
    let first = new_task("Buy milk");
    let k = "retry-1 '%_\\";
    let c1 = store
        .create(&alice, first.clone(), key(k, &first), at(0))
        .await
        .unwrap();
    assert!(!c1.replayed);

    // The same request again is a replay of the same task.
    let c2 = store
        .create(&alice, first.clone(), key(k, &first), at(1000))
        .await
        .unwrap();
    assert!(c2.replayed);
    assert_eq!(c2.task, c1.task);

    // The same key with another body is refused and creates nothing.
    let other = new_task("Buy bread");
    assert_eq!(
        store
            .create(&alice, other.clone(), key(k, &other), at(2000))
            .await,
        Err(StoreError::IdempotencyKeyReused)
    );
    assert_eq!(all_tasks(store, &alice).await.len(), 1);

    // Keys are per user.
    let b1 = store
        .create(&bob, first.clone(), key(k, &first), at(3000))
        .await
        .unwrap();
    assert!(!b1.replayed);
    assert_ne!(b1.task.id, c1.task.id);

    // A replay returns the task as it was created (the first response's body), even after
    // the task changed.
    let changed = store
        .set_completion(&alice, c1.task.id, Completion::Toggle, None, at(4000))
        .await
        .unwrap();
    assert_ne!(changed, c1.task);
    let c3 = store
        .create(
            &alice,
            first.clone(),
            key(k, &first),
            at(IDEMPOTENCY_TTL_MS - 1),
        )
        .await
        .unwrap();
    assert!(c3.replayed);
    assert_eq!(c3.task, c1.task);

    // After 24 hours the key is free again, for any body.
    let c4 = store
        .create(
            &alice,
            other.clone(),
            key(k, &other),
            at(IDEMPOTENCY_TTL_MS),
        )
        .await
        .unwrap();
    assert!(!c4.replayed);
    assert_ne!(c4.task.id, c1.task.id);
    let c5 = store
        .create(
            &alice,
            other.clone(),
            key(k, &other),
            at(IDEMPOTENCY_TTL_MS + 5),
        )
        .await
        .unwrap();
    assert!(c5.replayed);
    assert_eq!(c5.task, c4.task);
    assert_eq!(all_tasks(store, &alice).await.len(), 2);

    // A replay of a deleted task is not found (and creates nothing).
    store
        .delete(&alice, c4.task.id, None, clock(0))
        .await
        .unwrap();
    assert_eq!(
        store
            .create(
                &alice,
                other.clone(),
                key(k, &other),
                at(IDEMPOTENCY_TTL_MS + 6)
            )
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(all_tasks(store, &alice).await.len(), 1);

    // A create without a key is never a replay.
    let plain = store
        .create(&alice, first.clone(), None, at(0))
        .await
        .unwrap();
    assert!(!plain.replayed);
    assert_ne!(plain.task.id, c1.task.id);
}

pub async fn other_users_see_nothing<S: TaskStore>(store: &S) {
    let (alice, mallory) = (user("alice"), user("mallory"));
    let mut new = new_task("secret");
    new.completed = true;
    let t = create(store, &alice, new, at(0)).await;
    let patch = TaskPatch::builder().title(title("pwned")).build().unwrap();
    assert_eq!(store.get(&mallory, t.id).await, Err(StoreError::NotFound));
    for expected in [None, Some(t.version), Some(Version::new(99))] {
        assert_eq!(
            store.update(&mallory, t.id, &patch, expected, at(1)).await,
            Err(StoreError::NotFound)
        );
        for c in [Completion::Toggle, Completion::Set(false)] {
            assert_eq!(
                store
                    .set_completion(&mallory, t.id, c, expected, at(1))
                    .await,
                Err(StoreError::NotFound)
            );
        }
        assert_eq!(
            store.delete(&mallory, t.id, expected, clock(0)).await,
            Err(StoreError::NotFound)
        );
    }
    assert_eq!(store.clear_completed(&mallory, clock(0)).await, Ok(0));
    let page = store.list(&mallory, &ListQuery::default()).await.unwrap();
    assert_eq!((page.tasks.len(), page.total), (0, 0));
    // An idempotency key of alice's means nothing to mallory.
    let k = new_task("secret");
    store
        .create(&alice, k.clone(), key("shared", &k), at(0))
        .await
        .unwrap();
    let m = store
        .create(&mallory, k.clone(), key("shared", &k), at(0))
        .await
        .unwrap();
    assert!(!m.replayed);
    assert_eq!(m.task.user_id, mallory);
    assert_eq!(store.get(&alice, t.id).await.unwrap(), t);
}

pub async fn clear_completed_counts<S: TaskStore>(store: &S) {
    let (a, b) = (user("a"), user("b"));
    for (u, done, pending) in [(&a, 3, 2), (&b, 1, 1)] {
        for i in 0..(done + pending) {
            let mut new = new_task(&format!("t{i}"));
            new.completed = i < done;
            create(store, u, new, at(i)).await;
        }
    }
    assert_eq!(store.clear_completed(&a, clock(0)).await, Ok(3));
    assert_eq!(store.clear_completed(&a, clock(0)).await, Ok(0));
    let left = all_tasks(store, &a).await;
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|t| !t.completed));
    assert_eq!(all_tasks(store, &b).await.len(), 2);
    assert_eq!(store.clear_completed(&b, clock(0)).await, Ok(1));
}

/// Ids come from `TaskId::fresh`: no two alike, none above 2^53 − 1, and no sequence a
/// user could read the service's activity from (30 random ids are in creation order once
/// in 30! ≈ 2.7·10^32 runs, so a sequence fails this).
pub async fn ids_are_unique_unordered_and_exact_in_javascript<S: TaskStore>(store: &S) {
    let u = user("u");
    let mut ids = Vec::new();
    for i in 0..30 {
        let task = create(store, &u, new_task(&format!("t{i}")), at(i)).await;
        ids.push(task.id.get());
        if i % 3 == 0 {
            store.delete(&u, task.id, None, clock(0)).await.unwrap();
        }
    }
    assert!(
        ids.iter().all(|id| (1..=(1 << 53) - 1).contains(id)),
        "{ids:?}"
    );
    assert!(!ids.is_sorted(), "ids in creation order: {ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "an id was issued twice: {ids:?}");
}

pub async fn ping_answers<S: TaskStore>(store: &S) {
    store.ping().await.unwrap();
}

// ---------------------------------------------------------------- accounts

/// Generates one `#[tokio::test]` per [`AccountStore`] suite function, each on a fresh store
/// from `$fresh` (as [`store_suite_tests!`](crate::store_suite_tests)).
///
/// [`AccountStore`]: task_api_core::AccountStore
#[macro_export]
macro_rules! account_suite_tests {
    ($fresh:path) => {
        $crate::store_suite_tests!(@each $fresh;
            accounts_round_trip,
            accounts_are_found_by_folded_email,
            a_taken_email_is_refused_whatever_its_case,
            unknown_accounts_are_none,
            throttle_attempts_count_up_per_key_and_forgiving_takes_one_back,
            throttle_counts_of_windows_that_are_over_are_dropped,
        );
    };
}

pub fn account(id: &str, email: &str, ms: i64) -> task_api_core::User {
    task_api_core::User {
        id: user(id),
        email: task_api_core::Email::parse(email).unwrap(),
        created_at: at(ms),
    }
}

const HASH: &str =
    "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

pub async fn accounts_round_trip<S: task_api_core::AccountStore>(store: &S) {
    let ann = account("u_0123456789abcdef01234567", "Ann@Example.com", 5);
    store.create_user(&ann, HASH).await.unwrap();
    assert_eq!(store.user(&ann.id).await.unwrap(), Some(ann.clone()));
    let (found, hash) = store.login_record(&ann.email).await.unwrap().unwrap();
    assert_eq!(found, ann);
    // The email keeps the case it was registered with; the time its milliseconds.
    assert_eq!(found.email.as_str(), "Ann@Example.com");
    assert_eq!(found.created_at, at(5));
    assert_eq!(hash, HASH);
}

pub async fn accounts_are_found_by_folded_email<S: task_api_core::AccountStore>(store: &S) {
    let ann = account("u_1", "ann@example.com", 0);
    let bob = account("u_2", "BOB@example.com", 1);
    store.create_user(&ann, HASH).await.unwrap();
    store.create_user(&bob, "$argon2id$other").await.unwrap();
    let by = |e: &str| task_api_core::Email::parse(e).unwrap();
    let (found, _) = store
        .login_record(&by("ANN@EXAMPLE.COM"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, ann.id);
    let (found, hash) = store
        .login_record(&by("bob@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, hash.as_str()), (bob.id, "$argon2id$other"));
}

pub async fn a_taken_email_is_refused_whatever_its_case<S: task_api_core::AccountStore>(store: &S) {
    let ann = account("u_1", "ann@example.com", 0);
    store.create_user(&ann, HASH).await.unwrap();
    let again = account("u_2", "ANN@Example.com", 1);
    assert_eq!(
        store.create_user(&again, HASH).await,
        Err(StoreError::EmailTaken)
    );
    // Nothing of the refused account was stored.
    assert_eq!(store.user(&again.id).await.unwrap(), None);
    let (found, _) = store.login_record(&again.email).await.unwrap().unwrap();
    assert_eq!(found, ann);
}

pub async fn unknown_accounts_are_none<S: task_api_core::AccountStore>(store: &S) {
    assert_eq!(store.user(&user("u_nobody")).await.unwrap(), None);
    let email = task_api_core::Email::parse("nobody@example.com").unwrap();
    assert_eq!(store.login_record(&email).await.unwrap(), None);
}

pub async fn throttle_attempts_count_up_per_key_and_forgiving_takes_one_back<
    S: task_api_core::AccountStore,
>(
    store: &S,
) {
    let a = task_api_core::ThrottleKey::new("login:email:a@example.com", 0);
    let b = task_api_core::ThrottleKey::new("login:email:b@example.com", 0);
    let until = at(900_000);
    assert_eq!(store.count_attempt(&a, until, at(1)).await.unwrap(), 1);
    assert_eq!(store.count_attempt(&a, until, at(2)).await.unwrap(), 2);
    assert_eq!(store.count_attempt(&b, until, at(3)).await.unwrap(), 1);
    store.forgive_attempt(&a).await.unwrap();
    assert_eq!(store.count_attempt(&a, until, at(4)).await.unwrap(), 2);
    // Forgiving what was never counted is nothing.
    let c = task_api_core::ThrottleKey::new("login:email:c@example.com", 0);
    store.forgive_attempt(&c).await.unwrap();
    assert_eq!(store.count_attempt(&c, until, at(5)).await.unwrap(), 1);
}

pub async fn throttle_counts_of_windows_that_are_over_are_dropped<
    S: task_api_core::AccountStore,
>(
    store: &S,
) {
    let old = task_api_core::ThrottleKey::new("login:addr:192.0.2.1", 0);
    for n in 1..=3 {
        assert_eq!(
            store.count_attempt(&old, at(900_000), at(n)).await.unwrap(),
            n as u64
        );
    }
    // A count made after the first window ended drops the rows of windows that are over.
    // Then the old key counts afresh, as if its window had never been (it is never asked
    // for again in practice: later attempts have the new window's key).
    let new = task_api_core::ThrottleKey::new("login:addr:192.0.2.1", 900);
    assert_eq!(
        store
            .count_attempt(&new, at(1_800_000), at(900_001))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_attempt(&old, at(900_000), at(900_002))
            .await
            .unwrap(),
        1
    );
}
