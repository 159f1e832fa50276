//! Just enough URL handling for wasi:http: split an absolute URL into scheme, authority
//! and path-with-query, and enforce the scheme policy.

/// The URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Which schemes a URL may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemePolicy {
    /// https, or http to 127.0.0.1, localhost or `[::1]` only (token endpoints carry
    /// secrets).
    HttpsOrLoopback,
    /// https or http to any host (metadata servers are plain http on link-local
    /// addresses; the host's allowlist still decides what is reachable).
    AnyHttp,
}

/// An absolute http(s) URL split for wasi:http.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// `host` or `host:port`, host in lower case (IPv6 in brackets).
    pub authority: String,
    /// The host without port (IPv6 in brackets).
    pub host: String,
    /// Starts with `/`; includes the query, if any.
    pub path_and_query: String,
}

impl Url {
    /// `scheme://authority/path`, without the query: what messages and logs show.
    pub fn display(&self) -> String {
        let path = self.path();
        format!("{}://{}{}", self.scheme.as_str(), self.authority, path)
    }

    /// `scheme://authority`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.authority)
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(p, _)| p)
    }

    /// Whether the host is 127.0.0.1, localhost or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// Parses `raw`, the value of config key `key`. Errors are messages for
/// [`crate::Error::InvalidConfig`].
pub fn parse(key: &str, raw: &str, policy: SchemePolicy) -> Result<Url, String> {
    let raw = raw.trim();
    let bad = |why: &str| {
        // Echo the value only when it cannot hold credentials (no userinfo).
        if raw.contains('@') || raw.len() > 300 {
            format!("config key `{key}` {why}")
        } else {
            format!("config key `{key}` {why} (got `{}`)", raw.escape_debug())
        }
    };
    if let Some(c) = raw.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(bad(&format!(
            "must be an absolute URL with no spaces, control or non-ASCII characters ({c:?}); percent-encode them"
        )));
    }
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
        Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
        _ => return Err(bad("must be an absolute URL starting with https://")),
    };
    if rest.contains('#') {
        return Err(bad("must not have a fragment (`#...`)"));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if authority.contains('@') {
        return Err(bad(
            "must not carry credentials in the URL (`user:password@`); use the plugin's secret settings",
        ));
    }
    let (host, port) = split_host_port(authority).map_err(|why| bad(&why))?;
    let host = host.to_ascii_lowercase();
    if scheme == Scheme::Http && policy == SchemePolicy::HttpsOrLoopback && !is_loopback_host(&host)
    {
        return Err(bad(
            "must use https:// (http:// is accepted only for 127.0.0.1, localhost and [::1])",
        ));
    }
    let authority = match port {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    let path_and_query = if tail.is_empty() {
        "/".to_string()
    } else if tail.starts_with('?') {
        format!("/{tail}")
    } else {
        tail.to_string()
    };
    Ok(Url {
        scheme,
        authority,
        host,
        path_and_query,
    })
}

/// Splits `host[:port]` / `[v6][:port]` and checks both parts.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    if authority.is_empty() {
        return Err("has no host".to_string());
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority
            .find(']')
            .ok_or_else(|| "has an IPv6 host without a closing `]`".to_string())?;
        let host = &authority[..=end];
        let inner = &host[1..host.len() - 1];
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("has an invalid IPv6 host".to_string());
        }
        match &authority[end + 1..] {
            "" => (host, None),
            rest => match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err("has text after the IPv6 host".to_string()),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".to_string());
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err("has an invalid host name".to_string());
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
            _ => return Err("has an invalid port".to_string()),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str, policy: SchemePolicy) -> Url {
        parse("token_url", raw, policy).unwrap()
    }

    #[test]
    fn splits_scheme_authority_and_path() {
        let u = ok(
            "https://Login.Example.com/tenant/oauth2/v2.0/token",
            SchemePolicy::HttpsOrLoopback,
        );
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.authority, "login.example.com");
        assert_eq!(u.host, "login.example.com");
        assert_eq!(u.path_and_query, "/tenant/oauth2/v2.0/token");
        assert_eq!(
            u.display(),
            "https://login.example.com/tenant/oauth2/v2.0/token"
        );
    }

    #[test]
    fn ports_queries_and_empty_paths() {
        let u = ok("https://idp.example:8443", SchemePolicy::HttpsOrLoopback);
        assert_eq!(u.authority, "idp.example:8443");
        assert_eq!(u.host, "idp.example");
        assert_eq!(u.path_and_query, "/");
        let u = ok("https://idp.example?x=1", SchemePolicy::HttpsOrLoopback);
        assert_eq!(u.path_and_query, "/?x=1");
        let u = ok(
            "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
            SchemePolicy::AnyHttp,
        );
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.authority, "169.254.169.254");
        assert_eq!(u.path(), "/metadata/identity/oauth2/token");
        assert_eq!(
            u.display(),
            "http://169.254.169.254/metadata/identity/oauth2/token"
        );
        assert!(u.path_and_query.ends_with("&resource=x"));
    }

    #[test]
    fn ipv6_hosts() {
        let u = ok("http://[::1]:8080/token", SchemePolicy::HttpsOrLoopback);
        assert_eq!(u.host, "[::1]");
        assert_eq!(u.authority, "[::1]:8080");
        assert!(u.is_loopback());
        let u = ok(
            "https://[fd00:ec2::254]/latest",
            SchemePolicy::HttpsOrLoopback,
        );
        assert_eq!(u.authority, "[fd00:ec2::254]");
        assert!(parse("k", "https://[::1", SchemePolicy::AnyHttp).is_err());
        assert!(parse("k", "https://[zz]/", SchemePolicy::AnyHttp).is_err());
        assert!(parse("k", "https://[::1]x/", SchemePolicy::AnyHttp).is_err());
    }

    #[test]
    fn http_only_for_loopback_on_token_endpoints() {
        for raw in [
            "http://127.0.0.1:9000/token",
            "http://localhost/token",
            "HTTP://LOCALHOST:1/t",
            "http://[::1]/t",
        ] {
            assert!(
                ok(raw, SchemePolicy::HttpsOrLoopback).is_loopback(),
                "{raw}"
            );
        }
        let err = parse(
            "token_url",
            "http://login.example.com/token",
            SchemePolicy::HttpsOrLoopback,
        )
        .unwrap_err();
        assert!(err.contains("must use https://"), "{err}");
        assert!(err.contains("token_url"), "{err}");
        assert!(
            parse(
                "url",
                "http://metadata.google.internal/x",
                SchemePolicy::AnyHttp
            )
            .is_ok()
        );
        // Look-alikes of loopback names are not loopback.
        assert!(
            parse(
                "k",
                "http://127.0.0.1.evil.example/",
                SchemePolicy::HttpsOrLoopback
            )
            .is_err()
        );
        assert!(
            parse(
                "k",
                "http://localhost.evil.example/",
                SchemePolicy::HttpsOrLoopback
            )
            .is_err()
        );
    }

    #[test]
    fn rejects_malformed_urls() {
        for raw in [
            "",
            "login.example.com/token",
            "ftp://x/",
            "https://",
            "https:///path",
            "https://a b/",
            "https://host/pa th",
            "https://host/é",
            "https://host/#frag",
            "https://host:0/",
            "https://host:99999/",
            "https://host:+80/",
            "https://host:/",
            "https://ho$t/",
        ] {
            assert!(parse("k", raw, SchemePolicy::AnyHttp).is_err(), "{raw}");
        }
    }

    #[test]
    fn never_echoes_userinfo() {
        let err = parse(
            "token_url",
            "https://user:hunter2@host/",
            SchemePolicy::AnyHttp,
        )
        .unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("credentials"), "{err}");
    }
}
