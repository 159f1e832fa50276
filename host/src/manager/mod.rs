//! The [`AuthManager`]: one cache, expiry handling, single-flight refresh and 401
//! recovery for every provider, whatever kind of source it has.
//!
//! Rules (each has a test in `tests.rs`):
//! - A cached token is handed out while it is *fresh*: younger than the provider's
//!   refresh interval (none = no age limit) and not within the refresh margin of its
//!   expiry (see [`expiry`]). An expired or rejected token is never handed out.
//! - Expiry comes from the source, else from a JWT's `exp` claim, else is unknown.
//! - Single flight: callers that miss the cache at the same time share one source call,
//!   and share its failure too (a wave of callers never turns into a wave of calls).
//! - 401 recovery: a caller reports the token a server rejected. If the cache still
//!   holds it, the source is asked once (reason `unauthorized`); if the cache already
//!   holds a newer token, that one is returned without a call. Concurrent reports for
//!   the same token cause one refresh in total. [`UnauthorizedRecovery`] allows one
//!   recovery per request.
//! - A failed refresh keeps a still-valid token in service (with a warning, retrying
//!   after [`RETRY_AFTER_FAILURE`]); the error reaches callers only when nothing valid
//!   is left.
//! - A failure that carries a retry-after (a rate limit) pauses the source for that long
//!   (at most [`MAX_RETRY_AFTER`]): no caller's request reaches it before (see `backoff.rs`).

mod backoff;
pub mod cache;
pub mod clock;
pub mod expiry;
mod recovery;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use backoff::MAX_RETRY_AFTER;
pub use cache::TokenCache;
pub use clock::{Clock, ManualClock, SystemClock};
pub use recovery::UnauthorizedRecovery;

use cache::Entry;

use crate::error::{FailureKind, SourceError};
use crate::source::{RefreshReason, TokenSource};
use crate::token::{Fingerprint, Token};

/// After a failed refresh, how long a still-valid token is served before the source is
/// asked again (capped by the token's expiry).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// Why the manager could not hand out a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No provider with that id has a token source.
    #[error("unknown provider \"{provider}\"; known providers: {known}")]
    UnknownProvider {
        /// The id asked for.
        provider: String,
        /// The ids that exist, comma-separated.
        known: String,
    },
    /// The source failed and no valid token is cached.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A server rejected the token obtained by 401 recovery as well.
    #[error(
        "provider \"{provider}\": the server rejected the refreshed token too (HTTP 401 twice); \
         check the provider's credentials and audience"
    )]
    RejectedAgain {
        /// The provider id.
        provider: String,
    },
}

impl AuthError {
    /// The failure kind, for exit codes and retry decisions.
    pub fn kind(&self) -> FailureKind {
        match self {
            AuthError::UnknownProvider { .. } => FailureKind::InvalidConfig,
            AuthError::Source(e) => e.kind(),
            AuthError::RejectedAgain { .. } => FailureKind::Denied,
        }
    }
}

/// What the manager knows about one provider, safe to show (no token value).
#[derive(Debug, Clone)]
pub struct ProviderStatus {
    /// The provider id.
    pub provider: String,
    /// The cached token's fingerprint, if any.
    pub fingerprint: Option<Fingerprint>,
    /// Its expiry in milliseconds since the Unix epoch, if known.
    pub expires_at_ms: Option<u64>,
    /// Whether it is still valid (not expired, not rejected).
    pub valid: bool,
    /// How many times the source was called.
    pub source_calls: u64,
    /// The last failure, if the last call failed.
    pub last_error: Option<SourceError>,
}

/// Caches and refreshes tokens for a set of providers. Cheap to share (`Arc`).
pub struct AuthManager {
    providers: ProviderMap,
    clock: Arc<dyn Clock>,
}

/// Providers by id. The lookup is on every `auth()`: a fast non-cryptographic hash is
/// enough, since ids come from the config, not from an attacker.
type ProviderMap = HashMap<Arc<str>, Arc<Provider>, foldhash::fast::RandomState>;

/// One provider as the manager drives it.
pub(crate) struct Provider {
    id: Arc<str>,
    source: Arc<dyn TokenSource>,
    refresh_interval: Option<Duration>,
    cache: TokenCache,
    /// Held while a source call is in flight: the single-flight gate.
    flight: tokio::sync::Mutex<Outcome>,
    /// Completed source calls; a waiter compares it to learn that a call finished.
    calls: AtomicU64,
}

/// The last source call's result, shared with callers who waited for it.
#[derive(Default)]
struct Outcome {
    error: Option<SourceError>,
    /// Set after a failure with a retry-after: the source is not called before then.
    paused_until: Option<Duration>,
}

/// Builds an [`AuthManager`].
pub struct AuthManagerBuilder {
    providers: ProviderMap,
    clock: Arc<dyn Clock>,
}

impl AuthManagerBuilder {
    /// Adds a provider. `refresh_interval` of `None` means no age limit.
    pub fn provider(
        mut self,
        id: impl Into<Arc<str>>,
        refresh_interval: Option<Duration>,
        source: Arc<dyn TokenSource>,
    ) -> Self {
        let id = id.into();
        let provider = Provider {
            id: id.clone(),
            source,
            refresh_interval,
            cache: TokenCache::default(),
            flight: tokio::sync::Mutex::new(Outcome::default()),
            calls: AtomicU64::new(0),
        };
        self.providers.insert(id, Arc::new(provider));
        self
    }

    /// Uses `clock` instead of the system clocks.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Finishes the manager.
    pub fn build(self) -> AuthManager {
        AuthManager {
            providers: self.providers,
            clock: self.clock,
        }
    }
}

impl AuthManager {
    /// Starts an empty manager with the system clocks.
    pub fn builder() -> AuthManagerBuilder {
        AuthManagerBuilder {
            providers: ProviderMap::default(),
            clock: Arc::new(SystemClock::default()),
        }
    }

    /// The provider ids, sorted.
    pub fn provider_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.providers.keys().map(|id| &**id).collect();
        ids.sort_unstable();
        ids
    }

    /// A token for `provider`: the cached one while fresh, else a new one from the source.
    #[inline]
    pub async fn auth(&self, provider: &str) -> Result<Token, AuthError> {
        let slot = self.slot(provider)?;
        if let Some(token) = slot.cache.fresh(self.clock.now()) {
            return Ok(token);
        }
        self.obtain(slot, None).await
    }

    /// A new token for `provider` from the source (reason `forced`), whatever is cached.
    pub async fn refresh(&self, provider: &str) -> Result<Token, AuthError> {
        let slot = self.slot(provider)?;
        self.obtain(slot, Some(RefreshReason::Forced)).await
    }

    /// Reports that a server rejected `rejected` (HTTP 401) and returns the token to
    /// retry with. Prefer [`UnauthorizedRecovery`], which allows one recovery per request.
    pub async fn unauthorized(&self, provider: &str, rejected: &Token) -> Result<Token, AuthError> {
        self.unauthorized_by(provider, |entry| entry.same_value(rejected))
            .await
    }

    /// Like [`unauthorized`](Self::unauthorized), naming the rejected token by its
    /// fingerprint (for callers that must not hold the token, such as broker clients).
    pub async fn unauthorized_fingerprint(
        &self,
        provider: &str,
        rejected: Fingerprint,
    ) -> Result<Token, AuthError> {
        self.unauthorized_by(provider, |entry| entry.fingerprint() == rejected)
            .await
    }

    /// Starts one request's 401 recovery for `provider`.
    pub fn recovery(&self, provider: &str) -> UnauthorizedRecovery<'_> {
        UnauthorizedRecovery::new(self, provider)
    }

    /// What the manager knows about `provider` (no token value).
    pub fn status(&self, provider: &str) -> Result<ProviderStatus, AuthError> {
        let slot = self.slot(provider)?;
        let entry = slot.cache.entry();
        let now = self.clock.now();
        Ok(ProviderStatus {
            provider: slot.id.to_string(),
            fingerprint: entry.as_ref().map(|e| e.token.fingerprint()),
            expires_at_ms: entry.as_ref().and_then(|e| e.token.expires_at_ms()),
            valid: entry.as_ref().is_some_and(|e| e.is_valid(now)),
            source_calls: slot.calls.load(Ordering::Acquire),
            last_error: slot.flight.try_lock().ok().and_then(|o| o.error.clone()),
        })
    }

    /// Copies `from`'s cached token for `provider` into this manager, if it is still valid
    /// there and this manager has that provider. Returns whether it did. For a broker
    /// that reloads its config: a provider whose spec did not change keeps its token.
    /// Deadlines carry over as time remaining (the two managers' clocks may differ);
    /// the source-call count does not.
    pub fn adopt_cache(&self, from: &AuthManager, provider: &str) -> bool {
        let (Ok(to), Ok(old)) = (self.slot(provider), from.slot(provider)) else {
            return false;
        };
        let (then, now) = (from.clock.now(), self.clock.now());
        let Some(entry) = old.cache.entry().filter(|e| e.is_valid(then)) else {
            return false;
        };
        let shift = |t: Duration| match t {
            Duration::MAX => t,
            t if t >= then => now.saturating_add(t - then),
            t => now.saturating_sub(then - t),
        };
        to.cache.store(Entry {
            token: entry.token.clone(),
            fresh_until: shift(entry.fresh_until),
            valid_until: entry.valid_until.map(shift),
            rejected: false,
        });
        true
    }

    fn slot(&self, provider: &str) -> Result<&Arc<Provider>, AuthError> {
        self.providers
            .get(provider)
            .ok_or_else(|| AuthError::UnknownProvider {
                provider: provider.to_string(),
                known: match self.provider_ids() {
                    ids if ids.is_empty() => "(none)".to_string(),
                    ids => ids.join(", "),
                },
            })
    }

    async fn unauthorized_by(
        &self,
        provider: &str,
        is_rejected: impl Fn(&Token) -> bool,
    ) -> Result<Token, AuthError> {
        let slot = self.slot(provider)?;
        let seen = slot.calls.load(Ordering::Acquire);
        let outcome = slot.flight.lock().await;
        let now = self.clock.now();
        if let Some(entry) = slot.cache.entry() {
            if is_rejected(&entry.token) {
                slot.cache.reject(&entry.token);
            } else if entry.is_valid(now) {
                // Someone already replaced the rejected token: retry with the new one.
                return Ok(entry.token.clone());
            }
        }
        let finished_while_waiting = slot.calls.load(Ordering::Acquire) != seen;
        if (finished_while_waiting || backoff::pausing(outcome.paused_until, now))
            && let Some(error) = &outcome.error
        {
            return Err(error.clone().into());
        }
        self.call_source(slot, outcome, RefreshReason::Unauthorized, now)
            .await
    }

    /// The slow path: waits for the flight gate, then uses a token another caller just
    /// obtained, or that caller's error, or calls the source itself.
    async fn obtain(
        &self,
        slot: &Provider,
        forced: Option<RefreshReason>,
    ) -> Result<Token, AuthError> {
        let seen = slot.calls.load(Ordering::Acquire);
        let outcome = slot.flight.lock().await;
        let now = self.clock.now();
        let finished_while_waiting = slot.calls.load(Ordering::Acquire) != seen;
        if forced.is_none() || finished_while_waiting {
            if let Some(token) = slot.cache.fresh(now) {
                return Ok(token);
            }
            if finished_while_waiting && let Some(error) = &outcome.error {
                return match slot.cache.entry() {
                    Some(entry) if entry.is_valid(now) => Ok(entry.token.clone()),
                    _ => Err(error.clone().into()),
                };
            }
        }
        if backoff::pausing(outcome.paused_until, now)
            && let Some(error) = &outcome.error
        {
            return match slot.cache.entry() {
                Some(entry) if entry.is_valid(now) => Ok(entry.token.clone()),
                _ => Err(error.clone().into()),
            };
        }
        let reason = match (forced, slot.cache.entry()) {
            (Some(reason), _) => reason,
            (None, Some(entry)) if entry.rejected => RefreshReason::Unauthorized,
            (None, Some(_)) => RefreshReason::Expiring,
            (None, None) => return self.call_source_resolve(slot, outcome, now).await,
        };
        self.call_source(slot, outcome, reason, now).await
    }

    async fn call_source_resolve(
        &self,
        slot: &Provider,
        outcome: tokio::sync::MutexGuard<'_, Outcome>,
        now: Duration,
    ) -> Result<Token, AuthError> {
        let result = slot.source.resolve().await;
        self.finish(slot, outcome, result, now)
    }

    async fn call_source(
        &self,
        slot: &Provider,
        outcome: tokio::sync::MutexGuard<'_, Outcome>,
        reason: RefreshReason,
        now: Duration,
    ) -> Result<Token, AuthError> {
        tracing::debug!(provider = %slot.id, ?reason, "refreshing token");
        let replacing = slot.cache.entry().map(|entry| entry.token.fingerprint());
        let result = slot.source.refresh_replacing(reason, replacing).await;
        self.finish(slot, outcome, result, now)
    }

    /// Records a source call's result: caches a token, or keeps a still-valid one.
    fn finish(
        &self,
        slot: &Provider,
        mut outcome: tokio::sync::MutexGuard<'_, Outcome>,
        result: Result<Token, SourceError>,
        started: Duration,
    ) -> Result<Token, AuthError> {
        let now = self.clock.now().max(started);
        let result = result.and_then(|token| self.admit(slot, token, now));
        slot.calls.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(token) => {
                outcome.error = None;
                outcome.paused_until = None;
                tracing::debug!(provider = %slot.id, token = %token.fingerprint(), "new token");
                Ok(token)
            }
            Err(error) => {
                outcome.paused_until = backoff::pause_until(&error, now);
                outcome.error = Some(error.clone());
                match slot.cache.entry() {
                    Some(entry) if entry.is_valid(now) => {
                        tracing::warn!(
                            provider = %slot.id,
                            "refresh failed; still using the cached token until it expires: {error}"
                        );
                        let retry_at = outcome
                            .paused_until
                            .unwrap_or_default()
                            .max(now + RETRY_AFTER_FAILURE);
                        slot.cache.store(Entry {
                            token: entry.token.clone(),
                            fresh_until: entry.valid_until.map_or(retry_at, |v| retry_at.min(v)),
                            valid_until: entry.valid_until,
                            rejected: false,
                        });
                        Ok(entry.token.clone())
                    }
                    _ => Err(error.into()),
                }
            }
        }
    }

    /// Works out a new token's deadlines and caches it.
    fn admit(&self, slot: &Provider, token: Token, now: Duration) -> Result<Token, SourceError> {
        let token = match token.expires_at_ms() {
            Some(_) => token,
            None => match expiry::jwt_expiry_ms(token.expose()) {
                Some(exp) => token.with_expiry(Some(exp)),
                None => token,
            },
        };
        let wall_now = self.clock.unix_ms();
        let valid_until = match token.expires_at_ms() {
            Some(exp) if exp <= wall_now => {
                return Err(SourceError::new(
                    slot.id.clone(),
                    FailureKind::BadOutput,
                    format!(
                        "the source returned a token that expired {} ms ago",
                        wall_now - exp
                    ),
                ));
            }
            Some(exp) => Some(now + Duration::from_millis(exp - wall_now)),
            None => None,
        };
        let by_expiry = valid_until.map(|until| {
            let lifetime = until - now;
            let margin = expiry::margin(lifetime);
            until - margin - expiry::jitter(margin, fastrand::f64())
        });
        let by_age = slot.refresh_interval.map(|interval| now + interval);
        let fresh_until = match (by_expiry, by_age) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Duration::MAX,
        };
        slot.cache.store(Entry {
            token: token.clone(),
            fresh_until,
            valid_until,
            rejected: false,
        });
        Ok(token)
    }
}

#[cfg(test)]
mod tests;
