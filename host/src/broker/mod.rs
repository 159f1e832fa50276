//! The token broker: one [`AuthManager`](crate::AuthManager) shared by many processes,
//! in the manner of ssh-agent and gpg-agent.
//!
//! `tokenhost serve` runs a [`Broker`]: HTTP/1.1 with JSON bodies on a Unix socket
//! (Windows: a named pipe) whose name is derived from the config file's absolute path
//! ([`socket_path`]), so two configs never share a broker. Clients ([`BrokerClient`], or
//! any language that speaks HTTP over a Unix socket or a pipe) get tokens from its cache;
//! a wave of clients causes one source call.
//!
//! Access control is the operating system's, and only this user gets in: on Unix the
//! socket lives in a directory that is ours and mode 0700, the socket is mode 0600, and
//! both ends check the other's uid (`SO_PEERCRED`, see [`peer_allowed`]); on Windows the
//! pipe's DACL admits this user alone, a name already taken is refused, and both ends
//! check the user the other process runs as (see `transport`). A token never travels in a
//! request: a 401 is reported by the token's fingerprint.
//!
//! A client that misbehaves cannot lock the others out ([`Limits`]): a request head must
//! arrive within 10 s of connecting (or of the previous answer), a body within 10 s and
//! within 8 KiB (else 408 or 413), and at most 256 connections are open; when they are
//! all taken, the one idle longest is closed to make room.
//!
//! Protocol (every body is JSON; errors are `{"error": message, "kind": kind}`):
//! - `GET /v1/health` -> `{"status": "ok", "config": path, "pid": n, "generation": n}`
//! - `GET /v1/token/<provider>` -> `{"token", "expires_at_ms", "fingerprint"}`
//! - `POST /v1/token/<provider>/unauthorized` `{"fingerprint": "sha256:..."}` -> token
//! - `POST /v1/token/<provider>/refresh` -> a new token from the source (reason `forced`)
//! - `POST /v1/token/<provider>/ask` `{"caller": {"pid", "started"}, "reuse_ms"}` -> the
//!   token for a client that runs tokenhost as a command; a re-ask by the same program
//!   inside its reuse window reports the token it got as rejected (see
//!   [`AskLedger`](crate::clients::AskLedger))
//! - `GET /v1/providers` -> `{"providers": [{provider, fingerprint, expires_at_ms, valid,
//!   source_calls, last_error}]}` (never a token)

#[cfg(unix)]
mod blocking;
mod body;
mod client;
mod limits;
mod path;
mod protocol;
mod server;
mod transport;

pub use crate::paths::{check_private_dir, prepare_private_dir};
#[cfg(unix)]
pub use blocking::BlockingClient;
pub use client::{BrokerClient, CONNECT_TIMEOUT, REQUEST_TIMEOUT, TokenCall};
pub use limits::Limits;
#[cfg(unix)]
pub use path::socket_path_in;
pub use path::{socket_dir, socket_path};
pub use protocol::{ErrorKind, Health, ProviderInfo};
pub use server::Broker;

use std::sync::Arc;

/// Builds a fresh config and manager for a reload (SIGHUP). Runs on a blocking thread;
/// an error is logged and the broker keeps serving what it has.
pub type Loader = Arc<
    dyn Fn() -> Result<(crate::config::Config, Arc<crate::AuthManager>), LoadError> + Send + Sync,
>;

/// Why a [`Loader`] could not build a new config and manager (what the caller's
/// assembly reports: a config, policy or provider error).
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

use std::path::PathBuf;

/// Whether a peer running as `peer_uid` may use (or serve) a broker of a process running
/// as `our_uid`: only the same user. Root gets no exception: a broker holds one user's
/// tokens, and root can read them by other means anyway.
pub fn peer_allowed(our_uid: u32, peer_uid: u32) -> bool {
    our_uid == peer_uid
}

/// This process's effective uid.
#[cfg(unix)]
pub fn our_uid() -> u32 {
    crate::sys::effective_uid()
}

/// Why the broker or a broker client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// Another broker holds this config's socket (or pipe).
    #[error("a broker is already serving {} at {}", .config.display(), .socket.display())]
    AlreadyServing {
        /// The config file.
        config: PathBuf,
        /// The socket it is served at.
        socket: PathBuf,
    },
    /// The socket's directory cannot be made, or is not private to this user.
    #[error(transparent)]
    PrivateDir(#[from] crate::paths::PrivateDirError),
    /// No broker answers at the socket (no socket file, or nobody listening).
    #[error("no broker at {} ({source})", .socket.display())]
    NotRunning {
        /// The socket path.
        socket: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// Windows: the pipe name of this config exists and is not a broker of this user's
    /// (a pipe made by another user, or one we may not open): not served, not used.
    #[error("{} is taken by something that is not this user's broker ({reason})", .socket.display())]
    EndpointTaken {
        /// The pipe name.
        socket: PathBuf,
        /// What connecting to it said.
        reason: String,
    },
    /// The process at the other end runs as another user.
    #[error("the peer runs as {peer}, not as this user ({ours})")]
    WrongPeer {
        /// Our user: `uid 1000` on Unix, the SID on Windows.
        ours: String,
        /// The peer's user, written the same way.
        peer: String,
    },
    /// A socket or file operation failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or socket.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The connection broke, timed out, or the answer was not the protocol.
    #[error("{0}")]
    Transport(String),
    /// The broker answered with an error.
    #[error("{message}")]
    Remote {
        /// The HTTP status.
        status: u16,
        /// The error kind.
        kind: ErrorKind,
        /// The broker's message (for a source failure, the same line a local call prints).
        message: String,
    },
}

impl BrokerError {
    /// Whether the broker itself answered (with an error about the request or the
    /// source); otherwise it could not be reached or did not answer properly.
    pub fn is_answer(&self) -> bool {
        matches!(self, BrokerError::Remote { .. })
    }
}

/// Percent-encodes a provider id for a URL path segment (unreserved bytes stay).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Decodes a percent-encoded path segment; `None` if malformed or not UTF-8.
pub(crate) fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(all(test, unix))]
mod tests;
#[cfg(all(test, windows))]
mod tests_windows;
