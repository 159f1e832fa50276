//! One request through the proxy: admit the client, send upstream with the token, and on
//! HTTP 401 report the token, get the next one and replay once.
//!
//! Every answer the proxy makes itself (a refused key, no token, upstream down or slow)
//! is a JSON error in the OpenAI shape, `{"error": {"message", "type", "code"}}`, so
//! that SDKs show its message; upstream's answers, errors included, pass unchanged. The
//! hot path takes no lock: the token comes from the manager's lock-free cache and its
//! `Authorization` value is built once per token, not per request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use super::body::{self, RequestBody};
use super::headers::{Upstream, drop_hop_by_hop};
use super::key::LocalKey;
use super::log;
use crate::manager::AuthManager;
use crate::token::{Fingerprint, Token};

/// What the proxy answers with: its own error, or upstream's body as it streams.
pub(crate) type ProxyBody = Either<Full<Bytes>, reqwest::Body>;

/// What every request shares.
pub(crate) struct Shared {
    pub(crate) manager: Arc<AuthManager>,
    pub(crate) provider: Arc<str>,
    pub(crate) upstream: Upstream,
    pub(crate) http: reqwest::Client,
    /// The key clients must show; `None` on a Unix socket (the peer's uid is checked).
    pub(crate) key: Option<LocalKey>,
    pub(crate) replay_cap: usize,
    pub(crate) upstream_timeout: Duration,
    /// The last token's `Authorization` value.
    bearer: ArcSwapOption<Bearer>,
}

struct Bearer {
    token: Token,
    value: HeaderValue,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        manager: Arc<AuthManager>,
        provider: Arc<str>,
        upstream: Upstream,
        http: reqwest::Client,
        key: Option<LocalKey>,
        replay_cap: usize,
        upstream_timeout: Duration,
    ) -> Shared {
        Shared {
            manager,
            provider,
            upstream,
            http,
            key,
            replay_cap,
            upstream_timeout,
            bearer: ArcSwapOption::empty(),
        }
    }

    /// `Bearer <token>`, marked sensitive (HTTP/2 never indexes it), reused per token.
    fn bearer(&self, token: &Token) -> Option<HeaderValue> {
        if let Some(cached) = &*self.bearer.load()
            && cached.token.same_value(token)
        {
            return Some(cached.value.clone());
        }
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose())).ok()?;
        value.set_sensitive(true);
        self.bearer.store(Some(Arc::new(Bearer {
            token: token.clone(),
            value: value.clone(),
        })));
        Some(value)
    }

    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
        error(
            status,
            code,
            &format!("provider \"{}\": {message}", self.provider),
        )
    }
}

/// Serves one request and logs it.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let (method, uri) = (parts.method.clone(), parts.uri.clone());
    let (response, token) = forward(&shared, parts, body).await;
    let status = response.status().as_u16();
    log::request(
        &method,
        uri.path(),
        uri.query(),
        status,
        started.elapsed(),
        token,
    );
    Ok(response)
}

/// The answer, and the fingerprint of the token upstream last answered to.
async fn forward(
    shared: &Shared,
    parts: http::request::Parts,
    body: Incoming,
) -> (Response<ProxyBody>, Option<Fingerprint>) {
    if let Some(key) = &shared.key
        && !key.admits(&parts.headers)
    {
        let mut refused = error(
            StatusCode::UNAUTHORIZED,
            "invalid_local_key",
            "tokenhost proxy: missing or wrong local key (send it as \
             `Authorization: Bearer <key>`, `x-api-key` or `api-key`)",
        );
        refused.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tokenhost proxy\""),
        );
        return (refused, None);
    }
    let url = shared.upstream.url(parts.uri.path(), parts.uri.query());
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let headers = shared.upstream.request_headers(parts.headers);
    let body = match body::read(body, declared, shared.replay_cap).await {
        Ok(body) => body,
        Err(e) => {
            let message = format!("cannot read the request body: {e}");
            return (
                shared.error(StatusCode::BAD_REQUEST, "bad_body", &message),
                None,
            );
        }
    };
    let token = match shared.manager.auth(&shared.provider).await {
        Ok(token) => token,
        Err(e) => return (token_failure(e), None),
    };
    let (replay, first) = match body {
        RequestBody::Replayable(bytes) => (Some(bytes.clone()), reqwest::Body::from(bytes)),
        RequestBody::Stream(stream) => (None, reqwest::Body::wrap(stream)),
    };
    // The headers are kept for a replay only when there can be one.
    let (first_headers, replay) = match replay {
        Some(bytes) => (headers.clone(), Some((bytes, headers))),
        None => (headers, None),
    };
    let sent = send(shared, &parts.method, &url, first_headers, &token, first).await;
    let response = match sent {
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => response,
        Ok(response) => return (pass(response), Some(token.fingerprint())),
        Err(answer) => return (answer, Some(token.fingerprint())),
    };
    let Some((replay, headers)) = replay else {
        // The body is gone: return the 401, but move the cache on for the next request.
        tracing::info!(
            provider = &*shared.provider,
            token = %token.fingerprint(),
            "HTTP 401 on a body too large to replay; returned as it came"
        );
        let (manager, provider) = (shared.manager.clone(), shared.provider.clone());
        let rejected = token.clone();
        tokio::spawn(async move {
            if let Err(e) = manager.unauthorized(&provider, &rejected).await {
                tracing::warn!("refresh after HTTP 401 failed: {e}");
            }
        });
        return (pass(response), Some(token.fingerprint()));
    };
    drop(response);
    tracing::debug!(provider = &*shared.provider, token = %token.fingerprint(), "HTTP 401; refreshing the token");
    let mut recovery = shared.manager.recovery(&shared.provider);
    let next = match recovery.recover(&token).await {
        Ok(next) => next,
        Err(e) => return (token_failure(e), Some(token.fingerprint())),
    };
    let body = reqwest::Body::from(replay);
    match send(shared, &parts.method, &url, headers, &next, body).await {
        Ok(response) => (pass(response), Some(next.fingerprint())),
        Err(answer) => (answer, Some(next.fingerprint())),
    }
}

/// One attempt upstream; `Err` is the proxy's own answer (upstream down or too slow).
async fn send(
    shared: &Shared,
    method: &Method,
    url: &str,
    headers: HeaderMap,
    token: &Token,
    body: reqwest::Body,
) -> Result<reqwest::Response, Response<ProxyBody>> {
    let Some(bearer) = shared.bearer(token) else {
        let message = "the token is not a valid header value";
        return Err(shared.error(StatusCode::BAD_GATEWAY, "bad_token", message));
    };
    let request = shared
        .http
        .request(method.clone(), url)
        .headers(headers)
        .header(AUTHORIZATION, bearer)
        .body(body)
        .send();
    let shown = url.split('?').next().unwrap_or(url);
    match tokio::time::timeout(shared.upstream_timeout, request).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => {
            let message = format!("request to {shown} failed: {}", chain(&e.without_url()));
            Err(shared.error(StatusCode::BAD_GATEWAY, "upstream_unreachable", &message))
        }
        Err(_) => {
            let message = format!(
                "{shown} sent no response within {} s",
                shared.upstream_timeout.as_secs_f64()
            );
            Err(shared.error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", &message))
        }
    }
}

/// Upstream's response as the client gets it: its own hop-by-hop headers dropped, the
/// body streaming.
fn pass(response: reqwest::Response) -> Response<ProxyBody> {
    let mut response: Response<reqwest::Body> = response.into();
    drop_hop_by_hop(response.headers_mut());
    // The client's connection speaks its own version (HTTP/1.1, or HTTP/2 with prior
    // knowledge) whatever upstream spoke; hyper's HTTP/2 server ignores this field.
    *response.version_mut() = Version::HTTP_11;
    response.map(Either::Right)
}

/// No token to send: the source failed with nothing valid cached (its message names the
/// provider and the cause, never a token).
fn token_failure(e: crate::AuthError) -> Response<ProxyBody> {
    let message = format!("tokenhost proxy: no token: {e}");
    error(StatusCode::BAD_GATEWAY, "token_unavailable", &message)
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The proxy's own answer, in the OpenAI error shape.
fn error(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let message = match message.starts_with("tokenhost proxy") {
        true => message.to_string(),
        false => format!("tokenhost proxy: {message}"),
    };
    let body = serde_json::json!({
        "error": {"message": message, "type": "tokenhost_proxy_error", "code": code}
    });
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
