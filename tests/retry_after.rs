//! A rate-limited identity provider: the real `oauth2` plugin against a token endpoint
//! that answers HTTP 429 with `Retry-After`. The plugin reports the pause (SDK
//! `Error::RetryLater`, contract 0.2 `retry-after-ms`), and the manager holds every caller
//! back for that long: counted as requests at the endpoint, in process and through a
//! broker that many `tokenhost token` runs share.

use crate::support;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use support::broker::BrokerProcess;
use support::idp::{Reply, Server};
use tokenhost::grants::Grants;
use tokenhost::{AuthManager, FailureKind};

/// 429 with `Retry-After: 30` for the first request, tokens after it.
async fn rate_limited_once() -> Server {
    Server::start(|_, index| match index {
        0 => {
            let mut reply = Reply::json(429, serde_json::json!({"error": "slow_down"}));
            reply.headers.push(("retry-after".into(), "30".into()));
            reply
        }
        n => Reply::token(&format!("access-{n}"), 3600),
    })
    .await
}

#[tokio::test]
async fn a_429_with_retry_after_holds_every_caller_back() {
    let server = rate_limited_once().await;
    let config = [
        ("token_url", server.url("/token")),
        ("client_id", "c".to_string()),
        ("client_secret", "s3cr3t".to_string()),
        ("allow_secret_in_config", "true".to_string()),
    ];
    let source = support::source(
        "oauth2",
        &[server.authority()],
        Grants::default(),
        &config,
        3_000,
    );
    let manager = AuthManager::builder()
        .provider("idp", None, Arc::new(source))
        .build();
    let first = manager.auth("idp").await.unwrap_err();
    assert_eq!(first.kind(), FailureKind::Unavailable, "{first}");
    let message = first.to_string();
    assert!(
        message.contains("HTTP 429") && message.contains("Retry-After: 30"),
        "{message}"
    );
    for _ in 0..5 {
        assert_eq!(manager.auth("idp").await.unwrap_err().to_string(), message);
    }
    assert_eq!(
        manager.refresh("idp").await.unwrap_err().to_string(),
        message
    );
    assert_eq!(server.seen().len(), 1, "the endpoint was asked again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_broker_many_runs_make_one_request_while_rate_limited() {
    let server = rate_limited_once().await;
    let home = support::cli::Env::new();
    let run = home.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let plugin = support::toml_path(&support::plugin("oauth2"));
    let config = home.config(&format!(
        "[model_providers.p.auth]\nplugin = {plugin}\nallowed_hosts = [\"{}\"]\n\
         [model_providers.p.auth.config]\ntoken_url = \"{}\"\nclient_id = \"c\"\n\
         client_secret = \"s3cr3t\"\nallow_secret_in_config = \"true\"\n",
        server.authority(),
        server.url("/token"),
    ));
    let outputs = tokio::task::spawn_blocking({
        let home_dir = home.path().to_path_buf();
        let config = config.clone();
        move || runs_through_a_broker(&home_dir, &config, 4)
    })
    .await
    .unwrap();
    for output in &outputs {
        let stderr = support::cli::stderr(output);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("provider \"p\"") && stderr.contains("Retry-After: 30"),
            "{stderr}"
        );
        assert!(!stderr.contains("s3cr3t"), "{stderr}");
    }
    assert_eq!(server.seen().len(), 1, "the endpoint was asked again");
}

/// Starts a broker for `config` and runs `tokenhost token p` `runs` times through it.
fn runs_through_a_broker(home: &Path, config: &Path, runs: usize) -> Vec<Output> {
    let command = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tokenhost"));
        support::isolate(&mut command, home);
        command
    };
    let _broker = BrokerProcess::start(command(), &home.join("run"), config);
    (0..runs)
        .map(|_| {
            command()
                .args(["token", "p", "-c"])
                .arg(config)
                .output()
                .unwrap()
        })
        .collect()
}
