//! A token source for the library's own tests: every call hands out a new token,
//! `<prefix><n>`, and the calls are counted, so a test can check how often a source ran.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{RefreshReason, TokenSource};
use crate::{SourceError, Token};

/// Hands out `<prefix>1`, `<prefix>2`, ... one per call (resolve or refresh).
pub(crate) struct Counting {
    prefix: &'static str,
    calls: AtomicUsize,
}

impl Counting {
    /// A source whose tokens are `prefix` and the call's number.
    pub(crate) fn new(prefix: &'static str) -> Self {
        Counting {
            prefix,
            calls: AtomicUsize::new(0),
        }
    }

    /// How many times the source was called.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenSource for Counting {
    async fn resolve(&self) -> Result<Token, SourceError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Token::new(format!("{}{n}", self.prefix), None).unwrap())
    }

    async fn refresh(&self, _: RefreshReason) -> Result<Token, SourceError> {
        self.resolve().await
    }
}
