//! The one trait every token source meets, and the command source.
//!
//! The [`AuthManager`](crate::AuthManager) drives sources only through [`TokenSource`]:
//! it does not know whether a token comes from a child process ([`command`]) or a
//! WebAssembly plugin ([`WasmSource`](wasm::WasmSource)). Which one a provider
//! gets is decided by the [`SourceFactory`](crate::SourceFactory), above both.

pub mod command;
#[cfg(test)]
pub(crate) mod counting;
#[cfg(feature = "wasm")]
pub mod wasm;

use async_trait::async_trait;

use crate::error::SourceError;
use crate::token::Token;

/// Why the manager asks a source for a new token (mirrors the WIT `refresh-reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshReason {
    /// A server rejected the current token with HTTP 401.
    Unauthorized,
    /// The current token is about to expire or is older than the refresh interval.
    Expiring,
    /// Somebody asked for a fresh token.
    Forced,
}

/// How an interactive sign-in runs (`tokenhost login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginOptions {
    /// Whether a person is at a terminal and a browser may be opened; otherwise URLs are
    /// printed on stderr.
    pub interactive: bool,
}

/// Something that can produce bearer tokens for one provider.
///
/// Implementations validate tokens (through [`Token::new`]) and build every error with
/// the provider id and a cause that holds no secret. They need not cache or
/// deduplicate calls: the manager does both.
#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// Returns a token using whatever state the source has.
    async fn resolve(&self) -> Result<Token, SourceError>;

    /// Returns a new token; the current one is rejected, expiring or unwanted.
    async fn refresh(&self, reason: RefreshReason) -> Result<Token, SourceError>;

    /// [`refresh`](Self::refresh), told the fingerprint of the token being replaced (the
    /// manager's cached one, if any). The default ignores it; a contract 0.2 plugin gets
    /// it in its `refresh-context`.
    async fn refresh_replacing(
        &self,
        reason: RefreshReason,
        replacing: Option<crate::token::Fingerprint>,
    ) -> Result<Token, SourceError> {
        let _ = replacing;
        self.refresh(reason).await
    }

    /// Signs a person in, interactively, and returns the first token; `None` when the
    /// source has no interactive sign-in (the default: commands and 0.1 plugins).
    /// Only `tokenhost login` calls this; the manager never does.
    async fn login(&self, options: LoginOptions) -> Option<Result<Token, SourceError>> {
        let _ = options;
        None
    }
}
