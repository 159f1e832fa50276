//! The proxy's Unix-socket listener (Linux and macOS): a socket file of mode 0600 that
//! admits only a peer of this user (`SO_PEERCRED`/`getpeereid`, the broker's
//! [`peer_allowed`](crate::broker::peer_allowed) rule), so it needs no key.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use super::ListenError;

/// A bound socket and its file, removed by [`cleanup`](Self::cleanup).
pub(crate) struct SocketListener {
    listener: UnixListener,
    path: PathBuf,
}

impl SocketListener {
    /// Binds `path`. A stale socket file (nobody listening) is replaced; a live one is
    /// refused, and so is a path that is not a socket.
    pub(crate) async fn bind(path: &Path) -> Result<SocketListener, ListenError> {
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
        Ok(SocketListener {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// The next connection from a peer of this user; others are logged and skipped.
    pub(crate) async fn accept(&self) -> std::io::Result<UnixStream> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let ours = crate::broker::our_uid();
            match stream.peer_cred() {
                Ok(cred) if crate::broker::peer_allowed(ours, cred.uid()) => return Ok(stream),
                Ok(cred) => tracing::warn!(
                    peer_uid = cred.uid(),
                    "refused a connection from another user"
                ),
                Err(e) => tracing::warn!("refused a connection: no peer credentials ({e})"),
            }
        }
    }

    /// Removes the socket file.
    pub(crate) fn cleanup(&self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}
