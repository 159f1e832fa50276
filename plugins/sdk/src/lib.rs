//! Write [tokenhost](https://example.invalid/tokenhost) token-source plugins in Rust.
//!
//! A plugin is a WebAssembly component (target `wasm32-wasip2`) that hands the host
//! bearer tokens. With this crate a plugin is a type that implements [`TokenSource`] and
//! one call to [`export_token_source!`]:
//!
//! ```ignore
//! use tokenhost_plugin::{Config, Error, RefreshReason, Token, TokenSource};
//!
//! struct Greeting {
//!     token: String,
//! }
//!
//! impl TokenSource for Greeting {
//!     fn new(config: Config) -> Result<Self, Error> {
//!         Ok(Greeting { token: config.required("token")?.to_string() })
//!     }
//!
//!     fn resolve(&mut self) -> Result<Token, Error> {
//!         tokenhost_plugin::info!("handing out a token");
//!         Ok(Token::new(self.token.clone()))
//!     }
//! }
//!
//! tokenhost_plugin::export_token_source!(Greeting);
//! ```
//!
//! Why a crate on top of `wit-bindgen`: the generated bindings are one function per WIT
//! export with no place for state, a `Debug` that prints tokens, and nothing for the
//! chores every identity-provider plugin repeats. This crate owns the bindings (the only
//! `generate!` call, in [`bindings`]), keeps one value of your type per instance, and
//! brings the chores:
//! - [`Config`]: the provider's `auth.config` table, with errors that name the key;
//! - [`log`](mod@log) and the [`info!`]-style macros: lines in the host's log;
//! - [`http`]: requests over wasi:http, JSON and form bodies, and the mapping of
//!   failures to the contract's error kinds;
//! - [`interaction`] (during [`TokenSource::login`]: a message, a browser, one loopback
//!   redirect) and [`storage`] (small per-provider values such as a refresh token);
//! - [`secret`], [`redact`], [`form`], [`url`], [`oauth`]: the building blocks of OAuth 2.0
//!   flows.
//!
//! Everything but the host calls builds and tests natively, so plugin logic can be
//! unit-tested with `cargo test`; [`Platform`] is the seam for faking the outside world,
//! and [`testing::FakePlatform`] a ready fake.

pub mod bindings;
pub mod config;
mod error;
pub mod form;
pub mod http;
pub mod interaction;
pub mod log;
pub mod oauth;
mod platform;
pub mod redact;
pub mod secret;
mod source;
pub mod storage;
pub mod testing;
mod token;
pub mod url;

pub use config::Config;
pub use error::Error;
pub use platform::{Host, MAX_FILE_BYTES, Platform};
pub use source::{LoginOptions, RefreshContext, RefreshReason, TokenSource};
pub use token::Token;

/// The version of the `tokenhost:plugin` WIT package this crate builds plugins for.
/// The host refuses a plugin built for a contract major version it does not know.
pub const CONTRACT_VERSION: &str = "0.2.0";

#[doc(hidden)]
pub mod __private {
    pub use crate::source::{login, refresh, resolve};
}
