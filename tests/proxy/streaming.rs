//! Responses stream through: each SSE event reaches the client when upstream sends it,
//! a client that goes away cancels the upstream request, and HTTP/2 clients are served.

use std::time::{Duration, Instant};

use super::{World, client};

#[test]
fn sse_events_reach_the_client_as_they_are_sent() {
    let world = World::new("");
    let proxy = world.proxy(&[]);
    let (received, text) = world.runtime.block_on(async {
        let mut response = client()
            .get(format!("{}/sse?n=5&gap_ms=200", proxy.url))
            .bearer_auth(&proxy.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut received = Vec::new();
        let mut text = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            received.push(Instant::now());
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        (received, text)
    });
    let sent = world.api.sse_sent();
    assert_eq!(sent.len(), 5);
    assert_eq!(text.matches("event: tick").count(), 5, "{text}");
    assert!(
        received[0] < sent[4],
        "the first event arrived after the last was sent: buffered"
    );
    assert!(
        received[0].duration_since(sent[0]) < Duration::from_millis(150),
        "the first event took {:?}",
        received[0].duration_since(sent[0])
    );
    assert!(
        received.len() >= 5,
        "{} chunks for 5 events",
        received.len()
    );
}

#[test]
fn a_client_that_goes_away_cancels_the_upstream_request() {
    let world = World::new("");
    let proxy = world.proxy(&[]);
    world.runtime.block_on(async {
        let http = client();
        let mut response = http
            .get(format!("{}/endless", proxy.url))
            .bearer_auth(&proxy.key)
            .send()
            .await
            .unwrap();
        for _ in 0..3 {
            assert!(response.chunk().await.unwrap().is_some());
        }
        drop(response);
        drop(http);
        let started = Instant::now();
        while world.api.cancelled() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "upstream still streams to a client that left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(world.api.cancelled(), 1);
}

/// A client that speaks HTTP/2 from the first byte (prior knowledge, as gRPC clients and
/// `curl --http2-prior-knowledge` do on plain loopback): the real curl, a request with a
/// body and a streamed response, the token added as for HTTP/1.1.
#[test]
fn an_http2_client_gets_the_same_service() {
    let world = World::new("");
    let proxy = world.proxy(&[]);
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "-w",
                "\n%{http_version} %{http_code}",
            ])
            .args(["-H", &format!("Authorization: Bearer {}", proxy.key)])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let chat = curl(&[
        "-d",
        "{\"model\": \"m\"}",
        "-H",
        "content-type: application/json",
        &format!("{}/chat/completions?x=1", proxy.url),
    ]);
    assert!(chat.ends_with("\n2 200"), "{chat}");
    let stream = curl(&[&format!("{}/sse?n=3&gap_ms=50", proxy.url)]);
    assert_eq!(stream.matches("event: tick").count(), 3, "{stream}");
    assert!(stream.ends_with("\n2 200"), "{stream}");
    let seen = world.api.seen();
    let chat_request = seen
        .iter()
        .find(|r| r.method == "POST")
        .expect("the POST went up");
    assert_eq!(chat_request.path, "/v1/chat/completions?x=1");
    assert_eq!(chat_request.token.as_deref(), Some("tok-1"));
    assert_eq!(chat_request.body, b"{\"model\": \"m\"}");
    let authority = world.api.url("").trim_start_matches("http://").to_string();
    assert_eq!(chat_request.headers["host"], authority);
    // Without the key, HTTP/2 stops at the proxy as HTTP/1.1 does.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("{}/chat/completions", proxy.url))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    assert_eq!(
        world.api.seen().len(),
        seen.len(),
        "the keyless request went upstream"
    );
}
