//! Responses stream through: each SSE event reaches the client when upstream sends it,
//! and a client that goes away cancels the upstream request.

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
