//! Who gets through, and what goes upstream: the local key (three headers, compared
//! exactly; anything else stops at the proxy), the key file, the Unix socket, the
//! provider's headers and query, and logs without a secret.

use std::os::unix::fs::PermissionsExt;

use super::{World, client};

#[test]
fn requests_carry_the_token_and_the_provider_settings_but_never_the_key() {
    let world = World::new(
        "http_headers = { \"X-Org\" = \"corp\" }\nquery_params = { api-version = \"2025-01\" }",
    );
    let proxy = world.proxy(&[]);
    world.runtime.block_on(async {
        let http = client();
        let url = format!("{}/chat/completions?x=1", proxy.url);
        for (name, value) in [
            ("authorization", format!("Bearer {}", proxy.key)),
            ("x-api-key", proxy.key.clone()),
            ("api-key", proxy.key.clone()),
        ] {
            let response = http
                .post(&url)
                .header(name, value)
                .header("x-org", "client")
                .header("connection", "keep-alive, x-hop")
                .header("x-hop", "1")
                .body("{\"model\": \"m\"}")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{name}");
        }
    });
    let seen = world.api.seen();
    assert_eq!(seen.len(), 3);
    let authority = world.api.url("").trim_start_matches("http://").to_string();
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/chat/completions?api-version=2025-01&x=1");
        assert_eq!(request.token.as_deref(), Some("tok-1"));
        assert_eq!(request.headers["host"], authority);
        assert_eq!(request.headers["x-org"], "corp");
        assert_eq!(request.body, b"{\"model\": \"m\"}");
        for gone in ["x-api-key", "api-key", "x-hop"] {
            assert!(!request.headers.contains_key(gone), "{gone} went upstream");
        }
        let values: String = request.headers.values().cloned().collect();
        assert!(!values.contains(&proxy.key), "the local key went upstream");
    }
    assert_eq!(world.runs(), 1, "one source call for three requests");
}

#[test]
fn a_wrong_or_missing_key_gets_401_and_never_reaches_upstream() {
    let world = World::new("");
    let proxy = world.proxy(&[]);
    let same_length = format!("thpk_{}", "0".repeat(64));
    let tries: Vec<Option<(&str, String)>> = vec![
        None,
        Some(("authorization", format!("Bearer {same_length}"))),
        Some(("authorization", format!("Basic {}", proxy.key))),
        Some(("authorization", proxy.key.clone())),
        Some((
            "x-api-key",
            format!("{} ", &proxy.key[..proxy.key.len() - 1]),
        )),
        Some(("api-key", "wrong".into())),
    ];
    world.runtime.block_on(async {
        let http = client();
        for attempt in tries {
            let mut request = http.get(format!("{}/models", proxy.url));
            if let Some((name, value)) = &attempt {
                request = request.header(*name, value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{:?}", attempt.map(|a| a.0));
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "invalid_local_key");
        }
    });
    assert!(world.api.seen().is_empty(), "{:?}", world.api.seen());
    assert_eq!(world.runs(), 0, "no token was fetched for a refused client");
}

#[test]
fn the_key_file_is_private_and_goes_away_with_the_proxy() {
    let world = World::new("");
    let proxy = world.proxy(&["--listen", "localhost:0"]);
    let file = proxy.key_file.clone().unwrap();
    let run = world.dir.path().join("run/tokenhost");
    assert!(
        file.starts_with(&run),
        "{} not in {}",
        file.display(),
        run.display()
    );
    let port = proxy.url.rsplit(':').next().unwrap();
    assert!(
        file.ends_with(format!("proxy-corp-{port}.key")),
        "{}",
        file.display()
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(proxy.key.len(), 5 + 64, "thpk_ and 256 bits in hex");
    let (status, stderr) = proxy.terminate();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!file.exists(), "the key file outlived the proxy");
}

#[test]
fn print_env_gives_an_sdk_its_base_url_and_key() {
    let world = World::new("");
    let key_file = world.dir.path().join("my.key");
    let mut proxy = world.proxy(&["--print-env", "--key-file", key_file.to_str().unwrap()]);
    assert_eq!(proxy.key_file.as_deref(), Some(key_file.as_path()));
    let lines = proxy.stdout_lines(2);
    assert_eq!(lines[0], format!("OPENAI_BASE_URL={}", proxy.url));
    assert_eq!(lines[1], format!("OPENAI_API_KEY={}", proxy.key));
    assert!(
        !proxy.stderr().contains(&proxy.key),
        "the key reached stderr"
    );
}

#[test]
fn a_network_listen_address_needs_the_explicit_flag() {
    let world = World::new("");
    let err =
        super::ProxyProcess::try_start(world.dir.path(), &world.config, &["--listen", "0.0.0.0:0"])
            .err()
            .expect("the proxy listened on every interface without being told to");
    assert!(err.contains("--allow-non-loopback"), "{err}");
}

#[test]
fn a_unix_socket_admits_this_user_without_a_key() {
    let world = World::new("");
    let socket = world.dir.path().join("proxy.sock");
    let listen = format!("unix:{}", socket.display());
    let proxy = world.proxy(&["--listen", &listen]);
    assert_eq!(proxy.url, listen);
    assert!(proxy.key_file.is_none());
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let status = world.runtime.block_on(async {
        let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::get("/models")
            .header("host", "localhost")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        sender.send_request(request).await.unwrap().status()
    });
    assert_eq!(status, 200);
    assert_eq!(world.api.tokens(), ["tok-1"]);
    let (status, _) = proxy.terminate();
    assert!(status.success());
    assert!(!socket.exists(), "the socket outlived the proxy");
}

#[test]
fn no_token_key_or_query_value_reaches_the_log() {
    let world = World::new("query_params = { key = \"q-s3cr3t\" }");
    let proxy = world.proxy(&["-vvv"]);
    world.runtime.block_on(async {
        let http = client();
        let send = |path: &str| {
            http.get(format!("{}{path}", proxy.url))
                .bearer_auth(&proxy.key)
                .send()
        };
        assert_eq!(send("/models?sig=c-s3cr3t").await.unwrap().status(), 200);
        world.api.revoke("tok-1");
        assert_eq!(send("/models").await.unwrap().status(), 200);
        assert_eq!(send("/models").await.unwrap().status(), 200);
    });
    let key = proxy.key.clone();
    let (_, log) = proxy.terminate();
    assert!(log.contains("GET /models?sig=… 200"), "{log}");
    for secret in ["tok-1", "tok-2", &key, "q-s3cr3t", "c-s3cr3t"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
