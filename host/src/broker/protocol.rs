//! The broker's JSON bodies, shared by the server and the client.

use serde::{Deserialize, Serialize};

use crate::error::FailureKind;
use crate::manager::{AuthError, ProviderStatus};
use crate::token::Token;

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"`.
    pub status: String,
    /// The config file served (absolute).
    pub config: String,
    /// The broker's process id.
    pub pid: u32,
    /// How many times the config was reloaded (SIGHUP) successfully.
    pub generation: u64,
}

/// A token as sent by `GET /v1/token/<provider>` and the POST endpoints. No `Debug`:
/// it holds the secret.
#[derive(Serialize, Deserialize)]
pub(crate) struct TokenBody {
    pub token: String,
    pub expires_at_ms: Option<u64>,
    pub fingerprint: String,
}

impl From<&Token> for TokenBody {
    fn from(token: &Token) -> Self {
        TokenBody {
            token: token.expose().to_string(),
            expires_at_ms: token.expires_at_ms(),
            fingerprint: token.fingerprint().to_string(),
        }
    }
}

/// The body of `POST /v1/token/<provider>/unauthorized`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UnauthorizedBody {
    pub fingerprint: String,
}

/// One entry of `GET /v1/providers`: what the broker knows, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider id.
    pub provider: String,
    /// The cached token's fingerprint (`sha256:...`), if any.
    pub fingerprint: Option<String>,
    /// Its expiry in milliseconds since the Unix epoch, if known.
    pub expires_at_ms: Option<u64>,
    /// Whether the cached token is still valid.
    pub valid: bool,
    /// Source calls since the provider was (re)loaded.
    pub source_calls: u64,
    /// The last source failure, if the last call failed.
    pub last_error: Option<String>,
}

impl From<ProviderStatus> for ProviderInfo {
    fn from(status: ProviderStatus) -> Self {
        ProviderInfo {
            provider: status.provider,
            fingerprint: status.fingerprint.map(|f| f.to_string()),
            expires_at_ms: status.expires_at_ms,
            valid: status.valid,
            source_calls: status.source_calls,
            last_error: status.last_error.map(|e| e.to_string()),
        }
    }
}

/// `GET /v1/providers`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProvidersBody {
    pub providers: Vec<ProviderInfo>,
}

/// An error body: `{"error": message, "kind": kind}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: String,
    pub kind: ErrorKind,
}

/// The `kind` of an error answer (`snake_case` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// 404: the broker's config has no such provider.
    UnknownProvider,
    /// 502: the provider's configuration is wrong.
    InvalidConfig,
    /// 502: the identity provider refused, or rejected the refreshed token too.
    Denied,
    /// 502: a transient failure.
    Unavailable,
    /// 504: the source did not answer in time.
    Timeout,
    /// 502: the source crashed.
    Crashed,
    /// 502: the source's answer was not a usable token.
    BadOutput,
    /// 502: nobody is signed in; a person must run `tokenhost login`.
    NotSignedIn,
    /// 400: the request body or a path segment is malformed.
    BadRequest,
    /// 404: no such endpoint.
    NotFound,
    /// 405: the endpoint exists, but not with this method.
    MethodNotAllowed,
    /// A kind this client does not know (a newer broker).
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// The HTTP status the broker answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::UnknownProvider | ErrorKind::NotFound => 404,
            ErrorKind::BadRequest => 400,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Timeout => 504,
            _ => 502,
        }
    }

    /// The kind of a manager error.
    pub fn of(error: &AuthError) -> ErrorKind {
        match error {
            AuthError::UnknownProvider { .. } => ErrorKind::UnknownProvider,
            other => match other.kind() {
                FailureKind::InvalidConfig => ErrorKind::InvalidConfig,
                FailureKind::Denied => ErrorKind::Denied,
                FailureKind::Unavailable => ErrorKind::Unavailable,
                FailureKind::Timeout => ErrorKind::Timeout,
                FailureKind::Crashed => ErrorKind::Crashed,
                FailureKind::BadOutput => ErrorKind::BadOutput,
                FailureKind::NotSignedIn => ErrorKind::NotSignedIn,
            },
        }
    }
}
