//! A small HTTP client over wasi:http (`wasi:http/outgoing-handler`), synchronous.
//!
//! The usual call is one line:
//!
//! ```ignore
//! let url = config.url("token_url", SchemePolicy::HttpsOrLoopback)?;
//! let body: serde_json::Value = Request::post_form(url, &[("grant_type", "client_credentials")])
//!     .send()?
//!     .json()?;
//! ```
//!
//! [`Request::send`] maps every failure to the contract's error kinds: a host allowlist
//! refusal is `invalid-config` (the provider's `allowed_hosts` must change), a timeout or
//! network failure `unavailable`, HTTP 401/403 `denied`, 408/429/5xx `unavailable`, any
//! other non-2xx `invalid-config`. Messages name the URL without its query and never
//! include bodies or header values, which may hold secrets.
//!
//! The request and response types are plain data so plugin logic and its tests do not
//! depend on wasi; [`send`] is the only wasi:http call and exists only on wasm32-wasip2
//! (natively it reports [`HttpError::Unsupported`]).

use serde::de::DeserializeOwned;

use crate::url::Url;
use crate::{Error, Host, Platform};

/// The `User-Agent` of requests built by [`Request::get`] and friends.
pub const USER_AGENT: &str = concat!("tokenhost-plugin/", env!("CARGO_PKG_VERSION"));

/// The largest response body read, in bytes (1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The default for config key `http_timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 4_000;

/// The HTTP methods the plugins use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One outgoing request.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    /// Header names and values (no `Host`, no `Content-Length`: [`send`] adds them).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Used for each of the connect, first-byte and between-bytes timeouts.
    pub timeout_ms: u64,
}

impl Request {
    /// A `GET` of `url` that accepts JSON, with the default timeout.
    pub fn get(url: Url) -> Request {
        Request {
            method: Method::Get,
            url,
            headers: vec![
                ("accept".to_string(), "application/json".to_string()),
                ("user-agent".to_string(), USER_AGENT.to_string()),
            ],
            body: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// A `POST` of `pairs` as an `application/x-www-form-urlencoded` body (an OAuth 2.0
    /// token request), accepting JSON.
    pub fn post_form(url: Url, pairs: &[(&str, &str)]) -> Request {
        let mut request =
            Request::get(url).with_header("content-type", "application/x-www-form-urlencoded");
        request.method = Method::Post;
        request.body = crate::form::encode(pairs).into_bytes();
        request
    }

    /// A `POST` of `body` as JSON, accepting JSON.
    pub fn post_json(url: Url, body: &serde_json::Value) -> Request {
        let mut request = Request::get(url).with_header("content-type", "application/json");
        request.method = Method::Post;
        request.body = body.to_string().into_bytes();
        request
    }

    /// This request with header `name: value` added.
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// This request with each of its connect, first-byte and between-bytes timeouts set
    /// to `timeout_ms` (see [`crate::Config::http_timeout_ms`]).
    pub fn with_timeout_ms(mut self, timeout_ms: u64) -> Request {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Sends the request through the host and returns a 2xx response; anything else is
    /// the mapped [`Error`] (see the module docs).
    pub fn send(&self) -> Result<Response, Error> {
        self.send_with(&Host)
    }

    /// [`Request::send`] through `platform` (a fake one in tests).
    pub fn send_with(&self, platform: &dyn Platform) -> Result<Response, Error> {
        let response = platform
            .send(self)
            .map_err(|e| e.into_plugin_error(&self.url, self.timeout_ms))?;
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(match status_error(self, response.status) {
                Error::Unavailable(message) if let Some(after) = response.retry_after() => {
                    Error::retry_later(message, after)
                }
                error => error,
            })
        }
    }

    /// The value of header `name` (case-insensitive), if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for Request {
    /// Shows the method, URL without query and header names: bodies and header values
    /// may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url.display())
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A response, its body read in full (at most [`MAX_RESPONSE_BYTES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names (lower case, as wasi:http gives them) and values.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The pause a `Retry-After` header asks for, in delay-seconds (RFC 9110 §10.2.3),
    /// the form rate limiters send. The HTTP-date form gives `None`: a plugin's clock is
    /// not the server's, and a date in the past or far future would be worse than no
    /// hint. Overlong values saturate; the host caps the pause anyway.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        let value = self.header("retry-after")?.trim();
        if value.is_empty() || value.len() > 40 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(std::time::Duration::from_secs(
            value.parse().unwrap_or(u64::MAX),
        ))
    }

    /// The body parsed as JSON into `T` (a `serde_json::Value`, or your own
    /// `#[derive(Deserialize)]` type). A body that does not parse is `unavailable`; the
    /// message gives the position, never the body's text.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "does not have the expected fields",
                _ => "is not valid JSON",
            };
            Error::Unavailable(format!(
                "the HTTP {} response {what} (line {}, column {})",
                self.status,
                e.line(),
                e.column()
            ))
        })
    }

    /// The first value of header `name` (case-insensitive) as text, if present and UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host refused to send it (`ErrorCode::HttpRequestDenied`): not allowlisted.
    Denied,
    /// The host refused the destination address (`destination-ip-prohibited`).
    DestinationProhibited,
    /// A connect, DNS or response timeout.
    Timeout(String),
    /// Any other transport failure (DNS, refused connection, TLS, protocol).
    Network(String),
    /// The response body is larger than [`MAX_RESPONSE_BYTES`].
    TooLarge,
    /// The request could not be built (an invalid header, method or URL part).
    InvalidRequest(String),
    /// Not built for wasm32-wasip2: there is no wasi:http to send with.
    Unsupported,
}

impl HttpError {
    /// The plugin error for a failed request to `url`.
    pub fn into_plugin_error(self, url: &Url, timeout_ms: u64) -> Error {
        let target = url.display();
        match self {
            HttpError::Denied => Error::InvalidConfig(format!(
                "request to {} denied by the host's allowlist (add `{}` to `allowed_hosts`)",
                url.origin(),
                url.authority
            )),
            HttpError::DestinationProhibited => Error::InvalidConfig(format!(
                "request to {} denied by the host: the destination address is prohibited",
                url.origin()
            )),
            HttpError::Timeout(what) => Error::Unavailable(format!(
                "request to {target} timed out ({what}; http_timeout_ms = {timeout_ms})"
            )),
            HttpError::Network(what) => {
                Error::Unavailable(format!("request to {target} failed: {what}"))
            }
            HttpError::TooLarge => Error::Unavailable(format!(
                "response from {target} is larger than {} MiB",
                MAX_RESPONSE_BYTES / (1024 * 1024)
            )),
            HttpError::InvalidRequest(what) => {
                Error::InvalidConfig(format!("cannot build the request to {target}: {what}"))
            }
            HttpError::Unsupported => Error::Unavailable(
                "outgoing HTTP needs the wasm32-wasip2 build of this plugin".to_string(),
            ),
        }
    }
}

/// `HTTP 404 Not Found` (or `HTTP 599` for a status without a common phrase).
pub fn status_text(status: u16) -> String {
    match reason_phrase(status) {
        "" => format!("HTTP {status}"),
        phrase => format!("HTTP {status} {phrase}"),
    }
}

/// The reason phrase of the statuses plugins commonly meet; empty for others.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The error for a non-2xx answer to `request`: 401/403 `denied`; 408, 429 and 5xx
/// `unavailable`; anything else (a wrong URL, a malformed request, a redirect, which is
/// not followed) `invalid-config`.
pub fn status_error(request: &Request, status: u16) -> Error {
    let message = format!(
        "{} {} answered {}",
        request.method.as_str(),
        request.url.display(),
        status_text(status)
    );
    match status {
        401 | 403 => Error::Denied(message),
        408 | 429 | 500..=599 => Error::Unavailable(message),
        _ => Error::InvalidConfig(message),
    }
}

/// Sends `request` and reads the whole response.
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub fn send(request: &Request) -> Result<Response, HttpError> {
    wasi::send(request)
}

/// Sends `request`: only possible on wasm32-wasip2.
#[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
pub fn send(_request: &Request) -> Result<Response, HttpError> {
    Err(HttpError::Unsupported)
}

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod wasi;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::{SchemePolicy, parse};

    /// A platform that answers every request with one canned result.
    struct Answer(Result<Response, HttpError>);

    impl Platform for Answer {
        fn send(&self, _request: &Request) -> Result<Response, HttpError> {
            self.0.clone()
        }
    }

    fn url() -> Url {
        parse(
            "url",
            "https://idp.example/token?x=secret",
            SchemePolicy::HttpsOrLoopback,
        )
        .unwrap()
    }

    fn status(status: u16, body: &str) -> Answer {
        Answer(Ok(Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }))
    }

    #[test]
    fn builders_set_method_headers_and_body() {
        let form = Request::post_form(url(), &[("a", "b c"), ("d", "&")]);
        assert_eq!(form.method, Method::Post);
        assert_eq!(form.body, b"a=b+c&d=%26");
        assert_eq!(
            form.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(form.header("accept"), Some("application/json"));
        let json = Request::post_json(url(), &serde_json::json!({"k": 1}))
            .with_header("x-a", "1")
            .with_timeout_ms(9);
        assert_eq!(json.body, br#"{"k":1}"#);
        assert_eq!(json.header("content-type"), Some("application/json"));
        assert_eq!(json.header("X-A"), Some("1"));
        assert_eq!(json.timeout_ms, 9);
        assert_eq!(Request::get(url()).method, Method::Get);
    }

    #[test]
    fn statuses_map_to_error_kinds_without_the_query() {
        let request = Request::get(url());
        assert!(request.send_with(&status(204, "")).is_ok());
        for (code, kind) in [
            (401, "denied"),
            (403, "denied"),
            (408, "unavailable"),
            (429, "unavailable"),
            (503, "unavailable"),
            (400, "invalid config"),
            (404, "invalid config"),
            (302, "invalid config"),
        ] {
            let e = request.send_with(&status(code, "secret body")).unwrap_err();
            let shown = e.to_string();
            assert!(shown.starts_with(kind), "{code}: {shown}");
            assert!(shown.contains(&format!("HTTP {code}")), "{shown}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }

    #[test]
    fn a_retry_after_in_seconds_becomes_retry_later() {
        let request = Request::get(url());
        let answer = |code: u16, value: &str| {
            Answer(Ok(Response {
                status: code,
                headers: vec![("Retry-After".into(), value.as_bytes().to_vec())],
                body: Vec::new(),
            }))
        };
        let e = request.send_with(&answer(429, " 120 ")).unwrap_err();
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(120)));
        assert!(e.to_string().starts_with("unavailable: GET "), "{e}");
        let e = request.send_with(&answer(503, "Fri, 31 Dec 1999 23:59:59 GMT"));
        assert!(matches!(e, Err(Error::Unavailable(_))), "{e:?}");
        // Only a retryable status takes the hint.
        let e = request.send_with(&answer(403, "120")).unwrap_err();
        assert!(matches!(e, Error::Denied(_)), "{e:?}");
    }

    #[test]
    fn transport_failures_are_mapped() {
        let request = Request::get(url());
        let denied = request
            .send_with(&Answer(Err(HttpError::Denied)))
            .unwrap_err();
        assert!(matches!(&denied, Error::InvalidConfig(m) if m.contains("allowed_hosts")));
        let timeout = request
            .send_with(&Answer(Err(HttpError::Timeout("connect".into()))))
            .unwrap_err();
        assert!(matches!(timeout, Error::Unavailable(_)));
    }

    #[test]
    fn json_errors_never_echo_the_body() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Expected {
            count: u64,
        }
        let ok = status(200, r#"{"count": 3}"#).0.unwrap();
        assert_eq!(ok.json::<Expected>().unwrap().count, 3);
        for body in [r#"{"count": "hunter2-secret"}"#, "hunter2-secret"] {
            let response = status(200, body).0.unwrap();
            let e = response.json::<Expected>().unwrap_err();
            assert!(matches!(&e, Error::Unavailable(_)), "{e:?}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }
}
