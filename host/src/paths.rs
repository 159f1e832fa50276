//! Where tokenhost keeps things, and the private runtime directory's checks.
//!
//! One module, so that the broker, the client records ([`clients`](crate::clients)), the
//! compiled-plugin cache and the config agree on the user's directories, and so that
//! nothing else reads `HOME` or the XDG variables itself.

use std::fs;
use std::path::{Path, PathBuf};

/// An environment variable's value, if set and not empty.
pub fn non_empty_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// `$HOME` (`%USERPROFILE%` on Windows), else `/`.
pub(crate) fn home_dir() -> PathBuf {
    let home = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    non_empty_env(home)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `$XDG_CACHE_HOME` when set; else the platform's: `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows.
pub(crate) fn cache_home() -> PathBuf {
    non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| platform_dir("LOCALAPPDATA", "Library/Caches", ".cache"))
}

/// `$XDG_CONFIG_HOME` when set; else the platform's: `~/.config` on Linux,
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
pub(crate) fn config_home() -> PathBuf {
    non_empty_env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| platform_dir("APPDATA", "Library/Application Support", ".config"))
}

/// The platform's convention: a Windows known folder from `windows_env`, the macOS
/// folder under the home directory, or the XDG default under it elsewhere.
fn platform_dir(windows_env: &str, macos: &str, xdg: &str) -> PathBuf {
    if cfg!(windows) {
        if let Some(dir) = non_empty_env(windows_env) {
            return PathBuf::from(dir);
        }
        return home_dir().join("AppData").join(match windows_env {
            "APPDATA" => "Roaming",
            _ => "Local",
        });
    }
    match cfg!(target_os = "macos") {
        true => home_dir().join(macos),
        false => home_dir().join(xdg),
    }
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
        match crate::sys::create_private_dir(dir) {
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
    match crate::sys::private_dir_problem(dir, &meta) {
        Some(reason) => Err(unsafe_dir(reason)),
        None => Ok(()),
    }
}
