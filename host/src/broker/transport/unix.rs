//! The broker on a Unix socket: a file in a private directory (0700, ours), mode 0600,
//! an exclusive `flock` on `<socket>.lock` while a broker serves it, and the peer's uid
//! from the kernel (`SO_PEERCRED`, `getpeereid` on macOS) on both ends.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::super::{BrokerError, CONNECT_TIMEOUT, check_private_dir, our_uid, peer_allowed};
use crate::sys::StopSignals;

/// A connection accepted by a broker.
pub(in crate::broker) type Accepted = UnixStream;
/// A connection to a broker.
pub(in crate::broker) type Connected = UnixStream;

/// A bound broker socket.
pub(in crate::broker) struct Listener {
    listener: UnixListener,
    socket: PathBuf,
    /// An exclusive `flock` on `<socket>.lock`, held for the broker's lifetime.
    _lock: fs::File,
}

impl Listener {
    /// Binds `socket` for the broker of `config`. Creates and checks the private
    /// directory, takes the socket's lock, replaces a stale socket file, and refuses
    /// when a broker answers. The socket is mode 0600.
    pub(in crate::broker) async fn bind(
        socket: &Path,
        config: &Path,
    ) -> Result<Listener, BrokerError> {
        let dir = socket.parent().unwrap_or(Path::new("/"));
        crate::paths::prepare_private_dir(dir)?;
        let io = |what, source| BrokerError::Io {
            what,
            path: socket.to_path_buf(),
            source,
        };
        let serving = || BrokerError::AlreadyServing {
            config: config.to_path_buf(),
            socket: socket.to_path_buf(),
        };
        let lock = lock(&socket.with_extension("lock")).map_err(|e| io("cannot lock", e))?;
        let Some(lock) = lock else {
            return Err(serving());
        };
        if fs::symlink_metadata(socket).is_ok() {
            match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(socket)).await {
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tracing::info!("replacing the stale socket {}", socket.display());
                    fs::remove_file(socket).map_err(|e| io("cannot remove", e))?;
                }
                Ok(Err(e)) => return Err(io("cannot check the existing socket", e)),
                Ok(Ok(_)) | Err(_) => return Err(serving()),
            }
        }
        let listener = UnixListener::bind(socket).map_err(|e| io("cannot listen on", e))?;
        fs::set_permissions(socket, fs::Permissions::from_mode(0o600))
            .map_err(|e| io("cannot set the mode of", e))?;
        Ok(Listener {
            listener,
            socket: socket.to_path_buf(),
            _lock: lock,
        })
    }

    /// The next connection.
    pub(in crate::broker) async fn accept(&mut self) -> std::io::Result<Accepted> {
        self.listener.accept().await.map(|(stream, _)| stream)
    }

    /// Stops listening and removes the socket file (the lock goes with `self`).
    pub(in crate::broker) fn close(self) {
        drop(self.listener);
        if let Err(e) = fs::remove_file(&self.socket) {
            tracing::warn!("cannot remove {}: {e}", self.socket.display());
        }
    }
}

/// Takes an exclusive, non-blocking `flock` on `path`; `None` if another process holds it.
fn lock(path: &Path) -> std::io::Result<Option<fs::File>> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(file));
    }
    match std::io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
        e => Err(e),
    }
}

/// Whether the client of `stream` runs as this user; `Err` says why not, for the log.
pub(in crate::broker) fn admit(stream: &Accepted) -> Result<(), String> {
    match stream.peer_cred() {
        Ok(cred) if peer_allowed(our_uid(), cred.uid()) => Ok(()),
        Ok(cred) => Err(format!(
            "refused a connection from another user (uid {}, pid {:?})",
            cred.uid(),
            cred.pid()
        )),
        Err(e) => Err(format!(
            "refused a connection: cannot read the peer's credentials ({e})"
        )),
    }
}

/// Connects to the broker at `socket` within [`CONNECT_TIMEOUT`]. Refuses a socket whose
/// directory is not private to this user, and a broker run by another user.
/// [`BrokerError::NotRunning`] when there is no socket file or nobody listens.
pub(in crate::broker) async fn connect(socket: &Path) -> Result<Connected, BrokerError> {
    before_connect(socket)?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(socket))
        .await
        .map_err(|_| not_running(socket, std::io::ErrorKind::TimedOut.into()))?
        .map_err(|e| not_running(socket, e))?;
    check_server(socket, stream.as_raw_fd())?;
    Ok(stream)
}

/// [`connect`] without an async runtime: the same checks, a blocking socket. A local
/// connect does not wait (a listening socket takes it or refuses at once), so there is no
/// connect timeout to apply; reads and writes wait at most [`CONNECT_TIMEOUT`] until the
/// caller sets its own.
pub(in crate::broker) fn connect_blocking(
    socket: &Path,
) -> Result<std::os::unix::net::UnixStream, BrokerError> {
    before_connect(socket)?;
    let stream =
        std::os::unix::net::UnixStream::connect(socket).map_err(|e| not_running(socket, e))?;
    check_server(socket, stream.as_raw_fd())?;
    Ok(stream)
}

fn not_running(socket: &Path, source: std::io::Error) -> BrokerError {
    BrokerError::NotRunning {
        socket: socket.to_path_buf(),
        source,
    }
}

/// A socket file is there, in a directory private to this user.
fn before_connect(socket: &Path) -> Result<(), BrokerError> {
    fs::symlink_metadata(socket).map_err(|e| not_running(socket, e))?;
    check_private_dir(socket.parent().unwrap_or(Path::new("/")))?;
    Ok(())
}

/// The process that accepted our connection on `fd` runs as this user.
fn check_server(socket: &Path, fd: std::os::fd::RawFd) -> Result<(), BrokerError> {
    let peer = crate::sys::peer_uid(fd).map_err(|source| BrokerError::Io {
        what: "cannot read the peer credentials of",
        path: socket.to_path_buf(),
        source,
    })?;
    let ours = our_uid();
    if !peer_allowed(ours, peer) {
        return Err(BrokerError::WrongPeer {
            ours: format!("uid {ours}"),
            peer: format!("uid {peer}"),
        });
    }
    Ok(())
}

/// SIGHUP: reload the config.
pub(in crate::broker) struct Reload(Signal);

impl Reload {
    /// The next request to reload; `None` when none can come.
    pub(in crate::broker) async fn recv(&mut self) -> Option<()> {
        self.0.recv().await
    }
}

/// Installs the handlers that stop (SIGTERM, SIGINT) and reload (SIGHUP) a broker.
pub(in crate::broker) fn control() -> Result<(StopSignals, Reload), BrokerError> {
    let failed = |e| BrokerError::Transport(format!("cannot install a signal handler: {e}"));
    Ok((
        StopSignals::install().map_err(failed)?,
        Reload(signal(SignalKind::hangup()).map_err(failed)?),
    ))
}
