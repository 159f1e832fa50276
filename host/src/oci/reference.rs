//! [`OciReference`]: `oci://registry/repository:tag` or `...@sha256:<digest>`, parsed once
//! when the config is read, and the transport rule that goes with it.
//!
//! Pure string rules, no I/O and no dependency beyond `std`: the config parses plugin
//! references in every build, with or without the `wasm` feature. The registry must be
//! named (no implicit Docker Hub: a plugin's origin is written out in the config), and so
//! must a tag or a digest (no implicit `latest`: what runs is never a guess).

use std::fmt;

/// The scheme that marks a plugin as an OCI artifact in a provider's `plugin` key.
pub const SCHEME: &str = "oci://";

/// A parsed `oci://` reference: a registry, a repository, and a tag, a digest or both
/// (the digest then decides what is pulled; the tag is only shown).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why an `oci://` reference was refused. Displays as one line naming the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// It does not start with `oci://`.
    #[error("an OCI reference starts with oci://")]
    NotOci,
    /// No `registry/repository` after the scheme.
    #[error(
        "{0:?}: name the registry and the repository (oci://registry.example.com/team/plugin:1.0)"
    )]
    NoRepository(String),
    /// The registry is not `host` or `host:port`.
    #[error("{0:?} is not a registry host (host or host:port)")]
    Registry(String),
    /// The repository has an empty component or a character OCI does not allow.
    #[error(
        "{0:?} is not a repository name (lowercase letters, digits, and . _ - between them, / between components)"
    )]
    Repository(String),
    /// The tag is empty, too long, or has a character OCI does not allow.
    #[error("{0:?} is not a tag (up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)")]
    Tag(String),
    /// The digest is not `sha256:` and 64 lowercase hex digits.
    #[error("{0:?} is not a digest (sha256: and 64 lowercase hex digits)")]
    Digest(String),
    /// Neither a tag nor a digest.
    #[error("{0:?} names no version: add a tag (:1.2.0) or a digest (@sha256:...)")]
    NoVersion(String),
}

impl OciReference {
    /// Parses `oci://registry[:port]/repository[:tag][@sha256:<hex>]`.
    pub fn parse(text: &str) -> Result<OciReference, ReferenceError> {
        let rest = text.strip_prefix(SCHEME).ok_or(ReferenceError::NotOci)?;
        let (rest, digest) = match rest.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
            None => (rest, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .filter(|(registry, path)| !registry.is_empty() && !path.is_empty())
            .ok_or_else(|| ReferenceError::NoRepository(text.to_string()))?;
        // A tag follows the last ':' of the last path component (a port belongs to the
        // registry, which is already split off).
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (path, None),
        };
        check_registry(registry)?;
        check_repository(repository)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if tag.is_none() && digest.is_none() {
            return Err(ReferenceError::NoVersion(text.to_string()));
        }
        Ok(OciReference {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry, `host` or `host:port` (lower case).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository within the registry (`team/plugin`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was written.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest (`sha256:<hex>`), if one was written: then nothing is
    /// resolved, and a cached copy never goes stale.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The registry's host, without port or IPv6 brackets.
    pub fn host(&self) -> &str {
        host_of(&self.registry)
    }

    /// Whether the registry is this machine's loopback (`localhost`, `127.0.0.0/8`,
    /// `[::1]`): the only registries reached over plain HTTP, as for `allowed_hosts`.
    pub fn is_loopback(&self) -> bool {
        crate::grants::is_loopback_host(self.host())
    }

    /// `http` for a loopback registry, else `https`: never plain HTTP over a network.
    pub fn scheme(&self) -> &'static str {
        match self.is_loopback() {
            true => "http",
            false => "https",
        }
    }
}

/// `oci://registry/repository:tag@digest`, as written (registry in lower case).
impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Parses `sha256:<64 lowercase hex>`, the only digest algorithm accepted.
pub(crate) fn parse_digest(text: &str) -> Result<String, ReferenceError> {
    let bad = || ReferenceError::Digest(text.to_string());
    let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
    let lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    match hex.len() == 64 && hex.chars().all(lower_hex) {
        true => Ok(text.to_string()),
        false => Err(bad()),
    }
}

fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(host, _)| host);
    }
    registry.split_once(':').map_or(registry, |(host, _)| host)
}

fn check_registry(registry: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::Registry(registry.to_string());
    let (host_ok, port) = match registry.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(bad)?),
            };
            (host.parse::<std::net::Ipv6Addr>().is_ok(), port)
        }
        None => {
            let (host, port) = match registry.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (registry, None),
            };
            let label_ok = |label: &str| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            };
            (host.len() <= 253 && host.split('.').all(label_ok), port)
        }
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    match host_ok && port_ok {
        true => Ok(()),
        false => Err(bad()),
    }
}

fn check_repository(repository: &str) -> Result<(), ReferenceError> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let component_ok = |component: &str| {
        component.starts_with(alnum)
            && component.ends_with(alnum)
            && component
                .chars()
                .all(|c| alnum(c) || matches!(c, '.' | '_' | '-'))
            && !component.contains("..")
    };
    match repository.len() <= 255 && repository.split('/').all(component_ok) {
        true => Ok(()),
        false => Err(ReferenceError::Repository(repository.to_string())),
    }
}

fn check_tag(tag: &str) -> Result<(), ReferenceError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    match ok {
        true => Ok(()),
        false => Err(ReferenceError::Tag(tag.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_into_their_parts() {
        let with_digest = format!("oci://r.example/a/b@{D}");
        let both = format!("oci://127.0.0.1:5000/p:v1@{D}");
        // (text, registry, repository, tag, digest)
        type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let table: &[Row] = &[
            (
                "oci://registry.example.com/contoso/entra-login:1.2.0",
                "registry.example.com",
                "contoso/entra-login",
                Some("1.2.0"),
                None,
            ),
            (
                "oci://Reg.Example:5000/x:latest",
                "reg.example:5000",
                "x",
                Some("latest"),
                None,
            ),
            (
                "oci://localhost:5000/a/b/c:V_1-2.3",
                "localhost:5000",
                "a/b/c",
                Some("V_1-2.3"),
                None,
            ),
            ("oci://[::1]:5000/p:t", "[::1]:5000", "p", Some("t"), None),
            ("oci://[::1]/p:t", "[::1]", "p", Some("t"), None),
            (&with_digest, "r.example", "a/b", None, Some(D)),
            (&both, "127.0.0.1:5000", "p", Some("v1"), Some(D)),
            (
                "oci://r.example/a.b_c__d-e/f:t",
                "r.example",
                "a.b_c__d-e/f",
                Some("t"),
                None,
            ),
        ];
        for (text, registry, repository, tag, digest) in table {
            let r = OciReference::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.registry(), *registry, "{text}");
            assert_eq!(r.repository(), *repository, "{text}");
            assert_eq!(r.tag(), *tag, "{text}");
            assert_eq!(r.digest(), *digest, "{text}");
            // Display gives back what parses to the same reference.
            assert_eq!(OciReference::parse(&r.to_string()).unwrap(), r, "{text}");
        }
    }

    #[test]
    fn bad_references_are_refused_naming_the_part() {
        let short_digest = "oci://r.example/p@sha256:abc".to_string();
        let upper = format!(
            "oci://r.example/p@{}",
            D.to_uppercase().replace("SHA256", "sha256")
        );
        let sha512 = format!("oci://r.example/p@sha512:{}", "0".repeat(128));
        let table: &[(&str, &str)] = &[
            ("/plugins/x.wasm", "starts with oci://"),
            ("https://r.example/p:1", "starts with oci://"),
            ("oci://", "name the registry"),
            ("oci://r.example", "name the registry"),
            ("oci://r.example/", "name the registry"),
            ("oci:///p:1", "name the registry"),
            ("oci://r.example/p", "names no version"),
            ("oci://r.example:5000/p", "names no version"),
            ("oci://r.example/P:1", "not a repository"),
            ("oci://r.example/a//b:1", "not a repository"),
            ("oci://r.example/-a:1", "not a repository"),
            ("oci://r.example/a-:1", "not a repository"),
            ("oci://r.example/a b:1", "not a repository"),
            ("oci://r.example/p:", "not a tag"),
            ("oci://r.example/p:.x", "not a tag"),
            ("oci://r.example/p:a+b", "not a tag"),
            ("oci://r_x.example/p:1", "not a registry"),
            ("oci://r.example:0/p:1", "not a registry"),
            ("oci://r.example:99999/p:1", "not a registry"),
            ("oci://r.example:x/p:1", "not a registry"),
            ("oci://[zz]:5000/p:1", "not a registry"),
            ("oci://[::1]x/p:1", "not a registry"),
            (&short_digest, "not a digest"),
            (&upper, "not a digest"),
            (&sha512, "not a digest"),
        ];
        for (text, expected) in table {
            let error = OciReference::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    /// The transport rule of `allowed_hosts`: plain HTTP only on loopback.
    #[test]
    fn only_loopback_registries_are_reached_over_plain_http() {
        for (text, scheme) in [
            ("oci://localhost:5000/p:1", "http"),
            ("oci://127.0.0.1:5000/p:1", "http"),
            ("oci://127.8.9.10/p:1", "http"),
            ("oci://[::1]:5000/p:1", "http"),
            ("oci://registry.example.com/p:1", "https"),
            ("oci://localhost.example.com/p:1", "https"),
            ("oci://10.0.0.1:5000/p:1", "https"),
            ("oci://192.168.1.1/p:1", "https"),
            ("oci://[::2]:5000/p:1", "https"),
        ] {
            assert_eq!(
                OciReference::parse(text).unwrap().scheme(),
                scheme,
                "{text}"
            );
        }
    }
}
