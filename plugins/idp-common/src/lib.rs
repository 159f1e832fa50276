//! The flows of tokenhost's identity-provider plugins (`oauth2`, `token-exchange`,
//! `metadata`), one module each in [`flows`].
//!
//! Each plugin crate is a [`tokenhost_plugin::TokenSource`] that calls its flow. A flow
//! reaches the outside world only through a [`tokenhost_plugin::Platform`]: environment
//! variables, files, the clock, outgoing HTTP and the host log. Tests give a flow a fake
//! platform, so everything but the wasi:http calls runs natively.
//!
//! Secrets (client secrets, assertions, subject tokens, issued tokens) are held in
//! [`tokenhost_plugin::secret::Secret`], whose `Debug` hides the value, and every error
//! message a flow returns is passed through a [`tokenhost_plugin::redact::Redactor`]
//! holding the secrets of that request in every form an IdP may echo them (raw,
//! form-urlencoded, inside the base64 of a `Basic` credential, any JWT).

pub mod assertion;
pub mod flows;
