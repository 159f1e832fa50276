//! The broker where it has no transport yet (Windows: a named pipe is planned, issue 16).
//!
//! [`BrokerClient::try_connect`] finds no broker, so every caller resolves in-process,
//! as it does when no broker runs; [`Broker::bind`] fails saying why. Both types are
//! uninhabited: nothing past those two calls can run.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::protocol::{Health, ProviderInfo};
use super::{BrokerError, Limits, Loader};
use crate::clients::ClientAsk;
use crate::config::Config;
use crate::manager::AuthManager;
use crate::token::{Fingerprint, Token};

/// How long a client waits to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a client waits for an answer by default.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

fn unsupported() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the token broker is not available on this platform yet; \
         `tokenhost token` runs the provider's source in-process instead",
    )
}

/// A connection to a broker: none can exist on this platform.
pub enum BrokerClient {}

impl BrokerClient {
    /// Always `None`: no broker runs on this platform.
    pub async fn connect(socket: &Path) -> Option<BrokerClient> {
        Self::try_connect(socket).await.ok()
    }

    /// Always [`BrokerError::NotRunning`].
    pub async fn try_connect(socket: &Path) -> Result<BrokerClient, BrokerError> {
        Err(BrokerError::NotRunning {
            socket: socket.to_path_buf(),
            source: unsupported(),
        })
    }

    /// Unreachable (no client exists).
    pub fn with_request_timeout(self, _timeout: Duration) -> Self {
        match self {}
    }

    /// Unreachable (no client exists).
    pub fn socket(&self) -> &Path {
        match *self {}
    }

    /// Unreachable (no client exists).
    pub async fn health(&mut self) -> Result<Health, BrokerError> {
        match *self {}
    }

    /// Unreachable (no client exists).
    pub async fn providers(&mut self) -> Result<Vec<ProviderInfo>, BrokerError> {
        match *self {}
    }

    /// Unreachable (no client exists).
    pub async fn token(&mut self, _provider: &str) -> Result<Token, BrokerError> {
        match *self {}
    }

    /// Unreachable (no client exists).
    pub async fn refresh(&mut self, _provider: &str) -> Result<Token, BrokerError> {
        match *self {}
    }

    /// Unreachable (no client exists).
    pub async fn unauthorized(
        &mut self,
        _provider: &str,
        _rejected: Fingerprint,
    ) -> Result<Token, BrokerError> {
        match *self {}
    }

    /// Unreachable (no client exists).
    pub async fn ask(&mut self, _provider: &str, _ask: &ClientAsk) -> Result<Token, BrokerError> {
        match *self {}
    }
}

/// A bound broker: none can exist on this platform.
pub enum Broker {}

impl Broker {
    /// Fails: no broker transport on this platform.
    pub async fn bind(
        _config: Config,
        _manager: Arc<AuthManager>,
        socket: &Path,
    ) -> Result<Broker, BrokerError> {
        Err(BrokerError::Io {
            what: "cannot serve at",
            path: socket.to_path_buf(),
            source: unsupported(),
        })
    }

    /// Unreachable (no broker exists).
    pub fn with_limits(self, _limits: Limits) -> Self {
        match self {}
    }

    /// Unreachable (no broker exists).
    pub fn socket(&self) -> &Path {
        match *self {}
    }

    /// Unreachable (no broker exists).
    pub async fn serve(self, _reload: Loader) -> Result<(), BrokerError> {
        match self {}
    }
}
