//! The token a plugin hands the host.

use std::time::Duration;

use crate::Platform;

/// A bearer token and when it expires. `Debug` shows the token's length, never its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The token itself, with no "Bearer " prefix. The host refuses an empty value, one
    /// over 16 KiB, or one with anything but visible ASCII, spaces and tabs (no CR, LF,
    /// control bytes or non-ASCII characters).
    pub value: String,
    /// When it expires, in milliseconds since the Unix epoch, if known. Without it the
    /// host reads a JWT's `exp` claim, then falls back to the provider's refresh interval.
    pub expires_at_ms: Option<u64>,
}

impl Token {
    /// A token with no known expiry.
    pub fn new(value: impl Into<String>) -> Self {
        Token {
            value: value.into(),
            expires_at_ms: None,
        }
    }

    /// This token, expiring at `expires_at_ms` (milliseconds since the Unix epoch).
    pub fn expires_at_ms(mut self, expires_at_ms: u64) -> Self {
        self.expires_at_ms = Some(expires_at_ms);
        self
    }

    /// This token, expiring `ttl` from now by the host's wall clock.
    pub fn expires_in(self, ttl: Duration) -> Self {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let now = crate::Host.now_ms();
        self.expires_at_ms(now.saturating_add(ttl_ms))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let token = Token::new("s3cr3t-value").expires_at_ms(7);
        let shown = format!("{token:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(shown, "Token { value: <12 bytes>, expires_at_ms: Some(7) }");
    }

    #[test]
    fn expires_in_is_relative_to_now() {
        let before = crate::Host.now_ms();
        let token = Token::new("t").expires_in(Duration::from_secs(60));
        let at = token.expires_at_ms.unwrap();
        assert!(at >= before + 60_000 && at <= crate::Host.now_ms() + 60_000);
    }
}
