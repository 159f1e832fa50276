//! Typed errors of the library.
//!
//! Every error names the provider it concerns and says what a person can do. None may
//! carry a token or a secret: sources build their messages from what they know is safe
//! (exit codes, capped stderr, the plugin's own error text), never from a token value.

use std::fmt;
use std::sync::Arc;

/// What kind of failure a source reported: who must act, and whether a retry may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The provider's configuration is wrong. A person must fix it.
    InvalidConfig,
    /// The identity provider refused. A person must act (credentials, grants).
    Denied,
    /// A transient failure; a retry may succeed.
    Unavailable,
    /// The source did not answer within its deadline.
    Timeout,
    /// The source crashed: a plugin trapped (panic, out of memory, stack overflow), or a
    /// command could not start or exited with a failure status.
    Crashed,
    /// The source answered with something that is not a usable token.
    BadOutput,
    /// Nobody is signed in, or the sign-in ended (a revoked refresh token): a person
    /// must run `tokenhost login <provider>`. Never retried, never prompted for.
    NotSignedIn,
}

impl FailureKind {
    /// Whether retrying later may help without a person acting.
    pub fn is_transient(self) -> bool {
        matches!(self, FailureKind::Unavailable | FailureKind::Timeout)
    }

    /// How the kind reads in messages (`denied`, `not signed in`, ...).
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::InvalidConfig => "invalid configuration",
            FailureKind::Denied => "denied",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Timeout => "timed out",
            FailureKind::Crashed => "failed",
            FailureKind::BadOutput => "bad output",
            FailureKind::NotSignedIn => "not signed in",
        }
    }
}

/// A token source failed. Displays as one line: `provider "id": <kind>: <message>`, the id
/// escaped with [`crate::text::escaped`]: an id comes from a config file and may hold ESC
/// or a direction override meant to restyle the terminal or disguise the message.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SourceError {
    provider: Arc<str>,
    kind: FailureKind,
    message: String,
    retry_after: Option<std::time::Duration>,
}

impl SourceError {
    /// A failure of `provider`'s source. `message` must not contain a secret.
    pub fn new(
        provider: impl Into<Arc<str>>,
        kind: FailureKind,
        message: impl Into<String>,
    ) -> Self {
        SourceError {
            provider: provider.into(),
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with the server's retry-after (an `unavailable` from a 429).
    pub fn with_retry_after(mut self, retry_after: Option<std::time::Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// How long the server asked to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// The provider whose source failed.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// What kind of failure it was.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The cause, as the source described it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == FailureKind::NotSignedIn {
            // `provider "corp": not signed in; run: tokenhost login corp`, with the
            // source's reason (a revoked sign-in) in parentheses when it gave one.
            let id = crate::text::escaped(&self.provider);
            let why = match self.message.is_empty() {
                true => String::new(),
                false => format!(" ({})", self.message),
            };
            return write!(
                f,
                "provider \"{id}\": not signed in{why}; run: tokenhost login {id}"
            );
        }
        write!(
            f,
            "provider \"{}\": {}: {}",
            crate::text::escaped(&self.provider),
            self.kind.label(),
            self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_provider_and_the_cause() {
        let error = SourceError::new("openai", FailureKind::Denied, "invalid_client");
        assert_eq!(
            error.to_string(),
            "provider \"openai\": denied: invalid_client"
        );
        assert_eq!(error.provider(), "openai");
    }

    #[test]
    fn not_signed_in_says_what_to_run() {
        let error = SourceError::new("corp", FailureKind::NotSignedIn, "");
        assert_eq!(
            error.to_string(),
            "provider \"corp\": not signed in; run: tokenhost login corp"
        );
        let error = SourceError::new("corp", FailureKind::NotSignedIn, "the sign-in was revoked");
        assert_eq!(
            error.to_string(),
            "provider \"corp\": not signed in (the sign-in was revoked); run: tokenhost login corp"
        );
        assert!(!FailureKind::NotSignedIn.is_transient());
    }

    #[test]
    fn display_escapes_controls_in_the_provider_id() {
        let id = "evil\u{1b}[2K\u{1b}[1Gok\u{9b}31m\u{202e}\nFAIL";
        let shown = SourceError::new(id, FailureKind::Unavailable, "down").to_string();
        assert_eq!(
            shown,
            "provider \"evil\\u{1b}[2K\\u{1b}[1Gok\\u{9b}31m\\u{202e}\\nFAIL\": unavailable: down"
        );
        for c in ['\u{1b}', '\u{9b}', '\u{202e}', '\n'] {
            assert!(!shown.contains(c), "{shown:?}");
        }
        // The id itself is kept as configured, for lookups.
        assert_eq!(
            SourceError::new(id, FailureKind::Timeout, "").provider(),
            id
        );
    }
}
