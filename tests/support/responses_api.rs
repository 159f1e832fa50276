//! A loopback mock of the OpenAI Responses API, as much of it as `codex exec` (0.169)
//! needs to finish a turn: `GET /v1/models` and `POST /v1/responses` with
//! `stream: true`, answered with the SSE events `response.created`,
//! `response.output_item.done` (one assistant message) and `response.completed`. Built
//! on the test [`Server`]: the whole event stream is one body, which Codex reads as a
//! stream like any other.
//!
//! It wants `Authorization: Bearer <token>` on every request and counts requests per
//! token. In [`Mode::RevokeFirst`] it answers 401 to the first token it sees, forever,
//! as a server that revoked that token would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::idp::{Reply, Seen, Server};

/// What the mock's assistant says: a test looks for it in Codex's output.
pub const ASSISTANT_TEXT: &str = "Hello from the mock Responses API (tokenhost test)";

/// Which tokens the mock accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Every bearer token.
    AcceptAll,
    /// Every bearer token but the first one seen, which gets 401 forever.
    RevokeFirst,
}

/// One request as the mock answered it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Without the query string.
    pub path: String,
    /// The bearer token, if the request had one.
    pub token: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    revoked: Option<String>,
    requests: Vec<Request>,
}

/// A running mock; stops with the runtime it was started on.
pub struct ResponsesApi {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl ResponsesApi {
    /// Starts the mock on 127.0.0.1 (call inside a tokio runtime that outlives it).
    pub async fn start(mode: Mode) -> ResponsesApi {
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let server = Server::start(move |seen, index| {
            let token = seen
                .headers
                .get("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_string);
            let mut state = shared.lock().unwrap();
            if mode == Mode::RevokeFirst && state.revoked.is_none() {
                state.revoked.clone_from(&token);
            }
            let rejected = token.is_none() || token == state.revoked && mode == Mode::RevokeFirst;
            let reply = match rejected {
                true => error(401, "invalid_api_key", "the bearer token was revoked"),
                false => answer(seen, index),
            };
            state.requests.push(Request {
                method: seen.method.clone(),
                path: seen.path.split('?').next().unwrap_or("").to_string(),
                token,
                status: reply.status,
            });
            reply
        })
        .await;
        ResponsesApi { server, state }
    }

    /// The provider's `base_url`: `http://127.0.0.1:port/v1`.
    pub fn base_url(&self) -> String {
        self.server.url("/v1")
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The tokens of the `POST /v1/responses` requests, in order (`-` for none).
    pub fn response_tokens(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/responses")
            .map(|r| r.token.unwrap_or_else(|| "-".into()))
            .collect()
    }

    /// How many requests came with each token (every path; `-` for none).
    pub fn per_token(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for request in self.requests() {
            *counts
                .entry(request.token.unwrap_or_else(|| "-".into()))
                .or_default() += 1;
        }
        counts
    }

    /// The token the mock revoked (the first one it saw), in [`Mode::RevokeFirst`].
    pub fn revoked(&self) -> Option<String> {
        self.state.lock().unwrap().revoked.clone()
    }
}

/// The answer to an authorized request.
fn answer(seen: &Seen, index: usize) -> Reply {
    let path = seen.path.split('?').next().unwrap_or("");
    match (seen.method.as_str(), path) {
        // Codex's own model list shape (`{"models": [ModelInfo]}`); an empty list makes it
        // fall back to built-in metadata for the configured model, with a warning.
        ("GET", "/v1/models") => Reply::json(200, serde_json::json!({"models": []})),
        ("POST", "/v1/responses") => {
            let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap_or_default();
            if body["stream"] != true {
                return error(400, "invalid_request", "this mock only streams");
            }
            sse(&format!("resp_{index}"), &format!("msg_{index}"))
        }
        _ => error(404, "not_found", "no such endpoint in the mock"),
    }
}

/// The three events that make one complete assistant turn.
fn sse(response_id: &str, message_id: &str) -> Reply {
    let events = [
        serde_json::json!({
            "type": "response.created",
            "response": {"id": response_id},
        }),
        serde_json::json!({
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {
                "type": "message",
                "id": message_id,
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": ASSISTANT_TEXT, "annotations": []}],
            },
        }),
        serde_json::json!({
            "type": "response.completed",
            "response": {
                "id": response_id,
                "usage": {
                    "input_tokens": 10,
                    "input_tokens_details": null,
                    "output_tokens": 9,
                    "output_tokens_details": null,
                    "total_tokens": 19,
                },
            },
        }),
    ];
    let body: String = events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect();
    Reply {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/event-stream".into()),
            ("cache-control".into(), "no-cache".into()),
        ],
        body: body.into_bytes(),
        delay: None,
    }
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        serde_json::json!({"error": {"message": message, "type": "invalid_request_error", "code": code}}),
    )
}
