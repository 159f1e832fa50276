//! `oauth2`: OAuth 2.0 client credentials grant (RFC 6749 §4.4) with a client secret, a JWT client assertion from a file, or an assertion it signs itself from a private key (RFC 7523, `private_key_jwt`).
//!
//! The plugin is `idp_common::flows::client_credentials::Source` exported with the SDK's macro; see
//! README.md for the config keys and the grants the host must give.

tokenhost_plugin::export_token_source!(idp_common::flows::client_credentials::Source);
