//! The service's settings: their names, defaults and checks, in one place.
//!
//! The core never reads the environment. A host hands [`Config::from_lookup`] a function
//! that finds a setting by name (the Spin component reads Spin variables; a native app may
//! read its own environment or a file), and gets back a typed [`Config`] or every problem
//! at once, each naming the setting and never its value.

use std::collections::HashSet;
use std::fmt;

use crate::auth::algorithm::{Algorithm, JwtSecret, MIN_SECRET_BYTES};
use crate::auth::jwks::JwkSet;
use crate::auth::password::PasswordCost;
use crate::auth::tokens::{MAX_ACCESS_TOKEN_TTL_SECS, MIN_ACCESS_TOKEN_TTL_SECS, TokenSettings};
use crate::auth::verifier::JwtVerifier;
use crate::config::cors::CorsOrigins;
use crate::config::scope::SettingsScope;

/// Longest accepted `jwt_jwks_ttl`, in seconds (one day).
pub const MAX_JWKS_TTL_SECS: u64 = 86_400;

/// A setting the core reads, with its default (`None`: required).
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The name, as a Spin variable (lower case, underscores).
    pub name: &'static str,
    /// The value used when the setting is missing or empty; `None` if it is required
    /// (`jwt_secret`, unless `jwt_jwks` or `jwt_jwks_url` is set and `accounts` is off).
    pub default: Option<&'static str>,
    /// Whether the value is secret (never logged, never shown).
    pub secret: bool,
}

impl Setting {
    /// This setting's value through `lookup`: the value found, or the default when it is
    /// missing or blank (an empty string for a setting without a default).
    ///
    /// ```
    /// use task_api_core::Setting;
    /// let s = Setting { name: "auto_migrate", default: Some("true"), secret: false };
    /// assert_eq!(s.read(|_| Some("  ".into())), "true");
    /// assert_eq!(s.read(|_| Some("false".into())), "false");
    /// ```
    pub fn read(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        lookup(self.name)
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| self.default.unwrap_or("").to_owned())
    }
}

/// A yes-or-no setting's value: `true`, `1`, `yes`, `on` or `false`, `0`, `no`, `off`, in
/// any case; anything else is `None`.
///
/// ```
/// assert_eq!(task_api_core::parse_flag("On"), Some(true));
/// assert_eq!(task_api_core::parse_flag("maybe"), None);
/// ```
pub fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Every setting of the core, with its default.
///
/// An empty `jwt_algorithms` means HS256 alone without a JWKS; with one, HS256 (when
/// `jwt_secret` is set) plus the algorithms of the JWKS's keys.
///
/// `accounts` turns on the built-in accounts routes (`/auth/…`), which need `jwt_secret`
/// (they sign HS256 tokens with it) and HS256 among the accepted algorithms;
/// `access_token_ttl` is the lifetime of the tokens they issue, in seconds.
///
/// `web_ui` serves the web page at `/` to browsers (off: `/` answers only its JSON index and
/// the page's files are 404), for deployments whose people use a frontend of their own.
///
/// `client_addr_header` names the header in which a trusted proxy in front of the service
/// reports the client's address (for example `x-forwarded-for`): the throttle then keys
/// clients by the last entry of its last value, the one that proxy added, instead of the
/// host's own report (behind a proxy, that is the proxy's address for every client).
///
/// `tombstone_retention_days` is how long the change feed keeps deleted tasks' tombstones
/// (1 to 3650 days): a feed token older than that is a 410 `sync_reset`.
pub const SETTINGS: [Setting; 13] = [
    Setting {
        name: "jwt_secret",
        default: None,
        secret: true,
    },
    Setting {
        name: "jwt_algorithms",
        default: Some(""),
        secret: false,
    },
    Setting {
        name: "jwt_issuer",
        default: Some(""),
        secret: false,
    },
    Setting {
        name: "jwt_audience",
        default: Some(""),
        secret: false,
    },
    Setting {
        name: "jwt_jwks",
        default: Some(""),
        secret: false,
    },
    Setting {
        name: "jwt_jwks_url",
        default: Some(""),
        secret: false,
    },
    Setting {
        name: "jwt_jwks_ttl",
        default: Some("300"),
        secret: false,
    },
    Setting {
        name: "cors_origins",
        default: Some(""),
        secret: false,
    },
    Setting {
        name: "accounts",
        default: Some("false"),
        secret: false,
    },
    Setting {
        name: "access_token_ttl",
        default: Some("86400"),
        secret: false,
    },
    Setting {
        name: "client_addr_header",
        default: Some(""),
        secret: false,
    },
    Setting {
        name: "web_ui",
        default: Some("false"),
        secret: false,
    },
    Setting {
        name: "tombstone_retention_days",
        default: Some("30"),
        secret: false,
    },
];

/// The longest `tombstone_retention_days`.
pub const MAX_TOMBSTONE_RETENTION_DAYS: u64 = 3650;

/// One problem with one setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The setting's name.
    pub setting: &'static str,
    /// What is wrong, without the value.
    pub message: String,
}

/// Every problem found in the settings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Each problem, in [`SETTINGS`] order.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the service is misconfigured: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", p.setting, p.message)?;
        }
        Ok(())
    }
}

/// The checked configuration of the core.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) verifier: JwtVerifier,
    pub(crate) cors: CorsOrigins,
    pub(crate) accounts: bool,
    /// How issued tokens are signed; `Some` whenever a secret is set.
    pub(crate) tokens: Option<TokenSettings>,
    pub(crate) password_cost: PasswordCost,
    warnings: Vec<&'static str>,
    /// The header a trusted proxy reports the client's address in (`client_addr_header`).
    pub(crate) client_addr_header: Option<String>,
    pub(crate) web_ui: bool,
    jwks_url: Option<String>,
    jwks_ttl_secs: u64,
    /// How long the change feed keeps tombstones (`tombstone_retention_days`), in ms.
    pub(crate) tombstone_retention_ms: i64,
}

impl Config {
    /// Reads every setting of [`SETTINGS`] through `lookup`; a missing or empty value takes
    /// the default.
    ///
    /// ```
    /// use task_api_core::Config;
    /// let config = Config::from_lookup(|name| match name {
    ///     "jwt_secret" => Some("an example secret of at least 32 bytes!".into()),
    ///     "cors_origins" => Some("https://app.example, http://localhost:3000".into()),
    ///     _ => None,
    /// });
    /// assert!(config.is_ok());
    ///
    /// let err = Config::from_lookup(|name| (name == "jwt_algorithms").then(|| "RS256".into()))
    ///     .unwrap_err();
    /// let names: Vec<_> = err.problems.iter().map(|p| p.setting).collect();
    /// assert_eq!(names, ["jwt_secret", "jwt_algorithms"]);
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut r = Reader {
            lookup,
            problems: Vec::new(),
        };
        // Accounts first: they need the secret and HS256.
        let accounts = r.flag(Name::Accounts);
        let accounts_on = accounts == Some(true);
        let token_ttl = r.seconds(
            Name::AccessTokenTtl,
            MIN_ACCESS_TOKEN_TTL_SECS..=MAX_ACCESS_TOKEN_TTL_SECS,
        );
        // The key set next: whether one is configured decides whether the secret is
        // required.
        let keys = r.key_set();
        let secret = r.secret(keys.configured, accounts_on);
        let algorithms = r.algorithms(accounts_on, keys.configured, secret.is_some());
        let identity = Identity::read(&r);
        let cors = CorsOrigins::parse(&r.get(Name::CorsOrigins))
            .map_err(|m| r.problem(Name::CorsOrigins, m));
        let client_addr_header = r.client_addr_header();
        let web_ui = r.flag(Name::WebUi);
        let retention_days = r.whole(
            Name::TombstoneRetentionDays,
            1..=MAX_TOMBSTONE_RETENTION_DAYS,
            "days",
        );

        // Report in SETTINGS order, each setting's problems in the order found.
        let mut problems = r.problems;
        problems.sort_by_key(|p| SETTINGS.iter().position(|s| s.name == p.setting));
        let (
            Ok(algorithms),
            Ok(cors),
            Some(accounts),
            Some(jwks_ttl_secs),
            Some(token_ttl),
            Some(web_ui),
            Some(retention_days),
            true,
        ) = (
            algorithms,
            cors,
            accounts,
            keys.ttl_secs,
            token_ttl,
            web_ui,
            retention_days,
            problems.is_empty(),
        )
        else {
            return Err(ConfigError { problems });
        };
        let secret = secret.and_then(Result::ok);
        // Issued tokens name the first configured issuer and audience.
        let tokens = secret.clone().map(|secret| TokenSettings {
            secret,
            ttl_secs: token_ttl,
            issuer: identity.first_issuer.clone(),
            audience: identity.first_audience.clone(),
        });
        let Some(verifier) = verifier(secret, keys.inline, keys.url.is_some(), algorithms) else {
            // A missing secret without a key set was reported above.
            return Err(ConfigError { problems });
        };
        let (verifier, warnings) = identity.apply(verifier, keys.configured);
        Ok(Config {
            warnings,
            verifier,
            cors,
            accounts,
            tokens,
            password_cost: PasswordCost::DEFAULT,
            client_addr_header,
            web_ui,
            jwks_url: keys.url,
            jwks_ttl_secs,
            tombstone_retention_ms: i64::try_from(retention_days).unwrap_or(i64::MAX / 86_400_000)
                * 86_400_000,
        })
    }

    /// The configuration for one request, reading through `lookup` only the settings in
    /// `scope` (the others take their defaults, which the request cannot tell apart from
    /// the real values). Should that configuration have any problem, every setting is read
    /// and the whole of [`Config::from_lookup`]'s verdict is returned: a bad setting is
    /// always reported with every other problem, never alone or wrongly. Each setting is
    /// looked up at most once.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use task_api_core::{Config, SettingsScope};
    /// let asked = RefCell::new(Vec::new());
    /// let lookup = |name: &str| {
    ///     asked.borrow_mut().push(name.to_owned());
    ///     (name == "jwt_secret").then(|| "an example secret of at least 32 bytes!".into())
    /// };
    /// let request = http::Request::get("/api/tasks").body(()).unwrap();
    /// assert!(Config::for_request(SettingsScope::of(&request), lookup).is_ok());
    /// assert!(!asked.borrow().iter().any(|n| n == "cors_origins" || n == "jwt_jwks_url"));
    ///
    /// // A bad setting outside the scope stays unread until a request uses it, and is then
    /// // reported together with every other problem.
    /// let bad_cors = |name: &str| match name {
    ///     "jwt_secret" => Some("short".into()),
    ///     "cors_origins" => Some("not an origin".into()),
    ///     _ => None,
    /// };
    /// let err = Config::for_request(SettingsScope::of(&request), bad_cors).unwrap_err();
    /// let names: Vec<_> = err.problems.iter().map(|p| p.setting).collect();
    /// assert_eq!(names, ["jwt_secret", "cors_origins"]);
    /// ```
    pub fn for_request(
        scope: SettingsScope,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let seen: std::cell::RefCell<Vec<(String, Option<String>)>> = Default::default();
        let read = |name: &str| -> Option<String> {
            if let Some((_, v)) = seen.borrow().iter().find(|(n, _)| n == name) {
                return v.clone();
            }
            let v = lookup(name);
            seen.borrow_mut().push((name.to_owned(), v.clone()));
            v
        };
        if scope == SettingsScope::ALL {
            return Config::from_lookup(read);
        }
        Config::from_lookup(|name| if scope.covers(name) { read(name) } else { None })
            .or_else(|_| Config::from_lookup(read))
    }

    /// What is allowed but probably not meant, for the host to log (the core logs nothing):
    /// today, a JWKS without `jwt_audience`. `/health/ready` puts these in its
    /// [`crate::RequestLog`], so a host logs them whenever a probe checks readiness.
    ///
    /// ```
    /// use task_api_core::Config;
    /// let open = Config::from_lookup(|n| (n == "jwt_jwks_url").then(|| "https://a.example/jwks".into())).unwrap();
    /// assert!(open.warnings()[0].contains("jwt_audience"));
    /// let scoped = Config::from_lookup(|n| match n {
    ///     "jwt_jwks_url" => Some("https://a.example/jwks".into()),
    ///     "jwt_audience" => Some("https://a.example".into()),
    ///     _ => None,
    /// })
    /// .unwrap();
    /// assert!(scoped.warnings().is_empty());
    /// ```
    pub fn warnings(&self) -> &[&'static str] {
        &self.warnings
    }

    /// The URL of the JWKS the host should fetch (`jwt_jwks_url`), if one is configured.
    /// Until the host hands over the keys with [`Config::with_fetched_jwks`], asymmetric
    /// tokens are answered 401 "the signing keys could not be fetched".
    pub fn jwks_url(&self) -> Option<&str> {
        self.jwks_url.as_deref()
    }

    /// How long a fetched JWKS stays fresh, in seconds (`jwt_jwks_ttl`, default
    /// [`DEFAULT_JWKS_TTL_SECS`](crate::DEFAULT_JWKS_TTL_SECS)); see
    /// [`JwksCache::is_fresh`](crate::JwksCache::is_fresh).
    pub fn jwks_ttl_secs(&self) -> u64 {
        self.jwks_ttl_secs
    }

    /// How long the change feed keeps deleted tasks' tombstones, in milliseconds
    /// (`tombstone_retention_days`, default 30 days).
    ///
    /// ```
    /// use task_api_core::Config;
    /// let config = Config::from_lookup(|name| match name {
    ///     "jwt_secret" => Some("an example secret of at least 32 bytes!".into()),
    ///     "tombstone_retention_days" => Some("7".into()),
    ///     _ => None,
    /// })
    /// .unwrap();
    /// assert_eq!(config.tombstone_retention_ms(), 7 * 86_400_000);
    /// ```
    pub fn tombstone_retention_ms(&self) -> i64 {
        self.tombstone_retention_ms
    }

    /// This configuration with `keys` as the JWKS for the request (the host fetched them
    /// from [`Config::jwks_url`], or read them from its cache). Replaces any earlier set,
    /// including a pinned `jwt_jwks`.
    ///
    /// ```
    /// use jwt_simple::prelude::*;
    /// use task_api_core::{Config, JwkSet};
    /// let config = Config::from_lookup(|name| {
    ///     (name == "jwt_jwks_url").then(|| "https://app.example/api/auth/jwks".into())
    /// })
    /// .unwrap();
    /// assert_eq!(config.jwks_url(), Some("https://app.example/api/auth/jwks"));
    /// assert_eq!(config.jwks_ttl_secs(), 300);
    ///
    /// let key = Ed25519KeyPair::generate().with_key_id("k1");
    /// let jwk = key.public_key().to_jwk();
    /// let fetched = JwkSet::parse(&format!(r#"{{"keys":[{jwk}]}}"#)).unwrap();
    /// let config = config.with_fetched_jwks(fetched);
    /// # let _ = config;
    /// ```
    pub fn with_fetched_jwks(mut self, keys: JwkSet) -> Self {
        self.verifier = self.verifier.with_jwks(keys);
        self
    }

    /// This configuration with no usable JWKS for the request (fetching failed and no
    /// usable cached copy exists): asymmetric tokens are answered 401 "the signing keys
    /// could not be fetched"; HMAC tokens are checked as usual.
    pub fn with_jwks_unavailable(mut self) -> Self {
        self.verifier = self.verifier.with_jwks_unavailable();
        self
    }

    /// Whether the built-in accounts routes are enabled.
    pub fn accounts_enabled(&self) -> bool {
        self.accounts
    }

    /// Whether the web page is served at `/` (`web_ui`; off by default).
    ///
    /// ```
    /// use task_api_core::Config;
    /// let config = Config::from_lookup(|name| match name {
    ///     "jwt_secret" => Some("an example secret of at least 32 bytes!".into()),
    ///     "web_ui" => Some("yes".into()),
    ///     _ => None,
    /// })
    /// .unwrap();
    /// assert!(config.web_ui_enabled());
    /// ```
    pub fn web_ui_enabled(&self) -> bool {
        self.web_ui
    }

    /// The lifetime of the tokens the accounts routes issue, in seconds (`access_token_ttl`,
    /// default [`DEFAULT_ACCESS_TOKEN_TTL_SECS`](crate::DEFAULT_ACCESS_TOKEN_TTL_SECS)), or
    /// `None` when no `jwt_secret` is set (no tokens can be issued).
    pub fn access_token_ttl_secs(&self) -> Option<u64> {
        self.tokens.as_ref().map(|t| t.ttl_secs)
    }

    /// The Argon2id cost of new password hashes ([`PasswordCost::DEFAULT`] unless changed).
    pub fn password_cost(&self) -> PasswordCost {
        self.password_cost
    }

    /// This configuration hashing new passwords at `cost`. **For tests only**: a debug build
    /// takes about half a second per hash at the default cost. Production keeps
    /// [`PasswordCost::DEFAULT`]; no setting changes it.
    ///
    /// ```
    /// use task_api_core::{Config, PasswordCost};
    /// let config = Config::from_lookup(|name| {
    ///     (name == "jwt_secret").then(|| "an example secret of at least 32 bytes!".into())
    /// })
    /// .unwrap();
    /// assert_eq!(config.password_cost(), PasswordCost::DEFAULT);
    /// assert_eq!(config.access_token_ttl_secs(), Some(86_400));
    /// let cheap = config.with_password_cost(PasswordCost::new(64, 1, 1).unwrap());
    /// assert_eq!(cheap.password_cost().memory_kib(), 64);
    /// ```
    pub fn with_password_cost(mut self, cost: PasswordCost) -> Self {
        self.password_cost = cost;
        self
    }

    /// The token verifier.
    pub fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }
}

/// The core's settings by name, in [`SETTINGS`] order: a closed set, so that reading a
/// setting under a misspelt name does not compile (a string name would silently read as
/// empty, which is the default of most settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    JwtSecret,
    JwtAlgorithms,
    JwtIssuer,
    JwtAudience,
    JwtJwks,
    JwtJwksUrl,
    JwtJwksTtl,
    CorsOrigins,
    Accounts,
    AccessTokenTtl,
    ClientAddrHeader,
    WebUi,
    TombstoneRetentionDays,
}

impl Name {
    /// Every name, in [`SETTINGS`] order (a test checks that the two lists agree).
    #[cfg(test)]
    const ALL: [Name; SETTINGS.len()] = [
        Name::JwtSecret,
        Name::JwtAlgorithms,
        Name::JwtIssuer,
        Name::JwtAudience,
        Name::JwtJwks,
        Name::JwtJwksUrl,
        Name::JwtJwksTtl,
        Name::CorsOrigins,
        Name::Accounts,
        Name::AccessTokenTtl,
        Name::ClientAddrHeader,
        Name::WebUi,
        Name::TombstoneRetentionDays,
    ];

    fn setting(self) -> Setting {
        SETTINGS[self as usize]
    }

    fn as_str(self) -> &'static str {
        self.setting().name
    }
}

/// One reading of the settings through a host's lookup, and every problem found so far.
struct Reader<F> {
    lookup: F,
    problems: Vec<ConfigProblem>,
}

/// The key set's settings, read: an inline set (`jwt_jwks`) or a URL to fetch one from.
struct KeySetSettings {
    /// Whether either is set (then the secret is optional).
    configured: bool,
    inline: Option<JwkSet>,
    url: Option<String>,
    ttl_secs: Option<u64>,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    /// The value of `name`, or its default.
    fn get(&self, name: Name) -> String {
        name.setting().read(&self.lookup)
    }

    fn problem(&mut self, name: Name, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            setting: name.as_str(),
            message: message.into(),
        });
    }

    /// A yes-or-no setting ([`parse_flag`]).
    fn flag(&mut self, name: Name) -> Option<bool> {
        let value = parse_flag(&self.get(name));
        if value.is_none() {
            self.problem(name, "must be true or false");
        }
        value
    }

    /// A number of seconds within `range`.
    fn seconds(&mut self, name: Name, range: std::ops::RangeInclusive<u64>) -> Option<u64> {
        self.whole(name, range, "seconds")
    }

    /// A whole number of `unit` within `range`.
    fn whole(
        &mut self,
        name: Name,
        range: std::ops::RangeInclusive<u64>,
        unit: &str,
    ) -> Option<u64> {
        let value = self
            .get(name)
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|t| range.contains(t));
        if value.is_none() {
            self.problem(
                name,
                format!(
                    "must be a whole number of {unit} from {} to {}",
                    range.start(),
                    range.end()
                ),
            );
        }
        value
    }

    /// `jwt_jwks`, `jwt_jwks_url` and `jwt_jwks_ttl`.
    fn key_set(&mut self) -> KeySetSettings {
        let jwks_raw = self.get(Name::JwtJwks);
        let url_raw = self.get(Name::JwtJwksUrl);
        let inline = if jwks_raw.is_empty() {
            None
        } else {
            JwkSet::parse(&jwks_raw)
                .map_err(|e| self.problem(Name::JwtJwks, format!("is not a usable JWKS: {e}")))
                .ok()
        };
        let url = if url_raw.is_empty() {
            None
        } else {
            if !jwks_raw.is_empty() {
                self.problem(
                    Name::JwtJwksUrl,
                    "cannot be set together with jwt_jwks: pin the keys or fetch them",
                );
            }
            let url = url_raw.trim().to_owned();
            if !is_http_url(&url) {
                self.problem(
                    Name::JwtJwksUrl,
                    "must be an https:// or http:// URL with a host",
                );
            }
            Some(url)
        };
        let ttl_secs = self.seconds(Name::JwtJwksTtl, 1..=MAX_JWKS_TTL_SECS);
        KeySetSettings {
            configured: !jwks_raw.is_empty() || !url_raw.is_empty(),
            inline,
            url,
            ttl_secs,
        }
    }

    /// `jwt_secret`: `None` when it is not set, `Some(Err(()))` when it is set but unusable
    /// (reported).
    fn secret(&mut self, has_jwks: bool, accounts_on: bool) -> Option<Result<JwtSecret, ()>> {
        let raw = self.get(Name::JwtSecret);
        if raw.is_empty() {
            if !has_jwks {
                self.problem(
                    Name::JwtSecret,
                    "is required unless jwt_jwks or jwt_jwks_url is set",
                );
            } else if accounts_on {
                self.problem(
                    Name::JwtSecret,
                    "is required when accounts is true: it signs the tokens the service issues",
                );
            }
            return None;
        }
        Some(JwtSecret::new(raw).ok_or_else(|| {
            self.problem(
                Name::JwtSecret,
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            )
        }))
    }

    /// `jwt_algorithms`, checked against the keys, the secret and the accounts: `Ok(None)`
    /// when it is not set (the accepted algorithms then follow the secret and the key set).
    fn algorithms(
        &mut self,
        accounts_on: bool,
        has_jwks: bool,
        secret_set: bool,
    ) -> Result<Option<Vec<Algorithm>>, ()> {
        let raw = self.get(Name::JwtAlgorithms);
        let listed = match list(&raw).map(Algorithm::parse).collect::<Option<Vec<_>>>() {
            Some(a) if a.is_empty() => return Ok(None),
            Some(a) => a,
            None => {
                self.problem(
                    Name::JwtAlgorithms,
                    "must list one or more of HS256, HS384, HS512, EdDSA, ES256, RS256",
                );
                return Err(());
            }
        };
        if accounts_on && !listed.contains(&Algorithm::HS256) {
            self.problem(
                Name::Accounts,
                "needs HS256 among jwt_algorithms: the service signs the tokens it issues with HS256",
            );
        }
        let asymmetric = listed.iter().any(|a| !a.is_hmac());
        if asymmetric && !has_jwks {
            self.problem(
                Name::JwtAlgorithms,
                "lists EdDSA, ES256 or RS256, which need jwt_jwks or jwt_jwks_url",
            );
        }
        if has_jwks && !asymmetric {
            self.problem(
                Name::JwtAlgorithms,
                "lists none of EdDSA, ES256, RS256, so the keys of jwt_jwks or jwt_jwks_url would never be used",
            );
        }
        if has_jwks && !secret_set && listed.iter().any(|a| a.is_hmac()) {
            self.problem(
                Name::JwtSecret,
                "is required when jwt_algorithms lists HS256, HS384 or HS512",
            );
        }
        Ok(Some(listed))
    }

    /// `client_addr_header`, lower-cased: `None` when it is not set.
    fn client_addr_header(&mut self) -> Option<String> {
        let header = self.get(Name::ClientAddrHeader).trim().to_ascii_lowercase();
        if header.is_empty() {
            return None;
        }
        if http::HeaderName::from_bytes(header.as_bytes()).is_ok() {
            return Some(header);
        }
        self.problem(
            Name::ClientAddrHeader,
            "must be a header name, like x-forwarded-for",
        );
        None
    }
}

/// `jwt_issuer` and `jwt_audience`: the values a token's `iss` and `aud` must be among.
struct Identity {
    issuers: HashSet<String>,
    audiences: HashSet<String>,
    first_issuer: Option<String>,
    first_audience: Option<String>,
}

impl Identity {
    fn read<F: Fn(&str) -> Option<String>>(r: &Reader<F>) -> Identity {
        let (issuer, audience) = (r.get(Name::JwtIssuer), r.get(Name::JwtAudience));
        Identity {
            issuers: list(&issuer).map(str::to_owned).collect(),
            audiences: list(&audience).map(str::to_owned).collect(),
            first_issuer: list(&issuer).next().map(str::to_owned),
            first_audience: list(&audience).next().map(str::to_owned),
        }
    }

    /// `verifier` checking the issuers and audiences, and the warning for a key set without
    /// an audience: an identity provider signs the tokens of every application it serves
    /// with the same keys, and only `aud` tells them apart.
    fn apply(self, mut verifier: JwtVerifier, has_jwks: bool) -> (JwtVerifier, Vec<&'static str>) {
        if !self.issuers.is_empty() {
            verifier = verifier.with_issuers(self.issuers);
        }
        let mut warnings = Vec::new();
        if has_jwks && self.audiences.is_empty() {
            warnings.push(
                "jwt_audience is empty: tokens that the JWKS's identity provider signed for any \
                 other application are accepted too; set it (Better Auth: its base URL)",
            );
        }
        if !self.audiences.is_empty() {
            verifier = verifier.with_audiences(self.audiences);
        }
        (verifier, warnings)
    }
}

/// The verifier for the secret and the key set (inline, or `awaiting` a fetched one), with
/// the listed algorithms; `None` without either (a problem already reported).
fn verifier(
    secret: Option<JwtSecret>,
    inline: Option<JwkSet>,
    awaiting: bool,
    algorithms: Option<Vec<Algorithm>>,
) -> Option<JwtVerifier> {
    let verifier = match (secret, inline) {
        (Some(secret), Some(keys)) => JwtVerifier::new(secret).with_jwks(keys),
        (None, Some(keys)) => JwtVerifier::from_jwks(keys),
        (secret, None) if awaiting => JwtVerifier::awaiting_jwks(secret),
        (Some(secret), None) => JwtVerifier::new(secret),
        (None, None) => return None,
    };
    Some(match algorithms {
        Some(algorithms) => verifier.with_algorithms(algorithms),
        None => verifier,
    })
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// Whether `s` is an absolute `https://` or `http://` URL with a host.
fn is_http_url(s: &str) -> bool {
    let Ok(uri) = s.parse::<http::Uri>() else {
        return false;
    };
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|x| x.eq_ignore_ascii_case("https") || x.eq_ignore_ascii_case("http"));
    scheme_ok && uri.host().is_some_and(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(pairs: &[(&str, &str)]) -> Vec<&'static str> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match Config::from_lookup(|n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())) {
            Ok(_) => vec![],
            Err(e) => e.problems.iter().map(|p| p.setting).collect(),
        }
    }

    const GOOD: (&str, &str) = ("jwt_secret", "0123456789abcdef0123456789abcdef");

    #[test]
    fn setting_names_follow_settings_order() {
        let names: Vec<_> = Name::ALL.iter().map(|n| n.as_str()).collect();
        let settings: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        assert_eq!(names, settings);
    }

    #[test]
    fn secret_alone_is_enough() {
        assert!(problems(&[GOOD]).is_empty());
    }

    #[test]
    fn missing_secret_is_named() {
        assert_eq!(problems(&[]), ["jwt_secret"]);
    }

    #[test]
    fn secret_of_31_bytes_is_refused() {
        assert_eq!(problems(&[("jwt_secret", &"x".repeat(31))]), ["jwt_secret"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let got = problems(&[
            ("jwt_algorithms", "HS256,none"),
            ("cors_origins", "not a url"),
            ("accounts", "maybe"),
        ]);
        assert_eq!(
            got,
            ["jwt_secret", "jwt_algorithms", "cors_origins", "accounts"]
        );
    }

    #[test]
    fn problems_never_show_the_secret() {
        let short = "s3cr3t-value";
        let err =
            Config::from_lookup(|n| (n == "jwt_secret").then(|| short.to_owned())).unwrap_err();
        assert!(!err.to_string().contains(short));
        assert!(
            err.to_string()
                .contains("jwt_secret must be at least 32 bytes")
        );
    }

    #[test]
    fn empty_values_take_the_default() {
        assert!(problems(&[GOOD, ("jwt_algorithms", " "), ("accounts", "")]).is_empty());
    }

    #[test]
    fn every_setting_has_a_default_but_the_secret() {
        for s in SETTINGS {
            assert_eq!(s.default.is_none(), s.name == "jwt_secret", "{}", s.name);
        }
    }

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    const URL: &str = "https://app.example/api/auth/jwks";

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn a_jwks_alone_is_enough() {
        assert!(problems(&[("jwt_jwks", JWKS)]).is_empty());
        let config = load(&[("jwt_jwks_url", URL)]).unwrap();
        assert_eq!(config.jwks_url(), Some(URL));
        assert_eq!(config.jwks_ttl_secs(), crate::DEFAULT_JWKS_TTL_SECS);
        assert!(config.verifier().accepts(Algorithm::EdDSA));
        assert!(!config.verifier().accepts(Algorithm::HS256));
        assert_eq!(load(&[GOOD]).unwrap().jwks_url(), None);
    }

    #[test]
    fn with_a_jwks_and_a_secret_both_kinds_are_accepted_by_default() {
        let config = load(&[GOOD, ("jwt_jwks", JWKS)]).unwrap();
        let v = config.verifier();
        assert!(v.accepts(Algorithm::HS256) && v.accepts(Algorithm::EdDSA));
        assert!(!v.accepts(Algorithm::ES256) && !v.accepts(Algorithm::HS512));
    }

    #[test]
    fn neither_secret_nor_jwks_is_a_secret_problem() {
        let err = load(&[]).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].setting, "jwt_secret");
        assert!(err.problems[0].message.contains("jwt_jwks_url"));
    }

    #[test]
    fn a_bad_inline_jwks_is_named_without_its_value() {
        let bad = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"marker-value"}]}"#;
        let err = load(&[GOOD, ("jwt_jwks", bad)]).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].setting, "jwt_jwks");
        assert!(!err.to_string().contains("marker-value"), "{err}");
        assert_eq!(problems(&[GOOD, ("jwt_jwks", "{not json")]), ["jwt_jwks"]);
        // A broken JWKS still counts as configured: no cascade onto jwt_secret.
        assert_eq!(problems(&[("jwt_jwks", "{not json")]), ["jwt_jwks"]);
    }

    #[test]
    fn the_jwks_url_must_be_http_or_https_with_a_host() {
        for good in [
            URL,
            "http://localhost:3000/api/auth/jwks",
            "HTTPS://a.example",
        ] {
            assert!(problems(&[("jwt_jwks_url", good)]).is_empty(), "{good}");
        }
        for bad in [
            "ftp://a.example/jwks",
            "/api/auth/jwks",
            "https://",
            "a.example",
            "https://a b",
        ] {
            assert_eq!(
                problems(&[GOOD, ("jwt_jwks_url", bad)]),
                ["jwt_jwks_url"],
                "{bad}"
            );
        }
        assert_eq!(
            problems(&[("jwt_jwks", JWKS), ("jwt_jwks_url", URL)]),
            ["jwt_jwks_url"]
        );
    }

    #[test]
    fn the_ttl_is_a_number_of_seconds_in_range() {
        let config = load(&[("jwt_jwks_url", URL), ("jwt_jwks_ttl", "60")]).unwrap();
        assert_eq!(config.jwks_ttl_secs(), 60);
        for bad in ["0", "-1", "5m", "86401"] {
            assert_eq!(
                problems(&[GOOD, ("jwt_jwks_ttl", bad)]),
                ["jwt_jwks_ttl"],
                "{bad}"
            );
        }
        let default = SETTINGS.iter().find(|s| s.name == "jwt_jwks_ttl").unwrap();
        assert_eq!(
            default.default,
            Some(crate::DEFAULT_JWKS_TTL_SECS.to_string().as_str())
        );
    }

    #[test]
    fn listed_algorithms_must_fit_the_keys_and_the_secret() {
        // Asymmetric algorithms need a JWKS.
        assert_eq!(
            problems(&[GOOD, ("jwt_algorithms", "EdDSA")]),
            ["jwt_algorithms"]
        );
        // A JWKS that no listed algorithm would use is a mistake.
        assert_eq!(
            problems(&[GOOD, ("jwt_jwks", JWKS), ("jwt_algorithms", "HS256")]),
            ["jwt_algorithms"]
        );
        // HMAC algorithms need the secret.
        assert_eq!(
            problems(&[("jwt_jwks", JWKS), ("jwt_algorithms", "HS256,EdDSA")]),
            ["jwt_secret"]
        );
        let config = load(&[
            GOOD,
            ("jwt_jwks_url", URL),
            ("jwt_algorithms", "EdDSA, RS256"),
        ])
        .unwrap();
        assert!(config.verifier().accepts(Algorithm::RS256));
        assert!(!config.verifier().accepts(Algorithm::HS256));
    }

    #[test]
    fn the_web_page_is_off_unless_asked_for() {
        assert!(!load(&[GOOD]).unwrap().web_ui_enabled());
        assert!(load(&[GOOD, ("web_ui", "on")]).unwrap().web_ui_enabled());
        assert!(!load(&[GOOD, ("web_ui", "0")]).unwrap().web_ui_enabled());
        assert_eq!(problems(&[GOOD, ("web_ui", "sometimes")]), ["web_ui"]);
    }

    #[test]
    fn problems_come_in_settings_order() {
        let got = problems(&[
            ("accounts", "maybe"),
            ("jwt_jwks_ttl", "x"),
            ("jwt_jwks_url", "nope"),
            ("jwt_algorithms", "HS999"),
        ]);
        assert_eq!(
            got,
            ["jwt_algorithms", "jwt_jwks_url", "jwt_jwks_ttl", "accounts"]
        );
    }
}
