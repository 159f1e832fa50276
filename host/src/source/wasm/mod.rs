//! The WebAssembly source: plugins run as wasmtime components in a deny-all sandbox.
//!
//! One concern per module: `bindings` (the only `bindgen!`, one module per contract
//! version), [`guest`] (one interface over those versions), [`engine`] (the engine,
//! epoch ticker and loading), [`cache`] (compiled code on disk), [`sandbox`] (the store
//! data and its deny-all builder), `host_impl` (the WIT imports, one file per version),
//! `plugin_file` (reading a plugin once, and what was approved),
//! [`interaction`] (the person-facing side of `login`), [`output`]
//! (capped stdout/stderr), [`http`] (outgoing requests behind the allowlist: their
//! proxy, their failures told apart, what is in flight), [`limits`] (one memory budget
//! for memories, tables and host resources), [`inspect`] (what a plugin imports and
//! exports) and [`source`] (the [`WasmSource`] the manager drives). No wasmtime type
//! leaves this module: the bindings, the engine and compiled components stay inside.

pub(crate) mod bindings;
pub mod cache;
pub mod engine;
pub mod guest;
mod host_impl;
pub mod http;
pub mod inspect;
pub mod interaction;
pub mod limits;
pub mod output;
mod plugin_file;
pub mod sandbox;
pub mod source;

pub use cache::CompiledCache;
pub use engine::{PluginLoadError, PluginRuntime, RuntimeError};
pub(crate) use plugin_file::{Approved, Prior, read_identified};
pub use source::WasmSource;
