//! The end-to-end tests: one test binary (each binary links wasmtime, so one keeps CI
//! fast), one module per area. Real plugins, real processes, real servers on loopback.
//!
//! Unix only for now: they drive `sh`, Unix sockets and permission bits. On Windows the
//! library's own tests run under Wine (`scripts/check-platforms`).
#![cfg(unix)]

mod support;

mod broker;
mod cli;
mod client;
mod codex;
mod demo;
mod foreign_plugins;
mod git;
mod grants;
mod hostile_plugins;
mod kubectl;
mod login;
mod network_errors;
mod network_plugins;
mod oci;
mod oidc_provider;
mod plugin_sdk;
mod policy;
mod proxy;
mod reask;
mod retry_after;
mod signatures;
mod wasm_source;
