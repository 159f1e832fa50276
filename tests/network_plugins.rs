//! Plugins that reach an identity provider: the real `oauth2`, `token-exchange` and
//! `metadata` plugins against a real HTTP server on 127.0.0.1, through the host's
//! allowlist, env and path grants.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::idp::{Reply, Server};
use tokenhost::config::PluginSpec;
use tokenhost::grants::{Grants, grant_hosts};
use tokenhost::wasm::{CompiledCache, PluginRuntime, WasmSource};
use tokenhost::{AuthManager, FailureKind, TokenSource};

const SECRET: &str = "s3cr3t-client-secret!&=";

fn runtime() -> Arc<PluginRuntime> {
    static RUNTIME: std::sync::OnceLock<(Arc<PluginRuntime>, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    let (runtime, _) = RUNTIME.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        (
            PluginRuntime::new(CompiledCache::at(dir.path().join("c"))).unwrap(),
            dir,
        )
    });
    runtime.clone()
}

fn source(
    plugin: &str,
    hosts: &[String],
    grants: Grants,
    config: &[(&str, String)],
    timeout_ms: u64,
) -> WasmSource {
    let spec = PluginSpec {
        path: support::plugin(plugin),
        timeout: Duration::from_millis(timeout_ms),
        memory_limit_bytes: 64 << 20,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        grants: Grants {
            hosts: grant_hosts(hosts).unwrap(),
            ..grants
        },
    };
    WasmSource::new(&runtime(), "idp".into(), &spec).unwrap()
}

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

#[tokio::test]
async fn allowed_paths_are_read_only_and_cannot_be_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let granted = dir.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("inside"), "inside-content").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", granted.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc", granted.join("etc")).unwrap();
    let grants = || Grants {
        paths: tokenhost::grants::grant_paths(&[granted.display().to_string()], dir.path())
            .unwrap(),
        ..Grants::default()
    };
    let read = |path: String| {
        source(
            "hostile",
            &[],
            grants(),
            &[("mode", "read-file".into()), ("path", path)],
            2_000,
        )
    };
    let inside = read(granted.join("inside").display().to_string())
        .resolve()
        .await
        .unwrap();
    assert_eq!(inside.expose(), "inside-content");
    for escape in [
        granted.join("link"),
        granted.join("etc/passwd"),
        granted.join("../granted/../../../../etc/passwd"),
        dir.path().join("outside"),
    ] {
        let err = read(escape.display().to_string())
            .resolve()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("read failed"),
            "{}: {err}",
            escape.display()
        );
        assert!(!err.to_string().contains("root:"), "{err}");
    }
}

#[tokio::test]
async fn allowed_env_shows_exactly_the_granted_variables() {
    let grants = Grants {
        env: vec!["PATH".into(), "TOKENHOST_NOT_SET_ANYWHERE".into()],
        ..Grants::default()
    };
    let token = source("hostile", &[], grants, &[("mode", "env".into())], 2_000)
        .resolve()
        .await
        .unwrap();
    // The plugin answers "K=V;K=V;...;no args visible: argc=0".
    let shown = token.expose();
    let vars: Vec<&str> = shown
        .split(';')
        .filter(|part| !part.contains("argc="))
        .collect();
    assert_eq!(vars.len(), 1, "{shown}");
    assert!(vars[0].starts_with("PATH="), "{shown}");
}

/// Runs the `tokenhost` binary without blocking the server's runtime.
async fn tokenhost(args: Vec<String>, env: Vec<(&'static str, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let cache = tempfile::tempdir().unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_tokenhost"))
            .args(&args)
            .env("XDG_CACHE_HOME", cache.path())
            .env_remove("RUST_LOG")
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokenhost_token_with_the_oauth2_plugin_and_a_secret_from_the_environment() {
    let server = Server::start(|_, _| Reply::token("cli-access-token", 3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = support::toml_path(&support::plugin("oauth2"));
    let config = support::write_config(
        dir.path(),
        &format!(
            r#"
            [model_providers.corp.auth]
            plugin = {plugin}
            allowed_hosts = ["{authority}"]
            allowed_env = ["CORP_CLIENT_SECRET"]
            [model_providers.corp.auth.config]
            token_url = "{url}"
            client_id = "cli-client"
            client_secret_env = "CORP_CLIENT_SECRET"

            [model_providers.blocked.auth]
            plugin = {plugin}
            allowed_env = ["CORP_CLIENT_SECRET"]
            [model_providers.blocked.auth.config]
            token_url = "{url}"
            client_id = "cli-client"
            client_secret_env = "CORP_CLIENT_SECRET"
            "#,
            authority = server.authority(),
            url = server.url("/token"),
        ),
    );
    let config = config.display().to_string();
    let secret = "ENV-SECRET-9f8e7d";
    let env = vec![("CORP_CLIENT_SECRET", secret.to_string())];

    let out = tokenhost(
        vec![
            "-vvv".into(),
            "token".into(),
            "corp".into(),
            "-c".into(),
            config.clone(),
        ],
        env.clone(),
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "cli-access-token\n");
    assert!(
        !stderr.contains(secret),
        "the secret reached the log:\n{stderr}"
    );
    assert!(
        !stderr.contains("cli-access-token"),
        "the token reached the log:\n{stderr}"
    );
    assert!(server.seen()[0].headers["authorization"].starts_with("Basic "));

    // No allowed_hosts: the request is denied, the denial names the authority in the log.
    let out = tokenhost(
        vec![
            "-v".into(),
            "token".into(),
            "blocked".into(),
            "-c".into(),
            config,
        ],
        env,
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "plugin request to http://{} denied: not in allowed_hosts",
            server.authority()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    assert_eq!(server.seen().len(), 1);
}
