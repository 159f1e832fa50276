//! Backing off after a failed source call, as long as the server asked.
//!
//! A plugin reports a rate limit as `unavailable` with a retry-after (an identity
//! provider's HTTP 429 or 503 with `Retry-After`). Asking again sooner only earns more
//! 429s, and a broker serving many clients would turn each of their requests into one
//! more call. So after such a failure the manager does not call the source again before
//! the retry-after has passed, whoever asks (a cache miss, a forced refresh, a 401
//! recovery): a still-valid cached token stays in service meanwhile, and without one the
//! callers get the failure that asked for the pause.
//!
//! Without a retry-after the existing rule stands: a still-valid token is served for
//! [`RETRY_AFTER_FAILURE`](super::RETRY_AFTER_FAILURE) before the source is asked again,
//! and with no valid token every caller may try (single-flight still applies).
//!
//! The pause is capped at [`MAX_RETRY_AFTER`]: a source (or a server) naming hours must
//! not lock a provider out for that long.

use std::time::Duration;

use crate::error::SourceError;

/// The longest pause a retry-after can impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

/// Until when (on the manager's monotonic clock) the source must not be called after
/// `error`, if it carried a retry-after.
pub(super) fn pause_until(error: &SourceError, now: Duration) -> Option<Duration> {
    let after = error.retry_after()?.min(MAX_RETRY_AFTER);
    (!after.is_zero()).then(|| now.saturating_add(after))
}

/// Whether a pause that ends at `until` is still running at `now`.
pub(super) fn pausing(until: Option<Duration>, now: Duration) -> bool {
    until.is_some_and(|until| now < until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FailureKind;

    fn failure(after: Option<Duration>) -> SourceError {
        SourceError::new("p", FailureKind::Unavailable, "429").with_retry_after(after)
    }

    #[test]
    fn a_retry_after_pauses_from_now() {
        let now = Duration::from_secs(100);
        let until = pause_until(&failure(Some(Duration::from_secs(30))), now);
        assert_eq!(until, Some(Duration::from_secs(130)));
        assert!(pausing(until, Duration::from_secs(129)));
        assert!(!pausing(until, Duration::from_secs(130)));
    }

    #[test]
    fn no_or_zero_retry_after_means_no_pause() {
        let now = Duration::from_secs(100);
        assert_eq!(pause_until(&failure(None), now), None);
        assert_eq!(pause_until(&failure(Some(Duration::ZERO)), now), None);
        assert!(!pausing(None, now));
    }

    #[test]
    fn a_long_retry_after_is_capped() {
        let now = Duration::from_secs(100);
        let day = Duration::from_secs(86_400);
        assert_eq!(
            pause_until(&failure(Some(day)), now),
            Some(now + MAX_RETRY_AFTER)
        );
        assert_eq!(
            pause_until(
                &failure(Some(Duration::MAX)),
                Duration::MAX - Duration::from_secs(1)
            ),
            Some(Duration::MAX)
        );
    }
}
