//! [`UnauthorizedRecovery`]: one request's budget of 401 recoveries.
//!
//! A request that gets HTTP 401 reports the token it used and retries once with the
//! token it is handed back. A second 401 on the same request is final: looping would
//! hammer the identity provider with a credential that the API will never accept.

use super::{AuthError, AuthManager};
use crate::token::Token;

/// Tracks one request's 401 recovery. Create one per request with
/// [`AuthManager::recovery`].
pub struct UnauthorizedRecovery<'a> {
    manager: &'a AuthManager,
    provider: String,
    used: bool,
}

impl<'a> UnauthorizedRecovery<'a> {
    pub(super) fn new(manager: &'a AuthManager, provider: &str) -> Self {
        UnauthorizedRecovery {
            manager,
            provider: provider.to_string(),
            used: false,
        }
    }

    /// Reports that `rejected` got a 401 and returns the token to retry with. The
    /// second call on the same request returns [`AuthError::RejectedAgain`].
    pub async fn recover(&mut self, rejected: &Token) -> Result<Token, AuthError> {
        if self.used {
            return Err(AuthError::RejectedAgain {
                provider: self.provider.clone(),
            });
        }
        self.used = true;
        self.manager.unauthorized(&self.provider, rejected).await
    }

    /// Whether this request has used its recovery.
    pub fn is_used(&self) -> bool {
        self.used
    }
}
