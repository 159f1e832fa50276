//! A mock API on 127.0.0.1 for the proxy tests: it wants `Authorization: Bearer <token>`
//! and answers 401 to a token it revoked (or to none). It records every request, counts
//! its connections (open and total), and can stream:
//! - `POST /v1/chat/completions`: an OpenAI chat completion, or with `"stream": true` the
//!   same as `chat.completion.chunk` SSE events and `data: [DONE]`;
//! - `GET /v1/sse?n=N&gap_ms=G`: N SSE events G ms apart, the send time of each recorded;
//! - `GET /v1/endless`: a chunk every 20 ms until the reader goes away (then counted in
//!   [`MockApi::cancelled`]);
//! - `GET /v1/slow?ms=M`: a response head after M ms;
//! - anything else: 200 with `{"method", "path", "body_len"}`.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// One request as the mock saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// With the query.
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The bearer token, if any.
    pub token: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    revoked: Mutex<HashSet<String>>,
    /// Revoke every token that is not this one (`None`: revoke only `revoked`).
    only: Mutex<Option<String>>,
    /// After this many answered requests, revoke the token of the last one.
    revoke_after: Mutex<Option<usize>>,
    answered: AtomicUsize,
    sse_sent: Mutex<Vec<Instant>>,
    cancelled: AtomicUsize,
    open: AtomicUsize,
    accepted: AtomicUsize,
}

/// A running mock; stops with the runtime it was started on.
pub struct MockApi {
    addr: SocketAddr,
    state: Arc<State>,
}

impl MockApi {
    /// Starts it (inside a tokio runtime).
    pub async fn start() -> MockApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<State> = Arc::default();
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                state.accepted.fetch_add(1, Ordering::SeqCst);
                state.open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = {
                        let state = state.clone();
                        service_fn(move |request| answer(state.clone(), request))
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    state.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        MockApi { addr, state }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The tokens of every request so far, in order (`-` for none).
    pub fn tokens(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .map(|s| s.token.unwrap_or_else(|| "-".into()))
            .collect()
    }

    /// From now on, `token` gets 401.
    pub fn revoke(&self, token: &str) {
        self.state.revoked.lock().unwrap().insert(token.into());
    }

    /// From now on, every token but `token` gets 401.
    pub fn accept_only(&self, token: &str) {
        *self.state.only.lock().unwrap() = Some(token.into());
    }

    /// After `n` more requests are answered with 200, revoke the token of the last one.
    pub fn revoke_after(&self, n: usize) {
        let answered = self.state.answered.load(Ordering::SeqCst);
        *self.state.revoke_after.lock().unwrap() = Some(answered + n);
    }

    /// When each event of `/v1/sse` was sent.
    pub fn sse_sent(&self) -> Vec<Instant> {
        self.state.sse_sent.lock().unwrap().clone()
    }

    /// How many `/v1/endless` streams ended because their reader went away.
    pub fn cancelled(&self) -> usize {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted_connections(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

type Reply = hyper::Response<MockBody>;

async fn answer(state: Arc<State>, request: hyper::Request<Incoming>) -> Result<Reply, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes().to_vec())
        .unwrap_or_default();
    let token = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let rejected = match &token {
        None => true,
        Some(t) => {
            state.revoked.lock().unwrap().contains(t)
                || state.only.lock().unwrap().as_ref().is_some_and(|o| o != t)
        }
    };
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let number = |name: &str, default: u64| {
        query
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let reply = match (rejected, parts.method.as_str(), path.as_str()) {
        (true, _, _) => json(
            401,
            serde_json::json!({"error": {"message": "revoked", "type": "invalid_request_error", "code": "invalid_api_key"}}),
        ),
        (_, "POST", "/v1/chat/completions") => chat(&body),
        (_, "GET", "/v1/sse") => sse(state.clone(), number("n", 5), number("gap_ms", 200)),
        (_, "GET", "/v1/endless") => endless(state.clone()),
        (_, "GET", "/v1/slow") => {
            tokio::time::sleep(Duration::from_millis(number("ms", 1000))).await;
            json(200, serde_json::json!({"slow": true}))
        }
        _ => json(
            200,
            serde_json::json!({"method": parts.method.as_str(), "path": parts.uri.to_string(), "body_len": body.len()}),
        ),
    };
    if !rejected {
        let answered = state.answered.fetch_add(1, Ordering::SeqCst) + 1;
        let mut after = state.revoke_after.lock().unwrap();
        if *after == Some(answered)
            && let Some(token) = &token
        {
            state.revoked.lock().unwrap().insert(token.clone());
            *after = None;
        }
    }
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
        token,
        status: reply.status().as_u16(),
    });
    Ok(reply)
}

fn json(status: u16, value: serde_json::Value) -> Reply {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(MockBody::full(value.to_string()))
        .unwrap()
}

/// A chat completion, whole or streamed.
fn chat(body: &[u8]) -> Reply {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = "Hello through the tokenhost proxy";
    if request["stream"] != true {
        return json(
            200,
            serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": request["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6},
            }),
        );
    }
    let mut events = String::new();
    for (i, word) in text.split(' ').enumerate() {
        let delta = match i {
            0 => serde_json::json!({"role": "assistant", "content": word}),
            _ => serde_json::json!({"content": format!(" {word}")}),
        };
        let chunk = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": request["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": null}],
        });
        events.push_str(&format!("data: {chunk}\n\n"));
    }
    events.push_str("data: [DONE]\n\n");
    hyper::Response::builder()
        .header("content-type", "text/event-stream")
        .body(MockBody::full(events))
        .unwrap()
}

/// `n` events `gap_ms` apart, each send time recorded.
fn sse(state: Arc<State>, n: u64, gap_ms: u64) -> Reply {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for i in 0..n {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(gap_ms)).await;
            }
            state.sse_sent.lock().unwrap().push(Instant::now());
            let event = Bytes::from(format!("event: tick\ndata: {i}\n\n"));
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    hyper::Response::builder()
        .header("content-type", "text/event-stream")
        .body(MockBody::Channel(rx))
        .unwrap()
}

/// Chunks until the reader goes away.
fn endless(state: Arc<State>) -> Reply {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            if tx
                .send(Bytes::from_static(b"data: more\n\n"))
                .await
                .is_err()
            {
                state.cancelled.fetch_add(1, Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    hyper::Response::builder()
        .header("content-type", "text/event-stream")
        .body(MockBody::Channel(rx))
        .unwrap()
}

/// A whole body or one fed by a channel.
pub enum MockBody {
    Full(Option<Bytes>),
    Channel(tokio::sync::mpsc::Receiver<Bytes>),
}

impl MockBody {
    fn full(text: String) -> MockBody {
        MockBody::Full(Some(Bytes::from(text)))
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Channel(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }
}
