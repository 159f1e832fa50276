//! [`Listen`]: where the proxy accepts connections, and who may connect.
//!
//! Loopback TCP (the default, `127.0.0.1:0` = a free port) or a Unix socket. A Unix
//! socket is mode 0600 and admits only a peer of this user (`SO_PEERCRED`, the broker's
//! [`peer_allowed`](crate::broker::peer_allowed) rule), so it needs no key. Any other
//! TCP address reaches the network: the caller must allow that explicitly, and the key
//! is still required.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A listen address: `HOST:PORT` or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address (port 0 picks a free port).
    Tcp(SocketAddr),
    /// A Unix socket at this path.
    Unix(PathBuf),
}

/// Why the proxy cannot listen where it was asked to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The address is neither `HOST:PORT` (an IP or `localhost`) nor `unix:PATH`.
    #[error("--listen {0:?} is not IP:PORT, localhost:PORT or unix:PATH")]
    Syntax(String),
    /// A TCP address other than loopback without the explicit permission.
    #[error(
        "--listen {0} is reachable from the network; pass --allow-non-loopback if that is \
         what you want (the local key is still required)"
    )]
    NotLoopback(SocketAddr),
    /// Another live process listens on the Unix socket.
    #[error("something is already listening on {}", .0.display())]
    InUse(PathBuf),
    /// Binding or preparing the socket failed.
    #[error("cannot listen on {what}: {source}")]
    Bind {
        /// The address.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

impl FromStr for Listen {
    type Err = ListenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            return match path.is_empty() {
                true => Err(ListenError::Syntax(text.into())),
                false => Ok(Listen::Unix(path.into())),
            };
        }
        if let Some(port) = text.strip_prefix("localhost:") {
            let port = port.parse().map_err(|_| ListenError::Syntax(text.into()))?;
            return Ok(Listen::Tcp(SocketAddr::new(
                Ipv4Addr::LOCALHOST.into(),
                port,
            )));
        }
        text.parse()
            .map(Listen::Tcp)
            .map_err(|_| ListenError::Syntax(text.into()))
    }
}

impl Default for Listen {
    /// `127.0.0.1:0`.
    fn default() -> Self {
        Listen::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
    }
}

/// A bound listener.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// One accepted connection.
pub(crate) enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    /// Binds `listen`; a non-loopback TCP address only with `allow_non_loopback`. A stale
    /// Unix socket file (nobody listening) is replaced; a live one is refused.
    pub(crate) async fn bind(
        listen: &Listen,
        allow_non_loopback: bool,
    ) -> Result<Listener, ListenError> {
        match listen {
            Listen::Tcp(addr) => {
                if !addr.ip().is_loopback() && !allow_non_loopback {
                    return Err(ListenError::NotLoopback(*addr));
                }
                let listener =
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| ListenError::Bind {
                            what: addr.to_string(),
                            source,
                        })?;
                Ok(Listener::Tcp(listener))
            }
            Listen::Unix(path) => bind_unix(path).await,
        }
    }

    /// The bound TCP address (with the port chosen), if TCP.
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// The next connection from an admitted peer. Refused Unix peers are logged and
    /// skipped; an accept error is returned (the caller pauses and goes on).
    pub(crate) async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                // Small requests and SSE events must not wait for Nagle.
                let _ = stream.set_nodelay(true);
                Ok(Accepted::Tcp(stream))
            }
            Listener::Unix(listener, _) => loop {
                let (stream, _) = listener.accept().await?;
                let ours = crate::broker::our_uid();
                match stream.peer_cred() {
                    Ok(cred) if crate::broker::peer_allowed(ours, cred.uid()) => {
                        return Ok(Accepted::Unix(stream));
                    }
                    Ok(cred) => tracing::warn!(
                        peer_uid = cred.uid(),
                        "refused a connection from another user"
                    ),
                    Err(e) => tracing::warn!("refused a connection: no peer credentials ({e})"),
                }
            },
        }
    }

    /// Removes the Unix socket file, if any.
    pub(crate) fn cleanup(&self) {
        if let Listener::Unix(_, path) = self
            && let Err(e) = std::fs::remove_file(path)
        {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
}

async fn bind_unix(path: &Path) -> Result<Listener, ListenError> {
    let bind = |source| ListenError::Bind {
        what: format!("unix:{}", path.display()),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(bind(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            )));
        }
        match UnixStream::connect(path).await {
            Ok(_) => return Err(ListenError::InUse(path.to_path_buf())),
            Err(_) => std::fs::remove_file(path).map_err(bind)?,
        }
    }
    let listener = UnixListener::bind(path).map_err(bind)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind)?;
    Ok(Listener::Unix(listener, path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        let tcp = |s: &str| Listen::Tcp(s.parse().unwrap());
        let cases = [
            ("127.0.0.1:0", Some(tcp("127.0.0.1:0"))),
            ("localhost:8080", Some(tcp("127.0.0.1:8080"))),
            ("[::1]:9", Some(tcp("[::1]:9"))),
            ("0.0.0.0:80", Some(tcp("0.0.0.0:80"))),
            ("unix:/tmp/p.sock", Some(Listen::Unix("/tmp/p.sock".into()))),
            ("unix:", None),
            ("8080", None),
            ("example.com:80", None),
            ("localhost:x", None),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Listen>().ok(), expected, "{text}");
        }
    }

    #[tokio::test]
    async fn a_network_address_needs_the_explicit_flag() {
        let open: Listen = "0.0.0.0:0".parse().unwrap();
        let err = Listener::bind(&open, false).await.err().unwrap();
        assert!(err.to_string().contains("--allow-non-loopback"), "{err}");
        assert!(Listener::bind(&Listen::default(), false).await.is_ok());
    }
}
