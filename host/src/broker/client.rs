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
pub(super) const MAX_RESPONSE: usize = 1024 * 1024;

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
        self.send(provider, TokenCall::Token).await
    }

    /// `POST /v1/token/<provider>/refresh`: a new token from the source.
    pub async fn refresh(&mut self, provider: &str) -> Result<Token, BrokerError> {
        self.send(provider, TokenCall::Refresh).await
    }

    /// `POST /v1/token/<provider>/unauthorized`: reports that a server rejected the token
    /// with fingerprint `rejected`, and returns the token to retry with.
    pub async fn unauthorized(
        &mut self,
        provider: &str,
        rejected: Fingerprint,
    ) -> Result<Token, BrokerError> {
        self.send(provider, TokenCall::Unauthorized(rejected)).await
    }

    /// `POST /v1/token/<provider>/ask`: the token for a client that runs tokenhost as a
    /// command. The broker tells that program's retry from its first ask (see
    /// [`AskLedger`](crate::clients::AskLedger)).
    pub async fn ask(&mut self, provider: &str, ask: &ClientAsk) -> Result<Token, BrokerError> {
        self.send(provider, TokenCall::Ask(*ask)).await
    }

    /// One of the token requests.
    pub async fn send(&mut self, provider: &str, call: TokenCall) -> Result<Token, BrokerError> {
        let (method, path, body) = call.request(provider);
        let body: TokenBody = self.call(method, path, body).await?;
        token_of(body)
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
        decode(status.as_u16(), &body, &path)
    }
}

/// A request for a token: the same four for every kind of client.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TokenCall {
    /// `GET /v1/token/<provider>`: the broker's cached token, or a new one.
    Token,
    /// `POST /v1/token/<provider>/refresh`: a new token from the source.
    Refresh,
    /// `POST /v1/token/<provider>/ask`: the token for a program that runs tokenhost as a
    /// command (see [`AskLedger`](crate::clients::AskLedger)).
    Ask(ClientAsk),
    /// `POST /v1/token/<provider>/unauthorized`: the token with this fingerprint was
    /// rejected; the answer is the token to retry with.
    Unauthorized(Fingerprint),
}

impl TokenCall {
    /// The method, path and JSON body of this call for `provider`.
    pub(super) fn request(&self, provider: &str) -> (Method, String, Vec<u8>) {
        let provider = encode_segment(provider);
        match self {
            TokenCall::Token => (Method::GET, format!("/v1/token/{provider}"), Vec::new()),
            TokenCall::Refresh => (
                Method::POST,
                format!("/v1/token/{provider}/refresh"),
                Vec::new(),
            ),
            TokenCall::Ask(ask) => (
                Method::POST,
                format!("/v1/token/{provider}/ask"),
                serde_json::to_vec(ask).unwrap_or_default(),
            ),
            TokenCall::Unauthorized(rejected) => (
                Method::POST,
                format!("/v1/token/{provider}/unauthorized"),
                serde_json::to_vec(&UnauthorizedBody {
                    fingerprint: rejected.to_string(),
                })
                .unwrap_or_default(),
            ),
        }
    }
}

/// The token in a token answer, checked: a usable token whose fingerprint is the one
/// the broker sent.
pub(super) fn token_of(body: TokenBody) -> Result<Token, BrokerError> {
    let token = Token::new(body.token, body.expires_at_ms)
        .map_err(|e| BrokerError::Transport(format!("the broker sent an unusable token: {e}")))?;
    if token.fingerprint().to_string() != body.fingerprint {
        return Err(BrokerError::Transport(
            "the broker's token does not match its fingerprint".into(),
        ));
    }
    Ok(token)
}

/// The answer to `path` with HTTP `status` and `body`: the protocol's value for 200,
/// else the broker's error ([`BrokerError::Remote`]), or a transport error when the
/// answer is not the protocol.
pub(super) fn decode<T: DeserializeOwned>(
    status: u16,
    body: &[u8],
    path: &str,
) -> Result<T, BrokerError> {
    if status == StatusCode::OK.as_u16() {
        return serde_json::from_slice(body).map_err(|e| {
            BrokerError::Transport(format!("the answer to {path} is not the protocol: {e}"))
        });
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => Err(BrokerError::Remote {
            status,
            kind: error.kind,
            message: error.error,
        }),
        Err(_) => Err(BrokerError::Transport(format!(
            "HTTP {status} from {path} without an error body"
        ))),
    }
}
