//! The demo's two loopback servers, both running in the `tokenhost demo` process:
//!
//! - an **identity provider**: `POST /oauth2/token`, the OAuth 2.0 client-credentials
//!   grant with HTTP Basic client authentication; it issues `demo-access-1`, `-2`, ...
//!   with `expires_in` 3600;
//! - an **API**: `GET /v1/models` answers 200 (a JSON model list) to a bearer token the
//!   identity provider issued and that has not been revoked, 401 to anything else.
//!
//! They share one [`Ledger`] of issued tokens; the demo revokes a token with
//! [`Ledger::revoke`], as an identity provider's admin (or a key rotation) would.
//! Nothing here logs or prints a token value: the API records fingerprints only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokenhost::token::Fingerprint;

/// How long issued tokens live (the token response's `expires_in`).
pub const EXPIRES_IN_S: u64 = 3600;
/// The identity provider's token endpoint path.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// The largest request body the servers read.
const MAX_BODY: usize = 64 * 1024;

/// The tokens the identity provider issued, shared with the API.
#[derive(Default)]
pub struct Ledger {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Client id -> client secret.
    clients: HashMap<String, String>,
    /// Every token issued, in order.
    issued: Vec<Issued>,
    /// Every `/v1/models` request the API answered, in order.
    hits: Vec<Hit>,
}

struct Issued {
    value: String,
    client: String,
    revoked: bool,
}

/// One API request as the API answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The status it answered.
    pub status: u16,
    /// The bearer token's fingerprint, if the request had one.
    pub token: Option<Fingerprint>,
}

impl Ledger {
    /// A ledger that knows these `(client_id, client_secret)` pairs.
    pub fn new(clients: &[(&str, &str)]) -> Arc<Ledger> {
        let ledger = Ledger::default();
        ledger.lock().clients = clients
            .iter()
            .map(|(id, secret)| (id.to_string(), secret.to_string()))
            .collect();
        Arc::new(ledger)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues the next token (`demo-access-N`) to `client`.
    pub fn issue(&self, client: &str) -> String {
        let mut state = self.lock();
        let value = format!("demo-access-{}", state.issued.len() + 1);
        state.issued.push(Issued {
            value: value.clone(),
            client: client.to_string(),
            revoked: false,
        });
        value
    }

    /// Revokes the issued token with this fingerprint; false if there is none.
    pub fn revoke(&self, token: Fingerprint) -> bool {
        let mut state = self.lock();
        let found = state
            .issued
            .iter_mut()
            .find(|t| Fingerprint::of(&t.value) == token);
        match found {
            Some(issued) => {
                issued.revoked = true;
                true
            }
            None => false,
        }
    }

    /// How many tokens were issued in all, and to `client`.
    pub fn issued(&self, client: &str) -> (usize, usize) {
        let state = self.lock();
        let to_client = state.issued.iter().filter(|t| t.client == client).count();
        (state.issued.len(), to_client)
    }

    /// The API's answers so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.lock().hits.clone()
    }

    fn accepts(&self, token: &str) -> bool {
        self.lock()
            .issued
            .iter()
            .any(|t| t.value == token && !t.revoked)
    }

    fn record(&self, hit: Hit) {
        self.lock().hits.push(hit);
    }

    fn client_secret_matches(&self, id: &str, secret: &str) -> bool {
        self.lock().clients.get(id).is_some_and(|s| s == secret)
    }
}

/// A request as the handlers see it.
struct Seen {
    method: hyper::Method,
    path: String,
    authorization: Option<String>,
    body: Bytes,
}

/// An answer: a status, a JSON body and maybe a `WWW-Authenticate` challenge.
struct Reply {
    status: u16,
    challenge: Option<&'static str>,
    body: serde_json::Value,
}

impl Reply {
    fn ok(body: serde_json::Value) -> Reply {
        Reply {
            status: 200,
            challenge: None,
            body,
        }
    }

    fn error(status: u16, error: &str, description: &str) -> Reply {
        Reply {
            status,
            challenge: None,
            body: serde_json::json!({"error": error, "error_description": description}),
        }
    }
}

/// Starts the identity provider on 127.0.0.1 (any free port).
pub async fn start_identity_provider(ledger: Arc<Ledger>) -> std::io::Result<SocketAddr> {
    serve(move |seen| token_endpoint(&ledger, seen)).await
}

/// Starts the API on 127.0.0.1 (any free port).
pub async fn start_api(ledger: Arc<Ledger>) -> std::io::Result<SocketAddr> {
    serve(move |seen| models_endpoint(&ledger, seen)).await
}

fn token_endpoint(ledger: &Ledger, seen: Seen) -> Reply {
    if seen.path != TOKEN_PATH {
        return Reply::error(404, "not_found", "the token endpoint is /oauth2/token");
    }
    if seen.method != hyper::Method::POST {
        return Reply::error(405, "invalid_request", "use POST");
    }
    let form: HashMap<String, String> = form_urlencoded(&seen.body);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Reply::error(
            400,
            "unsupported_grant_type",
            "only client_credentials is supported",
        );
    }
    let client = seen
        .authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((percent_decode(id), percent_decode(secret)))
        });
    let Some((id, _secret)) = client.filter(|(id, s)| ledger.client_secret_matches(id, s)) else {
        return Reply {
            challenge: Some("Basic realm=\"tokenhost-demo\""),
            ..Reply::error(401, "invalid_client", "unknown client or wrong secret")
        };
    };
    let token = ledger.issue(&id);
    Reply::ok(serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": EXPIRES_IN_S,
    }))
}

fn models_endpoint(ledger: &Ledger, seen: Seen) -> Reply {
    if seen.path != "/v1/models" {
        return Reply::error(404, "not_found", "try GET /v1/models");
    }
    if seen.method != hyper::Method::GET {
        return Reply::error(405, "invalid_request", "use GET");
    }
    let token = seen
        .authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "));
    let fingerprint = token.map(Fingerprint::of);
    if token.is_some_and(|t| ledger.accepts(t)) {
        ledger.record(Hit {
            status: 200,
            token: fingerprint,
        });
        return Reply::ok(serde_json::json!({
            "object": "list",
            "data": [
                {"id": "demo-small", "object": "model"},
                {"id": "demo-large", "object": "model"},
            ],
        }));
    }
    ledger.record(Hit {
        status: 401,
        token: fingerprint,
    });
    Reply {
        challenge: Some("Bearer error=\"invalid_token\""),
        ..Reply::error(401, "invalid_token", "the token is unknown or revoked")
    }
}

/// Serves HTTP/1.1 on 127.0.0.1:0 with `handler`, on the current tokio runtime, until the
/// runtime shuts down. Returns the address it listens on.
async fn serve(
    handler: impl Fn(Seen) -> Reply + Send + Sync + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, say: try again shortly rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let reply = match Limited::new(body, MAX_BODY).collect().await {
                            Ok(body) => handler(Seen {
                                method: parts.method,
                                path: parts.uri.path().to_string(),
                                authorization: parts
                                    .headers
                                    .get(hyper::header::AUTHORIZATION)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string),
                                body: body.to_bytes(),
                            }),
                            Err(_) => Reply::error(413, "invalid_request", "body too large"),
                        };
                        let mut response = hyper::Response::builder()
                            .status(reply.status)
                            .header(hyper::header::CONTENT_TYPE, "application/json")
                            .header(hyper::header::CACHE_CONTROL, "no-store");
                        if let Some(challenge) = reply.challenge {
                            response = response.header(hyper::header::WWW_AUTHENTICATE, challenge);
                        }
                        let body = Full::new(Bytes::from(reply.body.to_string()));
                        Ok::<_, Infallible>(response.body(body).expect("a valid response"))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// An `application/x-www-form-urlencoded` body as fields.
fn form_urlencoded(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

/// Decodes `%XX` escapes and `+` (as a space).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok()) =>
            {
                out.push(byte);
                i += 3;
                continue;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
