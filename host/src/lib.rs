//! tokenhost: bearer tokens for HTTP clients from sandboxed token sources.
//!
//! Data flows one way: [`config`] (parse and validate) -> [`source`] (build a
//! [`TokenSource`] per provider: a [`CommandSource`](source::command::CommandSource) or a
//! [`WasmSource`](source::wasm::WasmSource)) -> [`AuthManager`] (cache, expiry, single-flight,
//! 401 recovery) -> callers such as [`AuthClient`], which sends requests with the token
//! and retries once after HTTP 401. Tokens travel as [`Token`], which never prints its value.
#![deny(missing_docs)]
#![deny(unreachable_pub)]

mod assembly;
#[cfg(feature = "broker")]
pub mod broker;
pub mod client;
#[cfg(feature = "broker")]
pub mod clients;
pub mod config;
mod digest;
pub mod error;
mod factory;
pub mod granter;
pub mod grants;
pub mod manager;
pub mod oci;
pub mod paths;
pub mod policy;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod publisher;
pub mod secrets;
pub mod source;
pub mod sys;
pub mod text;
pub mod token;
mod toml_error;

pub use assembly::{
    Prepared, ProviderFailure, Tokenhost, TokenhostBuilder, TokenhostError, load_config,
};
pub use client::{AuthClient, ClientError};
pub use error::{FailureKind, SourceError};
pub use factory::{BuildError, SourceFactory};
pub use manager::{AuthError, AuthManager};
pub use source::{LoginOptions, RefreshReason, TokenSource};
pub use token::Token;
