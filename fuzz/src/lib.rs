//! Shared pieces of the fuzz targets: structured JSON, token minting, fixed keys and a
//! seeded store.
//!
//! Everything here is deterministic (fixed keys, fixed clock), so a crash input replays.

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use task_api_core::{
    DueDate, MemoryStore, NewTask, Priority, TaskStore, Timestamp, Title, UserId,
};

/// The HS256 secret of every configuration (at least 32 bytes).
pub const SECRET: &str = "fuzzing secret that is at least 32 bytes long";
/// 2026-11-21T10:15:30Z, the targets' clock.
pub const START_MS: i64 = 1_795_256_130_000;
pub const START_SECS: i64 = START_MS / 1000;

/// The user whose tasks are seeded and whose tokens are minted.
pub const OWNER: &str = "owner";
/// Another user with tasks of its own.
pub const OTHER: &str = "other";

/// RFC 8037 appendix A's Ed25519 key: `d` (the seed) and `x` (the public key).
pub const ED25519_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
pub const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// The P-256 generator point, a valid public key.
pub const P256_X: &str = "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY";
pub const P256_Y: &str = "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";

/// A JWKS holding the Ed25519 key (kid `ed`) and the P-256 point (kid `ec`).
pub fn jwks_document() -> String {
    format!(
        r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"ed","x":"{ED25519_X}"}},{{"kty":"EC","crv":"P-256","kid":"ec","x":"{P256_X}","y":"{P256_Y}"}}]}}"#
    )
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.claims.signature` with an HS256 signature over the first two parts.
pub fn sign_hs256(header_json: &str, claims_json: &str, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header_json), b64(claims_json));
    let mac = hmac_sha256::HMAC::mac(input.as_bytes(), key);
    format!("{input}.{}", b64(mac))
}

/// `header.claims.signature` with an EdDSA signature by the RFC 8037 key.
pub fn sign_eddsa(header_json: &str, claims_json: &str) -> String {
    let input = format!("{}.{}", b64(header_json), b64(claims_json));
    static KP: std::sync::OnceLock<ed25519_compact::KeyPair> = std::sync::OnceLock::new();
    let kp = KP.get_or_init(|| {
        let seed = URL_SAFE_NO_PAD.decode(ED25519_D).expect("a valid seed");
        ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::from_slice(&seed).unwrap())
    });
    let sig = kp.sk.sign(input.as_bytes(), None);
    format!("{input}.{}", b64(sig.as_ref()))
}

/// A valid HS256 token for `sub`, issued at `START_SECS`, valid for an hour.
pub fn hs256_token(sub: &str) -> String {
    let claims = serde_json::json!({
        "sub": sub,
        "iat": START_SECS,
        "nbf": START_SECS,
        "exp": START_SECS + 3600,
    });
    sign_hs256(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims.to_string(),
        SECRET.as_bytes(),
    )
}

// ------------------------------------------------------------------ structured JSON

/// A JSON object key: one of the names the API reads, or any text.
#[derive(Arbitrary, Debug, Clone)]
pub enum Key {
    Known(u8),
    Raw(String),
}

pub const KNOWN_KEYS: &[&str] = &[
    "title",
    "description",
    "priority",
    "due_date",
    "completed",
    "email",
    "password",
    "id",
    "user_id",
    "keys",
    "kty",
    "crv",
    "x",
    "y",
    "n",
    "e",
    "alg",
    "kid",
    "use",
    "key_ops",
    "sub",
    "exp",
    "nbf",
    "iat",
    "iss",
    "aud",
    "typ",
    "d",
];

impl Key {
    pub fn text(&self) -> String {
        match self {
            Key::Known(i) => KNOWN_KEYS[*i as usize % KNOWN_KEYS.len()].to_owned(),
            Key::Raw(s) => s.clone(),
        }
    }
}

/// Raw JSON texts that are awkward for a parser or a validator.
pub const TRICKY_JSON: &[&str] = &[
    "1e400",
    "-0",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1.5",
    "0.0000001",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"\\u007f\"",
    "\"\\u0085\"",
    "\"\\u2028\"",
    "\"high\"",
    "\"low\"",
    "\"medium\"",
    "\"HIGH\"",
    "\"2026-02-29\"",
    "\"2028-02-29\"",
    "\"9999-12-31\"",
    "\"0000-01-01\"",
    "\"2026-13-01\"",
    "\"2026-11-21T10:15:30Z\"",
    "\"ann@example.com\"",
    "\"ANN@EXAMPLE.COM\"",
    "\"correct horse battery staple\"",
    "\"  \"",
    "\"\"",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "\"EdDSA\"",
    "\"HS256\"",
    "\"none\"",
    "\"OKP\"",
    "\"EC\"",
    "\"RSA\"",
    "\"Ed25519\"",
    "\"P-256\"",
    "\"sig\"",
    "[\"verify\"]",
    "\"AQAB\"",
    "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"",
    "\"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY\"",
    "\"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU\"",
    "\"owner\"",
    "\"other\"",
    "1795256130",
    "1795259730",
    "4102444800",
];

/// A JSON leaf.
#[derive(Arbitrary, Debug, Clone)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A string of `n` copies of a character (lengths around the limits).
    Repeat(char, u16),
    /// Base64url of bytes (key material).
    B64(Vec<u8>),
    /// Base64url of `len` bytes, the first one `top` and the rest `fill` (RSA moduli).
    B64Len { len: u16, top: u8, fill: u8 },
    Tricky(u8),
}

/// A JSON value, at most three levels deep (no recursion, so no deep stacks).
#[derive(Arbitrary, Debug, Clone)]
pub enum Json {
    Scalar(Scalar),
    Array(Vec<Scalar>),
    Object(Vec<(Key, Scalar)>),
    Nested(Vec<(Key, Inner)>),
    Raw(String),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Inner {
    Scalar(Scalar),
    Array(Vec<Scalar>),
    Object(Vec<(Key, Scalar)>),
    ArrayOfObjects(Vec<Vec<(Key, Scalar)>>),
}

fn push_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

impl Scalar {
    pub fn render(&self, out: &mut String) {
        match self {
            Scalar::Null => out.push_str("null"),
            Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Scalar::Int(i) => out.push_str(&i.to_string()),
            Scalar::Float(f) if f.is_finite() => out.push_str(&format!("{f:?}")),
            Scalar::Float(_) => out.push_str("1e999"),
            Scalar::Str(s) => push_str(out, s),
            Scalar::Repeat(c, n) => push_str(out, &c.to_string().repeat(*n as usize % 2100)),
            Scalar::B64(bytes) => push_str(out, &b64(bytes)),
            Scalar::B64Len { len, top, fill } => {
                let len = *len as usize % 600;
                let mut bytes = vec![*fill; len];
                if let Some(first) = bytes.first_mut() {
                    *first = *top;
                }
                push_str(out, &b64(bytes));
            }
            Scalar::Tricky(i) => out.push_str(TRICKY_JSON[*i as usize % TRICKY_JSON.len()]),
        }
    }
}

fn render_object(out: &mut String, members: &[(Key, Scalar)]) {
    out.push('{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &k.text());
        out.push(':');
        v.render(out);
    }
    out.push('}');
}

fn render_array(out: &mut String, items: &[Scalar]) {
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        v.render(out);
    }
    out.push(']');
}

impl Inner {
    pub fn render(&self, out: &mut String) {
        match self {
            Inner::Scalar(s) => s.render(out),
            Inner::Array(a) => render_array(out, a),
            Inner::Object(o) => render_object(out, o),
            Inner::ArrayOfObjects(list) => {
                out.push('[');
                for (i, o) in list.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render_object(out, o);
                }
                out.push(']');
            }
        }
    }
}

impl Json {
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self {
            Json::Scalar(s) => s.render(&mut out),
            Json::Array(a) => render_array(&mut out, a),
            Json::Object(o) => render_object(&mut out, o),
            Json::Nested(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_str(&mut out, &k.text());
                    out.push(':');
                    v.render(&mut out);
                }
                out.push('}');
            }
            Json::Raw(s) => out.push_str(s),
        }
        out
    }
}

// ------------------------------------------------------------------ a seeded store

/// Titles of the seeded tasks: ties, case, non-ASCII and the `|` of the cursor format.
const SEED_TITLES: &[&str] = &[
    "Buy milk",
    "buy milk",
    "Água",
    "zebra | stripes",
    "ß",
    "İstanbul",
    "task 10",
    "task 9",
    "",
    "…",
];
const SEED_DATES: &[Option<&str>] = &[
    Some("2026-11-21"),
    None,
    Some("2026-11-21"),
    Some("2027-01-01"),
    Some("2028-02-29"),
    None,
    Some("0001-01-01"),
    Some("9999-12-31"),
    None,
    Some("2026-11-20"),
];

/// Seeds `store` with ten tasks of [`OWNER`] (ids 1 to 10 in order, half completed, every
/// priority, ties on title and due date) and three of [`OTHER`] (ids 11 to 13).
pub fn seed(store: &MemoryStore) {
    let owner = UserId::parse(OWNER).unwrap();
    let other = UserId::parse(OTHER).unwrap();
    for (i, title) in SEED_TITLES.iter().enumerate() {
        let title = if title.is_empty() { "x" } else { title };
        let mut new = NewTask::new(Title::parse(title).unwrap());
        new.priority = Priority::ALL[i % 3];
        new.due_date = SEED_DATES[i].and_then(DueDate::parse);
        new.completed = i % 2 == 1;
        // Creation times with ties (pairs share a millisecond).
        let now = Timestamp::from_millis(START_MS - 10_000 + (i as i64 / 2) * 1000);
        pollster::block_on(store.create(&owner, new, None, now)).unwrap();
    }
    for i in 0..3 {
        let new = NewTask::new(Title::parse(&format!("other {i}")).unwrap());
        let now = Timestamp::from_millis(START_MS - 5_000);
        pollster::block_on(store.create(&other, new, None, now)).unwrap();
    }
}
