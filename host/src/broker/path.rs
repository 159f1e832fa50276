//! Where a config's broker socket lives.
//!
//! `<dir>/broker-<first 16 hex digits of sha256(config path)>.sock`, where the config
//! path is canonical (absolute, symlinks resolved) so every spelling of one file meets
//! the same broker, and `<dir>` is `$XDG_RUNTIME_DIR/tokenhost` when that is an existing
//! directory, else `$XDG_CACHE_HOME/tokenhost/run` (`~/.cache/tokenhost/run`).

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The directory that holds broker sockets: the private
/// [`runtime_dir`](crate::paths::runtime_dir).
pub fn socket_dir() -> PathBuf {
    crate::paths::runtime_dir()
}

/// The socket of the broker for the config file at `config`, in [`socket_dir`].
pub fn socket_path(config: &Path) -> PathBuf {
    socket_path_in(&socket_dir(), config)
}

/// The socket of the broker for `config` in `dir`.
pub fn socket_path_in(dir: &Path, config: &Path) -> PathBuf {
    let canonical = fs::canonicalize(config)
        .or_else(|_| std::path::absolute(config))
        .unwrap_or_else(|_| config.to_path_buf());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    dir.join(format!("broker-{}.sock", hex::encode(&digest[..8])))
}
