//! `static-token`: the simplest well-behaved tokenhost plugin.
//!
//! `resolve` returns the config key `token`; each `refresh` returns `<token>-1`,
//! `<token>-2`, ... so a test can tell tokens apart. The optional key `ttl_ms` sets
//! the expiry to now + `ttl_ms`. Each call logs one info line (never the token).

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use exports::tokenhost::plugin::token_source::Guest;
use tokenhost::plugin::host::{self, LogLevel};
use tokenhost::plugin::types::{Error, RefreshContext, RefreshReason, Token};

wit_bindgen::generate!({
    path: "../../wit",
    world: "token-provider",
});

thread_local! {
    /// How many refreshes this instance has served.
    static REFRESHES: Cell<u64> = const { Cell::new(0) };
}

struct StaticToken;

/// The value of config key `key`, if present.
fn lookup(config: &[(String, String)], key: &str) -> Option<String> {
    config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

/// Reads `token` and `ttl_ms`, and returns the token value with its expiry.
fn configured() -> Result<(String, Option<u64>), Error> {
    let config = host::config();
    let token = lookup(&config, "token")
        .ok_or_else(|| Error::InvalidConfig("missing required config key `token`".to_string()))?;
    let expires_at_ms = match lookup(&config, "ttl_ms") {
        None => None,
        Some(raw) => {
            let ttl: u64 = raw.trim().parse().map_err(|_| {
                Error::InvalidConfig(
                    "config key `ttl_ms` must be a non-negative integer (milliseconds)".to_string(),
                )
            })?;
            Some(now_ms().saturating_add(ttl))
        }
    };
    Ok((token, expires_at_ms))
}

/// Milliseconds since the Unix epoch, from the host's wall clock.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Guest for StaticToken {
    fn resolve() -> Result<Token, Error> {
        host::log(LogLevel::Info, "static-token: resolve");
        let (value, expires_at_ms) = configured()?;
        Ok(Token {
            value,
            expires_at_ms,
        })
    }

    fn refresh(context: RefreshContext) -> Result<Token, Error> {
        let reason = match context.reason {
            RefreshReason::Unauthorized => "unauthorized",
            RefreshReason::Expiring => "expiring",
            RefreshReason::Forced => "forced",
        };
        let n = REFRESHES.with(|c| {
            let n = c.get() + 1;
            c.set(n);
            n
        });
        host::log(
            LogLevel::Info,
            &format!("static-token: refresh #{n} (reason: {reason})"),
        );
        let (token, expires_at_ms) = configured()?;
        Ok(Token {
            value: format!("{token}-{n}"),
            expires_at_ms,
        })
    }
}

export!(StaticToken);
