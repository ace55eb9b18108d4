//! `/`: a small JSON index for programs and, when `web_ui` is on, the web page for people.
//!
//! The page (`core/web/`) is embedded in the library, so every host of the core serves it:
//! an HTML file, a script, a style sheet and an icon, with no build step. It talks to the
//! service only through the public API, like any other frontend.
//!
//! Caching: each file's strong `ETag` is a hash computed at compile time, and
//! `If-None-Match` answers 304. The page itself is `no-cache` (always revalidated, so a new
//! release shows at once); it names its files with their hash (`/web/app.js?v=…`), and a
//! request carrying the current hash may be cached for a year. The page is served with a
//! strict `Content-Security-Policy`: no inline script or style, no other origin, no frames.

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};

use crate::http::response::VERSION;

/// The policy of every file of the page: only this origin's scripts, styles, images and API;
/// no inline code, no plugins, no `<base>`, no native form submission, no framing.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's template: `{{name}}` stands for the hash of the file `name` of [`ASSETS`].
const INDEX_HTML: &str = include_str!("../../web/index.html");

/// One embedded file of the page.
pub(crate) struct Asset {
    /// Its route (also in `routes::OTHER_PATHS`).
    pub(crate) path: &'static str,
    /// Its `Content-Type`.
    pub(crate) content_type: &'static str,
    /// Its bytes.
    pub(crate) body: &'static [u8],
    /// Its hash, the `ETag` and the `?v=` of its URL.
    hash: u64,
}

const APP_JS: &[u8] = include_bytes!("../../web/app.js");
const APP_CSS: &[u8] = include_bytes!("../../web/app.css");
const ICON_SVG: &[u8] = include_bytes!("../../web/icon.svg");

/// The page's files, besides the page.
pub(crate) const ASSETS: [Asset; 3] = [
    Asset {
        path: "/web/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: APP_JS,
        hash: fnv1a(FNV_OFFSET, APP_JS),
    },
    Asset {
        path: "/web/app.css",
        content_type: "text/css; charset=utf-8",
        body: APP_CSS,
        hash: fnv1a(FNV_OFFSET, APP_CSS),
    },
    Asset {
        path: "/web/icon.svg",
        content_type: "image/svg+xml",
        body: ICON_SVG,
        hash: fnv1a(FNV_OFFSET, ICON_SVG),
    },
];

/// The page's hash: its template and the hashes of the files it names.
const INDEX_HASH: u64 = {
    let mut h = fnv1a(FNV_OFFSET, INDEX_HTML.as_bytes());
    let mut i = 0;
    while i < ASSETS.len() {
        h = fnv1a(h, &ASSETS[i].hash.to_le_bytes());
        i += 1;
    }
    h
};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a (64 bits) of `bytes`, continuing from `h`: cheap enough for the compiler to run
/// over the embedded files. Not a cryptographic hash; it only has to change when a file
/// does.
const fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

fn hex(hash: u64) -> String {
    format!("{hash:016x}")
}

fn etag(hash: u64) -> String {
    format!("\"{}\"", hex(hash))
}

/// The page, its `{{name}}` placeholders replaced by the files' hashes.
pub(crate) fn index_html() -> String {
    ASSETS.iter().fold(INDEX_HTML.to_owned(), |html, a| {
        let name = a.path.rsplit('/').next().unwrap_or(a.path);
        html.replace(&format!("{{{{{name}}}}}"), &hex(a.hash))
    })
}

/// The JSON index of `/` for programs.
pub(crate) fn index_json() -> serde_json::Value {
    serde_json::json!({
        "name": "task-api",
        "version": VERSION,
        "links": {
            "openapi": "/openapi.json",
            "health": "/health",
            "ready": "/health/ready",
        },
    })
}

/// Whether the client would rather have HTML than JSON, by `Accept` (RFC 9110, section
/// 12.5.1: the most specific range naming a type gives its weight). Browsers send
/// `text/html,…,*/*;q=0.8`; `curl` sends `*/*`, and programs `application/json` or nothing:
/// a tie goes to JSON.
pub(crate) fn prefers_html(headers: &HeaderMap) -> bool {
    // (specificity, weight) of the best range for each type; none yet: weight 0.
    let mut html = (0u8, 0u16);
    let mut json = (0u8, 0u16);
    let ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for range in ranges {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
            })
            .next_back()
            .map_or(Some(1000), parse_weight);
        let Some(weight) = weight else { continue };
        let (html_spec, json_spec) = match media.as_str() {
            "text/html" => (3, 0),
            "application/json" => (0, 3),
            "text/*" => (2, 0),
            "application/*" => (0, 2),
            "*/*" => (1, 1),
            _ => (0, 0),
        };
        for (spec, best) in [(html_spec, &mut html), (json_spec, &mut json)] {
            if spec > best.0 {
                *best = (spec, weight);
            }
        }
    }
    html.1 > json.1
}

/// A weight (`q`) in thousandths: `0` to `1` with up to three decimals.
fn parse_weight(q: &str) -> Option<u16> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}

/// `GET /`: the page when `page_on` and the client prefers HTML, else the JSON index.
pub(crate) fn index(req: &Request<Vec<u8>>, page_on: bool) -> Response<Vec<u8>> {
    let mut r = if page_on && prefers_html(req.headers()) {
        file(req, INDEX_HASH, "text/html; charset=utf-8", false, || {
            index_html().into_bytes()
        })
    } else {
        let body = serde_json::to_vec(&index_json()).unwrap_or_default();
        let mut r = Response::new(body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    // The answer depends on `Accept`: a cache must not hand the page to a program.
    r.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// `GET /web/…`: one of [`ASSETS`], by its route template; `None` for a path that is none
/// of them (the route table and [`ASSETS`] agree, as a test checks).
pub(crate) fn asset(req: &Request<Vec<u8>>, path: &str) -> Option<Response<Vec<u8>>> {
    let a = ASSETS.iter().find(|a| a.path == path)?;
    // Only a URL naming the current version may be kept: another one (an old page's) is
    // answered with the current file, which must not be cached under the old name.
    let versioned = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "v" && v == hex(a.hash));
    Some(file(req, a.hash, a.content_type, versioned, || {
        a.body.to_vec()
    }))
}

/// A file's answer: 304 when `If-None-Match` names its tag, else 200 with `body()`.
fn file(
    req: &Request<Vec<u8>>,
    hash: u64,
    content_type: &'static str,
    immutable: bool,
    body: impl FnOnce() -> Vec<u8>,
) -> Response<Vec<u8>> {
    let tag = etag(hash);
    let not_modified = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag);
    let mut r = if not_modified {
        let mut r = Response::new(Vec::new());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(body());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::{Endpoint, OTHER_PATHS};

    fn accept(value: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        prefers_html(&h)
    }

    #[test]
    fn browsers_get_html_and_programs_json() {
        // Chromium, Firefox and Safari navigations.
        for browser in [
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "text/html, application/json;q=0.5",
            "TEXT/HTML",
            "text/*",
        ] {
            assert!(accept(browser), "{browser}");
        }
        for program in [
            "*/*",
            "application/json",
            "application/json, text/html",
            "text/html;q=0.5, application/json",
            "text/html;q=0",
            "text/html;q=2",
            "image/png",
            "",
        ] {
            assert!(!accept(program), "{program}");
        }
        assert!(!prefers_html(&HeaderMap::new()));
    }

    #[test]
    fn weights_are_thousandths() {
        assert_eq!(parse_weight("1"), Some(1000));
        assert_eq!(parse_weight("1.000"), Some(1000));
        assert_eq!(parse_weight("0.8"), Some(800));
        assert_eq!(parse_weight("0.001"), Some(1));
        assert_eq!(parse_weight("0"), Some(0));
        for bad in ["1.5", "0.0001", "-1", "x", "0.a", ""] {
            assert_eq!(parse_weight(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_web_route_has_its_file_and_every_file_its_route() {
        let routes: Vec<&str> = OTHER_PATHS
            .iter()
            .filter(|(_, e)| *e == Endpoint::WebAsset)
            .map(|(p, _)| *p)
            .collect();
        let files: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        assert_eq!(routes, files);
    }

    #[test]
    fn the_page_names_each_file_by_its_hash_and_has_no_inline_code() {
        let html = index_html();
        assert!(!html.contains("{{"), "a placeholder is left");
        for a in &ASSETS {
            let url = format!("{}?v={}", a.path, hex(a.hash));
            assert!(html.contains(&url), "the page does not name {url}");
        }
        // The policy forbids inline code, so the page must have none: every script has a
        // `src`, there is no `<style>`, no `style=` and no `on…=` handler attribute.
        let lower = html.to_ascii_lowercase();
        for (i, _) in lower.match_indices("<script") {
            let tag = &lower[i..i + lower[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "an inline script: {tag}");
        }
        assert!(!lower.contains("<style"));
        assert!(!lower.contains(" style="));
        let words: Vec<&str> = lower.split([' ', '\n', '\t', '<']).collect();
        assert!(
            !words
                .iter()
                .any(|w| w.starts_with("on") && w.contains("=\"")),
            "an inline event handler"
        );
        for a in &ASSETS {
            let text = std::str::from_utf8(a.body).unwrap();
            assert!(!text.contains("innerHTML"), "{}: use DOM methods", a.path);
            assert!(!text.contains("eval("), "{}", a.path);
        }
    }

    #[test]
    fn hashes_follow_the_bytes() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), FNV_OFFSET);
        // The published FNV-1a 64 test vector.
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        let hashes: Vec<u64> = ASSETS.iter().map(|a| a.hash).collect();
        assert!(!hashes.contains(&INDEX_HASH));
    }

    /// All of the page's files, gzipped as a server or CDN would send them, stay within
    /// 40 KB: the page must stay small enough to load fast on a phone.
    #[test]
    fn the_page_gzipped_stays_within_its_budget() {
        use std::io::Write;
        const BUDGET: usize = 40 * 1024;
        let gzipped = |bytes: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(bytes).unwrap();
            e.finish().unwrap().len()
        };
        let mut sizes = vec![("/", index_html().len(), gzipped(index_html().as_bytes()))];
        sizes.extend(
            ASSETS
                .iter()
                .map(|a| (a.path, a.body.len(), gzipped(a.body))),
        );
        let total: usize = sizes.iter().map(|s| s.2).sum();
        for (path, raw, gz) in &sizes {
            eprintln!("{path}: {raw} bytes, {gz} gzipped");
        }
        eprintln!("total: {total} bytes gzipped (budget {BUDGET})");
        assert!(total <= BUDGET, "{total} bytes gzipped: {sizes:?}");
    }
}
