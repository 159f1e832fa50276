//! Where a config's broker socket lives, and the checks on its directory.
//!
//! `<dir>/broker-<first 16 hex digits of sha256(config path)>.sock`, where the config
//! path is canonical (absolute, symlinks resolved) so every spelling of one file meets
//! the same broker, and `<dir>` is `$XDG_RUNTIME_DIR/tokenhost` when that is an existing
//! directory, else `$XDG_CACHE_HOME/tokenhost/run` (`~/.cache/tokenhost/run`).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::BrokerError;
use crate::config::{home_dir, non_empty_env};

/// The directory that holds broker sockets (see the module docs). No I/O beyond one
/// `stat` of `$XDG_RUNTIME_DIR`.
pub fn socket_dir() -> PathBuf {
    if let Some(runtime) = non_empty_env("XDG_RUNTIME_DIR").map(PathBuf::from)
        && runtime.is_absolute()
        && runtime.is_dir()
    {
        return runtime.join("tokenhost");
    }
    let cache = non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".cache"));
    cache.join("tokenhost").join("run")
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
    let digest = Sha256::digest(canonical.as_os_str().as_bytes());
    dir.join(format!("broker-{}.sock", hex::encode(&digest[..8])))
}

/// Creates `dir` (mode 0700; its parents as usual) if it does not exist, then checks it
/// with [`check_private_dir`].
pub fn prepare_private_dir(dir: &Path) -> Result<(), BrokerError> {
    let io = |source| BrokerError::Io {
        what: "cannot create",
        path: dir.to_path_buf(),
        source,
    };
    if fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io(e)),
            _ => {}
        }
    }
    check_private_dir(dir)
}

/// Checks that `dir` is a directory (not a symlink), owned by this user, that no one
/// else can write to.
pub fn check_private_dir(dir: &Path) -> Result<(), BrokerError> {
    let unsafe_dir = |reason: String| BrokerError::UnsafeDir {
        path: dir.to_path_buf(),
        reason,
    };
    let meta = fs::symlink_metadata(dir).map_err(|e| unsafe_dir(e.to_string()))?;
    if !meta.is_dir() {
        return Err(unsafe_dir("not a directory".into()));
    }
    let ours = super::our_uid();
    if meta.uid() != ours {
        return Err(unsafe_dir(format!(
            "owned by uid {}, not this user ({ours})",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "writable by others (mode {mode:o}); run chmod 700 on it"
        )));
    }
    Ok(())
}
