//! Bindings for contract 0.1 (`wit/token-source.wit`), frozen: every plugin built for
//! 0.1 keeps loading and behaving as it did.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "token-provider",
        exports: { default: async },
    });
}

pub(crate) use generated::exports::tokenhost::plugin::token_source::{
    Error as GuestError, RefreshContext, Token as GuestToken,
};
pub(crate) use generated::tokenhost::plugin::host::{Host as HostImports, LogLevel};
pub(crate) use generated::tokenhost::plugin::types::{
    Host as TypesImports, RefreshReason as GuestRefreshReason,
};
pub(crate) use generated::{TokenProvider, TokenProviderPre};

/// The export name of this version's `token-source` interface.
pub(crate) const TOKEN_SOURCE_EXPORT: &str = "tokenhost:plugin/token-source@0.1.0";
