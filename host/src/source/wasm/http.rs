//! Outgoing HTTP for plugins (wasi:http), behind the provider's `allowed_hosts`.
//!
//! Every request a plugin sends passes through [`HttpHooks::send_request`], the one
//! place that decides. The allowlist is checked against the request URI's own scheme,
//! host and port (never a `Host` header). Allowed requests go out through `reqwest`,
//! with the environment's proxy (decided in [`proxy`]: `HTTPS_PROXY`, `NO_PROXY`, never
//! for loopback) and the system's CA store (`SSL_CERT_FILE`, `SSL_CERT_DIR`), as
//! enterprise networks need. Each request is bounded by the call's deadline, its response
//! body by [`MAX_RESPONSE_BODY`]; redirects are followed only to allowed hosts. Denials
//! reach the guest as `HttpRequestDenied` and are logged with the authority that was
//! refused. A request that gets no response reaches the guest as the wasi:http code of
//! its real cause ([`failure`]: TLS, DNS, refused, timeout, proxy), and the host's own
//! description of it is logged and kept for the call's error ([`activity`]).
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

pub mod activity;
pub mod failure;
pub mod proxy;

use activity::{Activity, shown_uri};
use failure::Target;
use proxy::ProxyRules;

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

/// How much longer than the call's deadline a request may run, so that the call's own
/// timeout ends first (a request cannot outlive its call: the instance is replaced).
const DEADLINE_GRACE: Duration = Duration::from_millis(100);

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
    client: Option<HttpClient>,
    slots: RequestSlots,
    bodies: BodyBytes,
    activity: Activity,
    /// When the current call must end; no request outlives it.
    pub(super) deadline: Instant,
}

/// A provider's HTTP client and the proxy rules it routes by.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    proxies: Arc<ProxyRules>,
}

impl HttpHooks {
    /// Hooks for `provider` allowing `hosts`. Without hosts, every request is denied and
    /// no client is built. Requests take `slots` (the provider's), count the bodies they
    /// hold in `bodies` (the instance's memory budget) and report to `activity`.
    pub fn new(
        provider: Arc<str>,
        hosts: Arc<[HostPattern]>,
        client: Option<HttpClient>,
        slots: RequestSlots,
        bodies: BodyBytes,
        activity: Activity,
    ) -> Self {
        HttpHooks {
            provider,
            hosts,
            client,
            slots,
            bodies,
            activity,
            deadline: Instant::now(),
        }
    }
}

/// Builds the HTTP client for a provider's allowlist (redirects only to allowed hosts),
/// routed through the proxies `proxies` names.
pub fn client_for(
    provider: Arc<str>,
    hosts: Arc<[HostPattern]>,
    proxies: Arc<ProxyRules>,
) -> Result<HttpClient, String> {
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
    // One decision for routing and for error messages: reqwest's own reading of the
    // environment is switched off, ours (which keeps loopback direct) is used instead.
    let rules = proxies.clone();
    let route = reqwest::Proxy::custom(move |url| {
        let proxy = rules.proxy_for(url.scheme(), url.host_str().unwrap_or(""))?;
        // An unusable proxy never reaches here: `send_request` fails such requests.
        reqwest::Url::parse(proxy.url()).ok()
    });
    let client = reqwest::Client::builder()
        .redirect(policy)
        .no_proxy()
        .proxy(route)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .user_agent(concat!("tokenhost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(HttpClient { client, proxies })
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
        let proxy = client.proxies.proxy_for(&scheme, &host).cloned();
        if let Some(unusable) = proxy.as_ref().and_then(|p| p.unusable.clone()) {
            // The call's error carries it too: logged at info, so a failure is one line.
            tracing::info!(
                provider = %self.provider,
                "plugin request to {scheme}://{} not sent: {unusable}",
                authority(&host, port)
            );
            self.activity.failed(unusable);
            return Box::new(async { Err(HttpError::ConfigurationError) });
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        // The plugin's own timeout applies when it is the shorter; otherwise the call's
        // deadline ends the request, and the request is given a moment longer so that the
        // host's timeout (which names the request) is what the caller sees.
        let timeout = match options.and_then(|o| o.first_byte_timeout) {
            Some(own) if own < remaining => own,
            _ => remaining + DEADLINE_GRACE,
        };
        let provider = self.provider.clone();
        let in_flight = self.slots.in_flight.clone();
        let bodies = self.bodies.clone();
        let activity = self.activity.clone();
        let shown = format!("{} {}", request.method(), shown_uri(request.uri()));
        let client = client.client;
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
            let _in_flight = activity.start(shown.clone());
            let target = Target {
                scheme: &scheme,
                host: &host,
                authority: &authority(&host, port),
                proxy: proxy.as_ref(),
            };
            let response = forward(client, request, timeout, &bodies, &target)
                .await
                .map_err(|failure| {
                    tracing::info!(provider = %provider, "plugin request {shown} failed: {}", failure.detail);
                    activity.failed(failure.detail);
                    failure.code
                })?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

/// Sends `request` and collects its response; a failure says why, for the plugin
/// (its code) and for people (its detail).
async fn forward(
    client: reqwest::Client,
    request: http::Request<WasiBody>,
    timeout: Duration,
    bodies: &BodyBytes,
    target: &Target<'_>,
) -> Result<http::Response<WasiBody>, failure::Failure> {
    let fail = |code: HttpError, detail: String| failure::Failure { code, detail };
    let (parts, body) = request.into_parts();
    let body = read_capped(body, MAX_REQUEST_BODY).await.map_err(|_| {
        fail(
            HttpError::HttpRequestBodySize(Some(MAX_REQUEST_BODY as u64)),
            format!("the request body is over {MAX_REQUEST_BODY} bytes"),
        )
    })?;
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
    let mut response = sent.await.map_err(|e| failure::classify(e, target))?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut collected = Vec::new();
    loop {
        match tokio::time::timeout(timeout, response.chunk()).await {
            Err(_) => {
                return Err(fail(
                    HttpError::ConnectionReadTimeout,
                    format!(
                        "{} stopped sending the response body before the deadline",
                        target.authority
                    ),
                ));
            }
            Ok(Err(e)) => return Err(failure::classify(e, target)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => {
                if collected.len() + chunk.len() > MAX_RESPONSE_BODY {
                    return Err(fail(
                        HttpError::HttpResponseBodySize(Some(MAX_RESPONSE_BODY as u64)),
                        format!(
                            "the response from {} is over {} MiB",
                            target.authority,
                            MAX_RESPONSE_BODY >> 20
                        ),
                    ));
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
        .map_err(|e| fail(HttpError::InternalError(Some(e.to_string())), e.to_string()))
}

async fn read_capped(body: WasiBody, cap: usize) -> Result<Bytes, ()> {
    let limited = http_body_util::Limited::new(body, cap);
    limited
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| ())
}
