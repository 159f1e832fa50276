//! `AuthClient` and `tokenhost request` against a real API on 127.0.0.1 that accepts
//! only the current token, with tokens from the real `static-token` plugin (whose
//! refreshes return `<token>-1`, `<token>-2`, ...).

use crate::support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use support::idp::{Reply, Seen, Server};
use tokenhost::SourceFactory;
use tokenhost::config::Config;
use tokenhost::source::wasm::CompiledCache;
use tokenhost::{AuthClient, AuthError, AuthManager, ClientError};

/// What the plugin resolves first; refreshes return TOKEN-1, TOKEN-2, ...
const TOKEN: &str = "s3cr3t-api-token";

/// An API that answers 200 (echoing what it saw) to `Bearer <accepted>` and 401 to
/// anything else. `accepted` can be changed while it runs.
async fn api(accepted: &str) -> (Server, Arc<Mutex<String>>) {
    let accepted = Arc::new(Mutex::new(accepted.to_string()));
    let current = accepted.clone();
    let server = Server::start(move |seen: &Seen, _| {
        let want = format!("Bearer {}", current.lock().unwrap());
        if seen.headers.get("authorization") == Some(&want) {
            Reply::json(
                200,
                serde_json::json!({"method": seen.method, "path": seen.path, "body": seen.body}),
            )
        } else {
            Reply::json(401, serde_json::json!({"error": "invalid_token"}))
        }
    })
    .await;
    (server, accepted)
}

/// The config text for provider "corp" on the static-token plugin, plus `provider_keys`
/// (base_url, http_headers, ...) in its `[model_providers.corp]` table.
fn config_text(provider_keys: &str) -> String {
    let plugin = support::toml_path(&support::plugin("static-token"));
    format!(
        r#"
        [model_providers.corp]
        name = "Corp"
        {provider_keys}
        [model_providers.corp.auth]
        plugin = {plugin}
        [model_providers.corp.auth.config]
        token = "{TOKEN}"
        ttl_ms = 3600000
        "#
    )
}

/// A manager and a client for "corp" built as the CLI builds them: `Config::parse`, then
/// the `SourceFactory` (one compiled cache per test binary).
fn client(provider_keys: &str) -> (AuthClient, Arc<AuthManager>) {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().unwrap());
    let config = Config::parse(
        &config_text(provider_keys),
        Path::new("/nonexistent/config.toml"),
    )
    .unwrap();
    let factory = SourceFactory::unrestricted(CompiledCache::at(cache.path().join("compiled")));
    let manager = Arc::new(factory.manager(&config).unwrap());
    let spec = config.provider("corp").unwrap();
    let client = AuthClient::new(manager.clone(), spec.id.clone(), spec.api.clone()).unwrap();
    (client, manager)
}

fn base_url(server: &Server) -> String {
    format!("base_url = \"{}\"", server.url("/api/v1"))
}

fn source_calls(manager: &AuthManager) -> u64 {
    manager.status("corp").unwrap().source_calls
}

fn bearer(seen: &Seen) -> &str {
    &seen.headers["authorization"]
}

/// The error's Display and Debug, checked to hold no token value.
fn shown(error: &ClientError) -> String {
    let (display, debug) = (error.to_string(), format!("{error:?}"));
    for text in [&display, &debug] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
    }
    display
}

#[tokio::test]
async fn the_first_try_succeeds_with_the_current_token() {
    let (server, _) = api(TOKEN).await;
    let (client, manager) = client(&base_url(&server));
    let response = client.get("models").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(json["path"], "/api/v1/models");
    assert_eq!(source_calls(&manager), 1);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(bearer(&seen[0]), format!("Bearer {TOKEN}"));
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries_with_the_same_body() {
    let (server, _) = api(&format!("{TOKEN}-1")).await;
    let (client, manager) = client(&base_url(&server));
    let response = client
        .post("chat")
        .header("content-type", "application/json")
        .body(r#"{"q":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(source_calls(&manager), 2, "one resolve and one refresh");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(bearer(&seen[0]), format!("Bearer {TOKEN}"));
    assert_eq!(bearer(&seen[1]), format!("Bearer {TOKEN}-1"));
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_eq!(request.body, r#"{"q":1}"#);
        assert_eq!(request.headers["content-type"], "application/json");
    }

    // The next request uses the refreshed token straight away.
    let response = client.get("chat").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.seen().len(), 3);
    assert_eq!(source_calls(&manager), 2);
}

#[tokio::test]
async fn a_second_401_is_a_typed_error() {
    let (server, _) = api("nothing-is-accepted").await;
    let (client, manager) = client(&base_url(&server));
    let error = client.get("models").send().await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Unauthorized { provider } if provider == "corp"),
        "{error:?}"
    );
    assert_eq!(
        shown(&error),
        "provider \"corp\": the server rejected the refreshed token too (HTTP 401 twice); \
         check the provider's credentials and audience"
    );
    assert_eq!(server.seen().len(), 2, "one retry, no more");
    assert_eq!(source_calls(&manager), 2);
}

#[tokio::test]
async fn a_stream_body_is_not_retried_but_the_401_is_reported() {
    let (server, _) = api(&format!("{TOKEN}-1")).await;
    let (client, manager) = client(&base_url(&server));
    let stream = reqwest::Body::wrap(http_body_util::Full::new(Bytes::from("streamed")));
    let error = client
        .post("upload")
        .body_stream(stream)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::NotReplayable { provider } if provider == "corp"),
        "{error:?}"
    );
    assert_eq!(
        shown(&error),
        "provider \"corp\": got HTTP 401 and the request body is a stream that cannot be \
         replayed; retry the request"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "a stream is sent once");
    assert_eq!(seen[0].body, "streamed");
    assert_eq!(source_calls(&manager), 2, "the 401 was reported: refreshed");

    // So the caller's retry succeeds at once.
    let stream = reqwest::Body::wrap(http_body_util::Full::new(Bytes::from("streamed")));
    let response = client
        .post("upload")
        .body_stream(stream)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.seen().len(), 2);
    assert_eq!(bearer(&server.seen()[1]), format!("Bearer {TOKEN}-1"));
    assert_eq!(source_calls(&manager), 2);
}

#[tokio::test]
async fn base_url_headers_and_query_params_are_applied() {
    let (server, _) = api(TOKEN).await;
    let keys = format!(
        "{}\nhttp_headers = {{ \"X-Team\" = \"a\", \"X-Api-Key\" = \"hdr-s3cr3t\" }}\n\
         query_params = {{ api-version = \"2025-01-01\" }}",
        base_url(&server)
    );
    let (client, _) = client(&keys);
    for target in ["chat/completions", "/chat/completions"] {
        let response = client
            .post(target)
            .header("X-Team", "b")
            .header("X-Request", "r1")
            .query(&[("limit", 5)])
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    client
        .get("/models?stream=true")
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    client
        .get(&server.url("/elsewhere"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let seen = server.seen();
    for request in &seen[..2] {
        assert_eq!(
            request.path,
            "/api/v1/chat/completions?api-version=2025-01-01&limit=5"
        );
        assert_eq!(request.headers["x-team"], "b", "request headers win");
        assert_eq!(request.headers["x-request"], "r1");
        assert_eq!(request.headers["x-api-key"], "hdr-s3cr3t");
        assert_eq!(bearer(request), format!("Bearer {TOKEN}"));
    }
    assert_eq!(
        seen[2].path,
        "/api/v1/models?stream=true&api-version=2025-01-01"
    );
    assert_eq!(seen[2].headers["x-team"], "a");
    assert_eq!(seen[3].path, "/elsewhere?api-version=2025-01-01");
    assert_eq!(seen[3].headers["x-api-key"], "hdr-s3cr3t");

    let debug = format!("{client:?}");
    assert!(
        debug.contains("x-api-key") && debug.contains("api-version"),
        "{debug}"
    );
    assert!(!debug.contains("s3cr3t"), "{debug}");
}

#[tokio::test]
async fn unusable_requests_fail_before_a_token_is_fetched() {
    let (client, manager) = client("");
    let error = client.get("/models").send().await.unwrap_err();
    assert!(matches!(error, ClientError::Invalid { .. }), "{error:?}");
    assert!(shown(&error).contains("has no base_url"), "{error}");
    let error = client
        .get("https://x.example/")
        .header("bad name", "v")
        .send()
        .await
        .unwrap_err();
    assert!(shown(&error).contains("\"bad name\" is not a valid HTTP header name"));
    let error = client
        .get("https://x.example/")
        .header("x-a", "s3cr3t\r\nX-Injected: 1")
        .send()
        .await
        .unwrap_err();
    let message = shown(&error);
    assert!(message.contains("value of header \"x-a\""), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
    assert_eq!(source_calls(&manager), 0);

    let other = AuthClient::new(manager.clone(), "nope", Default::default()).unwrap();
    let error = other.get("https://x.example/").send().await.unwrap_err();
    assert!(
        matches!(error, ClientError::Auth(AuthError::UnknownProvider { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_connection_failure_names_the_url_without_its_query() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (client, _) = client(&format!(
        "base_url = \"http://127.0.0.1:{port}/v1\"\nquery_params = {{ key = \"q-s3cr3t\" }}"
    ));
    let error = client.get("models").send().await.unwrap_err();
    assert!(matches!(error, ClientError::Http { .. }), "{error:?}");
    let message = shown(&error);
    assert!(
        message.starts_with(&format!(
            "provider \"corp\": request to http://127.0.0.1:{port}/v1/models failed"
        )),
        "{message}"
    );
    assert!(!message.contains("s3cr3t"), "{message}");
}

// ---- tokenhost request ----

/// Runs the binary with `args` (`{config}` replaced by the config's path) from a
/// blocking thread, so that the test's server keeps answering.
async fn tokenhost(dir: &Path, config_text: String, args: &[&str]) -> Output {
    let config = support::write_config(dir, &config_text);
    let dir = dir.to_path_buf();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{config}", config.to_str().unwrap()))
        .collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tokenhost"))
            .args(&args)
            .env_remove("TOKENHOST_CONFIG")
            .env_remove("TOKENHOST_POLICY")
            .env_remove("RUST_LOG")
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
            .env("HOME", &dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn cli_get_prints_the_body_and_nothing_else() {
    let body: Vec<u8> = b"raw \x00\xff bytes, no newline".to_vec();
    let reply = body.clone();
    let server = Server::start(move |_, _| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body: reply.clone(),
        delay: None,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = tokenhost(
        dir.path(),
        config_text(&base_url(&server)),
        &["request", "corp", "models", "-c", "{config}"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, body);
    assert_eq!(stderr(&out), "");
    let seen = server.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/api/v1/models");
    assert_eq!(bearer(&seen[0]), format!("Bearer {TOKEN}"));
}

#[tokio::test]
async fn cli_post_with_data_from_a_file_and_headers() {
    let (server, _) = api(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("body.json");
    std::fs::write(&data, br#"{"model":"m","input":"hi"}"#).unwrap();
    let at_data = format!("@{}", data.display());
    let keys = format!(
        "{}\nhttp_headers = {{ \"X-Team\" = \"a\" }}\nquery_params = {{ api-version = \"1\" }}",
        base_url(&server)
    );
    let out = tokenhost(
        dir.path(),
        config_text(&keys),
        &[
            "request",
            "corp",
            "/chat/completions",
            "-X",
            "POST",
            "-d",
            &at_data,
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-Request:r1",
            "-c",
            "{config}",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["path"], "/api/v1/chat/completions?api-version=1");
    let seen = &server.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body, r#"{"model":"m","input":"hi"}"#);
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["x-request"], "r1");
    assert_eq!(seen.headers["x-team"], "a");
}

#[tokio::test]
async fn cli_recovers_from_a_401_and_verbose_shows_no_token() {
    let (server, _) = api(&format!("{TOKEN}-1")).await;
    let dir = tempfile::tempdir().unwrap();
    let out = tokenhost(
        dir.path(),
        config_text(&base_url(&server)),
        &[
            "request", "corp", "chat", "-d", "hello", "-vv", "-c", "{config}",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["method"], "POST", "-d implies POST");
    assert_eq!(json["body"], "hello");
    assert_eq!(server.seen().len(), 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("> POST {}", server.url("/api/v1/chat"))),
        "{err}"
    );
    assert!(err.contains("< HTTP/1.1 200 OK ("), "{err}");
    assert!(err.contains(" ms)") && err.contains("bytes in"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
}

#[tokio::test]
async fn cli_non_2xx_prints_the_body_and_exits_1() {
    let server =
        Server::start(|_, _| Reply::json(404, serde_json::json!({"error": "no such model"}))).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = format!(
        "{}\nquery_params = {{ key = \"q-s3cr3t\" }}",
        base_url(&server)
    );
    let out = tokenhost(
        dir.path(),
        config_text(&keys),
        &["request", "corp", "missing", "-c", "{config}"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, br#"{"error":"no such model"}"#);
    assert_eq!(
        stderr(&out),
        format!(
            "tokenhost: HTTP 404 from {}\n",
            server.url("/api/v1/missing")
        )
    );
}

#[tokio::test]
async fn cli_usage_errors_exit_2_and_401_twice_exits_1() {
    let (server, _) = api("nothing-is-accepted").await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&base_url(&server));
    let cases: &[(&[&str], &str)] = &[
        (&["request", "nope", "x"], "unknown provider \"nope\""),
        (
            &["request", "corp", "x", "-H", "NoColon"],
            "-H wants \"Name: value\"",
        ),
        (
            &["request", "corp", "x", "-H", "Authorization: Bearer mine"],
            "-H cannot set Authorization",
        ),
        (
            &["request", "corp", "x", "-X", "BAD METHOD"],
            "not a valid HTTP method",
        ),
        (
            &["request", "corp", "x", "-d", "@/nonexistent/body"],
            "-d @/nonexistent/body",
        ),
        (
            &["request", "corp", "ftp://x/y"],
            "not an http:// or https:// URL",
        ),
    ];
    for (args, expected) in cases {
        let mut args = args.to_vec();
        args.extend(["-c", "{config}"]);
        let out = tokenhost(dir.path(), text.clone(), &args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty());
    }
    assert!(server.seen().is_empty());

    let out = tokenhost(
        dir.path(),
        text,
        &["request", "corp", "x", "-c", "{config}"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("(HTTP 401 twice)"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(TOKEN));
    assert!(out.stdout.is_empty());
    assert_eq!(server.seen().len(), 2);
}

/// A provider id comes from the config file: `check` and the errors it prints show ESC,
/// C1 controls (U+009B CSI) and direction overrides in it escaped, never raw.
#[tokio::test]
async fn check_escapes_control_characters_in_provider_ids() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = support::toml_path(&support::plugin("static-token"));
    let config = format!(
        r#"
        [model_providers."ok\u001b[2J"]
        name = "Ok"
        [model_providers."ok\u001b[2J".auth]
        plugin = {plugin}
        [model_providers."ok\u001b[2J".auth.config]
        token = "{TOKEN}"

        [model_providers."bad\u009b31m\u202e"]
        name = "Bad"
        [model_providers."bad\u009b31m\u202e".auth]
        plugin = {plugin}

        [model_providers."noauth\u001b]0;x\u0007"]
        name = "No auth"
        "#
    );
    let output = tokenhost(
        dir.path(),
        config,
        &["check", "--resolve", "-c", "{config}"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    for raw in ['\u{1b}', '\u{9b}', '\u{202e}', '\u{7}'] {
        assert!(
            !stdout.contains(raw),
            "U+{:04X} raw in:\n{stdout}",
            raw as u32
        );
        assert!(
            !stderr(&output).contains(raw),
            "U+{:04X} raw in stderr",
            raw as u32
        );
    }
    assert!(stdout.contains("ok   ok\\u{1b}[2J: plugin "), "{stdout}");
    assert!(
        stdout.contains("FAIL provider \"bad\\u{9b}31m\\u{202e}\": invalid configuration:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skip noauth\\u{1b}]0;x\\u{7}: no [auth] table"),
        "{stdout}"
    );
    assert!(!stdout.contains(TOKEN), "{stdout}");
}

/// A token holding a C1 control or a direction override never reaches a client: the
/// source fails with an error that names the provider, the character and where it is,
/// without the token.
#[tokio::test]
async fn a_token_with_a_c1_control_or_a_bidi_override_is_refused() {
    for (c, what) in [
        ('\u{9b}', "the C1 control character U+009B"),
        ('\u{202e}', "the bidirectional formatting character U+202E"),
    ] {
        let token = format!("{TOKEN}{c}x");
        let source = support::source(
            "static-token",
            &[],
            tokenhost::grants::Grants::default(),
            &[("token", token)],
            3_000,
        );
        let error = tokenhost::TokenSource::resolve(&source).await.unwrap_err();
        assert_eq!(error.kind(), tokenhost::FailureKind::BadOutput, "{error}");
        let shown = error.to_string();
        assert!(
            shown.starts_with("provider \"idp\": bad output:"),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("{what} at byte offset 16")),
            "{shown}"
        );
        assert!(!shown.contains(TOKEN) && !shown.contains(c), "{shown}");
    }
}
