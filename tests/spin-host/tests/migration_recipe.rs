//! docs/migrating.md, run as written: its fenced `sh` and `sql` blocks are taken from the
//! page (found by a distinctive line in each, so the page cannot drift from what runs here)
//! and run with `sh` (`psql`, `curl`, `python3`) in a temporary directory, against the
//! served `task_api_spin.wasm` (on SQLite) and an old backend's `tasks` table in a schema of
//! its own in the test database (`TEST_DATABASE_URL`; `SKIP_DB_TESTS=1` skips the test with
//! a message, CI never does).
//!
//! The old table holds awkward rows for three users (a title with a comma, quotes and
//! non-ASCII, a NULL and an empty description, a multi-line one with a CR, a NULL
//! `updated_at`, one before `created_at`, fractions of a millisecond, two tasks of one
//! instant, a user id with a quote and a space), and the scripts run with the session in a
//! zone that is not UTC (`PGTZ`). Checked through the API (`GET /api/tasks`, paged):
//!
//! - step 1 and step 2 for one user move every row with its title, description,
//!   `completed`, `created_at` (the old time in UTC, to the millisecond), `updated_at` (the
//!   later of the two, `created_at` when NULL) and `completed_at`; running them again is a
//!   replay (`Idempotent-Replayed: true`) that imports nothing;
//! - `migrate-all.sh` after that replays the users moved by hand and moves the others; run
//!   again it replays everything; with a small `CHUNK` on a fresh service it splits a user
//!   into parts, and replays them all when run again; a user whose part would be over
//!   8 MiB stops it before anything is sent, and a smaller `CHUNK` moves that user; a user
//!   moved by hand with more tasks than `CHUNK` stops it at a 422 (nothing imported twice),
//!   and a `CHUNK` of at least that count replays everyone;
//! - the rows-to-fix query lists the rows the import refuses, and the import's 422 names
//!   them (nothing imported);
//! - `mint` with `ISS` and `AUD` for a service that sets `jwt_issuer` and `jwt_audience`
//!   (a 401 without them);
//! - the query of the time columns' type, the naive `timestamp` variants of step 1 (UTC
//!   and `Europe/Berlin`) and the shift the `timestamptz` command gives such columns;
//! - the way out: the export block moves a user (with a priority and a due date) to a
//!   second service with another `jwt_secret`, in NDJSON and in CSV, and the splitting block
//!   moves a user in parts.
//!
//! Each `curl` of the page's commands runs through a wrapper that only adds `-D` (the
//! response headers, to read statuses and `Idempotent-Replayed`); the placeholder lines
//! (`API=https://tasks.example.com`, …) are dropped and the values come from the
//! environment.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use spin_test_host::{Host, LogSink, RunningHost, workspace_root};
use task_api_test_kit::postgres::{PgSchema, connect, database_url, reachable};
use task_api_test_kit::{
    Http, SECRET, TempDir, Transport, system_now_secs, temp_dir, token_signed_with,
};

/// The second service's `jwt_secret` (the way out moves between two secrets).
const OTHER_SECRET: &str = "the other deployment's secret, also 32 bytes or more";

/// The session time zone of every `psql` here: not UTC, so a command that printed times in
/// the session's zone would show.
const SESSION_TZ: &str = "Asia/Kolkata";

/// The tasks of the user whose file is over 8 MiB with the default `CHUNK` (5,000): each
/// about 2,070 bytes of CSV.
const BIG_TASKS: usize = 4_300;

/// A user id with a quote and a space: `-v uid=…` must carry it intact.
const CAROL: &str = "usr_O'Neil 7";

// ---------------------------------------------------------------- the page's blocks

/// A fenced block of docs/migrating.md: its language and its lines.
struct Block {
    lang: String,
    body: String,
}

/// Every fenced block of `doc`.
fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for line in doc.lines() {
        match open.as_mut() {
            None => {
                if let Some(lang) = line.strip_prefix("```") {
                    open = Some(Block {
                        lang: lang.trim().to_owned(),
                        body: String::new(),
                    });
                }
            }
            Some(block) => {
                if line.trim_end() == "```" {
                    out.extend(open.take());
                } else {
                    block.body.push_str(line);
                    block.body.push('\n');
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "docs/migrating.md: an unclosed fenced block"
    );
    out
}

/// The one block of `lang` that contains every line fragment of `with` and none of
/// `without`.
fn block(blocks: &[Block], lang: &str, with: &[&str], without: &[&str]) -> String {
    let found: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.lang == lang)
        .filter(|b| with.iter().all(|w| b.body.contains(w)))
        .filter(|b| !without.iter().any(|w| b.body.contains(w)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "docs/migrating.md: one ```{lang} block with {with:?} and without {without:?}, found {}",
        found.len()
    );
    found[0].body.clone()
}

/// `script` without its placeholder assignments (`NAME=…` lines, one for each of `names`),
/// whose values the environment gives instead.
fn placeholders_dropped(script: &str, names: &[&str]) -> String {
    let mut dropped = Vec::new();
    let kept: Vec<&str> = script
        .lines()
        .filter(|line| {
            let name = names
                .iter()
                .find(|n| line.starts_with(&format!("{n}=")))
                .copied();
            dropped.extend(name);
            name.is_none()
        })
        .collect();
    dropped.sort_unstable();
    let mut want = names.to_vec();
    want.sort_unstable();
    assert_eq!(dropped, want, "the placeholder lines of:\n{script}");
    kept.join("\n") + "\n"
}

/// `text` with `from` replaced by `to`, which must occur `times` times.
fn replaced(text: &str, from: &str, to: &str, times: usize) -> String {
    assert_eq!(text.matches(from).count(), times, "{from:?} in:\n{text}");
    text.replace(from, to)
}

/// The page's commands, ready to run.
struct Recipe {
    /// The `mint` function (its `SECRET` placeholder dropped).
    mint: String,
    /// Step 1 for `timestamptz` columns (placeholders `OLD_DATABASE_URL`, `USER_ID` dropped).
    copy_timestamptz: String,
    /// Step 1 for naive UTC values.
    copy_naive_utc: String,
    /// Step 1 for naive local times of `Europe/Berlin`.
    copy_naive_berlin: String,
    /// Step 2 (placeholder `API` dropped).
    import: String,
    /// `migrate-all.sh`, as it is.
    migrate_all: String,
    /// The rows-to-fix query.
    rows_to_fix: String,
    /// The query of the time columns' type.
    column_types: String,
    /// The way out for one user (placeholders `OLD_API`, `NEW_API` dropped).
    export_import: String,
    /// Splitting a big user's export.
    split: String,
}

impl Recipe {
    fn read() -> Recipe {
        let path = workspace_root().join("docs/migrating.md");
        let doc = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let b = blocks(&doc);
        let loop_marker = "#!/bin/sh";
        Recipe {
            mint: placeholders_dropped(
                &block(&b, "sh", &["mint() {"], &[loop_marker]),
                &["SECRET"],
            ),
            copy_timestamptz: placeholders_dropped(
                &block(
                    &b,
                    "sh",
                    &[
                        "\\copy (SELECT title",
                        "-v uid=\"$USER_ID\"",
                        "to_char(created_at AT TIME ZONE 'UTC'",
                    ],
                    &[loop_marker],
                ),
                &["OLD_DATABASE_URL", "USER_ID"],
            ),
            copy_naive_utc: block(
                &b,
                "sh",
                &["\\copy (SELECT title", "to_char(created_at, '"],
                &[loop_marker],
            ),
            copy_naive_berlin: block(
                &b,
                "sh",
                &["\\copy (SELECT title", "'Europe/Berlin'"],
                &[loop_marker],
            ),
            import: placeholders_dropped(
                &block(
                    &b,
                    "sh",
                    &["curl --fail-with-body", "/api/tasks/import", "text/csv"],
                    &[loop_marker],
                ),
                &["API"],
            ),
            migrate_all: block(&b, "sh", &[loop_marker], &[]),
            rows_to_fix: block(&b, "sql", &["btrim(title)"], &[]),
            column_types: block(&b, "sql", &["'created_at', 'updated_at'"], &[]),
            export_import: placeholders_dropped(
                &block(&b, "sh", &["/api/tasks/export", "/api/tasks/import"], &[]),
                &["OLD_API", "NEW_API"],
            ),
            split: block(&b, "sh", &["split -l"], &[]),
        }
    }
}

// ---------------------------------------------------------------- running them

/// Where the scripts run: a directory with the `curl` wrapper, and one per run of them.
struct Shell {
    root: TempDir,
}

/// What a script did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Each `curl` response in order: its status and whether it was a replay.
    responses: Vec<(u16, bool)>,
}

impl Ran {
    fn ok(self, what: &str) -> Ran {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The statuses of the responses.
    fn statuses(&self) -> Vec<u16> {
        self.responses.iter().map(|(s, _)| *s).collect()
    }

    /// Whether each response was a replay.
    fn replays(&self) -> Vec<bool> {
        self.responses.iter().map(|(_, r)| *r).collect()
    }
}

impl Shell {
    fn new() -> Shell {
        let root = temp_dir("migration-recipe");
        let bin = root.path().join("bin");
        std::fs::create_dir(&bin).expect("bin/");
        // The real curl (the next directory of PATH on), with the response headers written
        // to a file of their own per call: the command line is the page's otherwise.
        let wrapper = bin.join("curl");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\nPATH=${PATH#*:}\nn=$(ls \"$CURL_HEADERS\" | wc -l)\n\
             exec curl -D \"$CURL_HEADERS/$(printf %03d \"$n\")\" \"$@\"\n",
        )
        .expect("the curl wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the curl wrapper");
        Shell { root }
    }

    /// A directory of its own for a run of the page's commands (created if new).
    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).expect("a work directory");
        dir
    }

    /// Saves `script` as `file` in `dir` and runs `sh file` there, with only `env` (and
    /// `PATH`, `HOME`, `LANG`, `PGTZ`) in the environment.
    fn run(&self, dir: &Path, file: &str, script: &str, env: &[(&str, &str)]) -> Ran {
        std::fs::write(dir.join(file), script).expect("writing the script");
        let headers = self.root.path().join("headers");
        let _ = std::fs::remove_dir_all(&headers);
        std::fs::create_dir(&headers).expect("the headers directory");
        let path = format!(
            "{}:{}",
            self.root.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
        );
        let started = Instant::now();
        let output = Command::new("sh")
            .arg(file)
            .current_dir(dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", dir)
            .env("LANG", "C.UTF-8")
            .env("PGTZ", SESSION_TZ)
            .env("CURL_HEADERS", &headers)
            .envs(env.iter().copied())
            .output()
            .expect("running sh");
        eprintln!(
            "{}/{file}: {:?} in {:.2}s",
            dir.file_name().unwrap_or_default().to_string_lossy(),
            output.status.code(),
            started.elapsed().as_secs_f64()
        );
        let mut files: Vec<PathBuf> = std::fs::read_dir(&headers)
            .expect("the headers directory")
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        let responses = files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).expect("a headers file");
                let status = text
                    .lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("a status line in {text:?}"));
                let replayed = text.lines().any(|l| {
                    l.split_once(':').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("idempotent-replayed") && v.trim() == "true"
                    })
                });
                (status, replayed)
            })
            .collect();
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            responses,
        }
    }
}

// ---------------------------------------------------------------- the services

/// What must live as long as a served component, dropped in this order.
struct Served {
    _running: RunningHost,
    _host: Host,
    _runtime: tokio::runtime::Runtime,
    _dir: TempDir,
}

/// A served component on fresh SQLite with `jwt_secret` = `secret`, and its base URL.
fn serve(secret: &str) -> (Http, String) {
    serve_with(secret, &[])
}

/// The same with other `settings` (Spin variables) too.
fn serve_with(secret: &str, settings: &[(&str, &str)]) -> (Http, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = temp_dir("migration-recipe-sqlite");
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variables([("jwt_secret", secret)].iter().chain(settings).copied())
        .sqlite_dir(dir.path())
        // The request log would bury the scripts' lines; answers say what went wrong.
        .log_sink(LogSink::new(|_| {}))
        .build()
        .expect("the host starts");
    let running = runtime
        .block_on(host.serve("127.0.0.1:0"))
        .expect("the host listens");
    let base = format!("http://{}", running.addr);
    let http = Http::new(&base).keeping(Served {
        _running: running,
        _host: host,
        _runtime: runtime,
        _dir: dir,
    });
    (http, base)
}

/// Every task of `user` on `api` (tokens signed with `secret`), two a page, following
/// `next_cursor`; `meta.total` must agree.
fn tasks_of(api: &Http, secret: &str, user: &str) -> Vec<Value> {
    let auth = format!(
        "Bearer {}",
        token_signed_with(secret, user, system_now_secs())
    );
    let mut tasks = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/tasks?limit=2&cursor={c}"),
            None => "/api/tasks?limit=2".to_owned(),
        };
        let r = api.call_with("GET", &path, None, None, &[("authorization", &auth)]);
        assert_eq!(r.status, 200, "listing {user}'s tasks: {}", r.json);
        total = total.or(r.json["meta"]["total"].as_u64());
        tasks.extend(r.json["data"].as_array().expect("a list").iter().cloned());
        match r.json["meta"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(tasks.len() < 1000, "paging does not end");
    }
    if let Some(total) = total {
        assert_eq!(total as usize, tasks.len(), "meta.total of {user}'s tasks");
    }
    tasks
}

/// `meta.total` of `user`'s tasks on `api` (tokens signed with [`SECRET`]).
fn total_of(api: &Http, user: &str) -> usize {
    let r = api.list(user, "limit=1");
    r.json["meta"]["total"].as_u64().expect("meta.total") as usize
}

/// What a task carries but its id, in a stable order of tasks (time, then title).
fn comparable(mut tasks: Vec<Value>) -> Vec<Value> {
    let fields = [
        "user_id",
        "title",
        "description",
        "completed",
        "priority",
        "due_date",
        "created_at",
        "updated_at",
        "completed_at",
    ];
    tasks.sort_by_key(|t| {
        (
            t["created_at"].as_str().unwrap_or_default().to_owned(),
            t["title"].as_str().unwrap_or_default().to_owned(),
        )
    });
    tasks
        .iter()
        .map(|t| {
            Value::Object(
                fields
                    .iter()
                    .map(|f| ((*f).to_owned(), t[*f].clone()))
                    .collect(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- the old backend

/// A row of the old table, and what the service must make of it.
struct Row {
    user: &'static str,
    title: String,
    description: Option<String>,
    completed: bool,
    /// `timestamptz` input.
    created_at: String,
    updated_at: Option<String>,
    /// RFC 3339, UTC, milliseconds.
    want_created: String,
    want_updated: String,
}

#[allow(clippy::too_many_arguments)]
fn row(
    user: &'static str,
    title: &str,
    description: Option<&str>,
    completed: bool,
    created_at: &str,
    updated_at: Option<&str>,
    want_created: &str,
    want_updated: &str,
) -> Row {
    Row {
        user,
        title: title.to_owned(),
        description: description.map(str::to_owned),
        completed,
        created_at: created_at.to_owned(),
        updated_at: updated_at.map(str::to_owned),
        want_created: want_created.to_owned(),
        want_updated: want_updated.to_owned(),
    }
}

fn seed() -> Vec<Row> {
    let mut rows = vec![
        row(
            "alice",
            "Buy \"milk\", eggs & café ☕ — 東京",
            None,
            false,
            "2024-01-02 03:04:05.678+00",
            None,
            "2024-01-02T03:04:05.678Z",
            "2024-01-02T03:04:05.678Z",
        ),
        // updated_at before created_at: GREATEST takes created_at.
        row(
            "alice",
            "Multi-line notes",
            Some("line one\nline two, \"quoted\"\r\nthree"),
            true,
            "2024-01-03 10:00:00.123456+02",
            Some("2024-01-01 00:00:00+00"),
            "2024-01-03T08:00:00.123Z",
            "2024-01-03T08:00:00.123Z",
        ),
        row(
            "alice",
            "It's, like, \"done\"",
            Some("tab\there; a comma, and ''"),
            true,
            "2024-03-10 01:59:59.9999+00",
            Some("2024-06-01 12:00:00.5-07"),
            "2024-03-10T01:59:59.999Z",
            "2024-06-01T19:00:00.500Z",
        ),
        // An empty description imports as none.
        row(
            "bob",
            "Bob's first",
            Some(""),
            false,
            "2023-12-31 23:30:00+00",
            Some("2024-01-15 08:00:00+00"),
            "2023-12-31T23:30:00.000Z",
            "2024-01-15T08:00:00.000Z",
        ),
        // Two tasks of one instant: ORDER BY created_at, id keeps the file's bytes stable.
        row(
            "bob",
            "Same instant A",
            None,
            true,
            "2024-02-29 12:00:00+00",
            None,
            "2024-02-29T12:00:00.000Z",
            "2024-02-29T12:00:00.000Z",
        ),
        row(
            "bob",
            "Same instant B",
            Some("ünïcödé"),
            false,
            "2024-02-29 12:00:00+00",
            Some("2024-02-29 12:00:00+00"),
            "2024-02-29T12:00:00.000Z",
            "2024-02-29T12:00:00.000Z",
        ),
    ];
    for i in 1..=7 {
        let created = format!("2024-05-0{i} 09:00:00+00");
        let want = format!("2024-05-0{i}T09:00:00.000Z");
        rows.push(row(
            CAROL,
            &format!("Carol #{i}"),
            (i % 2 == 1).then(|| format!("note {i}")).as_deref(),
            i % 2 == 0,
            &created,
            None,
            &want,
            &want,
        ));
    }
    // Inserted out of time order, so that ids and times disagree.
    rows.reverse();
    rows
}

/// The tasks the service must hold for `user` after the move.
fn expected(rows: &[Row], user: &str) -> Vec<Value> {
    comparable(
        rows.iter()
            .filter(|r| r.user == user)
            .map(|r| {
                json!({
                    "user_id": r.user,
                    "title": r.title,
                    "description": r.description.as_deref().filter(|d| !d.is_empty()),
                    "completed": r.completed,
                    "priority": "medium",
                    "due_date": null,
                    "created_at": r.want_created,
                    "updated_at": r.want_updated,
                    "completed_at": r.completed.then_some(&r.want_updated),
                })
            })
            .collect(),
    )
}

/// Runs `sql` on the test database (one connection, on a runtime of its own).
fn execute(statements: &[(String, Vec<Option<String>>)]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let client = connect(&database_url()).await.expect("connecting");
        for (sql, params) in statements {
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            client
                .execute(sql.as_str(), &params)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
    });
}

/// Creates `schema`'s `tasks` table (times of type `time_type`) and inserts `rows`.
fn create_old_table(schema: &str, time_type: &str, rows: &[Row]) {
    let mut statements = vec![(
        format!(
            "CREATE TABLE {schema}.tasks (id serial PRIMARY KEY, user_id text NOT NULL, \
             title text NOT NULL, description text NULL, completed boolean NOT NULL DEFAULT false, \
             created_at {time_type} NOT NULL DEFAULT now(), updated_at {time_type} NULL)"
        ),
        vec![],
    )];
    statements.extend(rows.iter().map(insert(schema, time_type)));
    execute(&statements);
}

/// The INSERT of a row into `schema.tasks`.
fn insert(schema: &str, time_type: &str) -> impl Fn(&Row) -> (String, Vec<Option<String>>) {
    let sql = format!(
        "INSERT INTO {schema}.tasks (user_id, title, description, completed, created_at, updated_at) \
         VALUES ($1, $2, $3, $4::text::boolean, $5::text::{time_type}, $6::text::{time_type})"
    );
    move |r: &Row| {
        (
            sql.clone(),
            vec![
                Some(r.user.to_owned()),
                Some(r.title.clone()),
                r.description.clone(),
                Some(r.completed.to_string()),
                Some(r.created_at.clone()),
                r.updated_at.clone(),
            ],
        )
    }
}

/// The line `mint`+step 2 print for an import of `n` tasks.
fn imported(n: usize) -> String {
    format!("{{\"data\":{{\"imported\":{n}}}}}")
}

// ---------------------------------------------------------------- the test

#[test]
fn the_migration_recipe_moves_every_row_in_and_out() {
    if !reachable() {
        return;
    }
    let started = Instant::now();
    let recipe = Recipe::read();
    let rows = seed();
    let users = ["alice", "bob", CAROL];
    let count = |user: &str| rows.iter().filter(|r| r.user == user).count();

    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let Some(old) = setup.block_on(PgSchema::create("migration_old")) else {
        return;
    };
    create_old_table(old.name(), "timestamptz", &rows);
    let old_url = old.component_url();

    let shell = Shell::new();
    let (a, a_url) = serve(SECRET);
    eprintln!(
        "component served in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let one_user = format!(
        "{}{}{}",
        recipe.mint, recipe.copy_timestamptz, recipe.import
    );
    let env_for = |api: &str, user: &str| -> Vec<(&'static str, String)> {
        vec![
            ("OLD_DATABASE_URL", old_url.clone()),
            ("API", api.to_owned()),
            ("SECRET", SECRET.to_owned()),
            ("USER_ID", user.to_owned()),
        ]
    };
    let run = |dir: &Path, file: &str, script: &str, env: &[(&'static str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        shell.run(dir, file, script, &env)
    };

    // ---- the rows-to-fix query finds nothing in the seed
    let fix_dir = shell.dir("rows-to-fix");
    let fix_query = "psql \"$OLD_DATABASE_URL\" -X -At -v ON_ERROR_STOP=1 -f rows-to-fix.sql\n";
    std::fs::write(fix_dir.join("rows-to-fix.sql"), &recipe.rows_to_fix).expect("the query");
    let fixes =
        run(&fix_dir, "fix.sh", fix_query, &env_for(&a_url, "alice")).ok("the rows-to-fix query");
    assert_eq!(fixes.stdout, "", "no seed row needs fixing");

    // ---- one user by hand: step 1 and step 2
    let alice_dir = shell.dir("one-user-alice");
    let first = run(
        &alice_dir,
        "one-user.sh",
        &one_user,
        &env_for(&a_url, "alice"),
    )
    .ok("steps 1 and 2 for alice");
    let csv = std::fs::read_to_string(alice_dir.join("tasks.csv")).expect("tasks.csv");
    assert!(
        csv.starts_with("title,description,completed,created_at,updated_at\n"),
        "{csv}"
    );
    assert!(
        first.stdout.ends_with(&imported(count("alice"))),
        "{}",
        first.stdout
    );
    assert_eq!(first.statuses(), [201]);
    assert_eq!(first.replays(), [false]);
    assert_eq!(
        comparable(tasks_of(&a, SECRET, "alice")),
        expected(&rows, "alice")
    );
    // Again, as a retry would: the same file, a replay, nothing imported twice.
    let again = run(
        &alice_dir,
        "one-user.sh",
        &one_user,
        &env_for(&a_url, "alice"),
    )
    .ok("steps 1 and 2 for alice, again");
    assert_eq!(again.stdout, first.stdout);
    assert_eq!(again.statuses(), [201]);
    assert_eq!(again.replays(), [true], "the retry is a replay");
    assert_eq!(
        std::fs::read_to_string(alice_dir.join("tasks.csv")).expect("tasks.csv"),
        csv,
        "the same bytes"
    );
    assert_eq!(
        comparable(tasks_of(&a, SECRET, "alice")),
        expected(&rows, "alice")
    );
    // A user id with a quote and a space.
    let carol_dir = shell.dir("one-user-carol");
    let carol = run(
        &carol_dir,
        "one-user.sh",
        &one_user,
        &env_for(&a_url, CAROL),
    )
    .ok("steps 1 and 2 for carol");
    assert!(
        carol.stdout.ends_with(&imported(count(CAROL))),
        "{}",
        carol.stdout
    );
    assert_eq!(
        comparable(tasks_of(&a, SECRET, CAROL)),
        expected(&rows, CAROL)
    );

    // ---- every user: migrate-all.sh after the users moved by hand
    let all_dir = shell.dir("migrate-all");
    let loop_env = |api: &str, chunk: Option<&str>| {
        let mut env = vec![
            ("OLD_DATABASE_URL", old_url.clone()),
            ("API", api.to_owned()),
            ("SECRET", SECRET.to_owned()),
        ];
        env.extend(chunk.map(|c| ("CHUNK", c.to_owned())));
        env
    };
    let all = run(
        &all_dir,
        "migrate-all.sh",
        &recipe.migrate_all,
        &loop_env(&a_url, None),
    )
    .ok("migrate-all.sh");
    let want_lines: Vec<String> = users
        .iter()
        .map(|u| format!("user {u}, part 0: {}", imported(count(u))))
        .collect();
    assert_eq!(all.stdout.lines().collect::<Vec<_>>(), want_lines);
    assert_eq!(all.statuses(), [201, 201, 201]);
    assert_eq!(
        all.replays(),
        [true, false, true],
        "alice and carol, moved by hand, are replayed"
    );
    assert_eq!(
        std::fs::read_to_string(all_dir.join("users.txt")).expect("users.txt"),
        users.map(|u| format!("{u}\n")).concat()
    );
    for user in users {
        assert_eq!(
            comparable(tasks_of(&a, SECRET, user)),
            expected(&rows, user),
            "{user}"
        );
    }
    // Run again (after a failure, say): every part is replayed.
    let all_again = run(
        &all_dir,
        "migrate-all.sh",
        &recipe.migrate_all,
        &loop_env(&a_url, None),
    )
    .ok("migrate-all.sh, again");
    assert_eq!(all_again.stdout, all.stdout, "a replay prints the same");
    assert_eq!(all_again.replays(), [true, true, true]);
    for user in users {
        assert_eq!(
            comparable(tasks_of(&a, SECRET, user)),
            expected(&rows, user),
            "{user}"
        );
    }

    // ---- migrate-all.sh in parts, on a fresh service
    let (b, b_url) = serve(SECRET);
    let parts_dir = shell.dir("migrate-all-in-parts");
    let parts = run(
        &parts_dir,
        "migrate-all.sh",
        &recipe.migrate_all,
        &loop_env(&b_url, Some("3")),
    )
    .ok("migrate-all.sh with CHUNK=3");
    assert_eq!(
        parts.stdout.lines().collect::<Vec<_>>(),
        [
            format!("user alice, part 0: {}", imported(3)),
            format!("user bob, part 0: {}", imported(3)),
            format!("user {CAROL}, part 0: {}", imported(3)),
            format!("user {CAROL}, part 1: {}", imported(3)),
            format!("user {CAROL}, part 2: {}", imported(1)),
        ]
    );
    assert_eq!(parts.replays(), [false; 5]);
    let parts_again = run(
        &parts_dir,
        "migrate-all.sh",
        &recipe.migrate_all,
        &loop_env(&b_url, Some("3")),
    )
    .ok("migrate-all.sh with CHUNK=3, again");
    assert_eq!(parts_again.stdout, parts.stdout);
    assert_eq!(parts_again.replays(), [true; 5]);
    for user in users {
        assert_eq!(
            comparable(tasks_of(&b, SECRET, user)),
            expected(&rows, user),
            "{user} in parts"
        );
    }

    // ---- a user moved by hand with more tasks than CHUNK: the loop stops at a 422,
    // imports nothing twice, and a CHUNK of at least that user's count replays everyone
    let (h, h_url) = serve(SECRET);
    let by_hand_dir = shell.dir("one-user-carol-then-loop");
    run(
        &by_hand_dir,
        "one-user.sh",
        &one_user,
        &env_for(&h_url, CAROL),
    )
    .ok("steps 1 and 2 for carol");
    let stopped = run(
        &by_hand_dir,
        "migrate-all.sh",
        &recipe.migrate_all,
        &loop_env(&h_url, Some("3")),
    );
    assert_ne!(stopped.code, Some(0), "{}", stopped.stdout);
    assert_eq!(
        stopped.statuses(),
        [201, 201, 422],
        "alice, bob, carol's part 0"
    );
    assert!(
        stopped.stdout.contains("idempotency_key_reused"),
        "{}",
        stopped.stdout
    );
    let wide = run(
        &by_hand_dir,
        "migrate-all.sh",
        &recipe.migrate_all,
        &loop_env(&h_url, Some(&count(CAROL).to_string())),
    )
    .ok("migrate-all.sh with CHUNK = carol's count");
    assert_eq!(wide.replays(), [true, true, true]);
    for user in users {
        assert_eq!(
            comparable(tasks_of(&h, SECRET, user)),
            expected(&rows, user),
            "{user}, moved by hand then by the loop"
        );
    }

    // ---- a row the import refuses: the query lists it, the import's 422 names it
    let bad = [
        row(
            "zed",
            "tab\tin the title",
            None,
            false,
            "2024-01-01 00:00:00+00",
            None,
            "",
            "",
        ),
        row(
            "zed",
            "A bell in the description",
            Some("ding\u{7}"),
            false,
            "2024-01-02 00:00:00+00",
            None,
            "",
            "",
        ),
        row(
            "zed",
            "Fine",
            None,
            false,
            "2024-01-03 00:00:00+00",
            None,
            "",
            "",
        ),
    ];
    execute(
        &bad.iter()
            .map(insert(old.name(), "timestamptz"))
            .collect::<Vec<_>>(),
    );
    let fixes = run(&fix_dir, "fix.sh", fix_query, &env_for(&a_url, "zed")).ok("the query");
    let listed: Vec<&str> = fixes.stdout.lines().collect();
    assert_eq!(listed.len(), 2, "{}", fixes.stdout);
    assert!(listed.iter().all(|l| l.ends_with("|zed")), "{listed:?}");
    let zed_dir = shell.dir("one-user-zed");
    let refused = run(&zed_dir, "one-user.sh", &one_user, &env_for(&a_url, "zed"));
    assert_ne!(
        refused.code,
        Some(0),
        "curl --fail-with-body fails on a 422"
    );
    assert_eq!(refused.statuses(), [422]);
    let problem: Value = serde_json::from_str(
        refused
            .stdout
            .lines()
            .last()
            .expect("the problem is printed"),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", refused.stdout));
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["records[0].title", "records[1].description"],
        "{problem}"
    );
    assert!(tasks_of(&a, SECRET, "zed").is_empty(), "all or nothing");

    // ---- naive timestamp columns
    let Some(naive) = setup.block_on(PgSchema::create("migration_naive")) else {
        return;
    };
    let naive_rows = [
        row(
            "nina",
            "Summer",
            None,
            false,
            "2024-07-01 12:00:00.250",
            None,
            "",
            "",
        ),
        row(
            "nina",
            "Winter",
            Some("before"),
            true,
            "2024-01-15 08:00:00",
            Some("2024-01-14 00:00:00"),
            "",
            "",
        ),
    ];
    create_old_table(naive.name(), "timestamp", &naive_rows);
    let naive_dir = shell.dir("naive");
    let naive_env = [
        ("OLD_DATABASE_URL", naive.component_url()),
        ("USER_ID", "nina".to_owned()),
    ];
    let naive_csv = |script: &str, tz: &str| -> String {
        let mut env = naive_env.to_vec();
        env.push(("PGTZ", tz.to_owned()));
        run(&naive_dir, "naive.sh", script, &env).ok("a step 1 for naive times");
        std::fs::read_to_string(naive_dir.join("tasks.csv")).expect("tasks.csv")
    };
    let csv_of = |winter: &str, summer: &str| {
        format!(
            "title,description,completed,created_at,updated_at\n\
             Winter,before,true,{winter},{winter}\nSummer,,false,{summer},{summer}\n"
        )
    };
    assert_eq!(
        naive_csv(&recipe.copy_naive_utc, SESSION_TZ),
        csv_of("2024-01-15T08:00:00.000Z", "2024-07-01T12:00:00.250Z"),
        "naive UTC values"
    );
    assert_eq!(
        naive_csv(&recipe.copy_naive_berlin, SESSION_TZ),
        csv_of("2024-01-15T07:00:00.000Z", "2024-07-01T10:00:00.250Z"),
        "naive local times of Europe/Berlin"
    );
    // The timestamptz command on naive values: right only when the session's zone is UTC.
    assert_eq!(
        naive_csv(&recipe.copy_timestamptz, "UTC"),
        csv_of("2024-01-15T08:00:00.000Z", "2024-07-01T12:00:00.250Z")
    );
    assert_eq!(
        naive_csv(&recipe.copy_timestamptz, SESSION_TZ),
        csv_of("2024-01-15T13:30:00.000Z", "2024-07-01T17:30:00.250Z"),
        "shifted by the session's zone"
    );

    // The query of the columns' type answers for the table the commands read, though the
    // database has another `tasks` (the old one, at least).
    std::fs::write(naive_dir.join("types.sql"), &recipe.column_types).expect("the query");
    let types = |url: String| {
        run(
            &naive_dir,
            "types.sh",
            "psql \"$OLD_DATABASE_URL\" -X -At -v ON_ERROR_STOP=1 -f types.sql\n",
            &[("OLD_DATABASE_URL", url)],
        )
        .ok("the type query")
        .stdout
    };
    assert_eq!(
        types(naive.component_url()),
        "created_at|timestamp without time zone\nupdated_at|timestamp without time zone\n"
    );
    assert_eq!(
        types(old_url.clone()),
        "created_at|timestamp with time zone\nupdated_at|timestamp with time zone\n"
    );

    // ---- ISS and AUD, for a service that checks them
    let (_f, f_url) = serve_with(
        SECRET,
        &[
            ("jwt_issuer", "https://app.example.com"),
            ("jwt_audience", "https://app.example.com"),
        ],
    );
    let iss_dir = shell.dir("one-user-iss-aud");
    let without = run(&iss_dir, "one-user.sh", &one_user, &env_for(&f_url, "bob"));
    assert_eq!(without.statuses(), [401], "without ISS and AUD");
    let mut with = env_for(&f_url, "bob");
    with.push(("ISS", "https://app.example.com".to_owned()));
    with.push(("AUD", "https://app.example.com".to_owned()));
    let with = run(&iss_dir, "one-user.sh", &one_user, &with).ok("with ISS and AUD");
    assert_eq!(with.statuses(), [201]);

    // ---- over 8 MiB: the loop stops before importing; a smaller CHUNK moves the user
    let Some(big) = setup.block_on(PgSchema::create("migration_big")) else {
        return;
    };
    create_old_table(big.name(), "timestamptz", &[]);
    execute(&[(
        format!(
            "INSERT INTO {}.tasks (user_id, title, description, completed, created_at) \
             SELECT 'big', 'Big #' || g, repeat('x', 2000), g % 3 = 0, \
             timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' \
             FROM generate_series(1, {BIG_TASKS}) AS g",
            big.name()
        ),
        vec![],
    )]);
    let (g, g_url) = serve(SECRET);
    let big_dir = shell.dir("migrate-all-big");
    let big_env = |chunk: Option<&str>| {
        let mut env = vec![
            ("OLD_DATABASE_URL", big.component_url()),
            ("API", g_url.clone()),
            ("SECRET", SECRET.to_owned()),
        ];
        env.extend(chunk.map(|c| ("CHUNK", c.to_owned())));
        env
    };
    let over = run(
        &big_dir,
        "migrate-all.sh",
        &recipe.migrate_all,
        &big_env(None),
    );
    assert_eq!(over.code, Some(1), "{}\n{}", over.stdout, over.stderr);
    assert!(
        over.stderr
            .contains("user big, part 0: tasks.csv is over 8 MiB; run again with a smaller CHUNK"),
        "{}",
        over.stderr
    );
    assert!(over.responses.is_empty(), "nothing sent");
    assert_eq!(total_of(&g, "big"), 0);
    let smaller = run(
        &big_dir,
        "migrate-all.sh",
        &recipe.migrate_all,
        &big_env(Some("2000")),
    )
    .ok("migrate-all.sh with CHUNK=2000");
    assert_eq!(
        smaller.stdout.lines().collect::<Vec<_>>(),
        [
            format!("user big, part 0: {}", imported(2000)),
            format!("user big, part 1: {}", imported(2000)),
            format!("user big, part 2: {}", imported(BIG_TASKS - 4000)),
        ]
    );
    assert_eq!(total_of(&g, "big"), BIG_TASKS);

    // ---- the way out: export from A, import into C (another secret)
    // With a priority and a due date, which the way out keeps.
    let multi = tasks_of(&a, SECRET, "alice")
        .into_iter()
        .find(|t| t["title"] == "Multi-line notes")
        .expect("alice's multi-line task");
    let patched = a.call(
        "PATCH",
        &format!("/api/tasks/{}", multi["id"]),
        Some("alice"),
        Some(json!({"priority": "high", "due_date": "2025-01-31"})),
    );
    assert_eq!(patched.status, 200, "{}", patched.json);
    let (c, c_url) = serve(OTHER_SECRET);
    let out_env = |new_api: &str, sub: &str| -> Vec<(&'static str, String)> {
        vec![
            ("OLD_API", a_url.clone()),
            ("NEW_API", new_api.to_owned()),
            ("OLD_SECRET", SECRET.to_owned()),
            ("NEW_SECRET", OTHER_SECRET.to_owned()),
            ("SUB", sub.to_owned()),
        ]
    };
    let move_out = format!("{}{}", recipe.mint, recipe.export_import);
    for (user, name) in [("alice", "alice"), (CAROL, "carol")] {
        let dir = shell.dir(&format!("out-ndjson-{name}"));
        let moved =
            run(&dir, "move.sh", &move_out, &out_env(&c_url, user)).ok("the export and import");
        assert_eq!(moved.statuses(), [200, 201], "{user}");
        assert!(
            moved.stdout.ends_with(&imported(count(user))),
            "{}",
            moved.stdout
        );
        let ndjson = std::fs::read_to_string(dir.join("tasks.ndjson")).expect("tasks.ndjson");
        assert_eq!(ndjson.lines().count(), count(user), "one task a line");
        assert_eq!(
            comparable(tasks_of(&c, OTHER_SECRET, user)),
            comparable(tasks_of(&a, SECRET, user)),
            "{user} moved out"
        );
    }
    // The same in CSV, as the page says: Accept and Content-Type text/csv, tasks.csv.
    let (d, d_url) = serve(OTHER_SECRET);
    let move_out_csv = replaced(
        &replaced(&move_out, "application/x-ndjson", "text/csv", 2),
        "tasks.ndjson",
        "tasks.csv",
        3,
    );
    let csv_dir = shell.dir("out-csv");
    let moved = run(
        &csv_dir,
        "move.sh",
        &move_out_csv,
        &out_env(&d_url, "alice"),
    )
    .ok("the export and import in CSV");
    assert_eq!(moved.statuses(), [200, 201]);
    assert_eq!(
        comparable(tasks_of(&d, OTHER_SECRET, "alice")),
        comparable(tasks_of(&a, SECRET, "alice")),
        "alice moved out in CSV"
    );
    // A big user's export in parts (two lines a part here, not 10,000), into a fresh E.
    let (e, e_url) = serve(OTHER_SECRET);
    // In carol's directory, where her export is.
    let split_dir = shell.dir("out-ndjson-carol");
    let split = format!(
        "{}{}",
        recipe.mint,
        replaced(&recipe.split, "split -l 10000", "split -l 2", 1)
    );
    let parts = run(&split_dir, "split.sh", &split, &out_env(&e_url, CAROL)).ok("the split");
    assert_eq!(parts.statuses(), [201; 4], "{}", parts.stdout);
    assert_eq!(
        parts.stdout.lines().collect::<Vec<_>>(),
        [imported(2), imported(2), imported(2), imported(1)]
    );
    assert_eq!(
        comparable(tasks_of(&e, OTHER_SECRET, CAROL)),
        expected(&rows, CAROL),
        "carol moved out in parts"
    );

    eprintln!(
        "the migration recipe ran in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
