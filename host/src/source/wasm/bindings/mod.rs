//! The only place `bindgen!` runs: one module per contract version, as Zed's extension
//! host has one per API version, and [`latest`] for what new code targets.
//!
//! Each version's module re-exports the few generated names the rest of the crate uses,
//! so a wasmtime upgrade that changes generated names is fixed here. Which version a
//! plugin speaks is decided once, at load, from its exports (see `guest`).

pub(crate) mod v0_1;
pub(crate) mod v0_2;

pub(crate) use v0_2 as latest;

/// The contract's package name without a version.
pub(crate) const CONTRACT_PACKAGE: &str = "tokenhost:plugin";

/// The newest contract's `token-source` export, e.g. for error messages.
pub(crate) const TOKEN_SOURCE_EXPORT: &str = latest::TOKEN_SOURCE_EXPORT;
