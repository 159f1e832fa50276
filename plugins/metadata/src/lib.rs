//! `metadata`: a token from an instance metadata server (GCE metadata server, Azure IMDS).
//!
//! The plugin is `idp_common::flows::metadata::Source` exported with the SDK's macro; see
//! README.md for the config keys and the grants the host must give.

tokenhost_plugin::export_token_source!(idp_common::flows::metadata::Source);
