//! Where tokenhost keeps things, and the private runtime directory's checks.
//!
//! One module, so that the broker, the client records ([`clients`](crate::clients)), the
//! compiled-plugin cache and the config agree on the user's directories, and so that
//! nothing else reads `HOME` or the XDG variables itself.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An environment variable's value, if set and not empty.
pub fn non_empty_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// `$HOME`, else `/`.
pub(crate) fn home_dir() -> PathBuf {
    non_empty_env("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `$XDG_CACHE_HOME`, else `~/.cache`.
pub(crate) fn cache_home() -> PathBuf {
    non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".cache"))
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub(crate) fn config_home() -> PathBuf {
    non_empty_env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".config"))
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
pub(crate) fn data_home() -> PathBuf {
    non_empty_env("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".local").join("share"))
}

/// The user's private runtime directory for tokenhost: `$XDG_RUNTIME_DIR/tokenhost` when
/// that is an existing absolute directory, else `$XDG_CACHE_HOME/tokenhost/run`
/// (`~/.cache/tokenhost/run`). Broker sockets and the client records live here. No I/O
/// beyond one `stat` of `$XDG_RUNTIME_DIR`; see [`prepare_private_dir`] before use.
pub fn runtime_dir() -> PathBuf {
    if let Some(runtime) = non_empty_env("XDG_RUNTIME_DIR").map(PathBuf::from)
        && runtime.is_absolute()
        && runtime.is_dir()
    {
        return runtime.join("tokenhost");
    }
    cache_home().join("tokenhost").join("run")
}

/// A private directory that cannot be made or trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateDirError {
    /// It is not a directory of ours that only we can write.
    #[error("refusing to use {}: {reason}", .path.display())]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// It could not be created.
    #[error("cannot create {}: {source}", .path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Creates `dir` (mode 0700; its parents as usual) if it does not exist, then checks it
/// with [`check_private_dir`].
pub fn prepare_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    let create = |source| PrivateDirError::Create {
        path: dir.to_path_buf(),
        source,
    };
    if fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(create)?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(create(e)),
            _ => {}
        }
    }
    check_private_dir(dir)
}

/// Checks that `dir` is a directory (not a symlink), owned by this user, that no one
/// else can write to.
pub fn check_private_dir(dir: &Path) -> Result<(), PrivateDirError> {
    let unsafe_dir = |reason: String| PrivateDirError::Unsafe {
        path: dir.to_path_buf(),
        reason,
    };
    let meta = fs::symlink_metadata(dir).map_err(|e| unsafe_dir(e.to_string()))?;
    if !meta.is_dir() {
        return Err(unsafe_dir("not a directory".into()));
    }
    let ours = crate::sys::effective_uid();
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
