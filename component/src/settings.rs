//! The component's settings: the core's, plus where the data lives. Read per request from
//! Spin variables, only those the request can use ([`SettingsScope`]: each variable is a
//! host call), every problem reported at once, defaults in [`SETTINGS`].

use task_api_core::sql::Dialect;
use task_api_core::{Config, ConfigError, ConfigProblem, Setting, SettingsScope, parse_flag};

/// The settings only the component reads (the core's are in `task_api_core::SETTINGS`).
pub const SETTINGS: [Setting; 2] = [
    Setting {
        name: "database_url",
        default: Some(""),
        secret: true,
    },
    Setting {
        name: "auto_migrate",
        default: Some("true"),
        secret: false,
    },
];

/// Where tasks are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// Spin's built-in SQLite database `default` (when `database_url` is empty).
    #[cfg(feature = "sqlite")]
    Sqlite,
    /// A PostgreSQL server reached through Spin's outbound Postgres.
    Postgres(String),
    /// `database_url` is unusable (or empty in a build without the `sqlite` feature); task
    /// routes answer 500 naming it.
    Invalid,
}

impl Database {
    /// The SQL dialect of this database.
    pub fn dialect(&self) -> Dialect {
        match self {
            Database::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "sqlite")]
            Database::Sqlite => Dialect::Sqlite,
            // Never queried: its configuration problem is answered first.
            Database::Invalid => Dialect::Sqlite,
        }
    }
}

/// What `database_url` may be, for the problem naming a bad one.
#[cfg(feature = "sqlite")]
const URL_FORMS: &str = "must be empty (SQLite) or a postgres:// URL";
#[cfg(not(feature = "sqlite"))]
const URL_FORMS: &str = "must be a postgres:// URL (this build has no SQLite)";

/// The database when `database_url` is empty: Spin's SQLite.
#[cfg(feature = "sqlite")]
fn without_url(_problems: &mut Vec<ConfigProblem>) -> Database {
    Database::Sqlite
}

/// The database when `database_url` is empty: none, in a build without SQLite (for hosts
/// that have none, like Akamai Functions), so task routes answer 500 naming the setting.
#[cfg(not(feature = "sqlite"))]
fn without_url(problems: &mut Vec<ConfigProblem>) -> Database {
    problems.push(ConfigProblem {
        setting: "database_url",
        message: "is required: this build has no SQLite and needs PostgreSQL (a postgres:// URL)"
            .into(),
    });
    Database::Invalid
}

/// Everything the component needs to serve one request.
pub struct Settings {
    /// The core's configuration, or every problem with any setting.
    pub core: Result<Config, ConfigError>,
    /// Where tasks are stored.
    pub database: Database,
    /// Whether to apply pending migrations when the schema is missing or behind.
    pub auto_migrate: bool,
}

impl Settings {
    /// Reads the settings in `scope` and the database's through `lookup` (Spin variables
    /// in the component); with any problem, every setting, so that all are reported.
    pub fn load(scope: SettingsScope, lookup: impl Fn(&str) -> Option<String>) -> Settings {
        let get = |name: &str| -> String {
            SETTINGS
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.read(&lookup).trim().to_owned())
                .unwrap_or_default()
        };
        let mut problems = Vec::new();

        let url = get("database_url");
        let database = if url.is_empty() {
            without_url(&mut problems)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Database::Postgres(url)
        } else {
            problems.push(ConfigProblem {
                setting: "database_url",
                message: URL_FORMS.into(),
            });
            Database::Invalid
        };

        let auto_migrate = parse_flag(&get("auto_migrate")).unwrap_or_else(|| {
            problems.push(ConfigProblem {
                setting: "auto_migrate",
                message: "must be true or false".into(),
            });
            false
        });

        let core = match (Config::for_request(scope, &lookup), problems.is_empty()) {
            (Ok(config), true) => Ok(config),
            (Ok(_), false) => match Config::for_request(SettingsScope::ALL, &lookup) {
                Ok(_) => Err(ConfigError { problems }),
                Err(mut e) => {
                    e.problems.extend(problems);
                    Err(e)
                }
            },
            (Err(mut e), _) => {
                e.problems.extend(problems);
                Err(e)
            }
        };
        Settings {
            core,
            database,
            auto_migrate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a test secret of at least thirty-two bytes";

    fn load(pairs: &[(&str, &str)]) -> Settings {
        Settings::load(SettingsScope::ALL, |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn empty_database_url_means_sqlite_with_auto_migrate() {
        let s = load(&[("jwt_secret", SECRET)]);
        assert!(s.core.is_ok());
        assert_eq!(s.database, Database::Sqlite);
        assert!(s.auto_migrate);
    }

    #[cfg(not(feature = "sqlite"))]
    #[test]
    fn without_sqlite_an_empty_database_url_is_a_problem_naming_it() {
        let s = load(&[("jwt_secret", SECRET)]);
        assert_eq!(s.database, Database::Invalid);
        let e = s.core.unwrap_err();
        assert_eq!(e.problems.len(), 1);
        assert_eq!(e.problems[0].setting, "database_url");
        assert!(e.to_string().contains("needs PostgreSQL"), "{e}");
    }

    #[test]
    fn postgres_url_selects_postgres() {
        let s = load(&[
            ("jwt_secret", SECRET),
            ("database_url", "postgres://u@db:5432/tasks"),
        ]);
        assert_eq!(
            s.database,
            Database::Postgres("postgres://u@db:5432/tasks".into())
        );
    }

    #[test]
    fn every_bad_setting_is_named_with_the_core_ones() {
        let s = load(&[("database_url", "mysql://x"), ("auto_migrate", "sometimes")]);
        let names: Vec<&str> = s
            .core
            .unwrap_err()
            .problems
            .iter()
            .map(|p| p.setting)
            .collect();
        assert_eq!(names, ["jwt_secret", "database_url", "auto_migrate"]);
    }

    #[test]
    fn a_bad_database_url_is_reported_with_every_bad_core_setting_outside_the_scope() {
        let pairs = [
            ("jwt_secret", SECRET),
            ("database_url", "mysql://x"),
            ("cors_origins", "not an origin"),
        ];
        let narrow = SettingsScope {
            jwks: false,
            cors: false,
            accounts: false,
            web: false,
            sync: false,
        };
        let s = Settings::load(narrow, |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        });
        let names: Vec<&str> = s
            .core
            .unwrap_err()
            .problems
            .iter()
            .map(|p| p.setting)
            .collect();
        assert_eq!(names, ["cors_origins", "database_url"]);
    }

    #[test]
    fn problems_never_show_the_database_url() {
        let s = load(&[
            ("jwt_secret", SECRET),
            ("database_url", "mysql://user:hunter2@x"),
        ]);
        assert!(!s.core.unwrap_err().to_string().contains("hunter2"));
    }
}
