//! `/` and the web page (`web_ui`), through the public `Api::handle` over the in-memory store.

mod support;

use http::{Request, Response};
use serde_json::{Value, json};
use task_api_core::{Api, MemoryStore, RequestContext, RequestLog, Timestamp};

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn api(extra: &[(&str, &str)]) -> Api<MemoryStore> {
    Api::with_config_result(MemoryStore::new(), support::config(extra))
}

fn page_on() -> Api<MemoryStore> {
    api(&[("web_ui", "true")])
}

fn send(
    api: &Api<MemoryStore>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response<Vec<u8>> {
    let mut b = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let ctx = RequestContext::new(Timestamp::from_millis(support::START_MS), "req-web");
    pollster::block_on(api.handle(b.body(Vec::new()).unwrap(), ctx))
}

fn header<'a>(r: &'a Response<Vec<u8>>, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

fn body_json(r: &Response<Vec<u8>>) -> Value {
    serde_json::from_slice(r.body()).expect("a JSON body")
}

fn text(r: &Response<Vec<u8>>) -> &str {
    std::str::from_utf8(r.body()).expect("UTF-8")
}

/// The `src`/`href` of the page's own files, as the page names them.
fn asset_urls(html: &str) -> Vec<String> {
    let mut urls: Vec<String> = html
        .match_indices("\"/web/")
        .map(|(i, _)| html[i + 1..].split('"').next().unwrap().to_owned())
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

#[test]
fn the_root_is_a_json_index_for_programs() {
    let index = json!({
        "name": "task-api",
        "version": env!("CARGO_PKG_VERSION"),
        "links": {"openapi": "/openapi.json", "health": "/health", "ready": "/health/ready"},
    });
    for app in [api(&[]), page_on()] {
        for accept in [
            &[("accept", "application/json")][..],
            &[("accept", "*/*")],
            &[],
        ] {
            let r = send(&app, "GET", "/", accept);
            assert_eq!(r.status(), 200);
            assert_eq!(header(&r, "content-type"), Some("application/json"));
            assert_eq!(body_json(&r), index);
            let vary: Vec<_> = r.headers().get_all("vary").iter().collect();
            assert!(vary.iter().any(|v| *v == "Accept"), "{vary:?}");
        }
    }
    // No token is needed, and every link answers without one.
    let app = api(&[]);
    for link in ["/openapi.json", "/health", "/health/ready"] {
        assert_eq!(send(&app, "GET", link, &[]).status(), 200, "{link}");
    }
}

#[test]
fn a_browser_gets_the_index_too_while_the_page_is_off() {
    let r = send(&api(&[]), "GET", "/", &[("accept", BROWSER)]);
    assert_eq!(header(&r, "content-type"), Some("application/json"));
    assert_eq!(body_json(&r)["name"], "task-api");
}

#[test]
fn a_browser_gets_the_page_with_a_strict_policy_when_it_is_on() {
    let r = send(&page_on(), "GET", "/", &[("accept", BROWSER)]);
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
    let csp = header(&r, "content-security-policy").unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&r, "cache-control"), Some("no-cache"));
    let etag = header(&r, "etag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18,
        "{etag}"
    );
    let html = text(&r);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<title>Tasks</title>"));
    assert_eq!(
        asset_urls(html)
            .iter()
            .map(|u| u.split('?').next().unwrap())
            .collect::<Vec<_>>(),
        ["/web/app.css", "/web/app.js", "/web/icon.svg"]
    );
}

#[test]
fn the_page_and_its_files_answer_304_to_their_etag() {
    let app = page_on();
    let page = send(&app, "GET", "/", &[("accept", BROWSER)]);
    let mut urls = vec!["/".to_owned()];
    urls.extend(asset_urls(text(&page)));
    for url in urls {
        let first = send(&app, "GET", &url, &[("accept", BROWSER)]);
        assert_eq!(first.status(), 200, "{url}");
        let tag = header(&first, "etag").unwrap().to_owned();
        for inm in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"other\", {tag}"),
            "*".into(),
        ] {
            let again = send(
                &app,
                "GET",
                &url,
                &[("accept", BROWSER), ("if-none-match", &inm)],
            );
            assert_eq!(again.status(), 304, "{url} {inm}");
            assert!(again.body().is_empty());
            assert_eq!(header(&again, "etag"), Some(tag.as_str()));
            assert!(header(&again, "cache-control").is_some());
        }
        let other = send(
            &app,
            "GET",
            &url,
            &[("accept", BROWSER), ("if-none-match", "\"other\"")],
        );
        assert_eq!(other.status(), 200, "{url}");
    }
}

#[test]
fn files_named_by_their_current_hash_are_immutable_and_others_revalidated() {
    let app = page_on();
    let page = send(&app, "GET", "/", &[("accept", BROWSER)]);
    for url in asset_urls(text(&page)) {
        let r = send(&app, "GET", &url, &[]);
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(
            header(&r, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let path = url.split('?').next().unwrap();
        let expected = match path {
            "/web/app.js" => "text/javascript; charset=utf-8",
            "/web/app.css" => "text/css; charset=utf-8",
            _ => "image/svg+xml",
        };
        assert_eq!(header(&r, "content-type"), Some(expected));
        assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
        // The version in the URL is the ETag.
        let v = url.split("?v=").nth(1).unwrap();
        assert_eq!(header(&r, "etag"), Some(format!("\"{v}\"").as_str()));
        for stale in [path.to_owned(), format!("{path}?v=0000000000000000")] {
            let r = send(&app, "GET", &stale, &[]);
            assert_eq!(r.status(), 200);
            assert_eq!(header(&r, "cache-control"), Some("no-cache"), "{stale}");
        }
    }
}

#[test]
fn head_options_and_other_methods_behave_as_on_every_route() {
    let app = page_on();
    for path in ["/", "/web/app.js"] {
        let get = send(&app, "GET", path, &[("accept", BROWSER)]);
        let head = send(&app, "HEAD", path, &[("accept", BROWSER)]);
        assert_eq!(head.status(), 200);
        assert!(head.body().is_empty());
        assert_eq!(header(&head, "etag"), header(&get, "etag"));
        assert_eq!(header(&head, "content-type"), header(&get, "content-type"));
        let options = send(&app, "OPTIONS", path, &[]);
        assert_eq!(
            (options.status().as_u16(), header(&options, "allow")),
            (204, Some("GET, HEAD, OPTIONS"))
        );
        for method in ["POST", "PUT", "DELETE"] {
            let r = send(&app, method, path, &[]);
            assert_eq!(r.status(), 405, "{method} {path}");
            assert_eq!(header(&r, "allow"), Some("GET, HEAD, OPTIONS"));
            assert_eq!(header(&r, "content-type"), Some("application/problem+json"));
        }
    }
}

#[test]
fn the_files_do_not_exist_while_the_page_is_off() {
    let app = api(&[("web_ui", "false")]);
    for method in ["GET", "HEAD", "OPTIONS", "POST"] {
        for path in ["/web/app.js", "/web/app.css", "/web/icon.svg"] {
            assert_eq!(
                send(&app, method, path, &[]).status(),
                404,
                "{method} {path}"
            );
        }
    }
    // The root always exists.
    assert_eq!(send(&app, "OPTIONS", "/", &[]).status(), 204);
}

#[test]
fn a_bad_configuration_keeps_the_index_and_names_the_setting_on_the_files() {
    let app = api(&[("web_ui", "sometimes")]);
    let r = send(&app, "GET", "/", &[("accept", BROWSER)]);
    assert_eq!(
        (r.status().as_u16(), header(&r, "content-type")),
        (200, Some("application/json"))
    );
    let r = send(&app, "GET", "/web/app.js", &[]);
    assert_eq!(r.status(), 500);
    let problem = body_json(&r);
    assert_eq!(problem["code"], "configuration_error");
    assert!(
        problem["detail"].as_str().unwrap().contains("web_ui"),
        "{problem}"
    );
    // As every other setting, it is named by the readiness probe too.
    let ready = send(&app, "GET", "/health/ready", &[]);
    assert_eq!(ready.status(), 500);
    assert!(text(&ready).contains("web_ui"));
}

#[test]
fn the_log_names_the_root_and_file_routes() {
    let app = page_on();
    for (path, route) in [
        ("/", "/"),
        ("/web/app.css?v=1", "/web/app.css"),
        ("/nope", "-"),
    ] {
        let r = send(&app, "GET", path, &[]);
        assert_eq!(
            r.extensions().get::<RequestLog>().unwrap().route,
            route,
            "{path}"
        );
    }
}

#[test]
fn cors_applies_to_the_index_as_to_every_route() {
    let app = api(&[("cors_origins", "https://app.example")]);
    let r = send(&app, "GET", "/", &[("origin", "https://app.example")]);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let vary: Vec<_> = r
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        vary.contains(&"Accept") && vary.iter().any(|v| v.eq_ignore_ascii_case("origin")),
        "{vary:?}"
    );
}

#[test]
fn openapi_documents_the_root_and_the_files() {
    let doc = task_api_core::openapi_document();
    let root = &doc["paths"]["/"]["get"];
    assert_eq!(root["operationId"], "index");
    assert_eq!(
        root["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Index"
    );
    for (path, media) in [
        ("/web/app.js", "text/javascript"),
        ("/web/app.css", "text/css"),
        ("/web/icon.svg", "image/svg+xml"),
    ] {
        let op = &doc["paths"][path]["get"];
        assert!(
            op["responses"]["200"]["content"][media].is_object(),
            "{path}"
        );
        assert!(op["responses"]["404"].is_object(), "{path}");
    }
}
