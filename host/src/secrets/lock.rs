//! The per-provider lock across processes: an exclusive lock (`flock`, `LockFileEx`) on
//! `<data>/tokenhost/locks/<provider>.lock`, released when the [`SecretLock`] is dropped
//! (or the process dies: the kernel drops it with the descriptor). Waiting is bounded:
//! the lock is tried every few milliseconds until the caller's deadline.

use std::path::Path;
use std::time::{Duration, Instant};

/// How long between two tries for a held lock.
const RETRY: Duration = Duration::from_millis(20);

/// A held lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct SecretLock {
    _file: std::fs::File,
}

pub(super) enum LockError {
    Timeout,
    Io(String),
}

impl SecretLock {
    /// Takes the lock of `provider` in `dir`, waiting until `deadline` at most.
    pub(super) fn acquire(
        dir: &Path,
        provider: &str,
        deadline: Instant,
    ) -> Result<Self, LockError> {
        crate::paths::prepare_private_dir(dir).map_err(|e| LockError::Io(e.to_string()))?;
        let path = dir.join(format!("{}.lock", super::file_stem(provider)));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LockError::Io(format!("cannot open {}: {e}", path.display())))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(SecretLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(error)) => {
                    return Err(LockError::Io(format!(
                        "cannot lock {}: {error}",
                        path.display()
                    )));
                }
            }
            if Instant::now() + RETRY > deadline {
                return Err(LockError::Timeout);
            }
            std::thread::sleep(RETRY);
        }
    }
}
