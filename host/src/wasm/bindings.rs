//! The only place `bindgen!` runs: host-side bindings for the `token-provider` world.
//!
//! The rest of the crate uses the re-exports below, so a wasmtime upgrade that changes
//! generated names is fixed here.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "token-provider",
        exports: { default: async },
    });
}

pub use generated::exports::tokenhost::plugin::token_source::{
    Error as GuestError, RefreshContext, Token as GuestToken,
};
pub use generated::tokenhost::plugin::host::{Host as HostImports, LogLevel};
pub use generated::tokenhost::plugin::types::{
    Host as TypesImports, RefreshReason as GuestRefreshReason,
};
pub use generated::{TokenProvider, TokenProviderPre};

/// The contract's package and version, as the plugin's export name spells it.
pub const TOKEN_SOURCE_EXPORT: &str = "tokenhost:plugin/token-source@0.1.0";

/// The contract's package name without a version.
pub const CONTRACT_PACKAGE: &str = "tokenhost:plugin";
