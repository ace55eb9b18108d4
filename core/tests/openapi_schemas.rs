//! The OpenAPI document against the service it documents, in process.
//!
//! Two directions. Real answers of `Api::handle` (task item and list envelopes, problems,
//! the accounts' envelopes, health, the index) must be documented for their operation and
//! status, carry the headers the document requires, and validate against the document's
//! schemas. And the document's text patterns (titles, descriptions, `q`, emails, path user
//! ids, `Idempotency-Key`, `If-Match`) must accept exactly what the validators accept, so a
//! client that follows the document is never refused for a request's shape.
//! `tests/schemathesis/run.sh` checks the same document against the served component.

use std::cell::Cell;
use std::sync::LazyLock;

use http::Request;
use jwt_simple::prelude::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use task_api_core::{
    Api, Config, DESCRIPTION_MAX_CHARS, Description, Email, IdempotencyKey, ListQuery,
    MAX_SEARCH_CHARS, MemoryStore, PasswordCost, RequestContext, TITLE_MAX_CHARS, Timestamp, Title,
    USER_ID_MAX_CHARS, UserId, openapi_document,
};

const SECRET: &str = "a test secret that is at least 32 bytes long";
const USER: &str = "u1";

fn token(sub: &str) -> String {
    let claims = Claims::create(Duration::from_hours(1)).with_subject(sub);
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(claims)
        .unwrap()
}

/// A validator for `schema`, resolving `#/components/…` references against the document.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{schema}: {e}"))
}

/// What a reference points at, or the value itself.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => v,
    }
}

/// An answer, as the checks need it.
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The API with accounts on (cheap hashes) over a memory store, and the document.
struct Service {
    api: Api<MemoryStore>,
    doc: Value,
    seed: Cell<u8>,
}

impl Service {
    fn new() -> Self {
        let config = Config::from_lookup(|name| match name {
            "jwt_secret" => Some(SECRET.into()),
            "accounts" => Some("true".into()),
            _ => None,
        })
        .unwrap()
        .with_password_cost(PasswordCost::new(64, 1, 1).unwrap());
        Service {
            api: Api::new(MemoryStore::new(), config),
            doc: openapi_document(),
            seed: Cell::new(0),
        }
    }

    /// Sends a request, then checks its answer against the operation `template` documents
    /// for `method`, and returns it.
    fn call(
        &self,
        method: &str,
        path: &str,
        template: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let request = b.body(body.unwrap_or("").as_bytes().to_vec()).unwrap();
        self.seed.set(self.seed.get().wrapping_add(1));
        let ctx = RequestContext::new(
            Timestamp::from_system_time(std::time::SystemTime::now()),
            "req-1",
        )
        .with_entropy([self.seed.get(); 32])
        .with_client_addr("192.0.2.1");
        let response = pollster::block_on(self.api.handle(request, ctx));
        let reply = Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body().clone(),
        };
        self.check(method, template, &reply);
        reply
    }

    /// The answer is documented: its status for the operation, its required headers (each
    /// matching its schema), and its body by the schema of its media type.
    fn check(&self, method: &str, template: &str, reply: &Reply) {
        let doc = &self.doc;
        let what = format!("{method} {template} → {}", reply.status);
        let op = &doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{what}: no such operation");
        let documented = op["responses"]
            .get(reply.status.to_string())
            .unwrap_or_else(|| panic!("{what}: status not documented"));
        let documented = resolve(doc, documented);
        if let Some(headers) = documented["headers"].as_object() {
            for (name, header) in headers {
                let header = resolve(doc, header);
                let Some(value) = reply.headers.get(name.as_str()) else {
                    assert!(header["required"] != true, "{what}: no {name} header");
                    continue;
                };
                let value = value.to_str().unwrap();
                // Header values are text; an integer schema is checked on the number.
                let instance = match header["schema"]["type"].as_str() {
                    Some("integer") => json!(value.parse::<i64>().unwrap()),
                    _ => json!(value),
                };
                let v = validator(doc, &header["schema"]);
                assert!(v.is_valid(&instance), "{what}: {name}: {value:?}");
            }
        }
        let content = &documented["content"];
        let media = reply.headers.get("content-type").map(|v| {
            v.to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim()
                .to_owned()
        });
        match media {
            None => assert!(
                content.is_null() && reply.body.is_empty(),
                "{what}: a body without a content type"
            ),
            Some(media) => {
                let schema = &content[&media]["schema"];
                assert!(!content[&media].is_null(), "{what}: {media} not documented");
                if !schema.is_null() {
                    let body = reply.json();
                    let v = validator(doc, schema);
                    let errors: Vec<String> = v.iter_errors(&body).map(|e| e.to_string()).collect();
                    assert!(errors.is_empty(), "{what}: {body}: {errors:?}");
                }
            }
        }
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn task_answers_follow_the_document() {
    let s = Service::new();
    let bearer = format!("Bearer {}", token(USER));
    let auth = ("authorization", bearer.as_str());
    for base in ["/api", "/api/v1", "/api/u1", "/api/v1/u1"] {
        let t = if base.ends_with("u1") {
            base.replace("u1", "{user_id}")
        } else {
            base.to_owned()
        };
        let collection = format!("{t}/tasks");
        let item = format!("{t}/tasks/{{id}}");
        let full = r#"{"title":"  Buy milk ","description":"2 litres\n","priority":"high","due_date":"2026-12-01","completed":true}"#;
        // Keys are per user, and every base here is user u1's.
        let key = format!("key {base}");
        let created = s.call(
            "POST",
            &format!("{base}/tasks"),
            &collection,
            &[auth, JSON, ("idempotency-key", &key)],
            Some(full),
        );
        assert_eq!(created.status, 201);
        let replay = s.call(
            "POST",
            &format!("{base}/tasks"),
            &collection,
            &[auth, JSON, ("idempotency-key", &key)],
            Some(full),
        );
        assert_eq!(replay.headers["idempotent-replayed"], "true");
        let id = created.json()["data"]["id"].as_i64().unwrap();
        s.call(
            "POST",
            &format!("{base}/tasks"),
            &collection,
            &[auth, JSON],
            Some(r#"{"title":"t","id":1,"user_id":"x"}"#),
        );
        let page = s.call(
            "GET",
            &format!("{base}/tasks?limit=1&sort=title&priority=high,%20medium"),
            &collection,
            &[auth],
            None,
        );
        let cursor = page.json()["meta"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        s.call(
            "GET",
            &format!("{base}/tasks?limit=1&sort=title&priority=high,medium&cursor={cursor}"),
            &collection,
            &[auth],
            None,
        );
        let path = format!("{base}/tasks/{id}");
        let got = s.call("GET", &path, &item, &[auth], None);
        let etag = got.headers["etag"].to_str().unwrap().to_owned();
        assert_eq!(
            s.call("GET", &path, &item, &[auth, ("if-none-match", &etag)], None)
                .status,
            304
        );
        s.call(
            "PATCH",
            &path,
            &item,
            &[auth, JSON, ("if-match", &etag)],
            Some(r#"{"description":null,"due_date":null}"#),
        );
        s.call(
            "PUT",
            &path,
            &item,
            &[auth, JSON, ("if-match", &etag)],
            Some(r#"{"title":"stale"}"#),
        );
        for suffix in ["complete", "toggle-status"] {
            s.call(
                "PATCH",
                &format!("{path}/{suffix}"),
                &format!("{item}/{suffix}"),
                &[auth],
                None,
            );
        }
        s.call(
            "DELETE",
            &format!("{base}/tasks?status=completed"),
            &collection,
            &[auth],
            None,
        );
        s.call("DELETE", &path, &item, &[auth], None);
        // The problems each operation documents.
        s.call("GET", &path, &item, &[auth], None);
        s.call("GET", &path, &item, &[], None);
        s.call("GET", &path, &item, &[auth, ("if-none-match", "v1")], None);
        s.call(
            "GET",
            &format!("{base}/tasks?status=done&limit=0&cursor=x"),
            &collection,
            &[auth],
            None,
        );
        s.call(
            "DELETE",
            &format!("{base}/tasks"),
            &collection,
            &[auth],
            None,
        );
        for body in ["{", r#"{"title":" ","colour":1}"#] {
            s.call(
                "POST",
                &format!("{base}/tasks"),
                &collection,
                &[auth, JSON],
                Some(body),
            );
        }
        s.call(
            "POST",
            &format!("{base}/tasks"),
            &collection,
            &[auth, ("content-type", "text/plain")],
            Some("{}"),
        );
        s.call(
            "POST",
            &format!("{base}/tasks"),
            &collection,
            &[auth, JSON],
            Some(&format!(r#"{{"title":"{}"}}"#, "a".repeat(70_000))),
        );
        s.call(
            "POST",
            &format!("{base}/tasks"),
            &collection,
            &[auth, JSON, ("idempotency-key", &key)],
            Some(r#"{"title":"another body"}"#),
        );
    }
    // The path user's own answers.
    let other = s.call(
        "GET",
        "/api/someone/tasks",
        "/api/{user_id}/tasks",
        &[auth],
        None,
    );
    assert_eq!(other.status, 403);
    let bad = s.call(
        "GET",
        "/api/a%00b/tasks",
        "/api/{user_id}/tasks",
        &[auth],
        None,
    );
    assert_eq!(bad.status, 400);
    // A stale tag on a task that exists.
    let created = s.call(
        "POST",
        "/api/tasks",
        "/api/tasks",
        &[auth, JSON],
        Some(r#"{"title":"t"}"#),
    );
    let path = format!("/api/tasks/{}", created.json()["data"]["id"]);
    let stale = s.call(
        "DELETE",
        &path,
        "/api/tasks/{id}",
        &[auth, ("if-match", r#""v9""#)],
        None,
    );
    assert_eq!(stale.status, 412);
}

#[test]
fn the_schemas_refuse_what_they_do_not_describe() {
    // Guards the checks above against a validator that accepts anything (a reference that
    // resolved to nothing, say).
    let item = validator(&DOC, &json!({ "$ref": "#/components/schemas/TaskItem" }));
    assert!(!item.is_valid(&json!({ "data": { "id": 0 } })));
    let problem = validator(&DOC, &json!({ "$ref": "#/components/schemas/Problem" }));
    assert!(!problem.is_valid(&json!({ "type": "about:blank", "status": 200 })));
    assert!(!TITLE.is_valid(&json!(" ")) && TITLE.is_valid(&json!(" a ")));
}

#[test]
fn other_answers_follow_the_document() {
    let s = Service::new();
    s.call("GET", "/health", "/health", &[], None);
    s.call("GET", "/health/ready", "/health/ready", &[], None);
    s.call("GET", "/", "/", &[("accept", "text/html")], None);
    s.call("GET", "/openapi.json", "/openapi.json", &[], None);
    s.call("GET", "/web/app.js", "/web/app.js", &[], None);
    for base in ["/auth", "/api/auth"] {
        let creds = r#"{"email":" Ann@Example.com ","password":"correct horse"}"#;
        let registered = s.call(
            "POST",
            &format!("{base}/register"),
            &format!("{base}/register"),
            &[JSON],
            Some(creds),
        );
        let user = registered.json()["data"]["access_token"]
            .as_str()
            .map(str::to_owned);
        if base == "/auth" {
            assert_eq!(registered.status, 201);
        } else {
            assert_eq!(registered.status, 409);
        }
        let login = s.call(
            "POST",
            &format!("{base}/login"),
            &format!("{base}/login"),
            &[JSON],
            Some(creds),
        );
        assert_eq!(login.status, 200);
        let bearer = format!(
            "Bearer {}",
            user.unwrap_or_else(|| login.json()["data"]["access_token"]
                .as_str()
                .unwrap()
                .into())
        );
        let me = s.call(
            "GET",
            &format!("{base}/me"),
            &format!("{base}/me"),
            &[("authorization", &bearer)],
            None,
        );
        assert_eq!(me.status, 200);
        let foreign = format!("Bearer {}", token("not-an-account"));
        s.call(
            "GET",
            &format!("{base}/me"),
            &format!("{base}/me"),
            &[("authorization", &foreign)],
            None,
        );
        s.call(
            "GET",
            &format!("{base}/me"),
            &format!("{base}/me"),
            &[],
            None,
        );
        for body in [
            r#"{"email":"ann@example.com","password":"wrong password"}"#,
            r#"{"email":"ann","password":"short","extra":1}"#,
            "[]",
        ] {
            s.call(
                "POST",
                &format!("{base}/login"),
                &format!("{base}/login"),
                &[JSON],
                Some(body),
            );
        }
        s.call(
            "POST",
            &format!("{base}/logout"),
            &format!("{base}/logout"),
            &[],
            None,
        );
    }
}

/// The document, and a validator for each pattern the properties below compare, compiled
/// once (the description's pattern is large).
static DOC: LazyLock<Value> = LazyLock::new(openapi_document);

fn schema_at(pointer: &str) -> jsonschema::Validator {
    validator(&DOC, DOC.pointer(pointer).unwrap())
}

static TITLE: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| schema_at("/components/schemas/NewTask/properties/title"));
static DESCRIPTION: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| schema_at("/components/schemas/NewTask/properties/description"));
static Q: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| schema_at("/components/parameters/Q/schema"));
static EMAIL: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| schema_at("/components/schemas/Credentials/properties/email"));
static USER_IDS: LazyLock<[jsonschema::Validator; 2]> = LazyLock::new(|| {
    ["UserId", "UserIdV1"].map(|name| schema_at(&format!("/components/parameters/{name}/schema")))
});
static KEY: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| schema_at("/components/parameters/IdempotencyKey/schema"));
static IF_MATCH: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| schema_at("/components/parameters/IfMatch/schema"));

/// Characters that sit on the rules' edges: whitespace that is a control character and
/// whitespace that is not, controls that are not whitespace (C0, DEL, C1), characters
/// Python counts as whitespace and Rust does not (U+001C, U+FEFF), and ordinary ones.
const EDGES: &[char] = &[
    'a', 'Z', '0', ' ', '.', '@', ',', '"', '*', '/', 'W', 'é', '\t', '\n', '\r', '\u{b}', '\u{c}',
    '\u{0}', '\u{1c}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}', '\u{a0}', '\u{2028}', '\u{3000}',
    '\u{feff}', '\u{200b}', '😀',
];

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(EDGES), 0..max)
        .prop_map(|cs| cs.into_iter().collect())
}

/// Text around a length limit: `core` characters of `a`, padded with edge characters.
fn near(limit: usize) -> impl Strategy<Value = String> {
    (limit - 2..=limit + 1, text(4), text(4))
        .prop_map(|(n, before, after)| format!("{before}{}{after}", "a".repeat(n)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn title_pattern_is_the_title_rule(s in prop_oneof![text(12), near(TITLE_MAX_CHARS)]) {
        prop_assert_eq!(TITLE.is_valid(&json!(s)), Title::parse(&s).is_ok(), "{:?}", s);
    }

    #[test]
    fn description_pattern_is_the_description_rule(s in prop_oneof![text(12), near(DESCRIPTION_MAX_CHARS)]) {
        prop_assert_eq!(DESCRIPTION.is_valid(&json!(s)), Description::parse(&s).is_ok(), "{:?}", s);
    }

    #[test]
    fn q_pattern_is_the_search_rule(s in prop_oneof![text(12), near(MAX_SEARCH_CHARS)]) {
        let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("q", &s).finish();
        prop_assert_eq!(Q.is_valid(&json!(s)), ListQuery::parse(&query).is_ok(), "{:?}", s);
    }

    #[test]
    fn email_pattern_is_the_email_rule(s in text(14)) {
        prop_assert_eq!(EMAIL.is_valid(&json!(s)), Email::parse(&s).is_some(), "{:?}", s);
    }

    #[test]
    fn user_id_pattern_is_the_user_id_rule(s in prop_oneof![text(8), near(USER_ID_MAX_CHARS)]) {
        // `tasks` and `v1` are user ids the path cannot name (the `not` of the schema).
        prop_assume!(s != "tasks" && s != "v1");
        for v in USER_IDS.iter() {
            prop_assert_eq!(v.is_valid(&json!(s)), UserId::parse(&s).is_some(), "{:?}", s);
        }
    }

    /// HTTP drops spaces and tabs around a header value, so only values without them are
    /// compared; the pattern has none there.
    #[test]
    fn idempotency_key_pattern_is_the_key_rule(s in prop_oneof![
        "[ -~]{0,6}",
        "[!-~][ -~]{252,255}",
        text(6),
    ]) {
        prop_assume!(s.trim_matches([' ', '\t']) == s);
        prop_assert_eq!(KEY.is_valid(&json!(s)), IdempotencyKey::parse(&s).is_some(), "{:?}", s);
    }

    /// `If-Match` on a task that does not exist: a 400 for a malformed header, else 404.
    #[test]
    fn entity_tags_pattern_is_the_if_match_rule(s in r#"[ \t,"*W/av1!~]{1,12}"#) {
        prop_assume!(s.trim_matches([' ', '\t']) == s);
        let s2 = Service::new();
        let bearer = format!("Bearer {}", token(USER));
        let r = s2.call(
            "DELETE",
            "/api/tasks/7",
            "/api/tasks/{id}",
            &[("authorization", &bearer), ("if-match", &s)],
            None,
        );
        prop_assert_eq!(IF_MATCH.is_valid(&json!(s)), r.status != 400, "{:?} → {}", s, r.status);
    }
}
