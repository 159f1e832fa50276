//! The outside world as a plugin sees it, behind one trait so that plugin logic can be
//! tested natively with a fake.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::http;
use crate::log::Level;

/// The most bytes read from a credential file (a JWT is a few KiB).
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// Everything plugin logic needs from outside: environment variables, files, the clock,
/// randomness, outgoing HTTP and the host log. [`Host`] is the real one; a test gives the same code a
/// fake that overrides what it needs.
///
/// The defaults use std (which the host limits to the env vars and paths the provider
/// grants) and wasi:http (limited to `allowed_hosts`).
pub trait Platform {
    /// Writes a line to the host log.
    fn log(&self, level: Level, message: &str) {
        crate::log::write(level, message);
    }

    /// The environment variable `name`.
    fn env_var(&self, name: &str) -> Result<String, std::env::VarError> {
        std::env::var(name)
    }

    /// Up to `cap + 1` bytes of the file at `path` (so a caller can tell "too large").
    fn read_file(&self, path: &str, cap: usize) -> std::io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        let mut bytes = Vec::new();
        file.take(cap as u64 + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    /// Sends one HTTP request.
    fn send(&self, request: &http::Request) -> Result<http::Response, http::HttpError> {
        http::send(request)
    }

    /// `len` bytes from a cryptographically secure source (for a JWT's `jti`, RSA
    /// blinding). In a plugin they come from `wasi:random`, which the host always grants;
    /// a native build has no such source and fails with `unavailable`.
    fn random_bytes(&self, len: usize) -> Result<Vec<u8>, Error> {
        random_bytes(len)
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
fn random_bytes(len: usize) -> Result<Vec<u8>, Error> {
    Ok(wasip2::random::random::get_random_bytes(len as u64))
}

#[cfg(not(all(target_arch = "wasm32", target_os = "wasi")))]
fn random_bytes(_len: usize) -> Result<Vec<u8>, Error> {
    Err(Error::Unavailable(
        "random numbers need the wasm32-wasip2 build of this plugin (wasi:random)".to_string(),
    ))
}

/// The real platform: the host's log, and what WASI and wasi:http grant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host;

impl Platform for Host {}
