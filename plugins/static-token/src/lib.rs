//! `static-token`: the simplest well-behaved tokenhost plugin.
//!
//! `resolve` returns the config key `token`; each `refresh` returns `<token>-1`,
//! `<token>-2`, ... so a test can tell tokens apart. The optional key `ttl_ms` sets
//! the expiry to now + `ttl_ms`. Each call logs one info line (never the token).

use std::time::Duration;

use tokenhost_plugin::{Config, Error, RefreshReason, Token, TokenSource};

struct StaticToken {
    token: String,
    ttl: Option<Duration>,
    /// How many refreshes this instance has served.
    refreshes: u64,
}

impl StaticToken {
    fn issue(&self, value: String) -> Token {
        let token = Token::new(value);
        match self.ttl {
            Some(ttl) => token.expires_in(ttl),
            None => token,
        }
    }
}

impl TokenSource for StaticToken {
    fn new(config: Config) -> Result<Self, Error> {
        Ok(StaticToken {
            token: config.required("token")?.to_string(),
            ttl: config
                .parse("ttl_ms", "a non-negative integer (milliseconds)")?
                .map(Duration::from_millis),
            refreshes: 0,
        })
    }

    fn resolve(&mut self) -> Result<Token, Error> {
        tokenhost_plugin::info!("static-token: resolve");
        Ok(self.issue(self.token.clone()))
    }

    fn refresh(&mut self, reason: RefreshReason) -> Result<Token, Error> {
        self.refreshes += 1;
        let n = self.refreshes;
        tokenhost_plugin::info!("static-token: refresh #{n} (reason: {reason})");
        Ok(self.issue(format!("{}-{n}", self.token)))
    }
}

tokenhost_plugin::export_token_source!(StaticToken);
