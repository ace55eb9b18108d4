//! `allowed_outbound_hosts` as Spin reads it: `<scheme>://<host>[:<port>]` where the scheme
//! may be `*`, the host `*`, `*.<domain>` or an IP network (`10.0.0.0/8`), and the port `*`,
//! a number or a range `a..b` (end excluded). Without a port the scheme's well-known port
//! applies (postgres 5432, mysql 3306, redis 6379, mqtt 1883, http 80, https 443).

use std::net::IpAddr;

use wasmtime::{Result, bail, format_err};

/// The parsed allow-list of one component.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

#[derive(Clone, Debug)]
struct AllowedHost {
    original: String,
    /// `None` for `*`.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Clone, Debug)]
enum HostPattern {
    Any,
    /// `*.example.com`, stored as `.example.com`.
    Subdomain(String),
    /// `self`: the application itself (service chaining), which this host does not do.
    ToSelf,
    Network(IpAddr, u8),
    Exact(String),
}

#[derive(Clone, Debug)]
enum PortPattern {
    Any,
    Port(u16),
    /// `start..end`, end excluded, as Spin parses it.
    Range(u16, u16),
}

/// The port a scheme uses when none is given.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        "http" => 80,
        "https" => 443,
        _ => return None,
    })
}

impl AllowedHosts {
    /// Parses the entries (templates already expanded).
    pub fn parse<S: AsRef<str>>(hosts: &[S]) -> Result<AllowedHosts> {
        if hosts.len() == 1 && hosts[0].as_ref() == "insecure:allow-all" {
            bail!(
                "'insecure:allow-all' is not allowed: use '*://*:*' to allow all outbound traffic"
            );
        }
        let entries = hosts
            .iter()
            .map(|h| AllowedHost::parse(h.as_ref()))
            .collect::<Result<_>>()?;
        Ok(AllowedHosts { entries })
    }

    /// Whether a connection to `host:port` with `scheme` is allowed; without a port the
    /// scheme's well-known port is checked.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries.iter().any(|e| e.allows(scheme, &host, port))
    }

    /// The entries as written in the manifest (after template expansion).
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.original.as_str())
    }
}

impl AllowedHost {
    fn parse(original: &str) -> Result<AllowedHost> {
        let url = original.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            bail!(
                "{url:?} has no scheme: write <scheme>://<host>[:<port>] ('*' wildcards allowed)"
            );
        };
        let scheme = if scheme == "*" {
            None
        } else if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()) {
            Some(scheme.to_ascii_lowercase())
        } else {
            bail!("{url:?}: invalid scheme {scheme:?}");
        };
        // An IPv4 network keeps its `/prefix` in the host part.
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, p),
            _ => (rest, ""),
        };
        let port = match port.split_once('/') {
            Some((_, path)) if !path.is_empty() => {
                bail!("{url:?} has a path but is not allowed to")
            }
            Some((port, _)) => port,
            None => port,
        };
        let host = parse_host(host.trim()).map_err(|e| format_err!("{url:?}: {e}"))?;
        let port = if port.is_empty() {
            let known = scheme.as_deref().and_then(well_known_port).ok_or_else(|| {
                format_err!(
                    "{url:?}: no port was given and the scheme {:?} has no well-known port",
                    scheme.as_deref().unwrap_or("*")
                )
            })?;
            PortPattern::Port(known)
        } else if port == "*" {
            PortPattern::Any
        } else if let Some((start, end)) = port.split_once("..") {
            let parse = |p: &str| {
                p.parse::<u16>()
                    .map_err(|_| format_err!("{url:?}: port range {port:?} contains a non-number"))
            };
            PortPattern::Range(parse(start)?, parse(end)?)
        } else {
            PortPattern::Port(
                port.parse()
                    .map_err(|_| format_err!("{url:?}: port {port:?} is not a number"))?,
            )
        };
        Ok(AllowedHost {
            original: original.to_owned(),
            scheme,
            host,
            port,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            HostPattern::ToSelf => false,
            HostPattern::Exact(h) => h == host,
            HostPattern::Network(net, prefix) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_network(ip, *net, *prefix)),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            _ => match port.or_else(|| well_known_port(scheme)) {
                None => false,
                Some(p) => match self.port {
                    PortPattern::Port(allowed) => p == allowed,
                    PortPattern::Range(start, end) => (start..end).contains(&p),
                    PortPattern::Any => true,
                },
            },
        };
        scheme_ok && host_ok && port_ok
    }
}

fn parse_host(host: &str) -> Result<HostPattern> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host == "self" || host == "self.alt" {
        return Ok(HostPattern::ToSelf);
    }
    if host.starts_with('{') {
        bail!("host lists are not supported");
    }
    if let Some((ip, prefix)) = host.split_once('/')
        && let (Ok(ip), Ok(prefix)) = (ip.parse::<IpAddr>(), prefix.parse::<u8>())
    {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            bail!("network prefix /{prefix} is too long");
        }
        return Ok(HostPattern::Network(ip, prefix));
    }
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(HostPattern::Network(
            ip,
            if ip.is_ipv4() { 32 } else { 128 },
        ));
    }
    if matches!(host.split('/').nth(1), Some(path) if !path.is_empty()) {
        bail!("hosts must not contain paths");
    }
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.contains('*') {
            bail!("wildcards are allowed only as a prefix");
        }
        return Ok(HostPattern::Subdomain(format!(
            ".{}",
            domain.to_ascii_lowercase()
        )));
    }
    if host.contains('*') {
        bail!("wildcards are allowed only as subdomains (*.example.com)");
    }
    Ok(HostPattern::Exact(
        host.trim_end_matches('/').to_ascii_lowercase(),
    ))
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
        let prefix = u32::from(prefix).min(width);
        if prefix == 0 {
            0
        } else {
            bits >> (width - prefix)
        }
    }
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            masked(u32::from(a).into(), 32, prefix) == masked(u32::from(b).into(), 32, prefix)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            masked(u128::from(a), 128, prefix) == masked(u128::from(b), 128, prefix)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(list).unwrap()
    }

    #[test]
    fn well_known_ports_apply_both_ways() {
        let h = hosts(&["postgres://db"]);
        assert!(h.allows("postgres", "db", None));
        assert!(h.allows("postgres", "db", Some(5432)));
        assert!(!h.allows("postgres", "db", Some(5433)));
        assert!(!h.allows("mysql", "db", Some(5432)));
        assert!(!h.allows("postgres", "other", None));
    }

    #[test]
    fn wildcards_ranges_and_networks() {
        let h = hosts(&[
            "*://*.example.com:*",
            "postgres://127.0.0.1:5000..5010",
            "https://10.0.0.0/8",
        ]);
        assert!(h.allows("http", "a.example.com", Some(1)));
        assert!(!h.allows("http", "example.com", Some(1)));
        assert!(h.allows("postgres", "127.0.0.1", Some(5009)));
        assert!(!h.allows("postgres", "127.0.0.1", Some(5010)));
        assert!(h.allows("https", "10.1.2.3", None));
        assert!(!h.allows("https", "11.1.2.3", None));
        assert!(hosts(&["*://*:*"]).allows("postgres", "anything", Some(1)));
    }

    #[test]
    fn invalid_entries() {
        for bad in [
            "db:5432",
            "*",
            "*://db",
            "postgres://db:x",
            "postgres://db:1/path",
            "postgres://a*b",
        ] {
            assert!(AllowedHosts::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6() {
        let h = hosts(&["postgres://[::1]:5432"]);
        assert!(h.allows("postgres", "[::1]", Some(5432)));
        assert!(h.allows("postgres", "::1", Some(5432)));
    }
}
