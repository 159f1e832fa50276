//! [`AuthClient`]: an HTTP client that sends a provider's bearer token and recovers from
//! one HTTP 401 per request.
//!
//! Each request gets a token from the [`AuthManager`], is sent with the provider's
//! `http_headers` and `query_params` (from its [`ApiSpec`]) and then
//! `Authorization: Bearer <token>`. On HTTP 401 the rejected token is reported through
//! [`AuthManager::recovery`] and the request is sent once more with the token handed
//! back; a second 401 is [`ClientError::Unauthorized`]. A request whose body is a stream
//! cannot be sent twice: its 401 is still reported (so the next request gets a fresh
//! token) and the request fails with [`ClientError::NotReplayable`].
//!
//! URLs: an absolute `http://` or `https://` URL is used as it is. Anything else is a
//! path *appended* to the provider's `base_url`, with exactly one `/` between them, so
//! with `base_url = "https://x/api/v1"` both `chat/completions` and `/chat/completions`
//! mean `https://x/api/v1/chat/completions` (a leading `/` does not go back to the
//! host's root, unlike a browser link). A `?query` in the path is kept.
//!
//! Redirects are not followed: the provider's headers and the token go only where the
//! caller sends them. Nothing here prints a token: errors name the provider and the URL
//! without its query, and `Debug` shows no header values.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};

use crate::config::ApiSpec;
use crate::manager::{AuthError, AuthManager};
use crate::token::Token;

/// How long connecting to the API may take (the default client's only timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an authenticated request failed. Never contains a token or a header value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No token: unknown provider, or its source failed with nothing valid cached.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The request or the provider's API settings are unusable (bad URL or header, a
    /// relative path without `base_url`). Fixing the input is the only remedy.
    #[error("provider \"{provider}\": {message}")]
    Invalid {
        /// The provider id.
        provider: String,
        /// What is wrong.
        message: String,
    },
    /// The request could not be sent or its response not read (connection, TLS, timeout).
    #[error("provider \"{provider}\": request to {url} failed: {source}")]
    Http {
        /// The provider id.
        provider: String,
        /// The URL, without its query.
        url: String,
        /// The transport error (its URL removed).
        source: reqwest::Error,
    },
    /// The server answered 401 to the token obtained by 401 recovery as well.
    #[error(
        "provider \"{provider}\": the server rejected the refreshed token too (HTTP 401 twice); \
         check the provider's credentials and audience"
    )]
    Unauthorized {
        /// The provider id.
        provider: String,
    },
    /// The server answered 401 and the request body was a stream, which cannot be sent
    /// again. The 401 was reported, so the next request uses a fresh token.
    #[error(
        "provider \"{provider}\": got HTTP 401 and the request body is a stream that cannot \
         be replayed; retry the request"
    )]
    NotReplayable {
        /// The provider id.
        provider: String,
    },
}

/// Sends requests to one provider's API with its tokens. Cheap to clone.
#[derive(Clone)]
pub struct AuthClient {
    http: reqwest::Client,
    manager: Arc<AuthManager>,
    provider: Arc<str>,
    base_url: Option<Url>,
    headers: HeaderMap,
    query: Vec<(String, String)>,
}

impl fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        let query: Vec<&str> = self.query.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("AuthClient")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .field("headers", &headers)
            .field("query", &query)
            .finish_non_exhaustive()
    }
}

impl AuthClient {
    /// A client for `provider` (an id the manager knows) with its API settings, using a
    /// default `reqwest::Client` (no redirects, [`CONNECT_TIMEOUT`]).
    pub fn new(
        manager: Arc<AuthManager>,
        provider: impl Into<Arc<str>>,
        api: ApiSpec,
    ) -> Result<AuthClient, ClientError> {
        let provider = provider.into();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Invalid {
                provider: provider.to_string(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        Self::with_client(http, manager, provider, api)
    }

    /// Like [`new`](Self::new) with the caller's `reqwest::Client` (its timeouts, proxy,
    /// redirect policy). A client that follows redirects sends the provider's headers to
    /// wherever the server redirects (reqwest drops only `Authorization` across hosts).
    pub fn with_client(
        http: reqwest::Client,
        manager: Arc<AuthManager>,
        provider: impl Into<Arc<str>>,
        api: ApiSpec,
    ) -> Result<AuthClient, ClientError> {
        let provider: Arc<str> = provider.into();
        let invalid = |message: String| ClientError::Invalid {
            provider: provider.to_string(),
            message,
        };
        let base_url = match &api.base_url {
            None => None,
            Some(url) => {
                Some(parse_http_url(url).map_err(|e| invalid(format!("base_url {url:?} {e}")))?)
            }
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &api.headers {
            let (name, value) =
                header(name, value).map_err(|e| invalid(format!("http_headers: {e}")))?;
            headers.insert(name, value);
        }
        Ok(AuthClient {
            http,
            manager,
            provider,
            base_url,
            headers,
            query: api.query,
        })
    }

    /// The provider id.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The manager tokens come from.
    pub fn manager(&self) -> &Arc<AuthManager> {
        &self.manager
    }

    /// Where `url_or_path` goes: an absolute http(s) URL as it is, anything else appended
    /// to `base_url` (see the [module docs](self)). Without the provider's query params.
    pub fn url(&self, url_or_path: &str) -> Result<Url, ClientError> {
        resolve_url(self.base_url.as_ref(), url_or_path).map_err(|message| ClientError::Invalid {
            provider: self.provider.to_string(),
            message,
        })
    }

    /// Starts a request.
    pub fn request(&self, method: Method, url_or_path: &str) -> AuthRequest<'_> {
        AuthRequest {
            client: self,
            method,
            target: url_or_path.to_string(),
            headers: Vec::new(),
            query: Vec::new(),
            body: Body::Empty,
        }
    }

    /// Starts a GET request.
    pub fn get(&self, url_or_path: &str) -> AuthRequest<'_> {
        self.request(Method::GET, url_or_path)
    }

    /// Starts a POST request.
    pub fn post(&self, url_or_path: &str) -> AuthRequest<'_> {
        self.request(Method::POST, url_or_path)
    }
}

/// The body of an [`AuthRequest`].
enum Body {
    Empty,
    /// Bytes in memory: sent again after a 401.
    Bytes(Bytes),
    /// A stream: sent once.
    Stream(reqwest::Body),
}

/// One request being built; [`send`](Self::send) it.
#[must_use = "a request does nothing until it is sent"]
pub struct AuthRequest<'a> {
    client: &'a AuthClient,
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    body: Body,
}

impl fmt::Debug for AuthRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("AuthRequest")
            .field("provider", &self.client.provider)
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &headers)
            .finish_non_exhaustive()
    }
}

impl AuthRequest<'_> {
    /// Adds a header. It replaces a provider header of the same name; `Authorization`
    /// is always replaced by the token. Checked when the request is sent.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds query parameters, after the provider's `query_params`.
    pub fn query<K: ToString, V: ToString>(mut self, pairs: &[(K, V)]) -> Self {
        self.query
            .extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Sets the body to bytes in memory; the request can be retried after a 401.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Body::Bytes(body.into());
        self
    }

    /// Sets a streaming body (for example `reqwest::Body::wrap(...)`). It is sent once:
    /// after a 401 the request fails with [`ClientError::NotReplayable`]. (A body that
    /// is really bytes in memory is treated as [`body`](Self::body).)
    pub fn body_stream(mut self, body: reqwest::Body) -> Self {
        self.body = match body.as_bytes() {
            Some(bytes) => Body::Bytes(Bytes::copy_from_slice(bytes)),
            None => Body::Stream(body),
        };
        self
    }

    /// Sends the request with a token, retrying once with a new token after HTTP 401.
    /// Any other status, success or not, is returned as the response.
    pub async fn send(self) -> Result<Response, ClientError> {
        let client = self.client;
        let provider = &*client.provider;
        let url = client.url(&self.target)?;
        let mut headers = client.headers.clone();
        for (name, value) in &self.headers {
            let (name, value) = header(name, value).map_err(|message| ClientError::Invalid {
                provider: provider.to_string(),
                message,
            })?;
            headers.insert(name, value);
        }
        let mut url = url;
        if !client.query.is_empty() || !self.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(client.query.iter().chain(&self.query));
        }
        let attempt = |token: &Token, body: Option<reqwest::Body>| {
            let mut headers = headers.clone();
            let mut bearer = HeaderValue::try_from(format!("Bearer {}", token.expose()))
                .expect("Token values are valid header values");
            bearer.set_sensitive(true);
            headers.insert(AUTHORIZATION, bearer);
            let mut request = client
                .http
                .request(self.method.clone(), url.clone())
                .headers(headers);
            if let Some(body) = body {
                request = request.body(body);
            }
            let shown = without_query(&url);
            async move {
                request.send().await.map_err(|e| ClientError::Http {
                    provider: provider.to_string(),
                    url: shown,
                    source: e.without_url(),
                })
            }
        };

        let token = client.manager.auth(provider).await?;
        let (first_body, replay) = match self.body {
            Body::Empty => (None, Some(None)),
            Body::Bytes(bytes) => (Some(reqwest::Body::from(bytes.clone())), Some(Some(bytes))),
            Body::Stream(body) => (Some(body), None),
        };
        let response = attempt(&token, first_body).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        drop(response);
        let mut recovery = client.manager.recovery(provider);
        let Some(replay) = replay else {
            // Tell the manager anyway, so that the next request gets a fresh token.
            if let Err(e) = recovery.recover(&token).await {
                tracing::warn!(provider, "refresh after HTTP 401 failed: {e}");
            }
            return Err(ClientError::NotReplayable {
                provider: provider.to_string(),
            });
        };
        tracing::debug!(provider, token = %token.fingerprint(), "HTTP 401; refreshing the token");
        let token = recovery.recover(&token).await?;
        let response = attempt(&token, replay.map(reqwest::Body::from)).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized {
                provider: provider.to_string(),
            });
        }
        Ok(response)
    }
}

/// A header from text; the error names the header but never repeats its value.
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid HTTP header name"))?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header {name:?} is not a valid HTTP header value"))?;
    value.set_sensitive(true);
    Ok((parsed, value))
}

fn parse_http_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
        return Err("is not an http:// or https:// URL".into());
    }
    Ok(parsed)
}

/// The URL for `target`: absolute http(s) URLs as they are, anything else appended to
/// `base` with exactly one `/` between (see the module docs).
fn resolve_url(base: Option<&Url>, target: &str) -> Result<Url, String> {
    let is_absolute = target
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.contains(['/', '?', '#']));
    if is_absolute {
        return parse_http_url(target).map_err(|e| format!("URL {target:?} {e}"));
    }
    let Some(base) = base else {
        return Err(format!(
            "{target:?} is not an absolute http(s) URL and the provider has no base_url \
             to append it to"
        ));
    };
    let target = target.split_once('#').map_or(target, |(before, _)| before);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut url = base.clone();
    let path = path.trim_start_matches('/');
    if !path.is_empty() {
        let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
        url.set_path(&joined);
    }
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        let joined = match base.query() {
            Some(existing) if !existing.is_empty() => format!("{existing}&{query}"),
            _ => query.to_string(),
        };
        url.set_query(Some(&joined));
    }
    url.set_fragment(None);
    Ok(url)
}

/// `url` without its query or fragment, for messages (a query may carry a key).
pub fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(base: &str, target: &str) -> String {
        resolve_url(Some(&Url::parse(base).unwrap()), target)
            .unwrap()
            .to_string()
    }

    #[test]
    fn relative_paths_are_appended_to_the_base_url() {
        let cases = [
            ("https://x/api/v1", "chat", "https://x/api/v1/chat"),
            ("https://x/api/v1", "/chat", "https://x/api/v1/chat"),
            ("https://x/api/v1/", "/chat", "https://x/api/v1/chat"),
            ("https://x/api/v1/", "chat/", "https://x/api/v1/chat/"),
            ("https://x/api/v1", "v1/chat", "https://x/api/v1/v1/chat"),
            ("https://x/api/v1", "", "https://x/api/v1"),
            ("https://x/api/v1", "/", "https://x/api/v1"),
            ("https://x", "/models", "https://x/models"),
            ("https://x/", "models", "https://x/models"),
            (
                "https://x/v1",
                "models?limit=5",
                "https://x/v1/models?limit=5",
            ),
            (
                "https://x/v1?a=1",
                "models?b=2",
                "https://x/v1/models?a=1&b=2",
            ),
            ("https://x/v1", "models#frag", "https://x/v1/models"),
            (
                "https://x/v1",
                "go?to=https://y/z",
                "https://x/v1/go?to=https://y/z",
            ),
            (
                "https://x/v1",
                "https://other.example/p?q=1",
                "https://other.example/p?q=1",
            ),
        ];
        for (base, target, expected) in cases {
            assert_eq!(join(base, target), expected, "{base} + {target}");
        }
    }

    #[test]
    fn unusable_targets_are_refused() {
        assert!(
            resolve_url(None, "/chat")
                .unwrap_err()
                .contains("has no base_url")
        );
        assert!(
            resolve_url(None, "ftp://x/y")
                .unwrap_err()
                .contains("not an http:// or https:// URL")
        );
        assert!(resolve_url(None, "https://x/y").is_ok());
    }

    #[test]
    fn messages_drop_the_query() {
        let url = Url::parse("https://x/v1/m?key=s3cr3t#f").unwrap();
        assert_eq!(without_query(&url), "https://x/v1/m");
    }
}
