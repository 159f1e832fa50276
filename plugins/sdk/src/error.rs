//! The contract's kinds of failure.

/// Why a plugin could not produce a token; mirrors the WIT `error` variant, whose kind
/// tells the host whether retrying can help.
///
/// The message is shown to people and written to logs: it must never contain a secret
/// (see [`crate::secret::redact`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The configuration is wrong (a missing or malformed key); a person must fix it.
    InvalidConfig(String),
    /// The identity provider refused (bad credentials, revoked grant); a person must act.
    Denied(String),
    /// A transient failure (network, 5xx, rate limit); retrying later may help.
    Unavailable(String),
    /// Unavailable, and the server said when to try again (a 429 or 503 with
    /// `Retry-After`): the host does not call the plugin for this provider again
    /// before `after` has passed (capped by the host), serving a still-valid cached
    /// token meanwhile.
    RetryLater {
        /// What failed, as for [`Error::Unavailable`].
        message: String,
        /// How long the server asked to wait.
        after: std::time::Duration,
    },
    /// Nobody is signed in, or the sign-in ended (a revoked refresh token): a person must
    /// run `tokenhost login <provider>`. The message says why, or is empty.
    NotSignedIn(String),
    /// The plugin does not support what was asked (the default [`login`]).
    ///
    /// [`login`]: crate::TokenSource::login
    Unsupported(String),
}

impl Error {
    /// An [`Error::InvalidConfig`].
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Error::InvalidConfig(message.into())
    }

    /// An [`Error::Denied`].
    pub fn denied(message: impl Into<String>) -> Self {
        Error::Denied(message.into())
    }

    /// An [`Error::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable(message.into())
    }

    /// An [`Error::RetryLater`]: unavailable, try again after `after`.
    pub fn retry_later(message: impl Into<String>, after: std::time::Duration) -> Self {
        Error::RetryLater {
            message: message.into(),
            after,
        }
    }

    /// How long the server asked to wait before the next try, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::RetryLater { after, .. } => Some(*after),
            _ => None,
        }
    }

    /// An [`Error::NotSignedIn`].
    pub fn not_signed_in(message: impl Into<String>) -> Self {
        Error::NotSignedIn(message.into())
    }

    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidConfig(m)
            | Error::Denied(m)
            | Error::Unavailable(m)
            | Error::RetryLater { message: m, .. }
            | Error::NotSignedIn(m)
            | Error::Unsupported(m) => m,
        }
    }

    /// The same kind of error with its message passed through `f`.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Error::InvalidConfig(m) => Error::InvalidConfig(f(m)),
            Error::Denied(m) => Error::Denied(f(m)),
            Error::Unavailable(m) => Error::Unavailable(f(m)),
            Error::RetryLater { message, after } => Error::RetryLater {
                message: f(message),
                after,
            },
            Error::NotSignedIn(m) => Error::NotSignedIn(f(m)),
            Error::Unsupported(m) => Error::Unsupported(f(m)),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Error::InvalidConfig(_) => "invalid config",
            Error::Denied(_) => "denied",
            Error::Unavailable(_) | Error::RetryLater { .. } => "unavailable",
            Error::NotSignedIn(_) => "not signed in",
            Error::Unsupported(_) => "unsupported",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}
