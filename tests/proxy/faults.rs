//! Faults: upstream down or too slow, a failing token source, and many requests in a row
//! and at once without leaking a connection or a file descriptor.

use std::time::{Duration, Instant};

use super::recovery::futures_join;
use super::{ProxyProcess, World, client, status_and_json};

/// `GET <proxy>/<path>`: the status and the JSON body.
async fn get(proxy: &ProxyProcess, path: &str) -> (u16, serde_json::Value) {
    let request = client()
        .get(format!("{}{path}", proxy.url))
        .bearer_auth(&proxy.key);
    status_and_json(request).await
}

#[test]
fn upstream_down_is_a_502_that_names_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = super::config(dir.path(), &format!("http://127.0.0.1:{port}/v1"), "");
    let proxy = ProxyProcess::start(dir.path(), &config, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, body) = runtime.block_on(get(&proxy, "/models?key=q-s3cr3t"));
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "upstream_unreachable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("provider \"corp\""), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{port}/v1/models")),
        "{message}"
    );
    assert!(!message.contains("q-s3cr3t"), "{message}");
}

#[test]
fn a_slow_upstream_is_a_504_after_the_deadline() {
    let world = World::new("");
    let proxy = world.proxy(&["--upstream-timeout", "0.3"]);
    let started = Instant::now();
    let (status, body) = world.runtime.block_on(get(&proxy, "/slow?ms=5000"));
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_failing_token_source_is_a_502_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = support_config_failing(dir.path());
    let proxy = ProxyProcess::start(dir.path(), &config, &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, body) = runtime.block_on(get(&proxy, "/models"));
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "token_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("corp") && message.contains("idp is down"),
        "{message}"
    );
}

fn support_config_failing(dir: &std::path::Path) -> std::path::PathBuf {
    crate::support::write_config(
        dir,
        "[model_providers.corp]\nbase_url = \"http://127.0.0.1:9/v1\"\n\
         [model_providers.corp.auth]\ncommand = \"/bin/sh\"\n\
         args = [\"-c\", \"echo idp is down >&2; exit 3\"]\n",
    )
}

#[test]
fn a_thousand_requests_in_a_row_and_a_hundred_at_once_leak_nothing() {
    let world = World::new("");
    let proxy = world.proxy(&[]);
    world.runtime.block_on(async {
        let http = client();
        // The first request sets up what lives as long as the proxy (the runtime's
        // blocking threads, the token); counting starts after it.
        let (status, _) = get(&proxy, "/models").await;
        assert_eq!(status, 200);
        baseline_fds(&proxy);
        for i in 0..1000 {
            let response = http
                .get(format!("{}/models?i={i}", proxy.url))
                .bearer_auth(&proxy.key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "request {i}");
            response.bytes().await.unwrap();
        }
    });
    let baseline = BASELINE.with(|b| b.get());
    // One client connection, and the upstream pool: a request may go out before the
    // previous connection is back in the pool (more so on a busy machine), so a few, never
    // one per request.
    let after_sequential = proxy.fds();
    assert!(
        after_sequential <= baseline + 8,
        "fds: {baseline} before, {after_sequential} after 1,000 requests on one connection: {}",
        proxy.fd_list()
    );
    assert!(
        world.api.accepted_connections() <= 8,
        "upstream connections are pooled: {} for 1,000 requests",
        world.api.accepted_connections()
    );

    let burst = |round: usize| {
        let (url, key) = (proxy.url.clone(), proxy.key.clone());
        futures_join((0..100).map(move |i| {
            let (url, key) = (url.clone(), key.clone());
            async move {
                // One client (connection) per request: a hundred at once.
                let response = client()
                    .get(format!("{url}/models?round={round}&i={i}"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                response.bytes().await.unwrap();
                status
            }
        }))
    };
    let settle = || std::thread::sleep(Duration::from_millis(300));
    let statuses = world.runtime.block_on(burst(1));
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    settle();
    let after_first = proxy.fds();
    let statuses = world.runtime.block_on(burst(2));
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    settle();
    let after_second = proxy.fds();
    eprintln!(
        "proxy fds: {baseline} at start, {after_sequential} after 1,000 sequential, \
         {after_first} and {after_second} after two bursts of 100; upstream connections \
         open {}, accepted {}",
        world.api.open_connections(),
        world.api.accepted_connections()
    );
    // The clients' connections are closed; what remains is the upstream pool.
    // The pool may grow in the second burst (the first may not have needed a hundred at
    // once) but never past one idle connection per concurrent request.
    for after in [after_first, after_second] {
        assert!(
            after <= baseline + 100 + 3,
            "{after} fds: {}",
            proxy.fd_list()
        );
    }
    assert!(world.api.open_connections() <= 100 + 3);
    assert_eq!(world.api.seen().len(), 1 + 1000 + 200);
    assert_eq!(world.runs(), 1);
}

thread_local! {
    static BASELINE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Records the proxy's descriptors now (with no client connection open).
fn baseline_fds(proxy: &ProxyProcess) {
    std::thread::sleep(Duration::from_millis(100));
    BASELINE.with(|b| b.set(proxy.fds()));
}
