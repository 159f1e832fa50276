//! The pure rules that decide whether a provider's grant fits inside an admin's ceiling.
//!
//! A grant fits when everything it allows is also allowed by one ceiling entry, so a
//! ceiling can only ever narrow what a provider asks for:
//! - hosts: an exact host fits an equal exact entry or a wildcard above it; a wildcard
//!   `*.a.example.com` fits `*.a.example.com` or `*.example.com`, never an exact entry.
//!   Ports must match. An entry without a port means HTTPS on 443; an explicit port also
//!   opens plain HTTP on loopback hosts (see [`crate::grants::host_pattern`]), so an
//!   explicit port only fits a ceiling with the same explicit port, while an omitted port
//!   fits `:443` as well as an omitted one.
//! - paths: component-wise prefix of canonical paths (`/var/run/secrets-evil` is not
//!   inside `/var/run/secrets`).
//!
//! Host text is split and normalised here rather than read from
//! [`HostPattern`](crate::grants::HostPattern), whose fields are private; each entry is
//! first validated by `HostPattern::parse`, so both modules accept the same language.

use std::path::Path;

use crate::grants::HostPattern;

/// A validated host entry, split into its parts.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    /// `*.suffix`: `host` holds the suffix.
    wildcard: bool,
    /// Lowercase, without brackets or a trailing dot.
    host: String,
    port: Option<u16>,
}

/// Splits an `allowed_hosts` entry; `None` if it is not a valid entry.
fn shape(entry: &str) -> Option<Shape> {
    HostPattern::parse(entry).ok()?;
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?.parse().ok()?),
        };
        (host, port)
    } else {
        match entry.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port.parse().ok()?)),
            _ => (entry, None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    Some(match host.strip_prefix("*.") {
        Some(suffix) => Shape {
            wildcard: true,
            host: suffix.to_string(),
            port,
        },
        None => Shape {
            wildcard: false,
            host,
            port,
        },
    })
}

/// Whether `host` is one or more labels below `suffix`.
fn is_below(host: &str, suffix: &str) -> bool {
    host.strip_suffix(suffix)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// Whether every request the `requested` entry allows is also allowed by `ceiling`.
/// An invalid entry on either side fits nothing.
pub(super) fn host_within(requested: &str, ceiling: &str) -> bool {
    let (Some(r), Some(c)) = (shape(requested), shape(ceiling)) else {
        return false;
    };
    let port_ok = match (r.port, c.port) {
        (None, None) | (None, Some(443)) => true,
        (Some(p), Some(q)) => p == q,
        _ => false,
    };
    let host_ok = match (r.wildcard, c.wildcard) {
        (false, false) => r.host == c.host,
        (_, true) => is_below(&r.host, &c.host) || (r.wildcard && r.host == c.host),
        (true, false) => false,
    };
    port_ok && host_ok
}

/// Whether the canonical `requested` directory is `ceiling` or inside it, comparing
/// whole components.
pub(super) fn path_within(requested: &Path, ceiling: &Path) -> bool {
    requested.starts_with(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_within_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("login.example.com", "login.example.com", true),
            ("LOGIN.example.com.", "login.EXAMPLE.com", true),
            ("login.example.com", "other.example.com", false),
            ("login.example.com", "*.example.com", true),
            ("a.b.example.com", "*.example.com", true),
            ("example.com", "*.example.com", false),
            ("evilexample.com", "*.example.com", false),
            ("login.example.com.evil.io", "*.example.com", false),
            ("*.a.example.com", "*.example.com", true),
            ("*.a.example.com", "*.a.example.com", true),
            ("*.example.com", "*.a.example.com", false),
            ("*.example.com", "*.example.com", true),
            ("*.a.example.com", "a.example.com", false),
            ("*.a.example.com", "x.a.example.com", false),
            ("*.badexample.com", "*.example.com", false),
            ("login.example.com", "login.example.com:443", true),
            ("login.example.com:443", "login.example.com", false),
            ("login.example.com:8443", "login.example.com", false),
            ("login.example.com", "login.example.com:8443", false),
            ("login.example.com:8443", "login.example.com:8443", true),
            ("login.example.com:8443", "*.example.com:8443", true),
            ("login.example.com:8443", "*.example.com:9443", false),
            ("127.0.0.1:8080", "127.0.0.1:8080", true),
            ("[::1]:9000", "[::1]:9000", true),
            ("::1", "[::1]", true),
            ("[::1]:9000", "[::1]", false),
            ("not a host", "*.example.com", false),
            ("login.example.com", "*", false),
        ];
        for (requested, ceiling, expected) in cases {
            assert_eq!(
                host_within(requested, ceiling),
                *expected,
                "{requested} within {ceiling}"
            );
        }
    }

    #[test]
    fn path_within_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("/var/run/secrets", "/var/run/secrets", true),
            ("/var/run/secrets/corp", "/var/run/secrets", true),
            ("/var/run/secrets-evil", "/var/run/secrets", false),
            ("/var/run", "/var/run/secrets", false),
            ("/etc", "/var/run/secrets", false),
            ("/anything", "/", true),
        ];
        for (requested, ceiling, expected) in cases {
            assert_eq!(
                path_within(Path::new(requested), Path::new(ceiling)),
                *expected,
                "{requested} within {ceiling}"
            );
        }
    }
}
