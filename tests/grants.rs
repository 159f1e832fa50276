//! Grants end to end: `allowed_paths` (read-only, no escape), `allowed_env` (exactly the
//! granted variables), and `tokenhost token` with a secret from the environment through
//! the real `oauth2` plugin against a loopback identity provider.

use crate::support;

use support::idp::{Reply, Server};
use support::source;
use tokenhost::TokenSource;
use tokenhost::grants::Grants;

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
async fn a_relative_grant_appears_in_the_guest_at_its_normalised_path() {
    // The config lives in <dir>/cfg/fs and grants "../../fs/granted": the plugin sees
    // <dir>/fs/granted, not <dir>/cfg/fs/../../fs/granted.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("cfg/fs");
    let granted = dir.path().join("fs/granted");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&granted).unwrap();
    std::fs::write(granted.join("inside"), "normalised-content").unwrap();
    let paths = tokenhost::grants::grant_paths(&["../../fs/granted".into()], &base).unwrap();
    assert_eq!(paths[0].1, granted.to_str().unwrap());
    let read = |path: String| {
        source(
            "hostile",
            &[],
            Grants {
                paths: paths.clone(),
                ..Grants::default()
            },
            &[("mode", "read-file".into()), ("path", path)],
            2_000,
        )
    };
    let token = read(granted.join("inside").display().to_string())
        .resolve()
        .await
        .unwrap();
    assert_eq!(token.expose(), "normalised-content");
    let unnormalised = base.join("../../fs/granted/inside").display().to_string();
    let err = read(unnormalised).resolve().await.unwrap_err();
    assert!(err.to_string().contains("read failed"), "{err}");
}

#[test]
fn root_and_kernel_filesystems_cannot_be_granted_even_through_links() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/proc/self", dir.path().join("me")).unwrap();
    std::os::unix::fs::symlink("/", dir.path().join("everything")).unwrap();
    for (entry, cause) in [
        ("/proc", "(/proc) is inside /proc"),
        ("/", "(/) is the root directory"),
        ("/sys", "(/sys) is inside /sys"),
        ("/dev", "(/dev) is inside /dev"),
        ("/dev/shm", "(/dev/shm) is inside /dev"),
        ("me", "is inside /proc"),
        ("everything", "(/) is the root directory"),
        ("everything/sys/kernel/..", "(/sys) is inside /sys"),
        ("/tmp/../proc/self/..", "(/proc) is inside /proc"),
    ] {
        let text = format!(
            "[model_providers.corp.auth]\nplugin = \"x.wasm\"\nallowed_paths = [{entry:?}]"
        );
        let config = support::write_config(dir.path(), &text);
        let err = tokenhost::config::Config::load(&config)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "provider \"corp\": allowed_paths entry {entry:?} "
            )) && err.contains(cause),
            "{entry}: {err}"
        );
    }
}

#[tokio::test]
async fn a_grant_of_proc_is_refused_before_any_plugin_runs() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = support::toml_path(&support::plugin("hostile"));
    let config = support::write_config(
        dir.path(),
        &format!(
            "[model_providers.corp.auth]\nplugin = {plugin}\nallowed_paths = [\"/proc\"]\n\
             [model_providers.corp.auth.config]\nmode = \"read-file\"\npath = \"/proc/self/environ\"\n"
        ),
    );
    let secret = "PROC-ENV-SECRET-4b1d";
    let out = tokenhost(
        vec![
            "token".into(),
            "corp".into(),
            "-c".into(),
            config.display().to_string(),
        ],
        vec![("TOKENHOST_TEST_SECRET", secret.to_string())],
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}");
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("provider \"corp\": allowed_paths entry \"/proc\" (/proc) is inside /proc"),
        "{stderr}"
    );
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

/// The environment's proxy carries plugin requests to remote hosts (HTTPS through a
/// `CONNECT` tunnel, trusting a private CA through `SSL_CERT_FILE`), and the allowlist is
/// checked against the real target, which is what the proxy is asked for. Loopback
/// targets never go through a proxy (issue 19):
/// `network_errors::proxies_apply_to_remote_hosts_only_and_their_failures_say_proxy`.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_requests_honour_https_proxy() {
    // The IdP's name resolves nowhere: the token can only come through the proxy, which
    // tunnels every CONNECT to the loopback IdP.
    let dir = tempfile::tempdir().unwrap();
    let ca = support::tls::TestCa::new(dir.path());
    let (cert, key) = ca.issue("idp", "DNS:idp.example.test");
    let idp = Server::start_tls(&cert, &key, |_, _| Reply::token("via-proxy", 60)).await;
    let proxy = support::tls::ConnectProxy::start(idp.addr).await;
    let plugin = support::toml_path(&support::plugin("oauth2"));
    let config = support::write_config(
        dir.path(),
        &format!(
            "[model_providers.corp.auth]\nplugin = {plugin}\nallowed_hosts = [\"idp.example.test\"]\n\
             [model_providers.corp.auth.config]\ntoken_url = \"https://idp.example.test/token\"\n\
             client_id = \"c\"\nclient_secret = \"x\"\nallow_secret_in_config = \"true\"\n"
        ),
    );
    let args = vec![
        "token".into(),
        "corp".into(),
        "-c".into(),
        config.display().to_string(),
    ];
    let proxy_url = format!("http://{}", proxy.addr);
    let out = tokenhost(
        args,
        vec![
            ("HTTPS_PROXY", proxy_url.clone()),
            ("https_proxy", proxy_url),
            ("SSL_CERT_FILE", ca.cert.display().to_string()),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via-proxy\n");
    // The allowlist was checked against the real target, and the proxy saw that target.
    assert_eq!(proxy.seen(), ["CONNECT idp.example.test:443 HTTP/1.1"]);
    let seen = idp.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers.get("host").map(String::as_str),
        Some("idp.example.test")
    );
}
