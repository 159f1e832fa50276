//! Small per-provider values the host keeps between processes (a refresh token): in the
//! OS keyring, or in the file store the configuration opted into. Usable from every
//! export. The host takes the provider's lock on the first use in a call and holds it
//! to the call's end, so a read-refresh-store sequence in one call cannot interleave
//! with another process's. Errors are `unavailable` and never contain a value.
//!
//! Natively (unit tests) there is no host: every call fails.

use crate::Error;

/// The value stored under `key`, if any.
pub fn get(key: &str) -> Result<Option<String>, Error> {
    imp::get(key).map_err(Error::Unavailable)
}

/// Stores `value` under `key`, replacing any.
pub fn set(key: &str, value: &str) -> Result<(), Error> {
    imp::set(key, value).map_err(Error::Unavailable)
}

/// Deletes `key`; no error if it is absent.
pub fn delete(key: &str) -> Result<(), Error> {
    imp::delete(key).map_err(Error::Unavailable)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::tokenhost::plugin::secrets as wit;

    pub fn get(key: &str) -> Result<Option<String>, String> {
        wit::get(key)
    }
    pub fn set(key: &str, value: &str) -> Result<(), String> {
        wit::set(key, value)
    }
    pub fn delete(key: &str) -> Result<(), String> {
        wit::delete(key)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    const NO_HOST: &str = "storage needs the tokenhost host (build for wasm32-wasip2)";

    pub fn get(_: &str) -> Result<Option<String>, String> {
        Err(NO_HOST.into())
    }
    pub fn set(_: &str, _: &str) -> Result<(), String> {
        Err(NO_HOST.into())
    }
    pub fn delete(_: &str) -> Result<(), String> {
        Err(NO_HOST.into())
    }
}
