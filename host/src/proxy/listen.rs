//! [`Listen`]: where the proxy accepts connections, and who may connect.
//!
//! Loopback TCP (the default, `127.0.0.1:0` = a free port), the same on every OS, where
//! clients must show the local key. On Linux and macOS also a Unix socket ([`unix`]),
//! which admits only this user and so needs no key; Windows has no such listener, and
//! `unix:PATH` is refused there with [`ListenError::NoUnixSocket`]. Any other TCP address
//! reaches the network: the caller must allow that explicitly, and the key is still
//! required.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
#[cfg(unix)]
use std::path::PathBuf;
use std::str::FromStr;

use tokio::net::{TcpListener, TcpStream};

#[cfg(unix)]
mod unix;

/// A listen address: `HOST:PORT`, or `unix:PATH` on Linux and macOS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address (port 0 picks a free port).
    Tcp(SocketAddr),
    /// A Unix socket at this path (Linux and macOS).
    #[cfg(unix)]
    Unix(PathBuf),
}

/// Why the proxy cannot listen where it was asked to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The address is neither `HOST:PORT` (an IP or `localhost`) nor `unix:PATH`.
    #[error("--listen {0:?} is not IP:PORT, localhost:PORT or unix:PATH")]
    Syntax(String),
    /// `unix:PATH` where the proxy has no Unix-socket listener (Windows).
    #[cfg(not(unix))]
    #[error(
        "--listen {0:?}: the proxy listens on a Unix socket only on Linux and macOS; use a \
         loopback address such as 127.0.0.1:0 (clients then send the local key)"
    )]
    NoUnixSocket(String),
    /// A TCP address other than loopback without the explicit permission.
    #[error(
        "--listen {0} is reachable from the network; pass --allow-non-loopback if that is \
         what you want (the local key is still required)"
    )]
    NotLoopback(SocketAddr),
    /// Another live process listens on the Unix socket.
    #[cfg(unix)]
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
            if path.is_empty() {
                return Err(ListenError::Syntax(text.into()));
            }
            #[cfg(unix)]
            return Ok(Listen::Unix(path.into()));
            #[cfg(not(unix))]
            return Err(ListenError::NoUnixSocket(text.into()));
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

impl Listen {
    /// Whether this is a TCP address (clients then need the local key and get an
    /// `http://` base URL).
    pub fn is_tcp(&self) -> bool {
        matches!(self, Listen::Tcp(_))
    }
}

/// A bound listener.
pub(crate) enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(unix::SocketListener),
}

/// One accepted connection.
pub(crate) enum Accepted {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl Listener {
    /// Binds `listen`; a non-loopback TCP address only with `allow_non_loopback`.
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
            #[cfg(unix)]
            Listen::Unix(path) => Ok(Listener::Unix(unix::SocketListener::bind(path).await?)),
        }
    }

    /// The bound TCP address (with the port chosen), if TCP.
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            #[cfg(unix)]
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
            #[cfg(unix)]
            Listener::Unix(listener) => listener.accept().await.map(Accepted::Unix),
        }
    }

    /// Removes the Unix socket file, if any.
    pub(crate) fn cleanup(&self) {
        #[cfg(unix)]
        if let Listener::Unix(listener) = self {
            listener.cleanup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse() {
        let tcp = |s: &str| Some(Listen::Tcp(s.parse().unwrap()));
        #[cfg(unix)]
        let socket = Some(Listen::Unix("/tmp/p.sock".into()));
        #[cfg(not(unix))]
        let socket = None;
        let cases = [
            ("127.0.0.1:0", tcp("127.0.0.1:0")),
            ("localhost:8080", tcp("127.0.0.1:8080")),
            ("[::1]:9", tcp("[::1]:9")),
            ("0.0.0.0:80", tcp("0.0.0.0:80")),
            ("unix:/tmp/p.sock", socket),
            ("unix:", None),
            ("8080", None),
            ("example.com:80", None),
            ("localhost:x", None),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Listen>().ok(), expected, "{text}");
        }
    }

    /// Windows: `unix:PATH` is its own error, which names the address to use instead.
    #[cfg(not(unix))]
    #[test]
    fn a_unix_socket_is_refused_with_the_tcp_alternative() {
        let err = "unix:C:/p.sock".parse::<Listen>().unwrap_err();
        assert!(matches!(err, ListenError::NoUnixSocket(_)), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1:0"), "{err}");
    }

    #[tokio::test]
    async fn a_network_address_needs_the_explicit_flag() {
        let open: Listen = "0.0.0.0:0".parse().unwrap();
        let err = Listener::bind(&open, false).await.err().unwrap();
        assert!(err.to_string().contains("--allow-non-loopback"), "{err}");
        assert!(Listener::bind(&Listen::default(), false).await.is_ok());
    }
}
