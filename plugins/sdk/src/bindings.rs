//! The WIT bindings: the crate's only `wit_bindgen::generate!`.
//!
//! Plugins do not use these directly: [`crate::TokenSource`] and
//! [`crate::export_token_source!`] wrap the export, [`crate::Config`] and
//! [`crate::log`](mod@crate::log) the imports. They are public so that a plugin that needs
//! something this crate does not wrap yet can still reach it.

// Contract 0.2 (`wit/v0.2`); plugins built with an older release of this crate speak
// 0.1, which the host keeps loading.
wit_bindgen::generate!({
    path: "../../wit/v0.2",
    world: "token-provider",
    pub_export_macro: true,
    export_macro_name: "__export_token_provider",
    default_bindings_module: "tokenhost_plugin::bindings",
});
