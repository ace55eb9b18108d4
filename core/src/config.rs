//! The service's settings: their names, defaults and checks, in one place.
//!
//! The core never reads the environment. A host hands [`Config::from_lookup`] a function
//! that finds a setting by name (the Spin component reads Spin variables; a native app may
//! read its own environment or a file), and gets back a typed [`Config`] or every problem
//! at once, each naming the setting and never its value.

use std::collections::HashSet;
use std::fmt;

use crate::auth::{Algorithm, JwtSecret, JwtVerifier, MIN_SECRET_BYTES};
use crate::cors::CorsOrigins;

/// A setting the core reads, with its default (`None`: required).
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The name, as a Spin variable (lower case, underscores).
    pub name: &'static str,
    /// The value used when the setting is missing or empty; `None` if it is required.
    pub default: Option<&'static str>,
    /// Whether the value is secret (never logged, never shown).
    pub secret: bool,
}

/// Every setting of the core, with its default.
pub const SETTINGS: [Setting; 6] = [
    Setting {
        name: "jwt_secret",
        default: None,
        secret: true,
    },
    Setting {
        name: "jwt_algorithms",
        default: Some("HS256"),
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
        name: "cors_origins",
        default: Some(""),
        secret: false,
    },
    Setting {
        name: "accounts",
        default: Some("false"),
        secret: false,
    },
];

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
        let get = |name: &'static str| -> String {
            let default = SETTINGS
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.default);
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.unwrap_or("").to_owned())
        };
        let mut problems = Vec::new();
        let mut problem = |setting: &'static str, message: String| {
            problems.push(ConfigProblem { setting, message });
        };

        let secret_raw = get("jwt_secret");
        let secret = if secret_raw.is_empty() {
            problem("jwt_secret", "is required".into());
            None
        } else {
            JwtSecret::new(secret_raw).or_else(|| {
                problem(
                    "jwt_secret",
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                );
                None
            })
        };

        let algorithms: Option<Vec<Algorithm>> = list(&get("jwt_algorithms"))
            .map(Algorithm::parse)
            .collect::<Option<Vec<_>>>()
            .filter(|a| !a.is_empty());
        if algorithms.is_none() {
            problem(
                "jwt_algorithms",
                "must list one or more of HS256, HS384, HS512".into(),
            );
        }

        let issuers: HashSet<String> = list(&get("jwt_issuer")).map(str::to_owned).collect();
        let audiences: HashSet<String> = list(&get("jwt_audience")).map(str::to_owned).collect();

        let cors = CorsOrigins::parse(&get("cors_origins")).map_err(|m| problem("cors_origins", m));

        let accounts = match get("accounts").to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => {
                problem("accounts", "must be true or false".into());
                None
            }
        };

        match (secret, algorithms, cors, accounts) {
            (Some(secret), Some(algorithms), Ok(cors), Some(accounts)) if problems.is_empty() => {
                let mut verifier = JwtVerifier::new(secret).with_algorithms(algorithms);
                if !issuers.is_empty() {
                    verifier = verifier.with_issuers(issuers);
                }
                if !audiences.is_empty() {
                    verifier = verifier.with_audiences(audiences);
                }
                Ok(Config {
                    verifier,
                    cors,
                    accounts,
                })
            }
            _ => Err(ConfigError { problems }),
        }
    }

    /// Whether the built-in accounts routes are enabled.
    pub fn accounts_enabled(&self) -> bool {
        self.accounts
    }

    /// The token verifier.
    pub fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
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
}
