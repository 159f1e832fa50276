//! Talking to the person during [`TokenSource::login`](crate::TokenSource::login), through
//! the host: every function fails outside a login (the host refuses), and natively (unit
//! tests) there is no host, so they fail there too. Errors are `unavailable`.
//!
//! The host decides how: it opens a browser only when the login is interactive, and
//! otherwise prints the URL; it binds the loopback listener (127.0.0.1 only) and answers
//! the browser, so the plugin never holds a socket.

use crate::Error;

/// Shows `text` to the person (the host writes it to its stderr).
pub fn show_message(text: &str) -> Result<(), Error> {
    imp::show_message(text).map_err(Error::Unavailable)
}

/// Has the host open `url` in a browser, or print it. Whether a browser was started.
pub fn open_browser(url: &str) -> Result<bool, Error> {
    imp::open_browser(url).map_err(Error::Unavailable)
}

/// Binds the host's redirect listener on 127.0.0.1 (`port`, or a free one) for `path`;
/// returns the redirect URI to send to the identity provider.
pub fn listen_redirect(port: Option<u16>, path: &str) -> Result<String, Error> {
    imp::listen_redirect(port, path).map_err(Error::Unavailable)
}

/// Waits up to `timeout_ms` for the redirect; returns its query string (without `?`).
pub fn await_redirect(timeout_ms: u64) -> Result<String, Error> {
    imp::await_redirect(timeout_ms).map_err(Error::Unavailable)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::tokenhost::plugin::interaction as wit;

    pub fn show_message(text: &str) -> Result<(), String> {
        wit::show_message(text)
    }
    pub fn open_browser(url: &str) -> Result<bool, String> {
        wit::open_browser(url)
    }
    pub fn listen_redirect(port: Option<u16>, path: &str) -> Result<String, String> {
        wit::listen_redirect(port, path)
    }
    pub fn await_redirect(timeout_ms: u64) -> Result<String, String> {
        wit::await_redirect(timeout_ms)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    const NO_HOST: &str = "interaction needs the tokenhost host (build for wasm32-wasip2)";

    pub fn show_message(_: &str) -> Result<(), String> {
        Err(NO_HOST.into())
    }
    pub fn open_browser(_: &str) -> Result<bool, String> {
        Err(NO_HOST.into())
    }
    pub fn listen_redirect(_: Option<u16>, _: &str) -> Result<String, String> {
        Err(NO_HOST.into())
    }
    pub fn await_redirect(_: u64) -> Result<String, String> {
        Err(NO_HOST.into())
    }
}
