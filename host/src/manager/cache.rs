//! [`TokenCache`]: one provider's cached token and the instants that govern it.
//!
//! The hot path is [`TokenCache::fresh`]: an atomic load and one comparison, no lock and
//! no allocation, so that `auth()` on a warm cache costs tens of nanoseconds however
//! many threads ask at once.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::token::Token;

/// A cached token with its deadlines, in the manager clock's monotonic time.
#[derive(Debug)]
pub struct Entry {
    /// The token.
    pub token: Token,
    /// Until when it is handed out without asking the source.
    pub fresh_until: Duration,
    /// When it expires; `None` = unknown (valid until rejected).
    pub valid_until: Option<Duration>,
    /// A server rejected it (HTTP 401): never hand it out again.
    pub rejected: bool,
}

impl Entry {
    /// Whether the token may still be used at `now` (not expired, not rejected).
    pub fn is_valid(&self, now: Duration) -> bool {
        !self.rejected && self.valid_until.is_none_or(|until| now < until)
    }
}

/// The cache slot of one provider.
#[derive(Default)]
pub struct TokenCache {
    entry: ArcSwapOption<Entry>,
}

impl TokenCache {
    /// The cached token if it is fresh at `now`.
    #[inline]
    pub fn fresh(&self, now: Duration) -> Option<Token> {
        let guard = self.entry.load();
        match &*guard {
            Some(entry) if now < entry.fresh_until && !entry.rejected => Some(entry.token.clone()),
            _ => None,
        }
    }

    /// The current entry, fresh or not.
    pub fn entry(&self) -> Option<Arc<Entry>> {
        self.entry.load_full()
    }

    /// Replaces the entry.
    pub fn store(&self, entry: Entry) {
        self.entry.store(Some(Arc::new(entry)));
    }

    /// Marks the entry rejected if it still holds `token`'s value. Returns whether it did.
    pub fn reject(&self, token: &Token) -> bool {
        let Some(entry) = self.entry() else {
            return false;
        };
        if entry.rejected || !entry.token.same_value(token) {
            return false;
        }
        self.store(Entry {
            token: entry.token.clone(),
            fresh_until: entry.fresh_until,
            valid_until: entry.valid_until,
            rejected: true,
        });
        true
    }
}
