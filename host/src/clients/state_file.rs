//! [`StateFile`]: a small JSON file of what one tokenhost process learned for the next
//! ([`RejectedTokens`](super::RejectedTokens), the no-broker [`AskLedger`](super::AskLedger)).
//!
//! It lives in the user's private runtime directory (0700, checked on every read: an
//! unsafe directory reads as empty, and is refused for writing), is named after the
//! config file it belongs to, holds fingerprints and times but never a token, and is
//! replaced atomically. [`StateFile::update`] holds an exclusive lock on a lock file
//! beside it while it reads, changes and writes, so two processes do not lose each
//! other's entries.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::paths::{PrivateDirError, check_private_dir, prepare_private_dir};

/// Why a client record could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The runtime directory cannot be made, or is not private to this user.
    #[error(transparent)]
    PrivateDir(#[from] PrivateDirError),
    /// The record or its lock file could not be written.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The record's path.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// One state file, `<dir>/<kind>-<hash of the config's path>.json`.
#[derive(Debug, Clone)]
pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The `kind` file for `config` in `dir`.
    pub(crate) fn new(dir: &Path, kind: &str, config: &Path) -> Self {
        let canonical = fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
        let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
        StateFile {
            path: dir.join(format!("{kind}-{}.json", hex::encode(&digest[..8]))),
        }
    }

    /// The file's path.
    #[cfg(all(test, unix))]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// The file's contents; the default when it is missing, unreadable, malformed or in
    /// a directory that is not private.
    pub(crate) fn load<T: DeserializeOwned + Default>(&self) -> T {
        if check_private_dir(self.dir()).is_err() {
            return T::default();
        }
        fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Reads the contents, lets `change` edit them and writes them back, under the lock.
    pub(crate) fn update<T, R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, StateError>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let dir = self.dir();
        prepare_private_dir(dir)?;
        let io = |what, source| StateError::Io {
            what,
            path: self.path.clone(),
            source,
        };
        let _lock = lock(&self.path.with_extension("lock")).map_err(|e| io("cannot lock", e))?;
        let mut value = self.load();
        let answer = change(&mut value);
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| io("cannot write", e))?;
        serde_json::to_writer(&mut file, &value)
            .map_err(|e| io("cannot write", std::io::Error::other(e)))?;
        file.persist(&self.path)
            .map_err(|e| io("cannot write", e.error))?;
        Ok(answer)
    }
}

/// An exclusive lock on `path` (`flock` on Unix, `LockFileEx` on Windows), released when
/// the file is dropped.
fn lock(path: &Path) -> std::io::Result<fs::File> {
    let file = crate::sys::private_no_follow(
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true),
    )
    .open(path)?;
    file.lock()?;
    Ok(file)
}
