//! When a plugin's request gets no response, the error names the real cause: an
//! untrusted or wrong certificate (with the `SSL_CERT_FILE` hint), a name that does not
//! resolve, https to a plain-http port, a refused port, a proxy; a host timeout names the
//! request it was waiting for. The real `oauth2` plugin against real loopback servers,
//! in-process and through the `tokenhost` binary (whose environment can hold proxies).

use crate::support;
use crate::support::log::CapturedLog;

use std::process::Output;
use std::time::Duration;

use support::idp::{Reply, Server};
use support::tls::{TestCa, closed_port};
use tokenhost::grants::Grants;
use tokenhost::{FailureKind, TokenSource};

/// The oauth2 plugin asking `token_url`, allowed `host`, with a 3 s deadline.
fn oauth2(
    token_url: &str,
    host: &str,
    extra: &[(&str, &str)],
) -> tokenhost::source::wasm::WasmSource {
    let mut config = vec![
        ("token_url", token_url.to_string()),
        ("client_id", "c".to_string()),
        ("client_secret", "s3cr3t".to_string()),
        ("allow_secret_in_config", "true".to_string()),
        ("http_timeout_ms", "2000".to_string()),
    ];
    config.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    config.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let timeout = extra
        .iter()
        .find(|(k, _)| *k == "timeout_ms")
        .map_or(3_000, |(_, v)| v.parse().unwrap());
    support::source(
        "oauth2",
        &[host.to_string()],
        Grants::default(),
        &config,
        timeout,
    )
}

/// Resolves once; the error (which must be `unavailable`) and what was logged.
async fn failure(source: &tokenhost::source::wasm::WasmSource) -> (String, String) {
    let log = CapturedLog::default();
    let guard = log.start();
    let err = source.resolve().await.unwrap_err();
    drop(guard);
    assert_eq!(err.kind(), FailureKind::Unavailable, "{err}");
    let message = err.to_string();
    assert!(!message.contains("s3cr3t"), "{message}");
    (message, log.text())
}

#[tokio::test]
async fn an_untrusted_certificate_is_named_with_the_ssl_cert_file_hint() {
    let dir = tempfile::tempdir().unwrap();
    // Signed by a CA that nothing trusts: the private-CA case without SSL_CERT_FILE.
    let (cert, key) = TestCa::new(dir.path()).issue("server", "IP:127.0.0.1");
    let server = Server::start_tls(&cert, &key, |_, _| Reply::token("never", 60)).await;
    let source = oauth2(&server.https_url("/token"), &server.authority(), &[]);
    let (message, log) = failure(&source).await;
    // The plugin saw TlsCertificateError; the host says which problem and what to do.
    assert!(message.contains("TLS certificate error"), "{message}");
    assert!(
        message.contains(&format!(
            "the TLS certificate of {} is not trusted",
            server.authority()
        )),
        "{message}"
    );
    assert!(message.contains("SSL_CERT_FILE"), "{message}");
    assert!(!message.contains("refused"), "{message}");
    // The host's log line says it too.
    assert!(
        log.contains("failed: the TLS certificate of") && log.contains("POST https://"),
        "{log}"
    );
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn https_to_a_plain_http_port_is_a_tls_protocol_error() {
    let server = Server::start(|_, _| Reply::token("never", 60)).await;
    let source = oauth2(&server.https_url("/token"), &server.authority(), &[]);
    let (message, _) = failure(&source).await;
    assert!(message.contains("TLS protocol error"), "{message}");
    assert!(
        message.contains(&format!("{} did not answer in TLS", server.authority()))
            && message.contains("plain http:// port"),
        "{message}"
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_error() {
    let source = oauth2(
        "https://nonexistent.invalid:8443/token",
        "nonexistent.invalid:8443",
        &[],
    );
    let (message, _) = failure(&source).await;
    assert!(message.contains("DNS lookup failed"), "{message}");
    assert!(
        message.contains("cannot resolve nonexistent.invalid"),
        "{message}"
    );
    assert!(!message.contains("refused"), "{message}");
}

#[tokio::test]
async fn a_refused_port_says_refused() {
    let authority = format!("127.0.0.1:{}", closed_port());
    let source = oauth2(&format!("http://{authority}/token"), &authority, &[]);
    let (message, _) = failure(&source).await;
    assert!(
        message.contains("failed: connection refused")
            && message.contains(&format!("{authority} refused the connection")),
        "{message}"
    );
}

/// Item 4: the host's timeout says what the plugin was waiting for (never the query),
/// and a plugin whose own `http_timeout_ms` is not below the deadline is warned about
/// when it loads.
#[tokio::test]
async fn a_host_timeout_names_the_request_the_plugin_was_waiting_for() {
    let server =
        Server::start(|_, _| Reply::token("late", 60).after(Duration::from_secs(30))).await;
    let log = CapturedLog::default();
    let guard = log.start();
    let source = oauth2(
        &server.url("/token?sig=QUERY-SECRET"),
        &server.authority(),
        &[("http_timeout_ms", "4000"), ("timeout_ms", "700")],
    );
    drop(guard);
    let warned = log.text();
    assert!(
        warned.contains(
            "http_timeout_ms = 4000 in the plugin's config is not below timeout_ms = 700"
        ),
        "{warned}"
    );
    let err = source.resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Timeout, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "plugin did not answer within 700 ms: it was waiting for POST {} (no answer after",
            server.url("/token")
        )),
        "{message}"
    );
    assert!(
        message.contains("its http_timeout_ms = 4000 is not below timeout_ms = 700"),
        "{message}"
    );
    assert!(!message.contains("QUERY-SECRET"), "{message}");

    // A plugin timeout below the deadline: its own error, no warning.
    let log = CapturedLog::default();
    let guard = log.start();
    let quick = oauth2(
        &server.url("/token"),
        &server.authority(),
        &[("http_timeout_ms", "300"), ("timeout_ms", "2000")],
    );
    drop(guard);
    assert!(!log.text().contains("http_timeout_ms"), "{}", log.text());
    let err = quick.resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Unavailable, "{err}");
    assert!(err.to_string().contains("http_timeout_ms = 300"), "{err}");
}

/// `tokenhost token p` with the oauth2 plugin asking `token_url`, allowed `host`, in an
/// environment with `env` set (and every proxy variable of the test's own environment
/// removed).
fn token(token_url: &str, host: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let home = support::cli::Env::new();
    let plugin = support::toml_path(&support::plugin("oauth2"));
    let config = home.config(&format!(
        "[model_providers.p.auth]\nplugin = {plugin}\nallowed_hosts = [\"{host}\"]\n\
         [model_providers.p.auth.config]\ntoken_url = \"{token_url}\"\nclient_id = \"c\"\n\
         client_secret = \"s3cr3t\"\nallow_secret_in_config = \"true\"\n"
    ));
    let mut command = home.command(&["token", "p", "-c", config.to_str().unwrap(), "--no-broker"]);
    command.args(args);
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

async fn token_async(
    token_url: String,
    host: String,
    env: Vec<(&'static str, String)>,
    args: &'static [&'static str],
) -> Output {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        token(&token_url, &host, &env, args)
    })
    .await
    .unwrap()
}

/// Item 2: at the default verbosity a failure is one line on stderr (the plugin's own
/// warning repeats it and is shown with `-v`), and it names the real cause.
#[tokio::test(flavor = "multi_thread")]
async fn a_failure_is_one_stderr_line_naming_the_cause() {
    let authority = format!("127.0.0.1:{}", closed_port());
    let url = format!("http://{authority}/token");
    let out = token_async(url.clone(), authority.clone(), vec![], &[]).await;
    let stderr = support::cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tokenhost: provider \"p\": unavailable: request to")
            && stderr.contains("connection refused"),
        "{stderr}"
    );
    let verbose = token_async(url, authority, vec![], &["-v"]).await;
    let stderr = support::cli::stderr(&verbose);
    assert!(
        stderr.contains("plugin: oauth2: resolve failed:"),
        "-v shows the plugin's own line: {stderr}"
    );
}

/// The wrong name on a certificate the user does trust (`SSL_CERT_FILE`): a different
/// problem, a different message.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_for_another_name_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let (cert, key) = ca.issue("other", "DNS:other.example");
    let server = Server::start_tls(&cert, &key, |_, _| Reply::token("never", 60)).await;
    let env = vec![("SSL_CERT_FILE", ca.cert.display().to_string())];
    let out = token_async(server.https_url("/token"), server.authority(), env, &[]).await;
    let stderr = support::cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TLS certificate error")
            && stderr.contains("is not valid for the name 127.0.0.1"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Item 5: loopback token URLs never go through a proxy; other hosts do, NO_PROXY
/// excepted, and a proxy that cannot be reached is named as the cause. (A working proxy:
/// `grants::plugin_requests_honour_https_proxy`.)
#[tokio::test(flavor = "multi_thread")]
async fn proxies_apply_to_remote_hosts_only_and_their_failures_say_proxy() {
    let dead_proxy = format!("http://127.0.0.1:{}", closed_port());
    let proxies = |extra: &[(&'static str, &str)]| {
        let mut env = vec![
            ("HTTP_PROXY", dead_proxy.clone()),
            ("HTTPS_PROXY", dead_proxy.clone()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    };

    // A loopback IdP is reached directly, whatever the proxy variables say.
    let local = Server::start(|_, _| Reply::token("direct", 60)).await;
    let out = token_async(local.url("/token"), local.authority(), proxies(&[]), &[]).await;
    assert!(out.status.success(), "{}", support::cli::stderr(&out));
    assert_eq!(support::cli::stdout(&out), "direct\n");

    // A remote one goes through the proxy; an unreachable proxy is the named cause.
    let remote = "https://idp.example.test/token".to_string();
    let host = "idp.example.test".to_string();
    let out = token_async(remote.clone(), host.clone(), proxies(&[]), &[]).await;
    let stderr = support::cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the HTTP proxy")
            && stderr.contains(&format!(
                "cannot reach proxy {dead_proxy} (from HTTPS_PROXY)"
            ))
            && stderr.contains("connection refused"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A proxy tokenhost cannot use fails the request, rather than going direct.
    let socks = vec![("HTTPS_PROXY", "socks5://127.0.0.1:1080".to_string())];
    let out = token_async(remote.clone(), host.clone(), socks, &[]).await;
    let stderr = support::cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTPS_PROXY names a socks5:// proxy"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // NO_PROXY sends it direct: now the name itself does not resolve.
    let no_proxy = proxies(&[("NO_PROXY", ".example.test")]);
    let out = token_async(remote, host, no_proxy, &[]).await;
    let stderr = support::cli::stderr(&out);
    assert!(
        stderr.contains("cannot resolve idp.example.test") && !stderr.contains("proxy"),
        "{stderr}"
    );
}
