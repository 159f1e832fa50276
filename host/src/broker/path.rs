//! Where a config's broker listens: one endpoint per user and per config file.
//!
//! The config path is made canonical (absolute, symlinks resolved) so every spelling of
//! one file meets the same broker; its digest is the first 16 hex digits of
//! sha256(that path).
//!
//! - Unix: the socket `<dir>/broker-<digest>.sock`, where `<dir>` is
//!   `$XDG_RUNTIME_DIR/tokenhost` when that is an existing directory, else
//!   `$XDG_CACHE_HOME/tokenhost/run` (`~/.cache/tokenhost/run`): private to the user,
//!   which makes the socket per user.
//! - Windows: the named pipe `\\.\pipe\tokenhost-<user SID>-broker-<digest>`. Pipe names
//!   are one namespace for the whole machine, so the user's SID is in the name; the name
//!   is not a secret and proves nothing (see `transport` for what does).

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The private [`runtime_dir`](crate::paths::runtime_dir): where the broker sockets are
/// (Unix), and the records of what went to command-run clients without a broker.
pub fn socket_dir() -> PathBuf {
    crate::paths::runtime_dir()
}

/// The endpoint of the broker for the config file at `config`: a socket in
/// [`socket_dir`] (Unix), a named pipe of this user (Windows).
#[cfg(unix)]
pub fn socket_path(config: &Path) -> PathBuf {
    socket_path_in(&socket_dir(), config)
}

/// The endpoint of the broker for the config file at `config`: a socket in
/// [`socket_dir`] (Unix), a named pipe of this user (Windows).
#[cfg(windows)]
pub fn socket_path(config: &Path) -> PathBuf {
    // Without a SID nothing can connect anyway (both ends need it): the name then only
    // has to be well-formed.
    let user = crate::sys::current_user()
        .and_then(|user| user.text())
        .unwrap_or_else(|_| "unknown-user".into());
    pipe_name(&user, config)
}

/// The socket of the broker for `config` in `dir`.
#[cfg(unix)]
pub fn socket_path_in(dir: &Path, config: &Path) -> PathBuf {
    dir.join(format!("broker-{}.sock", config_digest(config)))
}

/// The pipe of the broker for `config` run by the user whose SID is `user`.
#[cfg(windows)]
pub(super) fn pipe_name(user: &str, config: &Path) -> PathBuf {
    PathBuf::from(format!(
        r"\\.\pipe\tokenhost-{user}-broker-{}",
        config_digest(config)
    ))
}

/// The first 16 hex digits of sha256 of the canonical path of `config`.
fn config_digest(config: &Path) -> String {
    let canonical = fs::canonicalize(config)
        .or_else(|_| std::path::absolute(config))
        .unwrap_or_else(|_| config.to_path_buf());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..8])
}
