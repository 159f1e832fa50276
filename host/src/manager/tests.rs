//! Manager rules, driven by a scripted source and a manual clock (no sleeping: tests
//! that need concurrent callers run on tokio's paused clock).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use async_trait::async_trait;

use super::*;

const START_MS: u64 = 1_700_000_000_000;

/// One scripted answer: a token value and expiry, or a failure.
type Answer = Result<(String, Option<u64>), FailureKind>;

/// A source that answers from a script and counts calls.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Answer>>,
    calls: Mutex<Vec<&'static str>>,
    delay: Option<Duration>,
    /// The retry-after every scripted failure carries.
    retry_after: Option<Duration>,
    counter: AtomicUsize,
}

impl Scripted {
    fn new(
        answers: impl IntoIterator<Item = Result<(&'static str, Option<u64>), FailureKind>>,
    ) -> Arc<Self> {
        Arc::new(Scripted {
            answers: Mutex::new(
                answers
                    .into_iter()
                    .map(|a| a.map(|(v, e)| (v.to_string(), e)))
                    .collect(),
            ),
            ..Default::default()
        })
    }

    fn slow(
        answers: impl IntoIterator<Item = Result<(&'static str, Option<u64>), FailureKind>>,
    ) -> Arc<Self> {
        let mut s = Arc::into_inner(Self::new(answers)).unwrap();
        s.delay = Some(Duration::from_millis(100));
        Arc::new(s)
    }

    fn rate_limited(
        answers: impl IntoIterator<Item = Result<(&'static str, Option<u64>), FailureKind>>,
        retry_after: Duration,
    ) -> Arc<Self> {
        let mut s = Arc::into_inner(Self::new(answers)).unwrap();
        s.retry_after = Some(retry_after);
        Arc::new(s)
    }

    fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    async fn answer(&self, call: &'static str) -> Result<Token, SourceError> {
        self.calls.lock().unwrap().push(call);
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let answer = self.answers.lock().unwrap().pop_front();
        match answer {
            Some(Ok((value, expiry))) => Ok(Token::new(value, expiry).unwrap()),
            Some(Err(kind)) => Err(SourceError::new("p", kind, format!("scripted failure {n}"))
                .with_retry_after(self.retry_after)),
            None => Err(SourceError::new(
                "p",
                FailureKind::Unavailable,
                "script exhausted",
            )),
        }
    }
}

#[async_trait]
impl TokenSource for Scripted {
    async fn resolve(&self) -> Result<Token, SourceError> {
        self.answer("resolve").await
    }

    async fn refresh(&self, reason: RefreshReason) -> Result<Token, SourceError> {
        self.answer(match reason {
            RefreshReason::Unauthorized => "refresh:unauthorized",
            RefreshReason::Expiring => "refresh:expiring",
            RefreshReason::Forced => "refresh:forced",
        })
        .await
    }
}

fn manager(source: Arc<Scripted>, interval: Option<Duration>) -> (AuthManager, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_at(START_MS));
    let manager = AuthManager::builder()
        .clock(clock.clone())
        .provider("p", interval, source)
        .build();
    (manager, clock)
}

fn ok(value: &'static str) -> Result<(&'static str, Option<u64>), FailureKind> {
    Ok((value, None))
}

fn ok_until(
    value: &'static str,
    expires_in: Duration,
) -> Result<(&'static str, Option<u64>), FailureKind> {
    Ok((value, Some(START_MS + expires_in.as_millis() as u64)))
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn cached_token_is_reused() {
    let source = Scripted::new([ok("a"), ok("b")]);
    let (manager, _) = manager(source.clone(), Some(5 * MINUTE));
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    assert_eq!(source.calls(), ["resolve"]);
}

#[tokio::test]
async fn refresh_interval_limits_the_age() {
    let source = Scripted::new([ok("a"), ok("b")]);
    let (manager, clock) = manager(source.clone(), Some(5 * MINUTE));
    manager.auth("p").await.unwrap();
    clock.advance(5 * MINUTE - SECOND);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    clock.advance(SECOND);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "b");
    assert_eq!(source.calls(), ["resolve", "refresh:expiring"]);
}

#[tokio::test]
async fn interval_zero_reuses_until_a_401() {
    let source = Scripted::new([ok("a"), ok("b")]);
    let (manager, clock) = manager(source.clone(), None);
    let a = manager.auth("p").await.unwrap();
    clock.advance(Duration::from_secs(30 * 24 * 3600));
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    assert_eq!(manager.unauthorized("p", &a).await.unwrap().expose(), "b");
    assert_eq!(manager.auth("p").await.unwrap().expose(), "b");
    assert_eq!(source.calls(), ["resolve", "refresh:unauthorized"]);
}

#[tokio::test]
async fn refreshes_within_the_margin_before_expiry() {
    // Lifetime 1000 s: margin 60 s, jitter up to 30 s more.
    let source = Scripted::new([ok_until("a", 1000 * SECOND), ok_until("b", 2000 * SECOND)]);
    let (manager, clock) = manager(source.clone(), None);
    manager.auth("p").await.unwrap();
    clock.advance(909 * SECOND);
    assert_eq!(
        manager.auth("p").await.unwrap().expose(),
        "a",
        "before margin and jitter"
    );
    clock.advance(31 * SECOND);
    assert_eq!(
        manager.auth("p").await.unwrap().expose(),
        "b",
        "inside the margin"
    );
}

#[tokio::test]
async fn short_lived_tokens_use_ten_percent_margin() {
    let source = Scripted::new([ok_until("a", 10 * SECOND), ok_until("b", 20 * SECOND)]);
    let (manager, clock) = manager(source.clone(), None);
    manager.auth("p").await.unwrap();
    clock.advance(Duration::from_millis(8_499));
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    clock.advance(Duration::from_millis(501));
    assert_eq!(manager.auth("p").await.unwrap().expose(), "b");
}

#[tokio::test]
async fn jwt_exp_is_used_when_the_source_gives_no_expiry() {
    use base64::Engine as _;
    let exp = (START_MS / 1000) + 100;
    let payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
    let jwt: &'static str =
        Box::leak(format!("eyJhbGciOiJub25lIn0.{payload}.c2ln").into_boxed_str());
    let source = Scripted::new([ok(jwt), ok("b")]);
    let (manager, clock) = manager(source.clone(), None);
    let token = manager.auth("p").await.unwrap();
    assert_eq!(token.expires_at_ms(), Some(exp * 1000));
    clock.advance(100 * SECOND);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "b");
}

#[tokio::test]
async fn an_expired_token_is_never_handed_out() {
    let source = Scripted::new([Ok(("old", Some(START_MS - 1))), ok_until("a", 100 * SECOND)]);
    let (manager, clock) = manager(source.clone(), None);
    let err = manager.auth("p").await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::BadOutput);
    assert!(err.to_string().contains("expired"), "{err}");
    manager.auth("p").await.unwrap();
    // The source fails after expiry: the stale token is not served.
    clock.advance(100 * SECOND);
    let err = manager.auth("p").await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_misses_share_one_call() {
    let source = Scripted::slow([ok("a"), ok("b")]);
    let (manager, _) = manager(source.clone(), None);
    let manager = Arc::new(manager);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.auth("p").await.map(|t| t.expose().to_string()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "a");
    }
    assert_eq!(source.calls(), ["resolve"]);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_a_failure_too() {
    let source = Scripted::slow([Err(FailureKind::Denied), ok("a")]);
    let (manager, _) = manager(source.clone(), None);
    let manager = Arc::new(manager);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.auth("p").await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), FailureKind::Denied);
        assert!(
            err.to_string()
                .starts_with("provider \"p\": denied: scripted failure 0"),
            "{err}"
        );
    }
    assert_eq!(source.calls(), ["resolve"]);
    // The next caller tries again.
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
}

#[tokio::test(start_paused = true)]
async fn concurrent_401s_for_one_token_cause_one_refresh() {
    let source = Scripted::slow([ok("a"), ok("b"), ok("c")]);
    let (manager, _) = manager(source.clone(), None);
    let manager = Arc::new(manager);
    let a = manager.auth("p").await.unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (manager, a) = (manager.clone(), a.clone());
            tokio::spawn(async move {
                manager
                    .unauthorized("p", &a)
                    .await
                    .map(|t| t.expose().to_string())
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "b");
    }
    assert_eq!(source.calls(), ["resolve", "refresh:unauthorized"]);
}

#[tokio::test]
async fn a_401_for_an_old_token_returns_the_newer_one() {
    let source = Scripted::new([ok("a"), ok("b")]);
    let (manager, _) = manager(source.clone(), None);
    let a = manager.auth("p").await.unwrap();
    let b = manager.refresh("p").await.unwrap();
    assert_eq!(b.expose(), "b");
    assert_eq!(manager.unauthorized("p", &a).await.unwrap().expose(), "b");
    assert_eq!(source.calls(), ["resolve", "refresh:forced"]);
}

#[tokio::test]
async fn a_401_by_fingerprint_works_like_by_token() {
    let source = Scripted::new([ok("a"), ok("b")]);
    let (manager, _) = manager(source.clone(), None);
    let a = manager.auth("p").await.unwrap();
    let b = manager
        .unauthorized_fingerprint("p", a.fingerprint())
        .await
        .unwrap();
    assert_eq!(b.expose(), "b");
}

#[tokio::test]
async fn one_recovery_per_request() {
    let source = Scripted::new([ok("a"), ok("b"), ok("c")]);
    let (manager, _) = manager(source.clone(), None);
    let a = manager.auth("p").await.unwrap();
    let mut recovery = manager.recovery("p");
    let b = recovery.recover(&a).await.unwrap();
    assert_eq!(b.expose(), "b");
    let err = recovery.recover(&b).await.unwrap_err();
    assert!(matches!(err, AuthError::RejectedAgain { .. }), "{err}");
    assert!(err.to_string().contains("HTTP 401 twice"), "{err}");
    assert_eq!(source.calls(), ["resolve", "refresh:unauthorized"]);
}

#[tokio::test]
async fn a_failed_refresh_keeps_a_valid_token_in_service() {
    let source = Scripted::new([
        ok_until("a", 1000 * SECOND),
        Err(FailureKind::Unavailable),
        Err(FailureKind::Unavailable),
    ]);
    let (manager, clock) = manager(source.clone(), None);
    manager.auth("p").await.unwrap();
    clock.advance(950 * SECOND);
    assert_eq!(
        manager.auth("p").await.unwrap().expose(),
        "a",
        "kept after a failed refresh"
    );
    assert_eq!(
        manager.status("p").unwrap().last_error.unwrap().kind(),
        FailureKind::Unavailable
    );
    // Within the retry pause the source is not asked again.
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    assert_eq!(source.calls().len(), 2);
    clock.advance(RETRY_AFTER_FAILURE);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    assert_eq!(source.calls().len(), 3);
    // Once it has expired, the error reaches the caller.
    clock.advance(100 * SECOND);
    let err = manager.auth("p").await.unwrap_err();
    assert!(err.to_string().contains("script exhausted"), "{err}");
}

#[tokio::test]
async fn a_retry_after_pauses_the_source_for_every_caller() {
    let source = Scripted::rate_limited([Err(FailureKind::Unavailable), ok("a")], 30 * SECOND);
    let (manager, clock) = manager(source.clone(), None);
    let first = manager.auth("p").await.unwrap_err();
    assert!(first.to_string().contains("scripted failure 0"), "{first}");
    // Within the pause: a miss, a forced refresh and a 401 all get the same failure,
    // and the source is not asked.
    clock.advance(29 * SECOND);
    for err in [
        manager.auth("p").await.unwrap_err(),
        manager.refresh("p").await.unwrap_err(),
    ] {
        assert_eq!(err.to_string(), first.to_string());
    }
    assert_eq!(source.calls(), ["resolve"]);
    clock.advance(SECOND);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    assert_eq!(source.calls(), ["resolve", "resolve"]);
}

#[tokio::test]
async fn a_retry_after_keeps_a_valid_token_in_service_that_long() {
    let source = Scripted::rate_limited(
        [
            ok_until("a", 1000 * SECOND),
            Err(FailureKind::Unavailable),
            ok("b"),
        ],
        60 * SECOND,
    );
    let (manager, clock) = manager(source.clone(), None);
    manager.auth("p").await.unwrap();
    clock.advance(900 * SECOND);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    // Longer than the default pause after a failure: the server asked for a minute.
    clock.advance(RETRY_AFTER_FAILURE + SECOND);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    assert_eq!(manager.refresh("p").await.unwrap().expose(), "a");
    assert_eq!(source.calls().len(), 2);
    // A 401 during the pause gets the failure, not the rejected token.
    let a = manager.auth("p").await.unwrap();
    let err = manager.unauthorized("p", &a).await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Unavailable);
    assert_eq!(source.calls().len(), 2);
    clock.advance(60 * SECOND);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "b");
    assert_eq!(source.calls().len(), 3);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_pauses_for_the_cap() {
    let day = Duration::from_secs(86_400);
    let source = Scripted::rate_limited([Err(FailureKind::Unavailable), ok("a")], day);
    let (manager, clock) = manager(source.clone(), None);
    manager.auth("p").await.unwrap_err();
    clock.advance(MAX_RETRY_AFTER);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "a");
    assert_eq!(source.calls().len(), 2);
}

#[tokio::test]
async fn a_failed_401_refresh_does_not_serve_the_rejected_token() {
    let source = Scripted::new([ok("a"), Err(FailureKind::Denied), ok("b")]);
    let (manager, _) = manager(source.clone(), None);
    let a = manager.auth("p").await.unwrap();
    let err = manager.unauthorized("p", &a).await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Denied);
    assert_eq!(manager.auth("p").await.unwrap().expose(), "b");
    assert_eq!(
        source.calls(),
        ["resolve", "refresh:unauthorized", "refresh:unauthorized"]
    );
}

#[tokio::test]
async fn unknown_provider_lists_the_known_ones() {
    let (manager, _) = manager(Scripted::new([]), None);
    let err = manager.auth("nope").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown provider \"nope\"; known providers: p"
    );
}

#[test]
fn tokens_never_reach_logs_errors_or_debug() {
    use std::io::Write;
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut shown = String::new();
    runtime.block_on(async {
        let source = Scripted::new([
            ok_until("SECRET-AAA", 1000 * SECOND),
            Err(FailureKind::Unavailable),
            ok("SECRET-BBB"),
            Err(FailureKind::Denied),
        ]);
        let (manager, clock) = manager(source, None);
        let a = manager.auth("p").await.unwrap();
        shown += &format!("{a:?} {a} ");
        clock.advance(950 * SECOND);
        let kept = manager.auth("p").await.unwrap();
        shown += &format!("{kept:?} {:?} ", manager.status("p").unwrap());
        let b = manager.unauthorized("p", &a).await.unwrap();
        shown += &format!("{b:?} {b} ");
        let err = manager.unauthorized("p", &b).await.unwrap_err();
        shown += &format!("{err:?} {err} {:?}", manager.status("p").unwrap());
    });
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("refresh failed"),
        "the logs were captured: {logs}"
    );
    for text in [&logs, &shown] {
        assert!(!text.contains("SECRET"), "{text}");
    }
}

#[tokio::test]
async fn adopt_cache_carries_a_valid_token_and_its_time_left() {
    let (old, old_clock) = manager(Scripted::new([ok_until("a", 100 * SECOND)]), None);
    old.auth("p").await.unwrap();
    old_clock.advance(30 * SECOND);
    let source = Scripted::new([ok("b")]);
    let (new, new_clock) = manager(source.clone(), None);
    assert!(new.adopt_cache(&old, "p") && !new.adopt_cache(&old, "other"));
    assert_eq!(new.auth("p").await.unwrap().expose(), "a");
    new_clock.advance(70 * SECOND);
    assert_eq!(new.auth("p").await.unwrap().expose(), "b");
    assert_eq!(source.calls(), ["refresh:expiring"]);
    // A rejected token is not carried over.
    let b = new.auth("p").await.unwrap();
    new.slot("p").unwrap().cache.reject(&b);
    let (third, _) = manager(Scripted::new([]), None);
    assert!(!third.adopt_cache(&new, "p"));
}
