//! Shared code for tokenhost's identity-provider plugins (`oauth2`, `token-exchange`,
//! `metadata`).
//!
//! Each plugin crate keeps its own wit-bindgen glue and calls one of the [`flows`]. A
//! flow reaches the outside world only through a [`Platform`]: environment variables,
//! files, the clock, outgoing HTTP (wasi:http on wasm32-wasip2) and the host log. Tests
//! give a flow a fake platform, so everything but the wasi:http calls runs natively.
//!
//! Secrets (client secrets, assertions, subject tokens, issued tokens) are held in
//! [`secret::Secret`], whose `Debug` hides the value, and every error message a flow
//! returns is passed through [`secret::redact`] with the secrets of that request.

pub mod config;
pub mod flows;
pub mod form;
pub mod http;
pub mod response;
pub mod secret;
pub mod url;

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a plugin could not produce a token; mirrors the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The configuration is wrong; a person must fix it.
    InvalidConfig(String),
    /// The identity provider refused; a person must act.
    Denied(String),
    /// A transient failure; retrying later may help.
    Unavailable(String),
}

impl PluginError {
    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            PluginError::InvalidConfig(m)
            | PluginError::Denied(m)
            | PluginError::Unavailable(m) => m,
        }
    }

    /// The same kind of error with its message passed through `f`.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            PluginError::InvalidConfig(m) => PluginError::InvalidConfig(f(m)),
            PluginError::Denied(m) => PluginError::Denied(f(m)),
            PluginError::Unavailable(m) => PluginError::Unavailable(f(m)),
        }
    }
}

/// A token a flow obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The bearer token, without a "Bearer " prefix.
    pub value: String,
    /// When it expires, in milliseconds since the Unix epoch, if the IdP said.
    pub expires_at_ms: Option<u64>,
}

/// Severity of a log line (the WIT `log-level` without `trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// The most bytes read from a credential file (a JWT is a few KiB).
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// Everything a flow needs from outside. Only `log` has no default: the defaults use
/// std (which the host limits to granted env vars and paths) and wasi:http.
pub trait Platform {
    /// Writes a line to the host log.
    fn log(&self, level: Level, message: &str);

    /// The environment variable `name`.
    fn env_var(&self, name: &str) -> Result<String, std::env::VarError> {
        std::env::var(name)
    }

    /// Up to `cap + 1` bytes of the file at `path` (so a caller can tell "too large").
    fn read_file(&self, path: &str, cap: usize) -> std::io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        let mut bytes = Vec::new();
        file.take(cap as u64 + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    /// Sends one HTTP request.
    fn send(&self, request: &http::Request) -> Result<http::Response, http::HttpError> {
        http::send(request)
    }
}
