//! 401 recovery: the proxy sees the status, reports the token, gets the next one and
//! replays the request once; a second 401, or a body too large to replay, goes back to
//! the client as upstream sent it.

use super::{World, client, status_and_json};

/// Sends `POST /chat/completions` with `body` and the proxy's key.
async fn post(url: &str, key: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let request = client()
        .post(format!("{url}/chat/completions"))
        .bearer_auth(key)
        .body(body);
    status_and_json(request).await
}

#[test]
fn a_revoked_token_is_replaced_and_the_request_replayed() {
    let world = World::new("");
    let proxy = world.proxy(&[]);
    let body = br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#.to_vec();
    world.runtime.block_on(async {
        assert_eq!(post(&proxy.url, &proxy.key, body.clone()).await.0, 200);
        world.api.revoke("tok-1");
        let (status, answer) = post(&proxy.url, &proxy.key, body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["object"], "chat.completion");
    });
    let seen = world.api.seen();
    let tokens: Vec<_> = seen
        .iter()
        .map(|s| (s.token.clone().unwrap(), s.status))
        .collect();
    assert_eq!(
        tokens,
        [
            ("tok-1".into(), 200),
            ("tok-1".into(), 401),
            ("tok-2".into(), 200)
        ]
    );
    assert_eq!(seen[1].body, body, "the replay sent the same body");
    assert_eq!(seen[2].body, body);
    assert_eq!(world.runs(), 2);
}

#[test]
fn a_second_401_goes_back_to_the_client() {
    let world = World::new("");
    let proxy = world.proxy(&[]);
    world.api.accept_only("no-such-token");
    let (status, answer) = world
        .runtime
        .block_on(post(&proxy.url, &proxy.key, b"{}".to_vec()));
    assert_eq!(status, 401);
    assert_eq!(
        answer["error"]["code"], "invalid_api_key",
        "upstream's own body"
    );
    assert_eq!(
        world.api.tokens(),
        ["tok-1", "tok-2"],
        "one replay, no more"
    );
    assert_eq!(world.runs(), 2);
}

#[test]
fn a_body_over_the_cap_is_passed_through_and_its_401_returned() {
    let world = World::new("");
    let proxy = world.proxy(&["--replay-cap", "1024"]);
    world.runtime.block_on(async {
        assert_eq!(post(&proxy.url, &proxy.key, b"{}".to_vec()).await.0, 200);
        world.api.revoke("tok-1");
        let big = vec![b'x'; 64 * 1024];
        let (status, answer) = post(&proxy.url, &proxy.key, big).await;
        assert_eq!(status, 401, "not replayable: upstream's 401 as it came");
        assert_eq!(answer["error"]["code"], "invalid_api_key");
        // The 401 was reported: the next request gets a fresh token.
        assert_eq!(post(&proxy.url, &proxy.key, b"{}".to_vec()).await.0, 200);
    });
    let seen = world.api.seen();
    assert_eq!(seen[1].body.len(), 64 * 1024, "the whole body was streamed");
    assert_eq!(world.api.tokens(), ["tok-1", "tok-1", "tok-2"]);
}

#[test]
fn concurrent_401s_cause_one_refresh() {
    let world = World::new("");
    let proxy = world.proxy(&[]);
    world.runtime.block_on(async {
        assert_eq!(post(&proxy.url, &proxy.key, b"{}".to_vec()).await.0, 200);
        world.api.revoke("tok-1");
        let all = (0..20).map(|_| {
            let (url, key) = (proxy.url.clone(), proxy.key.clone());
            async move { post(&url, &key, b"{}".to_vec()).await }
        });
        for (status, answer) in futures_join(all).await {
            assert_eq!(status, 200, "{answer}");
        }
    });
    assert_eq!(world.runs(), 2, "twenty 401s, one refresh");
}

/// Runs the futures concurrently (tasks on the runtime) and returns their outputs.
pub async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for task in tasks {
        outputs.push(task.await.unwrap());
    }
    outputs
}
