//! Outgoing HTTP for plugins (wasi:http), behind the provider's `allowed_hosts`.
//!
//! Every request a plugin sends passes through [`HttpHooks::send_request`], the one
//! place that decides. The allowlist is checked against the request URI's own scheme,
//! host and port (never a `Host` header). Allowed requests go out through `reqwest`,
//! which honours `HTTPS_PROXY`/`NO_PROXY` and the system's CA store (`SSL_CERT_FILE`,
//! `SSL_CERT_DIR`), as enterprise networks need. Each request is bounded by the call's
//! deadline, its response body by [`MAX_RESPONSE_BODY`]; redirects are followed only to
//! allowed hosts. Denials reach the guest as `HttpRequestDenied` and are logged with the
//! authority that was refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::grants::HostPattern;
use crate::grants::host_pattern::any_allows;

/// The largest response body handed to a plugin.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// The largest request body a plugin may send.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// How many redirects (to allowed hosts) are followed.
pub const MAX_REDIRECTS: usize = 5;

/// The wasi:http hooks of one plugin instance.
pub struct HttpHooks {
    provider: Arc<str>,
    hosts: Arc<[HostPattern]>,
    client: Option<reqwest::Client>,
    /// When the current call must end; no request outlives it.
    pub(super) deadline: Instant,
}

impl HttpHooks {
    /// Hooks for `provider` allowing `hosts`. Without hosts, every request is denied and
    /// no client is built.
    pub fn new(
        provider: Arc<str>,
        hosts: Arc<[HostPattern]>,
        client: Option<reqwest::Client>,
    ) -> Self {
        HttpHooks {
            provider,
            hosts,
            client,
            deadline: Instant::now(),
        }
    }
}

/// Builds the HTTP client for a provider's allowlist (redirects only to allowed hosts).
pub fn client_for(
    provider: Arc<str>,
    hosts: Arc<[HostPattern]>,
) -> Result<reqwest::Client, String> {
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let url = attempt.url();
        let allowed = any_allows(
            &hosts,
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port(),
        );
        if !allowed {
            tracing::warn!(
                provider = %provider,
                "plugin request redirected to {}://{}; not followed: not in allowed_hosts",
                url.scheme(),
                authority(url.host_str().unwrap_or(""), url.port())
            );
            attempt.stop()
        } else if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .user_agent(concat!("tokenhost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn authority(host: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_io: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_string();
        let host = uri.host().unwrap_or("").to_string();
        let port = uri.port_u16();
        let allowed = any_allows(&self.hosts, &scheme, &host, port);
        let client = self.client.clone().filter(|_| allowed);
        let Some(client) = client else {
            tracing::warn!(
                provider = %self.provider,
                "plugin request to {scheme}://{} denied: not in allowed_hosts",
                authority(&host, port)
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let timeout = options
            .and_then(|o| o.first_byte_timeout)
            .map_or(remaining, |t| t.min(remaining));
        let provider = self.provider.clone();
        Box::new(async move {
            let response = forward(client, request, timeout).await.inspect_err(|e| {
                tracing::info!(provider = %provider, "plugin request to {scheme}://{host} failed: {e:?}");
            })?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

async fn forward(
    client: reqwest::Client,
    request: http::Request<WasiBody>,
    timeout: Duration,
) -> Result<http::Response<WasiBody>, HttpError> {
    let (parts, body) = request.into_parts();
    let body = read_capped(body, MAX_REQUEST_BODY)
        .await
        .map_err(|_| HttpError::HttpRequestBodySize(Some(MAX_REQUEST_BODY as u64)))?;
    let mut headers = parts.headers;
    headers.remove(http::header::HOST);
    let url = parts.uri.to_string();
    let sent = client
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .timeout(timeout)
        .send();
    let mut response = sent.await.map_err(reqwest_error)?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut collected = Vec::new();
    loop {
        match tokio::time::timeout(timeout, response.chunk()).await {
            Err(_) => return Err(HttpError::ConnectionReadTimeout),
            Ok(Err(e)) => return Err(reqwest_error(e)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => {
                if collected.len() + chunk.len() > MAX_RESPONSE_BODY {
                    return Err(HttpError::HttpResponseBodySize(Some(
                        MAX_RESPONSE_BODY as u64,
                    )));
                }
                collected.extend_from_slice(&chunk);
            }
        }
    }
    let mut builder = http::Response::builder().status(status);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
        // The body is handed over whole; its original framing no longer applies.
        h.remove(http::header::TRANSFER_ENCODING);
        h.remove(http::header::CONTENT_ENCODING);
        h.insert(http::header::CONTENT_LENGTH, collected.len().into());
    }
    let body = Full::new(Bytes::from(collected))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder
        .body(body)
        .map_err(|e| HttpError::InternalError(Some(e.to_string())))
}

async fn read_capped(body: WasiBody, cap: usize) -> Result<Bytes, ()> {
    let limited = http_body_util::Limited::new(body, cap);
    limited
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| ())
}

fn reqwest_error(e: reqwest::Error) -> HttpError {
    if e.is_timeout() && e.is_connect() {
        HttpError::ConnectionTimeout
    } else if e.is_timeout() {
        // Connected, but no (complete) answer in time: say so, not "connect".
        HttpError::HttpResponseTimeout
    } else if e.is_connect() {
        HttpError::ConnectionRefused
    } else if e.is_redirect() {
        HttpError::LoopDetected
    } else {
        HttpError::InternalError(Some(e.without_url().to_string()))
    }
}
