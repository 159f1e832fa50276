//! [`Broker`]: binds its endpoint (refusing a live broker, see [`transport`]), serves
//! the protocol within its [`Limits`], reloads on SIGHUP and shuts down on SIGTERM/SIGINT
//! (Windows: stops on Ctrl+C or the console closing; no reload).

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;

use super::body::{read_json, too_large};
use super::limits::{Limits, Slots};
use super::protocol::UnauthorizedBody;
use super::protocol::{ErrorBody, ErrorKind, Health, ProviderInfo, ProvidersBody, TokenBody};
use super::transport::{self, Accepted, Listener, Reload};
use super::{BrokerError, Loader, decode_segment};
use crate::clients::{self, AskLedger, ClientAsk};
use crate::config::Config;
use crate::manager::AuthManager;
use crate::token::Fingerprint;

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// hyper's buffer per connection (its default is ~400 KiB): a request head larger than
/// this is refused with 431, so open connections cannot hold much memory.
const MAX_BUF: usize = 16 * 1024;

/// A bound broker, ready to [`serve`](Broker::serve).
pub struct Broker {
    listener: Listener,
    socket: PathBuf,
    state: Arc<State>,
    limits: Limits,
}

struct State {
    config_path: PathBuf,
    current: RwLock<Arc<Loaded>>,
    generation: AtomicU64,
    /// What went to which command-run client, to tell its retry from a first ask. Kept
    /// across reloads, like the cached tokens it describes.
    asks: Mutex<AskLedger>,
}

/// The shapes of the POST bodies, for error messages.
const UNAUTHORIZED: &str = r#"{"fingerprint": "sha256:..."}"#;
const ASK: &str = r#"{"caller": {"pid": n, "started": n}, "reuse_ms": n or null}"#;

struct Loaded {
    config: Config,
    manager: Arc<AuthManager>,
}

impl Broker {
    /// Binds `socket` (normally [`socket_path`](super::socket_path) of the config) for
    /// `config` served by `manager`, refusing when a broker answers there. Unix: creates
    /// and checks the private directory, takes the socket's lock, replaces a stale socket
    /// file; the socket is mode 0600. Windows: creates the pipe, owner-only, as its first
    /// instance. Call inside a Tokio runtime.
    pub async fn bind(
        config: Config,
        manager: Arc<AuthManager>,
        socket: &Path,
    ) -> Result<Broker, BrokerError> {
        let listener = Listener::bind(socket, config.path()).await?;
        Ok(Broker {
            listener,
            socket: socket.to_path_buf(),
            state: Arc::new(State {
                config_path: config.path().to_path_buf(),
                current: RwLock::new(Arc::new(Loaded { config, manager })),
                generation: AtomicU64::new(0),
                asks: Mutex::new(AskLedger::default()),
            }),
            limits: Limits::default(),
        })
    }

    /// Serves within `limits` instead of [`Limits::default`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The socket path (Windows: the pipe name).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Serves until SIGTERM or SIGINT (Windows: Ctrl+C, Ctrl+Break, the console
    /// closing, logoff or shutdown), then removes the socket and gives requests in flight
    /// a moment to finish. On SIGHUP, `reload` builds a new config and manager; providers
    /// whose spec is unchanged keep their valid cached token (Windows has no SIGHUP:
    /// restart the broker to reload).
    pub async fn serve(self, reload: Loader) -> Result<(), BrokerError> {
        let (mut stop, reloads) = transport::control()?;
        let reloader = tokio::spawn(reload_on(reloads, self.state.clone(), reload));
        self.serve_until(async move { stop.recv().await }).await;
        reloader.abort();
        Ok(())
    }

    /// Serves until `stop` resolves, then shuts down as [`serve`](Self::serve) does.
    pub(super) async fn serve_until(self, stop: impl Future<Output = ()>) {
        let Broker {
            mut listener,
            socket: _,
            state,
            limits,
        } = self;
        let graceful = GracefulShutdown::new();
        let slots = Slots::new(limits.max_connections);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(stream) => connection(stream, &state, &graceful, &slots, limits),
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = &mut stop => break,
            }
        }
        listener.close();
        tracing::info!("stopped serving {}", state.config_path.display());
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    }
}

/// Serves one accepted connection, if its peer is this user and it gets a slot.
fn connection(
    stream: Accepted,
    state: &Arc<State>,
    graceful: &GracefulShutdown,
    slots: &Arc<Slots>,
    limits: Limits,
) {
    if let Err(refused) = transport::admit(&stream) {
        tracing::warn!("{refused}");
        return;
    }
    let held = match slots.take() {
        Ok(held) => held,
        Err(full) => {
            tracing::warn!(
                "refused a connection: all {} connections are serving requests",
                full.max
            );
            return;
        }
    };
    let (state, slot) = (state.clone(), held.slot().clone());
    let service = hyper::service::service_fn(move |request| {
        let (state, serving) = (state.clone(), slot.serving());
        async move {
            let reply = handle(state, limits, request).await;
            drop(serving);
            reply
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF)
        .serve_connection(TokioIo::new(stream), service);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        tokio::select! {
            ended = conn => if let Err(e) = ended {
                tracing::debug!("broker connection ended: {e}");
            },
            () = held.slot().evicted() => {
                tracing::debug!("closed the connection idle longest to make room for a new one");
            }
        }
        drop(held);
    });
}

async fn reload_on(mut hup: Reload, state: Arc<State>, reload: Loader) {
    while hup.recv().await.is_some() {
        let path = state.config_path.display();
        let reload = reload.clone();
        match tokio::task::spawn_blocking(move || reload()).await {
            Ok(Ok((config, manager))) => {
                let kept = state.install(config, manager);
                tracing::info!(
                    "reloaded {path}; kept the cached tokens of: [{}]",
                    kept.join(", ")
                );
            }
            Ok(Err(e)) => {
                tracing::error!(
                    "reloading {path} failed; still serving the previous configuration: {e}"
                )
            }
            Err(e) => tracing::error!("reloading {path} failed: {e}"),
        }
    }
}

impl State {
    fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swaps in a new config and manager; unchanged providers keep their token. Returns
    /// the ids that kept one.
    fn install(&self, config: Config, manager: Arc<AuthManager>) -> Vec<String> {
        let old = self.current();
        let kept: Vec<String> = config
            .providers()
            .filter(|spec| old.config.provider(&spec.id) == Some(*spec))
            .filter(|spec| manager.adopt_cache(&old.manager, &spec.id))
            .map(|spec| spec.id.to_string())
            .collect();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Loaded { config, manager });
        self.generation.fetch_add(1, Ordering::AcqRel);
        kept
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(
    state: Arc<State>,
    limits: Limits,
    request: Request<Incoming>,
) -> Result<Reply, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // Refused before routing, so no endpoint ever waits for a body that will not fit.
    let reply = match request.body().size_hint().lower() {
        length if length > limits.max_request_body as u64 => too_large(limits),
        _ => route(&state, limits, request).await,
    };
    tracing::debug!(%method, %path, status = reply.status().as_u16(), "broker request");
    Ok(reply)
}

async fn route(state: &State, limits: Limits, request: Request<Incoming>) -> Reply {
    match endpoint(state, limits, request).await {
        Ok(reply) => reply,
        Err((kind, message)) => error(kind, message),
    }
}

/// A request the broker will not serve: the error kind and message.
type Refusal = (ErrorKind, String);

async fn endpoint(
    state: &State,
    limits: Limits,
    request: Request<Incoming>,
) -> Result<Reply, Refusal> {
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = request.method().clone();
    let want = |expected: Method| match method == expected {
        true => Ok(()),
        false => Err((
            ErrorKind::MethodNotAllowed,
            format!("{path} takes {expected}, not {method}"),
        )),
    };
    let provider = |segment: &str| {
        decode_segment(segment)
            .ok_or_else(|| (ErrorKind::BadRequest, format!("bad provider id in {path}")))
    };
    let loaded = state.current();
    let manager = &loaded.manager;
    Ok(match segments.as_slice() {
        ["v1", "health"] => {
            want(Method::GET)?;
            let health = Health {
                status: "ok".into(),
                config: state.config_path.display().to_string(),
                pid: std::process::id(),
                generation: state.generation.load(Ordering::Acquire),
            };
            json(StatusCode::OK, &health)
        }
        ["v1", "providers"] => {
            want(Method::GET)?;
            let providers = manager
                .provider_ids()
                .into_iter()
                .filter_map(|id| manager.status(id).ok().map(ProviderInfo::from))
                .collect();
            json(StatusCode::OK, &ProvidersBody { providers })
        }
        ["v1", "token", id] => {
            want(Method::GET)?;
            token_reply(manager.auth(&provider(id)?).await)
        }
        ["v1", "token", id, "refresh"] => {
            want(Method::POST)?;
            token_reply(manager.refresh(&provider(id)?).await)
        }
        ["v1", "token", id, "unauthorized"] => {
            want(Method::POST)?;
            let id = provider(id)?;
            let body: UnauthorizedBody = match read_json(request, limits, UNAUTHORIZED).await {
                Ok(body) => body,
                Err(e) => return Ok(e.reply(limits)),
            };
            let rejected: Fingerprint = body
                .fingerprint
                .parse()
                .map_err(|e| (ErrorKind::BadRequest, format!("{e}")))?;
            token_reply(manager.unauthorized_fingerprint(&id, rejected).await)
        }
        ["v1", "token", id, "ask"] => {
            want(Method::POST)?;
            let id = provider(id)?;
            let ask: ClientAsk = match read_json(request, limits, ASK).await {
                Ok(ask) => ask,
                Err(e) => return Ok(e.reply(limits)),
            };
            let interval = loaded.config.provider(&id).and_then(|s| s.refresh_interval);
            let answer = clients::answer(manager, &id, interval, &ask, &state.asks).await;
            token_reply(answer.map(|a| a.token))
        }
        _ => {
            let message = format!("no such endpoint: {method} {path}");
            return Err((ErrorKind::NotFound, message));
        }
    })
}

fn token_reply(result: Result<crate::Token, crate::AuthError>) -> Reply {
    match result {
        Ok(token) => json(StatusCode::OK, &TokenBody::from(&token)),
        Err(e) => {
            // The client gets the message too, but a broker's own log is where an admin
            // looks first: a failing source is worth a line at the default level.
            if !matches!(e, crate::AuthError::UnknownProvider { .. }) {
                tracing::warn!("{e}");
            }
            error(ErrorKind::of(&e), e.to_string())
        }
    }
}

pub(super) fn error(kind: ErrorKind, message: String) -> Reply {
    let status = StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    error_status(status, kind, message)
}

/// An error answer whose status is more precise than its kind's.
pub(super) fn error_status(status: StatusCode, kind: ErrorKind, message: String) -> Reply {
    json(
        status,
        &ErrorBody {
            error: message,
            kind,
        },
    )
}

fn json(status: StatusCode, body: &impl Serialize) -> Reply {
    // These bodies are plain structs of strings and numbers: serialising cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut reply = Response::new(Full::new(Bytes::from(bytes)));
    *reply.status_mut() = status;
    let headers = reply.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    reply
}
