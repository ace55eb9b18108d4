//! The web page at `/` in a real browser: the real `.wasm` served on SQLite with the built-in
//! accounts and the page on, and `tests/browser/page.test.mjs` driving Debian's headless
//! Chromium through playwright-core (sign up, add, complete, filter, edit, a stale edit,
//! delete, reload, search, sort, paging, a phone, sign out; see the script).
//!
//! Needs `node`, `npm ci --prefix tests/browser` (playwright-core) and Chromium at
//! `/usr/bin/chromium` (`apt-get install chromium`; `CHROMIUM_PATH` to use another). When
//! one is missing the test says so and skips, except under CI (`CI` set), where it fails.
//! The screenshots are left in `target/browser/` (`page.png`, `page-phone.png`).

use std::path::{Path, PathBuf};
use std::process::Command;

use spin_test_host::{Host, LogCapture};
use task_api_test_kit::temp_dir;

const SECRET: &str = "a browser-test secret that is at least thirty-two bytes";

/// Why the browser test cannot run here, if it cannot.
fn missing_prerequisite(browser_dir: &Path) -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("`node` is not on the PATH (Node.js 20 or newer)".into());
    }
    if !browser_dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Some(format!(
            "playwright-core is not installed: run `npm ci --prefix {}`",
            browser_dir.display()
        ));
    }
    let chromium = chromium_path();
    if !chromium.is_file() {
        return Some(format!(
            "no Chromium at {} (`apt-get install chromium`, or set CHROMIUM_PATH)",
            chromium.display()
        ));
    }
    None
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_works_in_a_real_browser() {
    let root = spin_test_host::workspace_root();
    let browser_dir = root.join("tests/browser");
    if let Some(why) = missing_prerequisite(&browser_dir) {
        if std::env::var_os("CI").is_some() {
            panic!("the browser test cannot run under CI: {why}");
        }
        eprintln!("skipping the browser test: {why}");
        return;
    }

    let dir = temp_dir("browser");
    let log = LogCapture::new();
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variables([
            ("jwt_secret", SECRET),
            ("accounts", "true"),
            ("web_ui", "true"),
        ])
        .sqlite_dir(dir.path())
        .log_sink(log.sink())
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");

    let shots = root.join("target/browser");
    std::fs::create_dir_all(&shots).expect("target/browser");
    let screenshot = shots.join("page.png");
    let base = running.url("/");
    let script = browser_dir.join("page.test.mjs");
    // The host serves on this runtime's threads; the script runs on a blocking one.
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(base)
            .arg(&screenshot)
            .env("CHROMIUM_PATH", chromium_path())
            .output()
    })
    .await
    .expect("the script's thread")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}\n--- the component's log:\n{}",
        output.status,
        log.text()
    );
    for shot in ["page.png", "page-phone.png"] {
        assert!(shots.join(shot).is_file(), "no screenshot {shot}");
    }
    running.shutdown().await;
}
