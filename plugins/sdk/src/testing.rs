//! A fake [`Platform`] for plugin unit tests: canned HTTP answers, environment
//! variables and files, and a record of what the code under test sent and logged.
//!
//! ```
//! use tokenhost_plugin::http::Request;
//! use tokenhost_plugin::testing::FakePlatform;
//! use tokenhost_plugin::url::{SchemePolicy, parse};
//!
//! let fake = FakePlatform::default().respond(200, r#"{"access_token": "t"}"#);
//! let url = parse("token_url", "https://idp.example/token", SchemePolicy::HttpsOrLoopback).unwrap();
//! let answer: serde_json::Value = Request::post_form(url, &[("grant_type", "client_credentials")])
//!     .send_with(&fake)
//!     .unwrap()
//!     .json()
//!     .unwrap();
//! assert_eq!(answer["access_token"], "t");
//! assert_eq!(fake.last_body(), "grant_type=client_credentials");
//! ```

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use crate::Platform;
use crate::http::{HttpError, Request, Response};
use crate::log::Level;

/// The clock of every [`FakePlatform`]: a fixed instant, so expiries are predictable.
pub const FAKE_NOW_MS: u64 = 1_000_000;

/// A [`Platform`] that answers from canned data and records every request and log line.
/// The clock stands still at [`FAKE_NOW_MS`]; "random" bytes are a fixed sequence that
/// never repeats within a test (so two `jti`s differ, and a test can predict them).
#[derive(Default)]
pub struct FakePlatform {
    /// Environment variables the code may read.
    pub env: HashMap<String, String>,
    /// Files the code may read, by path.
    pub files: HashMap<String, String>,
    /// The answers to the next requests, in order; a request with none left panics.
    pub responses: RefCell<VecDeque<Result<Response, HttpError>>>,
    /// Every request sent, in order.
    pub sent: RefCell<Vec<Request>>,
    /// Every log line, in order.
    pub logs: RefCell<Vec<(Level, String)>>,
    /// How many random bytes were handed out: the next ones continue the sequence.
    pub random_drawn: Cell<u64>,
}

impl FakePlatform {
    /// With environment variable `name` set to `value`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// With a file at `path` holding `text`.
    pub fn file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.into(), text.into());
        self
    }

    /// Answers the next request with `status` and `body` (no headers).
    pub fn respond(self, status: u16, body: &str) -> Self {
        self.answer(Ok(Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }))
    }

    /// Fails the next request with `error` (a refused host, a timeout, ...).
    pub fn fail(self, error: HttpError) -> Self {
        self.answer(Err(error))
    }

    /// Answers the next request with `answer`.
    pub fn answer(self, answer: Result<Response, HttpError>) -> Self {
        self.responses.borrow_mut().push_back(answer);
        self
    }

    /// The body of the last request sent, as text.
    ///
    /// # Panics
    /// When nothing was sent or the body is not UTF-8: both are test failures.
    pub fn last_body(&self) -> String {
        let sent = self.sent.borrow();
        let last = sent.last().expect("no request was sent");
        String::from_utf8(last.body.clone()).expect("the body is not UTF-8")
    }

    /// Every log line, joined with newlines.
    pub fn all_logs(&self) -> String {
        let logs = self.logs.borrow();
        let lines: Vec<&str> = logs.iter().map(|(_, line)| line.as_str()).collect();
        lines.join("\n")
    }
}

impl Platform for FakePlatform {
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn env_var(&self, name: &str) -> Result<String, std::env::VarError> {
        self.env
            .get(name)
            .cloned()
            .ok_or(std::env::VarError::NotPresent)
    }

    fn read_file(&self, path: &str, _cap: usize) -> std::io::Result<Vec<u8>> {
        self.files
            .get(path)
            .map(|text| text.as_bytes().to_vec())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn now_ms(&self) -> u64 {
        FAKE_NOW_MS
    }

    fn random_bytes(&self, len: usize) -> Result<Vec<u8>, crate::Error> {
        let start = self.random_drawn.get();
        self.random_drawn.set(start + len as u64);
        // A simple mix of the position (splitmix64), so the bytes do not look sequential.
        Ok((start..start + len as u64)
            .map(|i| {
                let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) as u8
            })
            .collect())
    }

    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        self.sent.borrow_mut().push(request.clone());
        let next = self.responses.borrow_mut().pop_front();
        next.unwrap_or_else(|| panic!("unexpected request {request:?}: no answer left"))
    }
}
