//! `metadata`: a token from an instance metadata server (GCE metadata server, Azure IMDS).
//!
//! A thin wit-bindgen layer over `idp_common::flows::metadata`; see README.md for the
//! config keys and the grants the host must give.

use exports::tokenhost::plugin::token_source::Guest;
use idp_common::config::Config;
use idp_common::flows::{Trigger, metadata};
use idp_common::{Issued, Level, Platform, PluginError};
use tokenhost::plugin::host::{self, LogLevel};
use tokenhost::plugin::types::{Error, RefreshContext, RefreshReason, Token};

wit_bindgen::generate!({
    path: "../../wit",
    world: "token-provider",
});

struct Metadata;

/// Env vars, files, clock and HTTP come from std and wasi; logs go to the host.
struct HostPlatform;

impl Platform for HostPlatform {
    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        host::log(level, message);
    }
}

fn run(trigger: Trigger) -> Result<Token, Error> {
    let config = Config::new(host::config());
    match metadata::fetch(&HostPlatform, &config, trigger) {
        Ok(Issued {
            value,
            expires_at_ms,
        }) => Ok(Token {
            value,
            expires_at_ms,
        }),
        Err(PluginError::InvalidConfig(m)) => Err(Error::InvalidConfig(m)),
        Err(PluginError::Denied(m)) => Err(Error::Denied(m)),
        Err(PluginError::Unavailable(m)) => Err(Error::Unavailable(m)),
    }
}

impl Guest for Metadata {
    fn resolve() -> Result<Token, Error> {
        run(Trigger::Resolve)
    }

    fn refresh(context: RefreshContext) -> Result<Token, Error> {
        run(Trigger::Refresh(match context.reason {
            RefreshReason::Unauthorized => "unauthorized",
            RefreshReason::Expiring => "expiring",
            RefreshReason::Forced => "forced",
        }))
    }
}

export!(Metadata);
