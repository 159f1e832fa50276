//! [`BrokerClient`]: one connection to a broker, for `tokenhost token` and library users.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use super::protocol::{
    ErrorBody, Health, ProviderInfo, ProvidersBody, TokenBody, UnauthorizedBody,
};
use super::{BrokerError, encode_segment, transport};
use crate::clients::ClientAsk;
use crate::token::{Fingerprint, Token};

/// How long a client waits to connect: a live broker accepts at once, so anything
/// slower means it is not worth waiting for.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a client waits for an answer by default (the broker may be calling a
/// source, which has its own deadline).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer accepted.
const MAX_RESPONSE: usize = 1024 * 1024;

/// A connection to a broker. Requests on one client are sequential (`&mut self`).
pub struct BrokerClient {
    socket: PathBuf,
    sender: SendRequest<Full<Bytes>>,
    timeout: Duration,
}

impl BrokerClient {
    /// Connects to the broker at `socket`, or `None` if none answers (see
    /// [`try_connect`](Self::try_connect) for the reason).
    pub async fn connect(socket: &Path) -> Option<BrokerClient> {
        Self::try_connect(socket).await.ok()
    }

    /// Connects to the broker at `socket` within [`CONNECT_TIMEOUT`]. Refuses a broker
    /// run by another user, and on Unix a socket whose directory is not private to this
    /// user. [`BrokerError::NotRunning`] when there is no socket file (Windows: no pipe of
    /// that name) or nobody listens.
    pub async fn try_connect(socket: &Path) -> Result<BrokerClient, BrokerError> {
        let stream = transport::connect(socket).await?;
        let handshake = hyper::client::conn::http1::handshake(TokioIo::new(stream));
        let (sender, connection) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| BrokerError::Transport("the HTTP handshake timed out".into()))?
            .map_err(|e| BrokerError::Transport(format!("the HTTP handshake failed: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("broker client connection ended: {e}");
            }
        });
        Ok(BrokerClient {
            socket: socket.to_path_buf(),
            sender,
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// Waits at most `timeout` for each answer (default [`REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket this client is connected to (Windows: the pipe name).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /v1/health`.
    pub async fn health(&mut self) -> Result<Health, BrokerError> {
        self.call(Method::GET, "/v1/health".into(), Vec::new())
            .await
    }

    /// `GET /v1/providers`: what the broker knows about each provider (no tokens).
    pub async fn providers(&mut self) -> Result<Vec<ProviderInfo>, BrokerError> {
        let body: ProvidersBody = self
            .call(Method::GET, "/v1/providers".into(), Vec::new())
            .await?;
        Ok(body.providers)
    }

    /// `GET /v1/token/<provider>`: the broker's cached token, or a new one.
    pub async fn token(&mut self, provider: &str) -> Result<Token, BrokerError> {
        let path = format!("/v1/token/{}", encode_segment(provider));
        self.token_call(Method::GET, path, Vec::new()).await
    }

    /// `POST /v1/token/<provider>/refresh`: a new token from the source.
    pub async fn refresh(&mut self, provider: &str) -> Result<Token, BrokerError> {
        let path = format!("/v1/token/{}/refresh", encode_segment(provider));
        self.token_call(Method::POST, path, Vec::new()).await
    }

    /// `POST /v1/token/<provider>/unauthorized`: reports that a server rejected the token
    /// with fingerprint `rejected`, and returns the token to retry with.
    pub async fn unauthorized(
        &mut self,
        provider: &str,
        rejected: Fingerprint,
    ) -> Result<Token, BrokerError> {
        let path = format!("/v1/token/{}/unauthorized", encode_segment(provider));
        let body = UnauthorizedBody {
            fingerprint: rejected.to_string(),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        self.token_call(Method::POST, path, body).await
    }

    /// `POST /v1/token/<provider>/ask`: the token for a client that runs tokenhost as a
    /// command. The broker tells that program's retry from its first ask (see
    /// [`AskLedger`](crate::clients::AskLedger)).
    pub async fn ask(&mut self, provider: &str, ask: &ClientAsk) -> Result<Token, BrokerError> {
        let path = format!("/v1/token/{}/ask", encode_segment(provider));
        let body = serde_json::to_vec(ask).unwrap_or_default();
        self.token_call(Method::POST, path, body).await
    }

    async fn token_call(
        &mut self,
        method: Method,
        path: String,
        body: Vec<u8>,
    ) -> Result<Token, BrokerError> {
        let body: TokenBody = self.call(method, path, body).await?;
        let token = Token::new(body.token, body.expires_at_ms).map_err(|e| {
            BrokerError::Transport(format!("the broker sent an unusable token: {e}"))
        })?;
        if token.fingerprint().to_string() != body.fingerprint {
            return Err(BrokerError::Transport(
                "the broker's token does not match its fingerprint".into(),
            ));
        }
        Ok(token)
    }

    async fn call<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: String,
        body: Vec<u8>,
    ) -> Result<T, BrokerError> {
        let transport =
            |what: &str, e: &dyn std::fmt::Display| BrokerError::Transport(format!("{what}: {e}"));
        let request = Request::builder()
            .method(method)
            .uri(&path)
            .header(header::HOST, "tokenhost-broker")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| transport("cannot build the request", &e))?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| transport("the connection closed", &e))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| transport("the request failed", &e))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| transport("cannot read the answer", &*e))?
                .to_bytes();
            Ok::<_, BrokerError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                BrokerError::Transport(format!("no answer within {} s", self.timeout.as_secs()))
            })??;
        if status == StatusCode::OK {
            return serde_json::from_slice(&body)
                .map_err(|e| transport(&format!("the answer to {path} is not the protocol"), &e));
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => Err(BrokerError::Remote {
                status: status.as_u16(),
                kind: error.kind,
                message: error.error,
            }),
            Err(_) => Err(BrokerError::Transport(format!(
                "HTTP {status} from {path} without an error body"
            ))),
        }
    }
}
