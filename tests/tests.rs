//! The end-to-end tests: one test binary (each binary links wasmtime, so one keeps CI
//! fast), one module per area. Real plugins, real processes, real servers on loopback.

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
mod oidc_provider;
mod plugin_sdk;
mod policy;
mod reask;
mod wasm_source;
