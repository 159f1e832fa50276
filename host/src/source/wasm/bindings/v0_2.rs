//! Bindings for contract 0.2 (`wit/v0.2/token-source.wit`): 0.1 plus `login`, the
//! `interaction` and `secrets` imports, the rejected token's fingerprint, `retry-after`
//! and `not-signed-in`. The imports that may wait (a redirect, a keyring, a lock) are
//! async; the others (`log`, `config`, showing a message, opening a browser) are plain
//! calls: an async import costs a boxed future polled on the plugin's fiber, about 6% of
//! a warm refresh that logs one line.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "token-provider",
        imports: {
            "tokenhost:plugin/interaction.listen-redirect": async,
            "tokenhost:plugin/interaction.await-redirect": async,
            "tokenhost:plugin/secrets.get": async,
            "tokenhost:plugin/secrets.set": async,
            "tokenhost:plugin/secrets.delete": async,
        },
        exports: { default: async },
    });
}

pub(crate) use generated::exports::tokenhost::plugin::token_source::{
    Error as GuestError, LoginOptions, RefreshContext, Token as GuestToken,
};
pub(crate) use generated::tokenhost::plugin::host::{Host as HostImports, LogLevel};
pub(crate) use generated::tokenhost::plugin::interaction::Host as InteractionImports;
pub(crate) use generated::tokenhost::plugin::secrets::Host as SecretsImports;
pub(crate) use generated::tokenhost::plugin::types::{
    Host as TypesImports, RefreshReason as GuestRefreshReason,
};
pub(crate) use generated::{TokenProvider, TokenProviderPre};

/// The export name of this version's `token-source` interface.
pub(crate) const TOKEN_SOURCE_EXPORT: &str = "tokenhost:plugin/token-source@0.2.0";
