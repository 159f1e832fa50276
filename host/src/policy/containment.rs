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
//! Hosts are compared as [`HostPattern`](crate::grants::HostPattern)s, the one parser
//! of `allowed_hosts` entries that config and policy share.

use std::path::Path;

use crate::grants::HostPattern;

/// Whether every request the `requested` entry allows is also allowed by `ceiling`
/// ([`HostPattern::within`]). An invalid entry on either side fits nothing.
pub(super) fn host_within(requested: &str, ceiling: &str) -> bool {
    match (HostPattern::parse(requested), HostPattern::parse(ceiling)) {
        (Ok(r), Ok(c)) => r.within(&c),
        _ => false,
    }
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
