//! A tokenhost plugin: replace the body of `resolve` with a call to your identity
//! provider.
//!
//! As it stands it hands out the config key `token` (with an optional `ttl_ms`), which is
//! enough to see the whole path work: `tokenhost token <provider>` prints it.

use std::time::Duration;

use tokenhost_plugin::{Config, Error, RefreshReason, Token, TokenSource};

/// The plugin's state: built once per instance from the provider's `auth.config` table,
/// kept while the host keeps the instance alive.
struct Plugin {
    token: String,
    ttl: Option<Duration>,
}

impl TokenSource for Plugin {
    fn new(config: Config) -> Result<Self, Error> {
        // Read and check every key here: a mistake is reported as `invalid-config`
        // naming the key, before any token is asked for.
        Ok(Plugin {
            token: config.required("token")?.to_string(),
            ttl: config
                .parse("ttl_ms", "a whole number of milliseconds")?
                .map(Duration::from_millis),
        })
    }

    fn resolve(&mut self) -> Result<Token, Error> {
        // Log what happened, never a secret: the host's log is read by people.
        tokenhost_plugin::info!("handing out the configured token");
        let token = Token::new(self.token.clone());
        Ok(match self.ttl {
            Some(ttl) => token.expires_in(ttl),
            None => token,
        })
    }

    fn refresh(&mut self, reason: RefreshReason) -> Result<Token, Error> {
        // `reason` is `unauthorized` (a server rejected the last token), `expiring` or
        // `forced`. A plugin that caches tokens of its own should drop them here.
        tokenhost_plugin::debug!("refresh ({reason})");
        self.resolve()
    }
}

tokenhost_plugin::export_token_source!(Plugin);
