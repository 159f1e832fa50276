//! `token-exchange`: OAuth 2.0 token exchange (RFC 8693), e.g. GCP workload identity federation's STS.
//!
//! The plugin is `idp_common::flows::token_exchange::Source` exported with the SDK's macro; see
//! README.md for the config keys and the grants the host must give.

tokenhost_plugin::export_token_source!(idp_common::flows::token_exchange::Source);
