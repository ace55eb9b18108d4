//! The route table: which paths exist, under which bases, with which methods.
//!
//! Paths are matched by segments, never by regular expressions. A trailing slash is ignored.
//! `/api/tasks…` and `/api/v1/tasks…` are always the token-scoped base, so a user whose id
//! is literally `tasks` or `v1` uses that base.

use http::Method;

use crate::domain::field::FieldError;
use crate::domain::ids::UserId;
use crate::http::error::ApiError;

/// What a path leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    Health,
    Ready,
    OpenApi,
    TaskCollection,
    TaskItem,
    TaskCompletion,
    /// `/tasks/changes`: the change feed.
    TaskChanges,
    /// `/tasks/batch`.
    TaskBatch,
    /// `/tasks/export`.
    TaskExport,
    /// `/tasks/import`.
    TaskImport,
    Register,
    Login,
    Logout,
    Me,
    /// `/`: a JSON index, or the web page for a browser when `web_ui` is on.
    Index,
    /// A file of the web page (`/web/…`), which exists only when `web_ui` is on.
    WebAsset,
}

impl Endpoint {
    /// The methods it answers, as an `Allow` header value.
    pub(crate) fn allow(self) -> &'static str {
        match self {
            Endpoint::Health | Endpoint::Ready | Endpoint::OpenApi => "GET, HEAD, OPTIONS",
            Endpoint::TaskCollection => "GET, HEAD, POST, DELETE, OPTIONS",
            Endpoint::TaskItem => "GET, HEAD, PUT, PATCH, DELETE, OPTIONS",
            Endpoint::TaskCompletion => "PATCH, OPTIONS",
            Endpoint::TaskChanges | Endpoint::TaskExport => "GET, HEAD, OPTIONS",
            Endpoint::TaskBatch | Endpoint::TaskImport => "POST, OPTIONS",
            Endpoint::Register | Endpoint::Login | Endpoint::Logout => "POST, OPTIONS",
            Endpoint::Me | Endpoint::Index | Endpoint::WebAsset => "GET, HEAD, OPTIONS",
        }
    }

    /// Whether it is a built-in accounts route (404 unless `accounts` is on).
    pub(crate) fn is_account(self) -> bool {
        matches!(
            self,
            Endpoint::Register | Endpoint::Login | Endpoint::Logout | Endpoint::Me
        )
    }

    /// Whether it is one of the web page's routes (its settings are read only there).
    pub(crate) fn is_web(self) -> bool {
        matches!(self, Endpoint::Index | Endpoint::WebAsset)
    }

    /// Whether it answers `method`.
    pub(crate) fn allows(self, method: &Method) -> bool {
        self.allow().split(", ").any(|m| m == method.as_str())
    }
}

/// The four task bases, as templates.
pub(crate) const TASK_BASES: [&str; 4] = ["/api/{user_id}", "/api/v1/{user_id}", "/api", "/api/v1"];

/// The task endpoints, as templates after the base.
pub(crate) const TASK_PATHS: [(&str, Endpoint); 8] = [
    ("/tasks", Endpoint::TaskCollection),
    ("/tasks/changes", Endpoint::TaskChanges),
    ("/tasks/batch", Endpoint::TaskBatch),
    ("/tasks/export", Endpoint::TaskExport),
    ("/tasks/import", Endpoint::TaskImport),
    ("/tasks/{id}", Endpoint::TaskItem),
    ("/tasks/{id}/complete", Endpoint::TaskCompletion),
    ("/tasks/{id}/toggle-status", Endpoint::TaskCompletion),
];

/// The routes outside the task bases. The accounts routes exist at the root and under
/// `/api` (exact paths, so `/api/auth/tasks` is still the task list of a user `auth`).
/// The web page's files are those of `crate::web::ASSETS`.
pub(crate) const OTHER_PATHS: [(&str, Endpoint); 15] = [
    ("/", Endpoint::Index),
    ("/web/app.js", Endpoint::WebAsset),
    ("/web/app.css", Endpoint::WebAsset),
    ("/web/icon.svg", Endpoint::WebAsset),
    ("/health", Endpoint::Health),
    ("/health/ready", Endpoint::Ready),
    ("/openapi.json", Endpoint::OpenApi),
    ("/auth/register", Endpoint::Register),
    ("/auth/login", Endpoint::Login),
    ("/auth/logout", Endpoint::Logout),
    ("/auth/me", Endpoint::Me),
    ("/api/auth/register", Endpoint::Register),
    ("/api/auth/login", Endpoint::Login),
    ("/api/auth/logout", Endpoint::Logout),
    ("/api/auth/me", Endpoint::Me),
];

/// Every path template the router serves, with its endpoint.
#[cfg(test)]
pub(crate) fn templates() -> Vec<(String, Endpoint)> {
    let tasks = TASK_BASES
        .iter()
        .flat_map(|b| TASK_PATHS.iter().map(move |(p, e)| (format!("{b}{p}"), *e)));
    OTHER_PATHS
        .iter()
        .map(|(p, e)| ((*p).to_owned(), *e))
        .chain(tasks)
        .collect()
}

/// A matched path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route<'a> {
    pub(crate) endpoint: Endpoint,
    /// For task routes: the base as requested (`/api/u1`, `/api/v1`), used for `Location`.
    pub(crate) base: &'a str,
    /// The index in [`TASK_BASES`] of the base's template (for logs).
    pub(crate) base_template: usize,
    /// The `{user_id}` segment as requested (percent-encoded), for user-scoped bases; see
    /// [`Route::path_user`].
    pub(crate) user_segment: Option<&'a str>,
    /// The raw `{id}` segment, for item and completion routes.
    pub(crate) task_id: Option<&'a str>,
    /// The index in [`TASK_PATHS`] or [`OTHER_PATHS`] of the matched template.
    template: usize,
}

impl Route<'_> {
    /// The user a user-scoped base names: its segment percent-decoded, which must be UTF-8
    /// and a [`UserId`] (1 to 128 characters, no control characters), else a 400
    /// `invalid_parameter` naming `user_id`. `None` for a token-scoped base.
    pub(crate) fn path_user(&self) -> Result<Option<UserId>, ApiError> {
        let Some(segment) = self.user_segment else {
            return Ok(None);
        };
        let decoded = percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| {
                ApiError::InvalidQuery(vec![FieldError::new(
                    "user_id",
                    "invalid_value",
                    "user_id must be percent-encoded UTF-8",
                )])
            })?;
        UserId::parse_as("user_id", &decoded)
            .map(Some)
            .map_err(ApiError::InvalidQuery)
    }

    /// The matched template, for logs (`/api/{user_id}/tasks/{id}`).
    pub(crate) fn pattern(&self) -> String {
        match self.endpoint {
            Endpoint::Health
            | Endpoint::Ready
            | Endpoint::OpenApi
            | Endpoint::Register
            | Endpoint::Login
            | Endpoint::Logout
            | Endpoint::Me
            | Endpoint::Index
            | Endpoint::WebAsset => OTHER_PATHS[self.template].0.to_owned(),
            _ => format!(
                "{}{}",
                TASK_BASES[self.base_template], TASK_PATHS[self.template].0
            ),
        }
    }
}

/// Matches `path` against the table.
pub(crate) fn resolve(path: &str) -> Option<Route<'_>> {
    let path = match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    };
    if let Some(i) = OTHER_PATHS.iter().position(|(p, _)| *p == path) {
        return Some(Route {
            endpoint: OTHER_PATHS[i].1,
            base: "",
            base_template: 0,
            user_segment: None,
            task_id: None,
            template: i,
        });
    }
    let rest = path.strip_prefix("/api/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    // (index of the first segment after the base, base template, user segment)
    let (skip, base_template, user) = match segs.as_slice() {
        ["tasks", ..] => (0, 2, None),
        ["v1", "tasks", ..] | ["v1"] => (1, 3, None),
        ["v1", user, ..] => (2, 1, Some(*user)),
        [user, ..] => (1, 0, Some(*user)),
        [] => return None,
    };
    let after = &segs[skip..];
    // The named routes come before `{id}`: a task id is a number, so no id is shadowed.
    let (template, task_id) = match after {
        ["tasks"] => (0, None),
        ["tasks", "changes"] => (1, None),
        ["tasks", "batch"] => (2, None),
        ["tasks", "export"] => (3, None),
        ["tasks", "import"] => (4, None),
        ["tasks", id] => (5, Some(*id)),
        ["tasks", id, "complete"] => (6, Some(*id)),
        ["tasks", id, "toggle-status"] => (7, Some(*id)),
        _ => return None,
    };
    let base_len = "/api/".len() + segs[..skip].iter().map(|s| s.len() + 1).sum::<usize>();
    Some(Route {
        endpoint: TASK_PATHS[template].1,
        base: path[..base_len].trim_end_matches('/'),
        base_template,
        user_segment: user,
        task_id,
        template,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> (Endpoint, &str, Option<String>, Option<&str>) {
        let r = resolve(path).unwrap_or_else(|| panic!("{path} should route"));
        (
            r.endpoint,
            r.base,
            r.path_user().unwrap().map(|u| u.as_str().to_owned()),
            r.task_id,
        )
    }

    #[test]
    fn token_scoped_bases() {
        assert_eq!(
            route("/api/tasks"),
            (Endpoint::TaskCollection, "/api", None, None)
        );
        assert_eq!(
            route("/api/v1/tasks/7"),
            (Endpoint::TaskItem, "/api/v1", None, Some("7"))
        );
    }

    #[test]
    fn user_scoped_bases() {
        assert_eq!(
            route("/api/u1/tasks/7/complete"),
            (
                Endpoint::TaskCompletion,
                "/api/u1",
                Some("u1".into()),
                Some("7")
            )
        );
        assert_eq!(
            route("/api/v1/u1/tasks/7/toggle-status"),
            (
                Endpoint::TaskCompletion,
                "/api/v1/u1",
                Some("u1".into()),
                Some("7")
            )
        );
    }

    #[test]
    fn user_segment_is_percent_decoded() {
        assert_eq!(route("/api/a%40b.c/tasks").2.as_deref(), Some("a@b.c"));
    }

    #[test]
    fn a_user_segment_that_is_not_a_user_id_is_an_invalid_parameter() {
        let long = format!("/api/{}/tasks", "u".repeat(129));
        for path in [
            "/api/u%00/tasks",
            "/api/v1/u%7F/tasks",
            "/api/%C2%85/tasks",
            "/api/%FF/tasks",
            &long,
        ] {
            let r = resolve(path).unwrap_or_else(|| panic!("{path} should route"));
            match r.path_user() {
                Err(ApiError::InvalidQuery(e)) => assert!(e.iter().all(|e| e.field == "user_id")),
                other => panic!("{path}: {other:?}"),
            }
        }
        let both = format!("/api/{}%00/tasks", "u".repeat(128));
        match resolve(&both).unwrap().path_user() {
            Err(ApiError::InvalidQuery(e)) => assert_eq!(
                e.iter().map(|e| e.code).collect::<Vec<_>>(),
                ["too_long", "control_character"]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn users_named_tasks_or_v1_use_the_token_scoped_base() {
        assert_eq!(route("/api/tasks/tasks").1, "/api");
        assert_eq!(route("/api/v1/tasks").2, None);
        // With the v1 prefix, a user id `v1` is unambiguous.
        assert_eq!(route("/api/v1/v1/tasks").2.as_deref(), Some("v1"));
    }

    #[test]
    fn trailing_slash_is_ignored() {
        assert_eq!(route("/api/u1/tasks/"), route("/api/u1/tasks"));
        assert_eq!(route("/health/").0, Endpoint::Health);
    }

    #[test]
    fn unknown_paths_do_not_route() {
        for p in [
            "/index.html",
            "/web",
            "/web/app.js/x",
            "/api",
            "/api/",
            "/api/u1",
            "/api/u1/task",
            "/api//tasks",
            "/api/u1/tasks/1/x",
            "/api/u1/tasks//",
            "/tasks",
            "/health/live",
            "/api/u1/tasks/1/complete/x",
        ] {
            assert!(resolve(p).is_none(), "{p}");
        }
    }

    #[test]
    fn the_root_and_the_web_files_route() {
        assert_eq!(route("/").0, Endpoint::Index);
        assert_eq!(route("/web/app.js").0, Endpoint::WebAsset);
        assert_eq!(resolve("/web/app.css/").unwrap().pattern(), "/web/app.css");
    }

    #[test]
    fn account_routes_exist_at_the_root_and_under_api() {
        assert_eq!(route("/auth/login").0, Endpoint::Login);
        assert_eq!(route("/api/auth/me/").0, Endpoint::Me);
        // A user named `auth` keeps their task routes.
        assert_eq!(route("/api/auth/tasks").2.as_deref(), Some("auth"));
        assert!(resolve("/api/v1/auth/login").is_none());
    }

    #[test]
    fn every_template_routes_to_its_endpoint() {
        for (t, e) in templates() {
            let path = t.replace("{user_id}", "someone").replace("{id}", "1");
            let r = resolve(&path).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(r.endpoint, e, "{t}");
            assert_eq!(r.pattern(), t);
        }
    }
}
