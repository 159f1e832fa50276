//! What of a client's request goes upstream, and what of upstream's response comes back.
//!
//! One connection's business stays on that connection: the hop-by-hop headers of RFC 9110
//! §7.6.1 (and every header the `Connection` header names) are dropped both ways. The
//! client's credential (its local key, in any of the three headers it may use) never
//! leaves the machine, and `Host` is left for the HTTP client to set to the upstream's
//! authority. The provider's `http_headers` then win over the client's, and the token
//! goes into `Authorization` last, per attempt.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;

use crate::config::ApiSpec;

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the historic `Keep-Alive` and
/// `Proxy-Connection` that clients still send).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Where a client may put the local key: none of them goes upstream.
const CLIENT_CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("api-key"),
];

/// Drops the hop-by-hop headers, those named in `Connection` first. `Transfer-Encoding`
/// goes too: each side's HTTP stack frames the body itself.
pub(crate) fn drop_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

/// The provider's side of every upstream request, worked out once at start.
pub(crate) struct Upstream {
    /// `scheme://authority/base-path` without a trailing `/` or a query.
    prefix: String,
    /// The base URL's own query followed by the provider's `query_params`, encoded.
    query: Option<String>,
    /// The provider's `http_headers`.
    headers: HeaderMap,
}

impl Upstream {
    /// From the provider's API settings; it must have an http(s) `base_url`.
    pub(crate) fn new(api: &ApiSpec) -> Result<Upstream, String> {
        let base = api
            .base_url
            .as_deref()
            .ok_or("has no base_url: the proxy forwards every request to it")?;
        let mut url = Url::parse(base).map_err(|e| format!("base_url {base:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(format!(
                "base_url {base:?} is not an http:// or https:// URL"
            ));
        }
        url.set_fragment(None);
        if !api.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&api.query);
        }
        let query = url.query().filter(|q| !q.is_empty()).map(str::to_string);
        url.set_query(None);
        let prefix = url.as_str().trim_end_matches('/').to_string();
        let mut headers = HeaderMap::new();
        for (name, value) in &api.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("http_headers: {name:?} is not a valid header name"))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                format!("http_headers: the value of {name:?} is not a valid header value")
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(Upstream {
            prefix,
            query,
            headers,
        })
    }

    /// The upstream URL for a request's path and query: the path appended to the base
    /// path with one `/` between (as [`AuthClient`](crate::AuthClient) does), the base
    /// URL's query and the provider's params first, then the client's query.
    pub(crate) fn url(&self, path: &str, query: Option<&str>) -> String {
        let path = path.trim_start_matches('/');
        let query = query.filter(|q| !q.is_empty());
        let mut url = String::with_capacity(
            self.prefix.len() + path.len() + 2 + query.map_or(0, str::len) + self.query_len(),
        );
        url.push_str(&self.prefix);
        if !path.is_empty() {
            url.push('/');
            url.push_str(path);
        }
        let mut sep = '?';
        for part in [self.query.as_deref(), query].into_iter().flatten() {
            url.push(sep);
            url.push_str(part);
            sep = '&';
        }
        url
    }

    fn query_len(&self) -> usize {
        self.query.as_ref().map_or(0, |q| q.len() + 1)
    }

    /// The client's headers made fit to go upstream: hop-by-hop headers, `Host` and the
    /// client's credential and `Expect` dropped, the provider's headers set.
    pub(crate) fn request_headers(&self, mut headers: HeaderMap) -> HeaderMap {
        drop_hop_by_hop(&mut headers);
        headers.remove(header::HOST);
        // The proxy's own server answered `Expect: 100-continue` when it read the body.
        headers.remove(header::EXPECT);
        for name in &CLIENT_CREDENTIALS {
            headers.remove(name);
        }
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str, query: &[(&str, &str)], headers: &[(&str, &str)]) -> ApiSpec {
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ApiSpec {
            base_url: Some(base.into()),
            headers: pairs(headers),
            query: pairs(query),
        }
    }

    #[test]
    fn paths_are_appended_to_the_base_url_as_auth_client_does() {
        let cases = [
            ("https://x/api/v1", "/chat", None, "https://x/api/v1/chat"),
            ("https://x/api/v1/", "/chat", None, "https://x/api/v1/chat"),
            ("https://x/api/v1", "/", None, "https://x/api/v1"),
            ("https://x", "/models", None, "https://x/models"),
            ("https://x/", "//models", None, "https://x/models"),
            ("https://x/v1", "/m", Some("a=1"), "https://x/v1/m?a=1"),
            (
                "https://x/v1?b=2",
                "/m",
                Some("a=1"),
                "https://x/v1/m?b=2&a=1",
            ),
            ("https://x/v1#f", "/m", Some(""), "https://x/v1/m"),
        ];
        for (base, path, query, expected) in cases {
            let upstream = Upstream::new(&api(base, &[], &[])).unwrap();
            assert_eq!(upstream.url(path, query), expected, "{base} + {path}");
        }
        let with_params = Upstream::new(&api("https://x/v1", &[("api-version", "2024 10")], &[]));
        assert_eq!(
            with_params.unwrap().url("/m", Some("a=1")),
            "https://x/v1/m?api-version=2024+10&a=1"
        );
    }

    #[test]
    fn unusable_base_urls_are_refused() {
        for base in ["ftp://x/y", "not a url", "unix:/tmp/s"] {
            assert!(Upstream::new(&api(base, &[], &[])).is_err(), "{base}");
        }
        let none = ApiSpec {
            base_url: None,
            headers: vec![],
            query: vec![],
        };
        assert!(Upstream::new(&none).err().unwrap().contains("no base_url"));
    }

    #[test]
    fn hop_by_hop_headers_host_and_the_client_key_stay_behind() {
        let upstream = Upstream::new(&api("https://x", &[], &[("x-org", "corp")])).unwrap();
        let mut incoming = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic x"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("host", "127.0.0.1:9"),
            ("expect", "100-continue"),
            ("authorization", "Bearer thpk_x"),
            ("x-api-key", "thpk_x"),
            ("api-key", "thpk_x"),
            ("x-org", "client"),
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("accept", "text/event-stream"),
        ] {
            incoming.append(name, HeaderValue::from_static(value));
        }
        let out = upstream.request_headers(incoming);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "content-length", "content-type", "x-org"]);
        assert_eq!(out["x-org"], "corp");
    }
}
