//! The login throttle, and the client address it keys.
//!
//! **The throttle counts before it hashes.** Each login first counts itself, atomically,
//! under its email's and its client address's keys
//! ([`AccountStore::count_attempt`](crate::AccountStore::count_attempt)); once a count is
//! over its limit the attempt is refused with a 429 and never reaches Argon2. A login that
//! succeeds takes its count back
//! ([`AccountStore::forgive_attempt`](crate::AccountStore::forgive_attempt)), so only
//! failures add up. Counting first is what bounds parallel guessing: fifty wrong passwords
//! sent at once for one email get at most [`MAX_FAILED_LOGINS_PER_EMAIL`] password checks,
//! not fifty. Registrations count under their client address the same way, and are not
//! forgiven (each costs a hash and may create an account). The counters live in the account
//! store, so that every instance of the service shares them (a SQL store keeps them in a
//! table, with their expiry).

use crate::domain::field::is_control;
use crate::domain::time::Timestamp;

/// Length of the login throttle's fixed windows, in seconds (15 minutes).
pub const LOGIN_WINDOW_SECS: i64 = 15 * 60;
/// Failed logins allowed per email address and window; the next attempt is a 429.
pub const MAX_FAILED_LOGINS_PER_EMAIL: u64 = 5;
/// Failed logins allowed per client address and window; the next attempt is a 429.
pub const MAX_FAILED_LOGINS_PER_ADDR: u64 = 20;
/// Registrations allowed per client address and window; the next one is a 429.
pub const MAX_REGISTRATIONS_PER_ADDR: u64 = 10;

/// The fixed window that `now` falls in: its end and the seconds until then.
pub(crate) struct Window {
    pub start: i64,
    pub end: Timestamp,
    pub retry_after: u64,
}

impl Window {
    pub(crate) fn at(now: Timestamp) -> Window {
        let secs = now.as_secs();
        let start = secs.div_euclid(LOGIN_WINDOW_SECS) * LOGIN_WINDOW_SECS;
        Window {
            start,
            end: Timestamp::from_millis((start + LOGIN_WINDOW_SECS) * 1000),
            retry_after: u64::try_from(start + LOGIN_WINDOW_SECS - secs).unwrap_or(1),
        }
    }
}

/// The client address as the throttle keys it: the IP alone when the host sent
/// `ip:port` or `[ipv6]:port`; nothing when empty or longer than 128 bytes.
pub(crate) fn normalize_addr(addr: &str) -> Option<String> {
    let addr = addr.trim();
    if addr.is_empty() || addr.len() > 128 || addr.chars().any(is_control) {
        return None;
    }
    let ip = addr
        .parse::<std::net::SocketAddr>()
        .map(|sock| sock.ip())
        .or_else(|_| addr.parse::<std::net::IpAddr>());
    Some(match ip {
        Ok(ip) => keyed_ip(ip),
        Err(_) => addr.to_owned(),
    })
}

/// An IP address as the throttle keys it: IPv4 whole; IPv6 by its /64 prefix, because one
/// client (one home or one cloud machine) is usually given a whole /64 and can pick any
/// address in it. An IPv4 address mapped into IPv6 counts as the IPv4 address.
fn keyed_ip(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

/// The client's address as a trusted proxy reported it in `header`: the last entry of the
/// header's last value (`X-Forwarded-For: client, proxy1` lists the hops that each proxy
/// added after what the client sent itself, so only the last one was written by the proxy
/// in front of the service; anything before it is the client's claim).
pub(crate) fn forwarded_addr<'a>(headers: &'a http::HeaderMap, header: &str) -> Option<&'a str> {
    let value = headers.get_all(header).iter().next_back()?.as_bytes();
    // Only the last entry needs to be text: what the client wrote before it may be anything.
    let last = value.rsplit(|&b| b == b',').next()?;
    std::str::from_utf8(last)
        .ok()
        .map(str::trim)
        .filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::{AccountStore, ThrottleKey};

    #[test]
    fn throttle_windows_are_fixed_and_keys_hold_no_address() {
        let now = Timestamp::from_millis(1_800_000_100_000);
        let w = Window::at(now);
        assert_eq!(w.start, 1_800_000_000);
        assert_eq!(w.end, Timestamp::from_millis(1_800_000_900_000));
        assert_eq!(w.retry_after, 800);
        let k = ThrottleKey::new("login:email:ann@example.com", w.start);
        assert!(!k.as_str().contains("ann"));
        assert_eq!(k, ThrottleKey::new("login:email:ann@example.com", w.start));
        assert_eq!(normalize_addr("10.0.0.1:5555").unwrap(), "10.0.0.1");
        assert_eq!(normalize_addr(" "), None);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_prefix() {
        assert_eq!(
            normalize_addr("[2001:db8:1:2:aaaa::1]:443").unwrap(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            normalize_addr("2001:db8:1:2:ffff::9").unwrap(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(normalize_addr("::ffff:192.0.2.7").unwrap(), "192.0.2.7");
        assert_ne!(
            normalize_addr("2001:db8:1:3::1"),
            normalize_addr("2001:db8:1:2::1")
        );
    }

    #[test]
    fn a_forwarded_address_is_the_hop_the_proxy_added() {
        let mut h = http::HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        assert_eq!(forwarded_addr(&h, "x-forwarded-for"), Some("203.0.113.9"));
        h.append("x-forwarded-for", "198.51.100.4".parse().unwrap());
        assert_eq!(forwarded_addr(&h, "x-forwarded-for"), Some("198.51.100.4"));
        assert_eq!(forwarded_addr(&h, "x-real-ip"), None);
        // Bytes that are not text before the proxy's hop do not hide the hop.
        let mut raw = http::HeaderMap::new();
        raw.append(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.9").unwrap(),
        );
        assert_eq!(forwarded_addr(&raw, "x-forwarded-for"), Some("203.0.113.9"));
    }

    #[test]
    fn the_memory_store_counts_attempts_forgives_them_and_sweeps_expired_ones() {
        let store = crate::MemoryStore::new();
        let at = Timestamp::from_millis;
        let count = |key: &ThrottleKey, now: i64| {
            pollster::block_on(store.count_attempt(key, at(900_000), at(now))).unwrap()
        };
        let k = ThrottleKey::new("login:email:a@b.co", 0);
        assert_eq!(count(&k, 1), 1);
        assert_eq!(count(&k, 2), 2);
        pollster::block_on(store.forgive_attempt(&k)).unwrap();
        assert_eq!(count(&k, 3), 2);
        // Past their window, counts are dropped.
        let late = ThrottleKey::new("login:addr:late", 900);
        assert_eq!(
            pollster::block_on(store.count_attempt(&late, at(1_800_000), at(900_001))).unwrap(),
            1
        );
        assert_eq!(count(&k, 900_002), 1, "the old window's count was swept");
    }
}
