//! `oauth2`: OAuth 2.0 client credentials grant (RFC 6749 §4.4) with a client secret or a JWT client assertion (RFC 7523).
//!
//! A thin wit-bindgen layer over `idp_common::flows::client_credentials`; see README.md for the
//! config keys and the grants the host must give.

use exports::tokenhost::plugin::token_source::Guest;
use idp_common::config::Config;
use idp_common::flows::{Trigger, client_credentials};
use idp_common::{Issued, Level, Platform, PluginError};
use tokenhost::plugin::host::{self, LogLevel};
use tokenhost::plugin::types::{Error, RefreshContext, RefreshReason, Token};

wit_bindgen::generate!({
    path: "../../wit",
    world: "token-provider",
});

struct OAuth2;

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
    match client_credentials::fetch(&HostPlatform, &config, trigger) {
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

impl Guest for OAuth2 {
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

export!(OAuth2);
