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
//!
//! Concurrency is capped per provider (and so per call: a provider makes one call at a
//! time, and a replaced instance's requests end with its store): at most
//! [`MAX_IN_FLIGHT`] requests are on the wire at once, so at most that many connections
//! are open (the client keeps no more idle ones either). A request beyond that waits for a
//! slot within the call's deadline; one beyond [`MAX_PENDING`] started-but-unfinished
//! requests, or one still waiting at the deadline, fails at once with
//! `ConnectionLimitReached`. Bodies the host holds (a request body being sent, a response
//! body the plugin has not read yet) count against the plugin's memory limit (see
//! [`super::limits`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::limits::BodyBytes;
use crate::grants::HostPattern;
use crate::grants::host_pattern::any_allows;

/// The largest response body handed to a plugin.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// The largest request body a plugin may send.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;
/// How many redirects (to allowed hosts) are followed.
pub const MAX_REDIRECTS: usize = 5;
/// The most requests one provider has on the wire (and connections open) at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// The most requests one provider has started and not finished (in flight or waiting
/// for a slot); more fail at once with `ConnectionLimitReached`.
pub const MAX_PENDING: usize = 32;

/// The request slots of one provider, shared by its successive instances.
#[derive(Clone)]
pub struct RequestSlots {
    in_flight: Arc<Semaphore>,
    pending: Arc<AtomicUsize>,
}

impl Default for RequestSlots {
    fn default() -> Self {
        RequestSlots {
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// One started request, counted in [`RequestSlots::pending`] until dropped.
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RequestSlots {
    /// Counts a new request, unless [`MAX_PENDING`] are already pending.
    fn start(&self) -> Option<Pending> {
        let started = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_PENDING).then_some(n + 1)
            });
        started.ok().map(|_| Pending(self.pending.clone()))
    }
}

/// The wasi:http hooks of one plugin instance.
pub struct HttpHooks {
    provider: Arc<str>,
    hosts: Arc<[HostPattern]>,
    client: Option<reqwest::Client>,
    slots: RequestSlots,
    bodies: BodyBytes,
    /// When the current call must end; no request outlives it.
    pub(super) deadline: Instant,
}

impl HttpHooks {
    /// Hooks for `provider` allowing `hosts`. Without hosts, every request is denied and
    /// no client is built. Requests take `slots` (the provider's) and count the bodies
    /// they hold in `bodies` (the instance's memory budget).
    pub fn new(
        provider: Arc<str>,
        hosts: Arc<[HostPattern]>,
        client: Option<reqwest::Client>,
        slots: RequestSlots,
        bodies: BodyBytes,
    ) -> Self {
        HttpHooks {
            provider,
            hosts,
            client,
            slots,
            bodies,
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
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
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
        let Some(pending) = self.slots.start() else {
            tracing::warn!(
                provider = %self.provider,
                "plugin request to {scheme}://{} refused: it already has {MAX_PENDING} \
                 requests started and not finished",
                authority(&host, port)
            );
            return Box::new(async { Err(HttpError::ConnectionLimitReached) });
        };
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let timeout = options
            .and_then(|o| o.first_byte_timeout)
            .map_or(remaining, |t| t.min(remaining));
        let provider = self.provider.clone();
        let in_flight = self.slots.in_flight.clone();
        let bodies = self.bodies.clone();
        Box::new(async move {
            let _pending = pending;
            // Waits for one of the provider's slots, but never past the deadline.
            let slot = tokio::time::timeout(remaining, in_flight.acquire_owned()).await;
            let Ok(Ok(_slot)) = slot else {
                tracing::warn!(
                    provider = %provider,
                    "plugin request to {scheme}://{host} refused: {MAX_IN_FLIGHT} requests \
                     were in flight until the deadline"
                );
                return Err(HttpError::ConnectionLimitReached);
            };
            let response = forward(client, request, timeout, &bodies).await.inspect_err(|e| {
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
    bodies: &BodyBytes,
) -> Result<http::Response<WasiBody>, HttpError> {
    let (parts, body) = request.into_parts();
    let body = read_capped(body, MAX_REQUEST_BODY)
        .await
        .map_err(|_| HttpError::HttpRequestBodySize(Some(MAX_REQUEST_BODY as u64)))?;
    let _request_charge = bodies.charge(body.len());
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
    // The body counts against the plugin's memory until the plugin has read (or dropped) it.
    let charge = bodies.charge(collected.len());
    let body = Full::new(Bytes::from(collected))
        .map_err(|never| match never {})
        .map_frame(move |frame| {
            let _held = &charge;
            frame
        })
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
