//! `tokenhost proxy`: a local reverse proxy that puts a provider's bearer token on every
//! request, so that any HTTP client (an SDK that reads a static key and a base URL, curl,
//! an IDE extension) gets refresh and exact 401 recovery without a credential command.
//!
//! It exists because most clients have no way to run a command for a token, while all of
//! them can be pointed at a base URL with a key. The proxy sees every upstream status, so
//! its 401 handling is exact: report the token that was refused, get the next one, replay
//! the request once.
//!
//! What it promises:
//! - **Local access control** (`key`, `listen`): a TCP listener demands a local key
//!   (256 random bits, in a file only this user can read: mode 0600, or an owner-only
//!   ACL on Windows) in `Authorization: Bearer`, `x-api-key` or `api-key`, compared in
//!   constant time; anything else gets 401 from the proxy and never reaches upstream. On
//!   Linux and macOS a Unix-socket listener admits only this user (the broker's
//!   `SO_PEERCRED` rule) instead. A non-loopback address must be asked for explicitly.
//! - **The upstream request** (`headers`, `upstream`): the request path is appended
//!   to the provider's `base_url` exactly as [`AuthClient`](crate::AuthClient) does, the
//!   provider's `http_headers` and `query_params` are applied, hop-by-hop headers are
//!   dropped (RFC 9110 §7.6.1), the client's key is never forwarded, and `Host` is the
//!   upstream's authority. HTTPS uses the system roots (`SSL_CERT_FILE`/`SSL_CERT_DIR`
//!   override them, as everywhere in tokenhost), HTTP/2 when upstream offers it by ALPN,
//!   `HTTPS_PROXY`/`NO_PROXY`, pooled keep-alive connections.
//! - **401 recovery** (`forward`, `body`): bodies up to a cap (8 MiB by default) are
//!   buffered for a replay; a larger one is passed through and its 401 returned as it
//!   came (the token is still reported, so the next request gets a fresh one). A second
//!   401 goes back to the client.
//! - **Streaming**: response bodies flow through frame by frame (SSE, chunked, long
//!   downloads); a client that goes away drops the upstream request with it.
//! - **Logs** (`log`): one info line per request, never a token, key or query value.
//!
//! The proxy hosts its own [`AuthManager`](crate::AuthManager) (built by the
//! [`Tokenhost`](crate::Tokenhost) façade, so the admin policy applies) rather than
//! asking a broker per request: it is a long-lived cache itself, and a broker round trip
//! on every request would cost more than the whole proxy hop.

mod body;
mod forward;
mod headers;
mod key;
mod listen;
mod log;
mod server;
mod upstream;

#[cfg(test)]
mod tests;

pub use key::{KeyError, LocalKey};
pub use listen::{Listen, ListenError};
pub use server::{BoundProxy, ProxyOptions};

use std::path::PathBuf;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The provider's API settings cannot be used (no `base_url`, a bad header).
    #[error("provider \"{provider}\": {message}")]
    Provider {
        /// The provider id.
        provider: String,
        /// What is wrong.
        message: String,
    },
    /// The listen address cannot be used.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The local key could not be made or written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The runtime directory for the key file is not private.
    #[error(transparent)]
    PrivateDir(#[from] crate::paths::PrivateDirError),
    /// The handlers that stop the proxy (signals; console events on Windows) could not
    /// be installed.
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
}

/// Where the key file of a proxy for `provider` listening on `port` goes by default: the
/// private runtime directory (see [`crate::paths::runtime_dir`]).
pub fn default_key_path(provider: &str, port: u16) -> PathBuf {
    let safe: String = provider
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                true => c,
                false => '_',
            },
        )
        .collect();
    crate::paths::runtime_dir().join(format!("proxy-{safe}-{port}.key"))
}
