//! Hostile plugins: each misbehaviour ends in a clear error naming the provider, within
//! the deadline, and the host keeps serving: the same provider gets a fresh instance and
//! other providers are untouched, all in one process.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenhost::config::PluginSpec;
use tokenhost::source::wasm::{CompiledCache, PluginRuntime, WasmSource};
use tokenhost::{FailureKind, RefreshReason, SourceError, Token, TokenSource};

const TIMEOUT: Duration = Duration::from_millis(500);
/// Slack for a loaded 2-core CI machine; the deadline itself is enforced to 10 ms.
const SLACK: Duration = Duration::from_millis(400);

fn runtime() -> Arc<PluginRuntime> {
    // One runtime and one compiled cache for the whole file: the hostile plugin is
    // compiled once, not once per test.
    static RUNTIME: std::sync::OnceLock<(Arc<PluginRuntime>, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    let (runtime, _) = RUNTIME.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let runtime = PluginRuntime::new(CompiledCache::at(dir.path().join("compiled"))).unwrap();
        (runtime, dir)
    });
    runtime.clone()
}

/// A provider running the hostile plugin in `mode`, misbehaving in `resolve` only.
fn hostile(mode: &str, extra: &[(&str, &str)]) -> WasmSource {
    hostile_spec(mode, extra, |_| {})
}

/// Like [`hostile`], with `adjust` applied to the spec first.
fn hostile_spec(
    mode: &str,
    extra: &[(&str, &str)],
    adjust: impl FnOnce(&mut PluginSpec),
) -> WasmSource {
    let mut config = vec![
        ("mode".to_string(), mode.to_string()),
        ("on".into(), "resolve".into()),
    ];
    config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut spec = PluginSpec {
        path: support::plugin("hostile"),
        oci: None,
        timeout: TIMEOUT,
        memory_limit_bytes: 64 << 20,
        config,
        grants: Default::default(),
        secrets: Default::default(),
    };
    adjust(&mut spec);
    let granted = tokenhost::granter::Granted::unrestricted(spec);
    WasmSource::new(&runtime(), format!("evil-{mode}").into(), &granted).unwrap()
}

/// Runs `resolve`, checks the deadline, then proves the host still serves: the same
/// provider's next call (`refresh`, which behaves) and another provider both work.
async fn misbehave(mode: &str, extra: &[(&str, &str)]) -> Result<Token, SourceError> {
    misbehave_in(hostile(mode, extra), mode, TIMEOUT).await
}

/// [`misbehave`] with a source made by the caller (provider `evil-<mode>`, with
/// `timeout`).
async fn misbehave_in(
    source: WasmSource,
    mode: &str,
    timeout: Duration,
) -> Result<Token, SourceError> {
    let started = Instant::now();
    let result = source.resolve().await;
    let elapsed = started.elapsed();
    assert!(elapsed < timeout + SLACK, "{mode}: took {elapsed:?}");
    if let Err(e) = &result {
        assert!(
            e.to_string()
                .starts_with(&format!("provider \"evil-{mode}\": ")),
            "{e}"
        );
    }
    let next = source.refresh(RefreshReason::Expiring).await;
    assert_eq!(
        next.expect("the next call gets a working instance")
            .expose(),
        "ok-token",
        "{mode}"
    );
    let other = hostile("stdin", &[]);
    assert_eq!(
        other.refresh(RefreshReason::Forced).await.unwrap().expose(),
        "ok-token"
    );
    result
}

async fn failure(mode: &str, kind: FailureKind, expected: &str) -> String {
    let err = misbehave(mode, &[]).await.expect_err(mode);
    let message = err.to_string();
    assert_eq!(err.kind(), kind, "{mode}: {message}");
    assert!(message.contains(expected), "{mode}: {message}");
    message
}

#[tokio::test]
async fn infinite_loop_times_out() {
    failure(
        "loop",
        FailureKind::Timeout,
        "plugin did not answer within 500 ms",
    )
    .await;
}

#[tokio::test]
async fn sleeping_in_a_host_wait_times_out() {
    failure(
        "sleep",
        FailureKind::Timeout,
        "plugin did not answer within 500 ms",
    )
    .await;
}

#[tokio::test]
async fn allocating_a_gibibyte_hits_the_memory_limit() {
    failure(
        "alloc",
        FailureKind::Crashed,
        "exceeded its memory limit of 64 MiB (linear memory) during resolve",
    )
    .await;
}

#[tokio::test]
async fn panic_is_reported_with_its_message() {
    failure(
        "panic",
        FailureKind::Crashed,
        "hostile plugin panicked on purpose",
    )
    .await;
}

#[tokio::test]
async fn stack_overflow_is_reported() {
    // Deep recursion overflows the guest's shadow stack in linear memory first (an
    // out-of-bounds access), or wasm's own stack: both end the same way.
    let err = misbehave("stack-overflow", &[])
        .await
        .expect_err("stack overflow");
    assert_eq!(err.kind(), FailureKind::Crashed, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("overflowed its stack") || message.contains("a stack overflow"),
        "{message}"
    );
}

#[tokio::test]
async fn unreachable_is_reported() {
    failure("unreachable", FailureKind::Crashed, "crashed").await;
}

#[tokio::test]
async fn files_are_not_readable() {
    for path in ["/etc/passwd", "/", ".", "../../etc/passwd"] {
        let err = misbehave("read-file", &[("path", path)])
            .await
            .expect_err(path);
        assert_eq!(err.kind(), FailureKind::Denied, "{err}");
        assert!(err.to_string().contains("read failed"), "{err}");
        assert!(!err.to_string().contains("root:"), "{err}");
    }
}

#[tokio::test]
async fn environment_and_arguments_are_empty() {
    let err = misbehave("env", &[]).await.expect_err("no env vars");
    assert!(
        err.to_string().contains("no environment variables visible"),
        "{err}"
    );
    assert!(err.to_string().contains("argc=0"), "{err}");
}

#[tokio::test]
async fn sockets_are_denied() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let err = misbehave("tcp", &[("addr", &addr)]).await.expect_err("tcp");
    assert!(err.to_string().contains("connect failed"), "{err}");
    let accepted = listener.accept();
    assert!(accepted.is_err(), "the plugin reached the listener");
}

#[tokio::test]
async fn name_lookup_is_denied() {
    let err = misbehave("dns", &[]).await.expect_err("dns");
    assert!(err.to_string().contains("lookup failed"), "{err}");
}

#[tokio::test]
async fn stdin_is_empty() {
    assert_eq!(misbehave("stdin", &[]).await.unwrap().expose(), "stdin:0");
}

#[tokio::test]
async fn a_crlf_token_is_refused_without_showing_it() {
    let message = failure(
        "crlf-token",
        FailureKind::BadOutput,
        "not a valid HTTP header value",
    )
    .await;
    assert!(!message.contains("X-Injected"), "{message}");
}

#[tokio::test]
async fn a_huge_token_is_refused() {
    let message = failure("huge-token", FailureKind::BadOutput, "the limit is 16384").await;
    assert!(!message.contains("aaaa"), "{message}");
}

#[tokio::test]
async fn an_empty_token_is_refused() {
    failure("empty-token", FailureKind::BadOutput, "the token is empty").await;
}

#[tokio::test]
async fn log_and_output_spam_is_capped_and_harmless() {
    let source = hostile("log-spam", &[]);
    let spec_timeout = Duration::from_secs(20);
    let started = Instant::now();
    let token = tokio::time::timeout(spec_timeout, source.resolve()).await;
    // Either the spam finishes (and the call succeeds) or the deadline stops it; the
    // host neither buffers it all nor hangs.
    match token.expect("bounded by the plugin deadline") {
        Ok(token) => assert_eq!(token.expose(), "spammed"),
        Err(e) => assert_eq!(e.kind(), FailureKind::Timeout, "{e}"),
    }
    assert!(
        started.elapsed() < TIMEOUT + SLACK,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        source
            .refresh(RefreshReason::Forced)
            .await
            .unwrap()
            .expose(),
        "ok-token"
    );
}

#[tokio::test]
async fn plugin_stdout_does_not_reach_the_caller() {
    assert_eq!(
        misbehave("print-secret", &[("token", "s3cret")])
            .await
            .unwrap()
            .expose(),
        "printed"
    );
}

#[tokio::test]
async fn many_crashes_in_a_row_leave_the_host_serving() {
    let source = hostile("panic", &[]);
    for _ in 0..20 {
        let err = source.resolve().await.unwrap_err();
        assert_eq!(err.kind(), FailureKind::Crashed, "{err}");
    }
    assert_eq!(
        source
            .refresh(RefreshReason::Forced)
            .await
            .unwrap()
            .expose(),
        "ok-token"
    );
}

/// `memory_limit_mb` of the memory tests: small, so host-side resources reach it fast.
const SMALL_LIMIT: u64 = 8 << 20;
/// Their deadline: thousands of host calls take a while on a loaded debug build, and a
/// timeout must not pass for the memory limit.
const MEMORY_TIMEOUT: Duration = Duration::from_secs(3);

fn small(spec: &mut PluginSpec) {
    spec.memory_limit_bytes = SMALL_LIMIT;
    spec.timeout = MEMORY_TIMEOUT;
}

#[tokio::test]
async fn wasi_http_fields_count_against_the_memory_limit() {
    // 4,000 Fields of 100 KiB: 400 MB of host memory, at an 8 MiB limit.
    let source = hostile_spec("many-fields", &[], small);
    let err = misbehave_in(source, "many-fields", MEMORY_TIMEOUT)
        .await
        .expect_err("400 MB of headers at an 8 MiB limit");
    assert_eq!(err.kind(), FailureKind::Crashed, "{err}");
    assert!(
        err.to_string()
            .contains("exceeded its memory limit of 8 MiB (host-side resources) during resolve"),
        "{err}"
    );
}

#[tokio::test]
async fn fields_within_the_limit_are_fine() {
    let source = hostile_spec("many-fields", &[("count", "20"), ("size", "1024")], small);
    let token = misbehave_in(source, "many-fields", MEMORY_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(token.expose(), "held 20 fields");
}

#[tokio::test]
async fn a_live_instance_cannot_accumulate_host_memory_across_calls() {
    // Each call leaks 16 Fields of 100 KiB (1.6 MB) into the live instance.
    let source = hostile_spec("leak-fields", &[], small);
    let mut stopped = None;
    for call in 1..=20 {
        match source.resolve().await {
            Ok(token) => assert_eq!(token.expose(), "leaked 16 fields"),
            Err(err) => {
                stopped = Some((call, err));
                break;
            }
        }
    }
    let (call, err) = stopped.expect("the leak must hit the limit");
    assert!(call <= 6, "stopped only at call {call}");
    assert!(
        err.to_string()
            .starts_with("provider \"evil-leak-fields\": ")
            && err
                .to_string()
                .contains("exceeded its memory limit of 8 MiB"),
        "{err}"
    );
    // The instance was replaced: the next call starts from nothing and works.
    assert_eq!(source.resolve().await.unwrap().expose(), "leaked 16 fields");
}

#[tokio::test]
async fn too_many_host_resources_are_refused() {
    let source = hostile_spec("many-resources", &[], |spec| spec.timeout = MEMORY_TIMEOUT);
    let err = misbehave_in(source, "many-resources", MEMORY_TIMEOUT)
        .await
        .expect_err("5,000 pollables");
    assert_eq!(err.kind(), FailureKind::Crashed, "{err}");
    assert!(
        err.to_string().contains("holds 4096 host resources"),
        "{err}"
    );
}

/// A loopback HTTP server that answers every request after `delay` and counts the
/// connections open at once.
struct CountingServer {
    authority: String,
    most_open: Arc<std::sync::atomic::AtomicUsize>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl CountingServer {
    async fn start(delay: Duration) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let open = Arc::new(AtomicUsize::new(0));
        let most_open = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (o, m, a) = (open.clone(), most_open.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                let o = o.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                        ))
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        CountingServer {
            authority,
            most_open,
            accepted,
        }
    }
}

#[tokio::test]
async fn concurrent_requests_are_capped_per_provider() {
    use std::sync::atomic::Ordering;
    let server = CountingServer::start(Duration::from_millis(40)).await;
    let pattern = tokenhost::grants::HostPattern::parse(&server.authority).unwrap();
    let source = hostile_spec(
        "many-requests",
        &[("authority", &server.authority), ("count", "2000")],
        |spec| {
            spec.timeout = Duration::from_secs(10);
            spec.grants.hosts = vec![pattern];
        },
    );
    let token = source.resolve().await.expect("the call itself succeeds");
    let outcome = token.expose().to_string();
    let most_open = server.most_open.load(Ordering::SeqCst);
    let accepted = server.accepted.load(Ordering::SeqCst);
    assert!(
        most_open <= tokenhost::source::wasm::http::MAX_IN_FLIGHT,
        "{most_open} connections open at once ({outcome})"
    );
    assert!(
        accepted <= tokenhost::source::wasm::http::MAX_IN_FLIGHT,
        "{accepted} connections in all ({outcome})"
    );
    // The first MAX_PENDING requests are served (queued for a slot); the rest are
    // refused at once with a code that says why.
    let pending = tokenhost::source::wasm::http::MAX_PENDING;
    assert!(outcome.contains(&format!("ok={pending}")), "{outcome}");
    assert!(
        outcome.contains(&format!("ConnectionLimitReached={}", 2000 - pending)),
        "{outcome}"
    );
    // The provider's slots are free again: its next call is served the same way.
    let again = source.resolve().await.unwrap();
    assert_eq!(again.expose(), outcome);
}
