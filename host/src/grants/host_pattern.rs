//! `allowed_hosts` patterns and the one rule that matches them against a request's real
//! target (scheme, host and port from the request URI, never from a header).
//!
//! - `login.example.com`: that host, HTTPS, port 443.
//! - `*.example.net`: any host one or more labels below `example.net` (not the apex),
//!   HTTPS, port 443.
//! - `host:8443`: that host on that port, HTTPS only; a loopback host (`127.0.0.0/8`,
//!   `[::1]`, `localhost`) with an explicit port may also use plain HTTP, for local
//!   development and tests.
//!
//! Hosts compare case-insensitively and without a trailing dot.

use std::fmt;
use std::net::IpAddr;

/// One parsed `allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    port: Option<u16>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// `*.suffix`: the suffix without its leading dot.
    Subdomains(String),
}

/// Why an `allowed_hosts` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("allowed_hosts entry {entry:?} {reason}")]
pub struct PatternError {
    entry: String,
    reason: &'static str,
}

impl HostPattern {
    /// Whether every request this entry allows is also allowed by `ceiling` (an admin's
    /// `allowed_hosts` ceiling), so that a ceiling can only narrow what is asked for.
    /// An exact host fits an equal exact entry or a wildcard above it; a wildcard fits an
    /// equal or broader wildcard, never an exact entry. A port written out fits only the
    /// same port (it also opens plain HTTP on loopback); an omitted port (HTTPS on 443)
    /// fits an omitted one or `:443`.
    pub fn within(&self, ceiling: &HostPattern) -> bool {
        let port_ok = match (self.port, ceiling.port) {
            (None, None) | (None, Some(443)) => true,
            (Some(p), Some(q)) => p == q,
            _ => false,
        };
        let below = |host: &str, suffix: &str| {
            host.strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        };
        let host_ok = match (&self.host, &ceiling.host) {
            (HostMatch::Exact(r), HostMatch::Exact(c)) => r == c,
            (HostMatch::Exact(r), HostMatch::Subdomains(c)) => below(r, c),
            (HostMatch::Subdomains(r), HostMatch::Subdomains(c)) => r == c || below(r, c),
            (HostMatch::Subdomains(_), HostMatch::Exact(_)) => false,
        };
        port_ok && host_ok
    }

    /// Parses an entry: `host`, `*.domain` or either with `:port`.
    pub fn parse(entry: &str) -> Result<Self, PatternError> {
        let fail = |reason| PatternError {
            entry: entry.to_string(),
            reason,
        };
        if entry.contains("://") || entry.contains('/') {
            return Err(fail(
                "must be a host or host:port, without a scheme or path",
            ));
        }
        let (host, port) = split_port(entry).ok_or_else(|| fail("has an invalid port"))?;
        let host = normalize(host);
        if host.is_empty() {
            return Err(fail("is empty"));
        }
        let host_match = if host == "*" {
            return Err(fail(
                "is too broad: a wildcard needs at least two labels after it (*.example.com)",
            ));
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.contains('*') || suffix.split('.').count() < 2 {
                return Err(fail(
                    "is too broad: a wildcard needs at least two labels after it (*.example.com)",
                ));
            }
            HostMatch::Subdomains(suffix.to_string())
        } else if host.contains('*') {
            return Err(fail(
                "may only use a wildcard as its first label (*.example.com)",
            ));
        } else if host.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(fail("is not a host name"));
        } else {
            HostMatch::Exact(host)
        };
        Ok(HostPattern {
            host: host_match,
            port,
            text: entry.to_string(),
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry. `port` is the
    /// URI's explicit port, if any.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let host = normalize(host);
        let scheme = scheme.to_ascii_lowercase();
        let port = match (port, scheme.as_str()) {
            (Some(port), _) => port,
            (None, "https") => 443,
            (None, "http") => 80,
            _ => return false,
        };
        let host_ok = match &self.host {
            HostMatch::Exact(exact) => *exact == host,
            HostMatch::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        };
        let scheme_ok = match (scheme.as_str(), self.port) {
            ("https", _) => true,
            ("http", Some(_)) => is_loopback(&host),
            _ => false,
        };
        host_ok && scheme_ok && port == self.port.unwrap_or(443)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether any of `patterns` allows the target.
pub fn any_allows(patterns: &[HostPattern], scheme: &str, host: &str, port: Option<u16>) -> bool {
    patterns.iter().any(|p| p.allows(scheme, host, port))
}

fn split_port(entry: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = entry.strip_prefix('[') {
        // [v6]:port or [v6]
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((
                host,
                Some(after.strip_prefix(':')?.parse().ok().filter(|p| *p != 0)?),
            )),
        };
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Some((host, Some(port.parse().ok().filter(|p| *p != 0)?)))
        }
        Some(_) => Some((entry, None)), // a bare IPv6 address
        None => Some((entry, None)),
    }
}

fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether `host` (lower case, no brackets, no port) is this machine's loopback:
/// `localhost`, `127.0.0.0/8` or `::1`. The one place that says which hosts may be
/// reached over plain HTTP (here, and for OCI registries).
pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        for ok in [
            "login.example.com",
            "*.example.net",
            "127.0.0.1:8080",
            "[::1]:9000",
            "LOGIN.Example.com.",
            "::1",
        ] {
            HostPattern::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, reason) in [
            ("https://login.example.com", "without a scheme"),
            ("login.example.com/path", "without a scheme"),
            ("", "is empty"),
            ("*", "too broad"),
            ("*.com", "too broad"),
            ("a.*.example.com", "first label"),
            ("example.com:0", "invalid port"),
            ("example.com:99999", "invalid port"),
            ("example.com:http", "invalid port"),
            ("user@example.com", "not a host name"),
        ] {
            let err = HostPattern::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(reason), "{bad}: {err}");
        }
    }

    #[test]
    fn allows_table() {
        let cases: &[(&str, &str, &str, Option<u16>, bool)] = &[
            (
                "login.example.com",
                "https",
                "login.example.com",
                None,
                true,
            ),
            (
                "login.example.com",
                "https",
                "LOGIN.example.COM.",
                None,
                true,
            ),
            (
                "login.example.com",
                "https",
                "login.example.com",
                Some(443),
                true,
            ),
            (
                "login.example.com",
                "https",
                "login.example.com",
                Some(8443),
                false,
            ),
            (
                "login.example.com",
                "http",
                "login.example.com",
                None,
                false,
            ),
            (
                "login.example.com",
                "https",
                "evil-login.example.com",
                None,
                false,
            ),
            (
                "login.example.com",
                "https",
                "login.example.com.evil.io",
                None,
                false,
            ),
            ("login.example.com", "ftp", "login.example.com", None, false),
            ("*.example.net", "https", "a.example.net", None, true),
            ("*.example.net", "https", "a.b.example.net", None, true),
            ("*.example.net", "https", "example.net", None, false),
            ("*.example.net", "https", "evilexample.net", None, false),
            ("*.example.net", "https", ".example.net", None, false),
            ("*.example.net", "http", "a.example.net", None, false),
            ("127.0.0.1:8080", "http", "127.0.0.1", Some(8080), true),
            ("127.0.0.1:8080", "https", "127.0.0.1", Some(8080), true),
            ("127.0.0.1:8080", "http", "127.0.0.1", Some(8081), false),
            ("127.0.0.1:8080", "http", "127.0.0.1", None, false),
            ("localhost:3000", "http", "localhost", Some(3000), true),
            ("[::1]:9000", "http", "[::1]", Some(9000), true),
            ("10.0.0.5:8080", "http", "10.0.0.5", Some(8080), false),
            ("10.0.0.5:8080", "https", "10.0.0.5", Some(8080), true),
            ("127.0.0.1", "http", "127.0.0.1", None, false),
            ("127.0.0.1", "http", "127.0.0.1", Some(80), false),
        ];
        for (pattern, scheme, host, port, expected) in cases {
            let p = HostPattern::parse(pattern).unwrap();
            assert_eq!(
                p.allows(scheme, host, *port),
                *expected,
                "{pattern} vs {scheme}://{host}:{port:?}"
            );
        }
    }
}
