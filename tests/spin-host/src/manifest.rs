//! Reading `spin.toml` (manifest version 2) the way Spin does, for the parts this host
//! implements: application variables, one HTTP-triggered component, its variables,
//! databases, key-value stores, allowed outbound hosts and environment.
//!
//! Variable values are resolved once, at startup, like `spin up` does when it prepares
//! the allowed outbound hosts: every application variable must have a value then.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use wasmtime::error::Context as _;
use wasmtime::{Result, bail, format_err};

use crate::allowed_hosts::AllowedHosts;

/// The component as Spin would run it, every template expanded.
#[derive(Clone, Debug)]
pub struct App {
    /// The component's id (the key of `[component.<id>]`).
    pub component_id: String,
    /// The component's Wasm file, resolved against the manifest's directory.
    pub source: PathBuf,
    /// The HTTP routes that reach the component (`/...` wildcards kept as written).
    pub routes: Vec<String>,
    /// `[application.trigger.http] base` (default `/`).
    pub base: String,
    /// The component's variables (`[component.<id>.variables]`), templates expanded.
    pub variables: BTreeMap<String, String>,
    /// `sqlite_databases`.
    pub sqlite_databases: BTreeSet<String>,
    /// `key_value_stores`.
    pub key_value_stores: BTreeSet<String>,
    /// `allowed_outbound_hosts`, templates expanded and parsed.
    pub allowed_hosts: AllowedHosts,
    /// `environment`: the guest's environment variables.
    pub environment: BTreeMap<String, String>,
    /// Names of the application variables marked `secret` (never printed by the host).
    pub secrets: BTreeSet<String>,
}

/// Where application variable values come from, in order: the explicit map, the process
/// environment (`SPIN_VARIABLE_<NAME>`), a dotenv file (same names), then the default.
#[derive(Clone, Debug, Default)]
pub struct VariableSources {
    /// Values by variable name (`jwt_secret`), or by environment name
    /// (`SPIN_VARIABLE_JWT_SECRET`); these win over everything else.
    pub explicit: BTreeMap<String, String>,
    /// Whether to read `SPIN_VARIABLE_<NAME>` from the process environment.
    pub process_env: bool,
    /// A dotenv file read like Spin's environment provider reads `.env`.
    pub dotenv: Option<PathBuf>,
}

impl VariableSources {
    fn lookup(&self, name: &str, dotenv: &BTreeMap<String, String>) -> Option<String> {
        let env_name = env_name(name);
        if let Some(v) = self
            .explicit
            .get(name)
            .or_else(|| self.explicit.get(&env_name))
        {
            return Some(v.clone());
        }
        if self.process_env
            && let Some(v) = std::env::var_os(&env_name)
        {
            return Some(v.to_string_lossy().into_owned());
        }
        dotenv.get(&env_name).cloned()
    }
}

/// `SPIN_VARIABLE_<NAME>` for the variable `name`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    #[serde(default)]
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Default, Deserialize)]
struct RawApplication {
    #[serde(default)]
    trigger: RawAppTriggers,
}

#[derive(Default, Deserialize)]
struct RawAppTriggers {
    #[serde(default)]
    http: Option<RawAppHttp>,
}

#[derive(Deserialize)]
struct RawAppHttp {
    #[serde(default)]
    base: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted like Spin, not used")]
    description: Option<String>,
}

#[derive(Default, Deserialize)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: toml::Value,
    component: toml::Value,
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

/// Reads the manifest at `path` and resolves the one HTTP component in it.
pub fn load(path: &Path, sources: &VariableSources) -> Result<App> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the manifest {}", path.display()))?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, &dir, sources).with_context(|| format!("in the manifest {}", path.display()))
}

/// Parses manifest text; relative paths are resolved against `dir`.
pub fn parse(text: &str, dir: &Path, sources: &VariableSources) -> Result<App> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| format_err!("{e}"))?;
    match raw.spin_manifest_version {
        toml::Value::Integer(2) => {}
        toml::Value::String(ref s) if s == "2" => {}
        other => bail!("spin_manifest_version {other:?} is not supported (only 2)"),
    }
    if let Some(kind) = raw.trigger.other.keys().next() {
        bail!("trigger type {kind:?} is not supported (only http)");
    }

    // Application variables: names like Spin's keys, exactly one of default/required.
    let mut declared = BTreeMap::new();
    let mut secrets = BTreeSet::new();
    for (name, var) in &raw.variables {
        validate_variable_name(name)?;
        match (&var.default, var.required) {
            (Some(_), true) => {
                bail!("variable {name:?} cannot be both required and have a default")
            }
            (None, false) => bail!("variable {name:?} must either have a default or be required"),
            _ => {}
        }
        if var.secret {
            secrets.insert(name.clone());
        }
        declared.insert(name.clone(), var.default.clone());
    }
    let dotenv = match &sources.dotenv {
        Some(path) => read_dotenv(path)?,
        None => BTreeMap::new(),
    };
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, default) in &declared {
        match sources.lookup(name, &dotenv).or_else(|| default.clone()) {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None => missing.push(format!("{name:?} (set {})", env_name(name))),
        }
    }
    if !missing.is_empty() {
        bail!(
            "no value for required variable{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        );
    }

    // The HTTP triggers and the component they name.
    let mut routes = Vec::new();
    let mut component_id: Option<String> = None;
    for trigger in &raw.trigger.http {
        let id = match &trigger.component {
            toml::Value::String(id) => id.clone(),
            _ => bail!("only `component = \"<id>\"` references are supported in [[trigger.http]]"),
        };
        if let Some(existing) = &component_id
            && *existing != id
        {
            bail!(
                "more than one HTTP component ({existing:?}, {id:?}): this host runs exactly one"
            );
        }
        match &trigger.route {
            toml::Value::String(route) => routes.push(route.clone()),
            // `route = { private = true }`: reachable only by service chaining.
            toml::Value::Table(_) => {}
            other => bail!("invalid route {other:?}"),
        }
        component_id = Some(id);
    }
    let component_id = component_id.context("the manifest has no [[trigger.http]]")?;
    let component = raw.component.get(&component_id).with_context(|| {
        format!("[[trigger.http]] names component {component_id:?}, which is not defined")
    })?;

    let source = match &component.source {
        toml::Value::String(s) => dir.join(s),
        _ => bail!("component {component_id:?}: only a local file `source` is supported"),
    };

    let expand = |template: &str, what: &str| -> Result<String> {
        expand_template(template, &values)
            .with_context(|| format!("component {component_id:?}: {what}"))
    };
    let mut variables = BTreeMap::new();
    for (name, template) in &component.variables {
        validate_variable_name(name)?;
        variables.insert(
            name.clone(),
            expand(template, &format!("variable {name:?}"))?,
        );
    }
    let mut hosts = Vec::new();
    for host in &component.allowed_outbound_hosts {
        hosts.push(expand(
            host,
            &format!("allowed_outbound_hosts entry {host:?}"),
        )?);
    }
    let allowed_hosts = AllowedHosts::parse(&hosts)
        .with_context(|| format!("component {component_id:?}: allowed_outbound_hosts"))?;
    let base = raw
        .application
        .trigger
        .http
        .and_then(|h| h.base)
        .unwrap_or_else(|| "/".to_owned());

    Ok(App {
        component_id: component_id.clone(),
        source,
        routes,
        base,
        variables,
        sqlite_databases: component.sqlite_databases.iter().cloned().collect(),
        key_value_stores: component.key_value_stores.iter().cloned().collect(),
        allowed_hosts,
        environment: component.environment.clone(),
        secrets,
    })
}

/// Spin's rule for variable names: lower-case ASCII letters, digits and single
/// underscores, starting with a letter and not ending with an underscore.
pub fn validate_variable_name(name: &str) -> Result<()> {
    let ok = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.ends_with('_')
        && !name.contains("__");
    if !ok {
        bail!(
            "invalid variable name {name:?}: use lower-case letters, digits and single underscores, starting with a letter"
        );
    }
    Ok(())
}

/// Expands `{{ name }}` expressions (whitespace around the name is ignored) from `values`.
/// Like Spin, an unknown name or an unmatched `{{` is an error; there is no escaping.
pub fn expand_template(template: &str, values: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("unmatched '{{{{' in template {template:?}"))?;
        let name = after[..end].trim();
        let value = values
            .get(name)
            .with_context(|| format!("template {template:?} uses unknown variable {name:?}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A dotenv file: `KEY=value` lines, `#` comments, an optional `export ` prefix, values
/// optionally in single or double quotes. A missing file is empty, like Spin's `.env`.
pub fn read_dotenv(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')))
        {
            &value[1..value.len() - 1]
        } else {
            value.split(" #").next().unwrap_or(value).trim_end()
        };
        map.insert(key.trim().to_owned(), value.to_owned());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
secret = { required = true, secret = true }
host = { default = "db:5432" }
greeting = { default = "hi" }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "x.wasm"
sqlite_databases = ["default"]
allowed_outbound_hosts = ["postgres://{{ host }}", "https://*.example.com"]
[component.c.variables]
secret = "{{ secret }}"
message = "{{greeting}}, world"
"#;

    fn sources(pairs: &[(&str, &str)]) -> VariableSources {
        VariableSources {
            explicit: pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            process_env: false,
            dotenv: None,
        }
    }

    #[test]
    fn templates_are_expanded_from_application_variables() {
        let app = parse(MANIFEST, Path::new("/app"), &sources(&[("secret", "s3")])).unwrap();
        assert_eq!(app.component_id, "c");
        assert_eq!(app.source, Path::new("/app/x.wasm"));
        assert_eq!(app.variables["secret"], "s3");
        assert_eq!(app.variables["message"], "hi, world");
        assert!(app.allowed_hosts.allows("postgres", "db", Some(5432)));
        assert!(!app.allowed_hosts.allows("postgres", "db", Some(5433)));
        assert!(app.allowed_hosts.allows("https", "api.example.com", None));
        assert!(app.secrets.contains("secret"));
    }

    #[test]
    fn environment_style_names_and_overrides() {
        let app = parse(
            MANIFEST,
            Path::new("."),
            &sources(&[("SPIN_VARIABLE_SECRET", "a"), ("host", "other:1")]),
        )
        .unwrap();
        assert_eq!(app.variables["secret"], "a");
        assert!(app.allowed_hosts.allows("postgres", "other", Some(1)));
    }

    #[test]
    fn a_required_variable_without_value_is_named() {
        let err = parse(MANIFEST, Path::new("."), &sources(&[])).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("\"secret\"") && text.contains("SPIN_VARIABLE_SECRET"),
            "{text}"
        );
    }

    #[test]
    fn template_errors() {
        let values = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        assert_eq!(expand_template("x{{a}}y{{ a }}", &values).unwrap(), "x1y1");
        assert!(expand_template("{{ b }}", &values).is_err());
        assert!(expand_template("{{ a", &values).is_err());
    }

    #[test]
    fn variable_names() {
        for good in ["a", "a_1", "jwt_secret"] {
            validate_variable_name(good).unwrap();
        }
        for bad in ["", "A", "1a", "a__b", "a_", "a-b"] {
            assert!(validate_variable_name(bad).is_err(), "{bad}");
        }
    }
}
