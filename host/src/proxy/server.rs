//! [`BoundProxy`]: binds the listener, writes the local key, serves connections until
//! told to stop (SIGTERM or SIGINT; on Windows Ctrl+C, Ctrl+Break, the console closing,
//! logoff or shutdown: see [`StopSignals`]), then lets requests in flight finish for a
//! moment.
//!
//! Each connection is served by hyper (HTTP/1.1 with keep-alive, or HTTP/2 when the
//! client opens with the HTTP/2 preface); a request's
//! future (and with it the upstream request and its streaming body) is dropped when its
//! client goes away, so upstream sees the cancel at once.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};

use super::body::DEFAULT_REPLAY_CAP;
use super::forward::{Shared, handle};
use super::headers::Upstream;
use super::key::LocalKey;
use super::listen::{Accepted, Listen, Listener};
use super::{ProxyError, default_key_path};
use crate::config::ApiSpec;
use crate::manager::AuthManager;
use crate::sys::StopSignals;

/// How long shutdown waits for requests in flight (a stream may never end by itself).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long a client has to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How a proxy behaves; [`Default`] documents each default.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Request bodies up to this many bytes are kept for a replay after a 401 (default
    /// 8 MiB); larger ones are streamed and their 401 returned as it came.
    pub replay_cap: usize,
    /// How long upstream may take to send its response head (default 600 s; a model
    /// that thinks for minutes before answering is normal). Then the client gets 504.
    pub upstream_timeout: Duration,
    /// Allow a TCP listen address that is not loopback (default: refused).
    pub allow_non_loopback: bool,
    /// Where to write the local key (default: [`default_key_path`]).
    pub key_file: Option<PathBuf>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            replay_cap: DEFAULT_REPLAY_CAP,
            upstream_timeout: Duration::from_secs(600),
            allow_non_loopback: false,
            key_file: None,
        }
    }
}

/// A proxy whose listener is bound and whose key file is written, ready to
/// [`serve`](Self::serve).
pub struct BoundProxy {
    listener: Listener,
    /// Installed at bind time, so that a SIGTERM (or Ctrl+C) right after the startup
    /// line is a graceful stop and not the default action.
    signals: StopSignals,
    shared: Arc<Shared>,
    url: String,
    key_file: Option<PathBuf>,
}

impl std::fmt::Debug for BoundProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundProxy")
            .field("provider", &self.shared.provider)
            .field("url", &self.url)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl BoundProxy {
    /// Binds `listen` for `provider` (a provider `manager` knows) whose API is `api`; on
    /// TCP, generates the local key and writes it to the key file, private to this user
    /// (see [`LocalKey::write_to`]). Call inside a Tokio runtime.
    pub async fn bind(
        manager: Arc<AuthManager>,
        provider: &str,
        api: &ApiSpec,
        listen: &Listen,
        options: ProxyOptions,
    ) -> Result<BoundProxy, ProxyError> {
        let unusable = |message: String| ProxyError::Provider {
            provider: provider.to_string(),
            message,
        };
        manager
            .status(provider)
            .map_err(|e| unusable(e.to_string()))?;
        let upstream = Upstream::new(api).map_err(unusable)?;
        let http = super::upstream::client().map_err(unusable)?;
        let signals = StopSignals::install().map_err(ProxyError::Signal)?;
        let listener = Listener::bind(listen, options.allow_non_loopback).await?;
        let (url, key, key_file) = match (&listener.tcp_addr(), listen) {
            (Some(addr), _) => {
                let key = LocalKey::generate()?;
                let path = match &options.key_file {
                    Some(path) => path.clone(),
                    None => {
                        crate::paths::prepare_private_dir(&crate::paths::runtime_dir())?;
                        default_key_path(provider, addr.port())
                    }
                };
                key.write_to(&path)?;
                (format!("http://{addr}"), Some(key), Some(path))
            }
            #[cfg(unix)]
            (None, Listen::Unix(path)) => (format!("unix:{}", path.display()), None, None),
            (None, Listen::Tcp(addr)) => (format!("http://{addr}"), None, None),
        };
        let shared = Shared::new(
            manager,
            provider.into(),
            upstream,
            http,
            key,
            options.replay_cap,
            options.upstream_timeout,
        );
        Ok(BoundProxy {
            listener,
            signals,
            shared: Arc::new(shared),
            url,
            key_file,
        })
    }

    /// Where clients connect: `http://127.0.0.1:PORT`, or `unix:PATH` (Linux, macOS).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local key clients must send (TCP only).
    pub fn key(&self) -> Option<&LocalKey> {
        self.shared.key.as_ref()
    }

    /// The file that holds the local key (TCP only).
    pub fn key_file(&self) -> Option<&Path> {
        self.key_file.as_deref()
    }

    /// Serves until told to stop (SIGTERM or SIGINT; on Windows Ctrl+C, Ctrl+Break, the
    /// console closing, logoff or shutdown); then stops accepting, gives
    /// requests in flight a moment, and removes the key file and the socket.
    pub async fn serve(self) -> Result<(), ProxyError> {
        let BoundProxy {
            listener,
            mut signals,
            shared,
            key_file,
            ..
        } = self;
        run(
            listener,
            shared,
            key_file,
            async move { signals.recv().await },
        )
        .await;
        Ok(())
    }

    /// Serves until `stop` resolves, then shuts down as [`serve`](Self::serve) does.
    pub async fn serve_until(self, stop: impl Future<Output = ()>) {
        run(self.listener, self.shared, self.key_file, stop).await
    }
}

async fn run(
    listener: Listener,
    shared: Arc<Shared>,
    key_file: Option<PathBuf>,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(Accepted::Tcp(stream)) => connection(stream, &shared, &graceful),
                #[cfg(unix)]
                Ok(Accepted::Unix(stream)) => connection(stream, &shared, &graceful),
                Err(e) => {
                    // Out of descriptors, mostly: pause rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut stop => break,
        }
    }
    listener.cleanup();
    if let Some(path) = &key_file
        && let Err(e) = std::fs::remove_file(path)
    {
        tracing::warn!("cannot remove the key file {}: {e}", path.display());
    }
    drop(listener);
    tracing::info!("proxy for {} stopping", shared.provider);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// How client connections are served: HTTP/1.1, or HTTP/2 when the client starts with
/// its preface (prior knowledge, as gRPC and `curl --http2-prior-knowledge` do over
/// plain loopback). One for the process: its settings are constants.
fn connection_builder() -> &'static auto::Builder<TokioExecutor> {
    static BUILDER: std::sync::OnceLock<auto::Builder<TokioExecutor>> = std::sync::OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        builder.http2().timer(TokioTimer::new());
        builder
    })
}

fn connection<S>(stream: S, shared: &Arc<Shared>, graceful: &GracefulShutdown)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = shared.clone();
    let service = hyper::service::service_fn(move |request| handle(shared.clone(), request));
    let conn = connection_builder().serve_connection(TokioIo::new(stream), service);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("proxy connection ended: {e}");
        }
    });
}
