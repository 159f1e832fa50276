//! Which HTTP proxy, if any, a plugin's request goes through: one decision, used both to
//! route the request and to say "proxy" when it fails.
//!
//! The rules are the environment's, as curl and most HTTP clients read them:
//! - `HTTPS_PROXY` / `https_proxy` for `https://` targets, `HTTP_PROXY` / `http_proxy`
//!   for `http://` ones, else `ALL_PROXY` / `all_proxy` (the upper-case name first; an
//!   empty value is unset; a value without a scheme means `http://`). `HTTP_PROXY` is
//!   ignored when `REQUEST_METHOD` is set (a CGI environment, where a request header can
//!   set it: "httpoxy").
//! - `NO_PROXY` / `no_proxy`: a comma-separated list of `*` (everything), host names
//!   (`example.com` and `.example.com` both match it and every name below it), IP
//!   addresses and CIDR ranges (`10.0.0.0/8`); an entry's `:port` is ignored.
//! - Loopback targets (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`) never use a
//!   proxy: a proxy elsewhere cannot reach this machine's loopback.
//!
//! Only `http://` and `https://` proxies are supported; any other scheme makes requests
//! that would use it fail (rather than silently go direct).

use std::net::IpAddr;

/// A proxy taken from the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy URL as reqwest needs it (with any credentials).
    url: String,
    /// The variable it came from.
    pub var: &'static str,
    /// `scheme://host:port`, without credentials: safe to show.
    pub shown: String,
    /// Why it cannot be used (an unsupported scheme, not a URL), if it cannot.
    pub unusable: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL itself: it may hold a password.
        write!(f, "Proxy({} from {})", self.shown, self.var)
    }
}

impl Proxy {
    fn parse(var: &'static str, value: &str) -> Proxy {
        let text = match value.contains("://") {
            true => value.to_string(),
            false => format!("http://{value}"),
        };
        let parsed = reqwest::Url::parse(&text);
        let (shown, unusable) = match &parsed {
            Ok(url) if url.host_str().is_some() => {
                let shown = match url.port_or_known_default() {
                    Some(port) => {
                        format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or(""))
                    }
                    None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
                };
                let unusable = (!matches!(url.scheme(), "http" | "https")).then(|| {
                    format!(
                        "{var} names a {}:// proxy; tokenhost supports http:// and https:// proxies",
                        url.scheme()
                    )
                });
                (shown, unusable)
            }
            _ => (
                "(not a URL)".to_string(),
                Some(format!("{var} is not a proxy URL")),
            ),
        };
        Proxy {
            url: text,
            var,
            shown,
            unusable,
        }
    }

    /// The URL to hand to reqwest.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The proxy rules of one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyRules {
    https: Option<Proxy>,
    http: Option<Proxy>,
    no_proxy: Vec<NoProxyEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyEntry {
    All,
    /// A name and every name below it; lower case, without a leading dot.
    Domain(String),
    Net(IpAddr, u8),
}

impl ProxyRules {
    /// The rules of this process's environment.
    pub fn from_env() -> ProxyRules {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The rules `lookup` (an environment) gives.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxyRules {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                lookup(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v.trim().to_string()))
            })
        };
        let all = first(["ALL_PROXY", "all_proxy"]);
        let cgi = lookup("REQUEST_METHOD").is_some();
        let http = match cgi {
            true => None,
            false => first(["HTTP_PROXY", "http_proxy"]),
        };
        let https = first(["HTTPS_PROXY", "https_proxy"]);
        let proxy = |chosen: Option<(&'static str, String)>| {
            chosen
                .or_else(|| all.clone())
                .map(|(var, value)| Proxy::parse(var, &value))
        };
        let no_proxy = first(["NO_PROXY", "no_proxy"])
            .map(|(_, list)| list.split(',').filter_map(NoProxyEntry::parse).collect())
            .unwrap_or_default();
        ProxyRules {
            https: proxy(https),
            http: proxy(http),
            no_proxy,
        }
    }

    /// The proxy a request to `scheme://host` goes through, if any.
    pub fn proxy_for(&self, scheme: &str, host: &str) -> Option<&Proxy> {
        let proxy = match scheme {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if is_loopback(&host) || self.no_proxy.iter().any(|entry| entry.matches(&host)) {
            return None;
        }
        Some(proxy)
    }
}

impl NoProxyEntry {
    fn parse(entry: &str) -> Option<NoProxyEntry> {
        let entry = entry.trim();
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            return Some(NoProxyEntry::All);
        }
        if let Some((ip, bits)) = entry.split_once('/') {
            let ip: IpAddr = ip
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits.parse().ok().filter(|b| *b <= max)?;
            return Some(NoProxyEntry::Net(ip, bits));
        }
        let bare = entry.trim_start_matches('[');
        if let Some((ip, _)) = bare.split_once(']') {
            // `[::1]` or `[::1]:8080`.
            let ip: IpAddr = ip.parse().ok()?;
            return Some(NoProxyEntry::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        if let Ok(ip) = entry.parse::<IpAddr>() {
            return Some(NoProxyEntry::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        // `host` or `host:port`: the port is ignored.
        let name = entry.rsplit_once(':').map_or(entry, |(name, _)| name);
        let name = name.trim_start_matches("*.").trim_start_matches('.');
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Some(NoProxyEntry::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        (!name.is_empty()).then_some(NoProxyEntry::Domain(name))
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            NoProxyEntry::All => true,
            NoProxyEntry::Domain(name) => {
                host == name
                    || host
                        .strip_suffix(name.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
            NoProxyEntry::Net(net, bits) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_net(ip, *net, *bits)),
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Whether `host` (lower case, no brackets) is this machine's loopback.
fn is_loopback(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(vars: &[(&str, &str)]) -> ProxyRules {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyRules::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn via(rules: &ProxyRules, scheme: &str, host: &str) -> Option<String> {
        rules
            .proxy_for(scheme, host)
            .map(|p| format!("{} {}", p.var, p.shown))
    }

    #[test]
    fn each_scheme_takes_its_own_variable_then_all_proxy() {
        let r = rules(&[
            ("HTTPS_PROXY", "http://secure:3128"),
            ("http_proxy", "plain:8080"),
        ]);
        assert_eq!(
            via(&r, "https", "idp.example.com").as_deref(),
            Some("HTTPS_PROXY http://secure:3128")
        );
        assert_eq!(
            via(&r, "http", "idp.example.com").as_deref(),
            Some("http_proxy http://plain:8080")
        );
        let all = rules(&[("ALL_PROXY", "http://all:1")]);
        assert_eq!(
            via(&all, "https", "x.example").as_deref(),
            Some("ALL_PROXY http://all:1")
        );
        assert_eq!(
            via(&rules(&[("HTTPS_PROXY", " ")]), "https", "x.example"),
            None
        );
        assert_eq!(via(&rules(&[]), "https", "x.example"), None);
    }

    #[test]
    fn loopback_never_uses_a_proxy() {
        let r = rules(&[("HTTPS_PROXY", "http://p:1"), ("HTTP_PROXY", "http://p:1")]);
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
            "localhost",
            "LOCALHOST.",
            "api.localhost",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(via(&r, "http", host), None, "{host}");
            assert_eq!(via(&r, "https", host), None, "{host}");
        }
        assert!(via(&r, "https", "localhost.example.com").is_some());
        assert!(via(&r, "https", "128.0.0.1").is_some());
    }

    #[test]
    fn no_proxy_names_addresses_and_ranges() {
        let r = rules(&[
            ("HTTPS_PROXY", "http://p:1"),
            (
                "NO_PROXY",
                "corp.example, .internal.example:8443, 10.0.0.0/8, 192.168.1.7, [fd00::1], *.star.example",
            ),
        ]);
        let table = [
            ("corp.example", None),
            ("login.corp.example", None),
            ("CORP.EXAMPLE.", None),
            ("notcorp.example", Some(())),
            ("internal.example", None),
            ("a.internal.example", None),
            ("10.20.30.40", None),
            ("11.0.0.1", Some(())),
            ("192.168.1.7", None),
            ("192.168.1.8", Some(())),
            ("[fd00::1]", None),
            ("fd00::2", Some(())),
            ("x.star.example", None),
            ("login.microsoftonline.com", Some(())),
        ];
        for (host, proxied) in table {
            assert_eq!(via(&r, "https", host).map(|_| ()), proxied, "{host}");
        }
        let everything = rules(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(via(&everything, "https", "x.example"), None);
    }

    #[test]
    fn http_proxy_is_ignored_under_cgi() {
        let r = rules(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(via(&r, "http", "x.example"), None);
    }

    #[test]
    fn credentials_are_kept_for_the_client_and_never_shown() {
        let r = rules(&[("HTTPS_PROXY", "http://user:pa55word@proxy.corp:3128")]);
        let proxy = r.proxy_for("https", "x.example").unwrap();
        assert_eq!(proxy.shown, "http://proxy.corp:3128");
        assert_eq!(proxy.url(), "http://user:pa55word@proxy.corp:3128");
        assert!(!format!("{proxy:?}").contains("pa55word"));
        assert!(!format!("{r:?}").contains("pa55word"));
        assert_eq!(proxy.unusable, None);
    }

    #[test]
    fn unsupported_proxies_are_unusable_not_ignored() {
        let socks = rules(&[("HTTPS_PROXY", "socks5://p:1080")]);
        let proxy = socks.proxy_for("https", "x.example").unwrap();
        assert!(
            proxy.unusable.as_deref().unwrap().contains("socks5://"),
            "{proxy:?}"
        );
        let garbage = rules(&[("HTTPS_PROXY", "http://")]);
        assert!(
            garbage
                .proxy_for("https", "x.example")
                .unwrap()
                .unusable
                .is_some()
        );
    }
}
