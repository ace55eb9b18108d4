//! Which settings a request can use ([`SettingsScope::of`]): the configuration declares the
//! scopes, but only the HTTP layer knows the routes, so the question "which scope does this
//! request fall in" is answered here, next to the route table.

use crate::auth::jwks::bearer_uses_jwks;
use crate::config::scope::SettingsScope;
use crate::http::routes::{Endpoint, resolve};
use crate::http::web::prefers_html;

impl SettingsScope {
    /// The settings `request` can use.
    ///
    /// ```
    /// use task_api_core::SettingsScope;
    /// let plain = http::Request::get("/api/tasks").body(()).unwrap();
    /// assert_eq!(
    ///     SettingsScope::of(&plain),
    ///     SettingsScope { jwks: false, cors: false, accounts: false, web: false, sync: false }
    /// );
    /// let browser = http::Request::post("/auth/login")
    ///     .header("origin", "https://app.example")
    ///     .body(())
    ///     .unwrap();
    /// assert_eq!(
    ///     SettingsScope::of(&browser),
    ///     SettingsScope { jwks: false, cors: true, accounts: true, web: false, sync: false }
    /// );
    /// // `/` reads `web_ui` only for a client that prefers HTML (a browser) to JSON.
    /// let page = http::Request::get("/").header("accept", "text/html").body(()).unwrap();
    /// assert!(SettingsScope::of(&page).web);
    /// let program = http::Request::get("/").header("accept", "application/json").body(()).unwrap();
    /// assert!(!SettingsScope::of(&program).web);
    /// ```
    pub fn of<B>(request: &http::Request<B>) -> SettingsScope {
        let route = resolve(request.uri().path());
        if route
            .as_ref()
            .is_some_and(|r| r.endpoint == Endpoint::Ready)
        {
            return SettingsScope::ALL;
        }
        SettingsScope {
            jwks: bearer_uses_jwks(request.headers()),
            cors: request.headers().contains_key(http::header::ORIGIN),
            accounts: route.as_ref().is_some_and(|r| r.endpoint.is_account()),
            sync: route.as_ref().is_some_and(|r| match r.endpoint {
                Endpoint::TaskChanges | Endpoint::TaskBatch => true,
                Endpoint::TaskItem | Endpoint::TaskCollection => {
                    request.method() == http::Method::DELETE
                }
                _ => false,
            }),
            web: route.is_some_and(|r| match r.endpoint {
                Endpoint::Index => prefers_html(request.headers()),
                e => e.is_web(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load::Config;
    use crate::config::scope::SettingsScope;

    const GOOD: (&str, &str) = ("jwt_secret", "0123456789abcdef0123456789abcdef");

    #[test]
    fn web_ui_is_read_only_where_the_page_may_be_served() {
        let asked = std::cell::RefCell::new(Vec::<String>::new());
        let lookup = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            match name {
                "jwt_secret" => Some(GOOD.1.to_owned()),
                "web_ui" => Some("true".to_owned()),
                _ => None,
            }
        };
        let get = |path: &str, accept: &str| {
            http::Request::get(path)
                .header("accept", accept)
                .body(())
                .unwrap()
        };
        for (request, reads) in [
            (get("/api/tasks", "text/html"), false),
            (get("/", "application/json"), false),
            (get("/", "*/*"), false),
            (get("/", "text/html,*/*;q=0.8"), true),
            (get("/web/app.js", "*/*"), true),
        ] {
            asked.borrow_mut().clear();
            let config = Config::for_request(SettingsScope::of(&request), lookup).unwrap();
            let read = asked.borrow().iter().any(|n| n == "web_ui");
            assert_eq!(read, reads, "{}", request.uri());
            assert_eq!(config.web_ui_enabled(), reads, "{}", request.uri());
        }
        // A bad value outside the scope is still reported, with every other problem.
        let bad = |name: &str| match name {
            "jwt_secret" => Some("short".to_owned()),
            "web_ui" => Some("maybe".to_owned()),
            _ => None,
        };
        let err =
            Config::for_request(SettingsScope::of(&get("/api/tasks", "*/*")), bad).unwrap_err();
        let names: Vec<_> = err.problems.iter().map(|p| p.setting).collect();
        assert_eq!(names, ["jwt_secret", "web_ui"]);
    }
}
