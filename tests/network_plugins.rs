//! Plugins that reach an identity provider: the real `oauth2`, `token-exchange` and
//! `metadata` plugins against a real HTTP server on 127.0.0.1, through the host's
//! allowlist, env and path grants.

use crate::support;
use crate::support::log::CapturedLog;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::idp::{Reply, Server};
use support::source;
use tokenhost::grants::Grants;
use tokenhost::source::wasm::WasmSource;
use tokenhost::{AuthManager, FailureKind, TokenSource};

const SECRET: &str = "s3cr3t-client-secret!&=";

/// The oauth2 plugin pointed at `server`, with the secret in its config.
fn oauth2(server: &Server, path: &str, extra: &[(&str, String)]) -> WasmSource {
    let mut config = vec![
        ("token_url", server.url(path)),
        ("client_id", "my-client".to_string()),
        ("client_secret", SECRET.to_string()),
        ("allow_secret_in_config", "true".to_string()),
        ("scope", "api://llm/.default".to_string()),
        ("http_timeout_ms", "1500".to_string()),
    ];
    // A key in `extra` replaces the default.
    config.retain(|(key, _)| !extra.iter().any(|(k, _)| k == key));
    config.extend(extra.iter().cloned());
    source(
        "oauth2",
        &[server.authority()],
        Grants::default(),
        &config,
        3_000,
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn client_credentials_success_with_expiry() {
    let server = Server::start(|_, _| Reply::token("access-1", 3600)).await;
    let token = oauth2(&server, "/token", &[]).resolve().await.unwrap();
    assert_eq!(token.expose(), "access-1");
    let expires = token.expires_at_ms().unwrap();
    assert!(
        expires > now_ms() + 3_500_000 && expires <= now_ms() + 3_600_000,
        "{expires}"
    );

    let seen = &server.seen()[0];
    assert_eq!(seen.method, "POST");
    let form = seen.form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "api://llm/.default");
    assert!(
        !seen.body.contains("s3cr3t"),
        "basic auth keeps the secret out of the body"
    );
    let basic = seen.headers["authorization"]
        .strip_prefix("Basic ")
        .unwrap();
    use base64::Engine as _;
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(basic)
            .unwrap(),
    )
    .unwrap();
    // RFC 6749 2.3.1: id and secret are form-urlencoded before base64.
    assert_eq!(decoded, "my-client:s3cr3t-client-secret%21%26%3D");
}

#[tokio::test]
async fn client_secret_post_puts_the_credentials_in_the_form() {
    let server = Server::start(|_, _| Reply::token("access-1", 60)).await;
    let source = oauth2(
        &server,
        "/token",
        &[("auth_method", "client_secret_post".into())],
    );
    source.resolve().await.unwrap();
    let seen = &server.seen()[0];
    assert!(!seen.headers.contains_key("authorization"));
    assert_eq!(seen.form()["client_secret"], SECRET);
    assert_eq!(seen.form()["client_id"], "my-client");
}

#[tokio::test]
async fn invalid_client_is_denied_with_the_description() {
    let server = Server::start(|_, _| {
        Reply::json(401, serde_json::json!({"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"}))
    })
    .await;
    let err = oauth2(&server, "/token", &[]).resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Denied, "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with("provider \"idp\": denied:"),
        "{message}"
    );
    assert!(
        message.contains("invalid_client: AADSTS7000215: bad secret"),
        "{message}"
    );
    assert!(!message.contains("s3cr3t"), "{message}");
}

/// An IdP (or a proxy in front of it) that quotes the request's credentials in its error
/// text: the `Basic` header as sent, its base64 without padding, the form body. The
/// secret, its urlencoded form and its base64 form reach neither the error (which `check`,
/// the broker's `last_error` and stderr show) nor the log.
#[tokio::test]
async fn credentials_echoed_by_the_idp_never_reach_errors_or_logs() {
    let server = Server::start(|seen, index| {
        let auth = seen
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let description = match index {
            0 => format!("bad header Authorization: {auth}"),
            1 => format!(
                "credential {}",
                auth.trim_start_matches("Basic ").trim_end_matches('=')
            ),
            _ => format!("cannot parse {}", seen.body),
        };
        Reply::json(
            401,
            serde_json::json!({"error": "invalid_client", "error_description": description}),
        )
    })
    .await;
    let log = CapturedLog::default();
    let guard = log.start();
    let basic = oauth2(&server, "/token", &[]);
    let post = oauth2(
        &server,
        "/token",
        &[("auth_method", "client_secret_post".into())],
    );
    let errors = [
        basic.resolve().await.unwrap_err(),
        basic
            .refresh(tokenhost::RefreshReason::Forced)
            .await
            .unwrap_err(),
        post.resolve().await.unwrap_err(),
    ];
    drop(guard);

    // What the IdP saw, to be sure it had the credentials to echo.
    let seen = server.seen();
    let sent = seen[0].headers["authorization"].clone();
    let b64 = sent.strip_prefix("Basic ").unwrap();
    assert!(
        seen[2].body.contains("client_secret=s3cr3t"),
        "{:?}",
        seen[2]
    );
    let encoded = "s3cr3t-client-secret%21%26%3D";
    let leaks = [SECRET, "s3cr3t", b64, b64.trim_end_matches('='), encoded];
    let logs = log.text();
    for error in &errors {
        assert_eq!(error.kind(), FailureKind::Denied, "{error}");
        let message = error.to_string();
        assert!(message.contains("invalid_client: "), "{message}");
        assert!(message.contains("[redacted]"), "{message}");
        for leak in leaks {
            assert!(!message.contains(leak), "{leak:?} in the error: {message}");
        }
    }
    // The plugin logged its failures (so the capture saw them), redacted.
    assert!(logs.contains("oauth2: resolve failed"), "{logs}");
    for leak in leaks {
        assert!(!logs.contains(leak), "{leak:?} in the log:\n{logs}");
    }
}

/// A gateway's problem-details 400 and a 200 carrying an OAuth error keep their text; the
/// 400 is not classed as transient (retrying the same request cannot help).
#[tokio::test]
async fn error_bodies_that_are_not_rfc_6749_keep_their_text() {
    let server = Server::start(|_, index| match index {
        0 => Reply::json(
            400,
            serde_json::json!({"title": "Bad Request", "detail": "Invalid grant type", "status": 400}),
        ),
        _ => Reply::json(
            200,
            serde_json::json!({"error": "invalid_scope", "error_description": "scope api://llm/.default is not granted"}),
        ),
    })
    .await;
    let source = oauth2(&server, "/token", &[]);
    let err = source.resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::InvalidConfig, "{err}");
    assert!(!err.kind().is_transient());
    assert!(
        err.to_string().contains(&format!(
            "token endpoint {} rejected the request (HTTP 400 Bad Request): Invalid grant type; check the plugin's configuration",
            server.url("/token")
        )),
        "{err}"
    );
    let err = source.resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Denied, "{err}");
    assert!(
        err.to_string()
            .contains("refused: invalid_scope: scope api://llm/.default is not granted (HTTP 200)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_500_is_unavailable_and_the_next_call_succeeds() {
    let server = Server::start(|_, index| match index {
        0 => Reply::json(500, serde_json::json!({"error": "server_error"})),
        _ => Reply::token("access-2", 60),
    })
    .await;
    let source = oauth2(&server, "/token", &[]);
    let err = source.resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Unavailable, "{err}");
    assert!(err.to_string().contains("500"), "{err}");
    assert_eq!(source.resolve().await.unwrap().expose(), "access-2");
}

#[tokio::test]
async fn a_slow_server_ends_within_the_deadline() {
    let server =
        Server::start(|_, _| Reply::token("late", 60).after(Duration::from_secs(30))).await;
    let source = source(
        "oauth2",
        &[server.authority()],
        Grants::default(),
        &[
            ("token_url", server.url("/token")),
            ("client_id", "c".into()),
            ("client_secret", "x".into()),
            ("allow_secret_in_config", "true".into()),
            ("http_timeout_ms", "60000".into()),
        ],
        700,
    );
    let started = Instant::now();
    let err = source.resolve().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err.kind(), FailureKind::Timeout | FailureKind::Unavailable),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_slower_than_http_timeout_ms_is_unavailable_and_says_so() {
    let server =
        Server::start(|_, _| Reply::token("late", 60).after(Duration::from_secs(30))).await;
    let source = oauth2(&server, "/token", &[("http_timeout_ms", "300".into())]);
    let err = source.resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Unavailable, "{err}");
    // The connection was made: the message must not blame connecting.
    assert!(
        err.message().contains("waiting for the response")
            && err.message().contains("http_timeout_ms = 300"),
        "{err}"
    );
}

#[tokio::test]
async fn a_host_outside_the_allowlist_is_denied() {
    let server = Server::start(|_, _| Reply::token("never", 60)).await;
    let other = Server::start(|_, _| Reply::token("never", 60)).await;
    // Allowed: `other`; asked: `server`.
    let source = source(
        "oauth2",
        &[other.authority()],
        Grants::default(),
        &[
            ("token_url", server.url("/token")),
            ("client_id", "c".into()),
            ("client_secret", "x".into()),
            ("allow_secret_in_config", "true".into()),
        ],
        3_000,
    );
    let err = source.resolve().await.unwrap_err();
    assert!(err.to_string().contains("allowlist"), "{err}");
    assert!(err.to_string().contains(&server.authority()), "{err}");
    assert!(
        server.seen().is_empty(),
        "the request must not leave the host"
    );
}

#[tokio::test]
async fn a_plugin_without_grants_is_loadable_and_denied() {
    let server = Server::start(|_, _| Reply::token("never", 60)).await;
    let source = source(
        "oauth2",
        &[],
        Grants::default(),
        &[
            ("token_url", server.url("/token")),
            ("client_id", "c".into()),
            ("client_secret", "x".into()),
            ("allow_secret_in_config", "true".into()),
        ],
        3_000,
    );
    let err = source.resolve().await.unwrap_err();
    assert!(err.to_string().contains("allowlist"), "{err}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_redirect_to_a_foreign_host_is_not_followed() {
    let foreign = Server::start_on("127.0.0.2", |_, _| Reply::token("stolen", 60)).await;
    let location = format!("http://{}/token", foreign.addr);
    let server = Server::start(move |_, _| Reply::redirect(&location)).await;
    let err = oauth2(&server, "/token", &[]).resolve().await.unwrap_err();
    assert!(foreign.seen().is_empty(), "the redirect was followed");
    assert!(!err.to_string().contains("stolen"), "{err}");
}

#[tokio::test]
async fn a_10_mib_response_is_capped() {
    let server = Server::start(|_, _| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: vec![b' '; 10 << 20],
        delay: None,
    })
    .await;
    let err = oauth2(&server, "/token", &[]).resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Unavailable, "{err}");
    let message = err.to_string().to_lowercase();
    assert!(
        message.contains("body") || message.contains("size") || message.contains("mib"),
        "{message}"
    );
}

#[tokio::test]
async fn a_401_from_the_api_refreshes_through_the_plugin() {
    let server = Server::start(|_, index| Reply::token(&format!("access-{index}"), 3600)).await;
    let manager = AuthManager::builder()
        .provider("idp", None, Arc::new(oauth2(&server, "/token", &[])))
        .build();
    let first = manager.auth("idp").await.unwrap();
    assert_eq!(first.expose(), "access-0");
    assert_eq!(manager.auth("idp").await.unwrap().expose(), "access-0");
    let mut recovery = manager.recovery("idp");
    assert_eq!(recovery.recover(&first).await.unwrap().expose(), "access-1");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn token_exchange_reads_the_subject_token_from_an_allowed_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oidc.jwt"), "subject-jwt").unwrap();
    let server = Server::start(|_, _| {
        Reply::json(
            200,
            serde_json::json!({"access_token": "federated", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 3600}),
        )
    })
    .await;
    let grants = Grants {
        paths: tokenhost::grants::grant_paths(&[dir.path().display().to_string()], dir.path())
            .unwrap(),
        ..Grants::default()
    };
    let config = [
        ("token_url", server.url("/v1/token")),
        (
            "subject_token_file",
            dir.path().join("oidc.jwt").display().to_string(),
        ),
        ("audience", "//iam.googleapis.com/pool".to_string()),
    ];
    let granted = source(
        "token-exchange",
        &[server.authority()],
        grants,
        &config,
        3_000,
    );
    assert_eq!(granted.resolve().await.unwrap().expose(), "federated");
    let form = server.seen()[0].form();
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(form["subject_token"], "subject-jwt");

    // Without the path grant, the file does not exist for the plugin.
    let ungranted = source(
        "token-exchange",
        &[server.authority()],
        Grants::default(),
        &config,
        3_000,
    );
    let err = ungranted.resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("allowed_paths"), "{err}");
}

#[tokio::test]
async fn metadata_sends_the_required_header() {
    let server =
        Server::start(
            |seen, _| match seen.headers.get("metadata-flavor").map(String::as_str) {
                Some("Google") => Reply::token("from-metadata", 1800),
                _ => Reply::json(403, serde_json::json!({"error": "missing header"})),
            },
        )
        .await;
    let config = [(
        "url",
        server.url("/computeMetadata/v1/instance/service-accounts/default/token"),
    )];
    let source = source(
        "metadata",
        &[server.authority()],
        Grants::default(),
        &config,
        3_000,
    );
    let token = source.resolve().await.unwrap();
    assert_eq!(token.expose(), "from-metadata");
    assert!(token.expires_at_ms().unwrap() > now_ms() + 1_700_000);
}

/// wasmtime traces every WASI host call with its arguments: even when `RUST_LOG` asks for
/// them, a plugin's request path and query (which may carry a secret) are not shown.
#[tokio::test(flavor = "multi_thread")]
async fn rust_log_trace_does_not_show_a_plugins_request_query() {
    let server = Server::start(|_, _| Reply::token("access-1", 3600)).await;
    let env = support::cli::Env::new();
    let plugin = support::toml_path(&support::plugin("oauth2"));
    let config = env.config(&format!(
        "[model_providers.p.auth]\nplugin = {plugin}\nallowed_hosts = [\"{}\"]\n\
         [model_providers.p.auth.config]\ntoken_url = \"{}\"\nclient_id = \"c\"\n\
         client_secret = \"{SECRET}\"\nallow_secret_in_config = \"true\"\n",
        server.authority(),
        server.url("/token?sig=QUERY-SECRET-VALUE"),
    ));
    let out = tokio::task::spawn_blocking(move || {
        env.command(&["token", "p", "-c", config.to_str().unwrap()])
            // Asking for the WASI bindings' traces explicitly (everything at trace would
            // bury the test in the compiler's own trace output).
            .env(
                "RUST_LOG",
                "warn,tokenhost=trace,wasmtime_wasi=trace,wasmtime_wasi_http=trace",
            )
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = support::cli::stderr(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(support::cli::stdout(&out), "access-1\n");
    assert!(
        stderr.contains("plugin loaded"),
        "verbose logging is on: {stderr}"
    );
    assert!(!stderr.contains("QUERY-SECRET-VALUE"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert_eq!(server.seen()[0].path, "/token?sig=QUERY-SECRET-VALUE");
}
