//! The plugin SDK and the template: the template loads in the host as it is, and
//! `tokenhost new-plugin` takes a new author from an empty folder to a printed token.

use crate::support;

use std::process::Command;

use support::cli::{Env, stderr, stdout};
use tokenhost::{FailureKind, RefreshReason, TokenSource};

#[tokio::test]
async fn the_template_hands_out_its_configured_token() {
    let source = support::source(
        "plugin-template",
        &[],
        Default::default(),
        &[
            ("token", "from-template".into()),
            ("ttl_ms", "60000".into()),
        ],
        2_000,
    );
    let token = source.resolve().await.unwrap();
    assert_eq!(token.expose(), "from-template");
    assert!(token.expires_at_ms().is_some(), "ttl_ms gives an expiry");
    let again = source.refresh(RefreshReason::Forced).await.unwrap();
    assert_eq!(again.expose(), "from-template");
}

#[tokio::test]
async fn sdk_config_errors_name_the_key_and_the_provider() {
    for (config, key) in [
        (vec![], "`token`"),
        (
            vec![("token", "t".into()), ("ttl_ms", "soon".into())],
            "`ttl_ms`",
        ),
    ] {
        let source = support::source("plugin-template", &[], Default::default(), &config, 2_000);
        let e = source.resolve().await.unwrap_err();
        assert_eq!(e.kind(), FailureKind::InvalidConfig, "{e}");
        let shown = e.to_string();
        assert!(shown.contains(key) && shown.contains("idp"), "{shown}");
        // `new` is tried again on the next call, with the same verdict: no panic, no trap.
        let e = source.refresh(RefreshReason::Expiring).await.unwrap_err();
        assert_eq!(e.kind(), FailureKind::InvalidConfig, "{e}");
    }
}

/// The README's "Write a plugin in 10 minutes", run as a new author would.
#[test]
fn new_plugin_from_an_empty_folder_to_a_token() {
    // The SDK and its dependencies are already built for the other plugins.
    support::plugin("static-token");
    let env = Env::new();
    let dir = env.path().join("work/e2e-new-plugin");
    let created = env.run(&[
        "new-plugin",
        "e2e-new-plugin",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("cargo build --release --target wasm32-wasip2"));

    // Built exactly as the printed instructions say; the shared target directory only
    // saves rebuilding the SDK's dependencies.
    let target = support::root().join("plugins/target");
    let build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let wasm = target.join("wasm32-wasip2/release/e2e_new_plugin.wasm");

    let inspect = env.run(&["inspect", wasm.to_str().unwrap()]);
    assert!(
        stdout(&inspect).contains("contract: tokenhost:plugin@0.2.0"),
        "{}",
        stdout(&inspect)
    );

    // The config goes where `tokenhost token` looks by default.
    let config_dir = env.path().join("xdg-config/tokenhost");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "[model_providers.e2e-new-plugin.auth]\nplugin = {}\n\
             [model_providers.e2e-new-plugin.auth.config]\ntoken = \"hello-from-e2e\"\n",
            support::toml_path(&wasm)
        ),
    )
    .unwrap();
    let token = env.run(&["token", "e2e-new-plugin", "--no-broker"]);
    assert!(token.status.success(), "{}", stderr(&token));
    assert_eq!(stdout(&token), "hello-from-e2e\n");
}

#[test]
fn new_plugin_refuses_bad_names_busy_folders_and_missing_sdks() {
    let env = Env::new();
    let bad = env.run(&["new-plugin", "1st plugin"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("invalid plugin name"),
        "{}",
        stderr(&bad)
    );

    let busy = env.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "mine").unwrap();
    let refused = env.run(&["new-plugin", "ok", "--dir", busy.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("not empty"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(busy.join("keep.txt")).unwrap(),
        "mine"
    );

    let nowhere = env.path().join("no-sdk-here");
    let fresh = env.path().join("fresh");
    let no_sdk = env.run(&[
        "new-plugin",
        "ok",
        "--dir",
        fresh.to_str().unwrap(),
        "--sdk",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(no_sdk.status.code(), Some(2));
    assert!(stderr(&no_sdk).contains("--sdk"), "{}", stderr(&no_sdk));
    assert!(
        !fresh.exists(),
        "nothing is written when the SDK is missing"
    );
}
