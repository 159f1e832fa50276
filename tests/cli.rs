//! The `tokenhost` binary, run as a user would: stdout, stderr and exit codes.

use crate::support;

use std::path::PathBuf;

use support::cli::{Env, stderr, stdout};

fn static_config(env: &Env) -> PathBuf {
    let plugin = support::toml_path(&support::plugin("static-token"));
    let hostile = support::toml_path(&support::plugin("hostile"));
    env.config(&format!(
        r#"
        model = "ignored"
        [model_providers.corp]
        name = "Corp"
        [model_providers.corp.auth]
        plugin = {plugin}
        [model_providers.corp.auth.config]
        token = "corp-token"
        ttl_ms = 3600000

        [model_providers.chatty]
        [model_providers.chatty.auth]
        plugin = {hostile}
        timeout_ms = 2000
        [model_providers.chatty.auth.config]
        mode = "print-secret"
        token = "TOP-SECRET"

        [model_providers.openai]
        env_key = "OPENAI_API_KEY"
        "#
    ))
}

#[test]
fn token_prints_only_the_token() {
    let env = Env::new();
    let config = static_config(&env);
    let out = env.run(&["token", "corp", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "corp-token\n");
}

#[test]
fn token_json_and_refresh() {
    let env = Env::new();
    let config = static_config(&env);
    let out = env.run(&[
        "token",
        "corp",
        "--json",
        "--refresh",
        "-c",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["token"], "corp-token-1");
    assert!(json["expires_at_ms"].as_u64().unwrap() > 1_700_000_000_000);
}

#[test]
fn config_is_found_through_the_environment() {
    let env = Env::new();
    let config = static_config(&env);
    let out = env
        .command(&["token", "corp"])
        .env("TOKENHOST_CONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "corp-token\n", "{}", stderr(&out));

    let xdg = env.path().join("xdg-config/tokenhost");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::copy(&config, xdg.join("config.toml")).unwrap();
    let out = env.run(&["token", "corp"]);
    assert_eq!(stdout(&out), "corp-token\n", "{}", stderr(&out));
}

#[test]
fn missing_config_is_a_usage_error() {
    let env = Env::new();
    let out = env.run(&["token", "corp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no config file: pass --config PATH"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plugin_output_never_reaches_stdout() {
    let env = Env::new();
    let config = static_config(&env);
    let out = env.run(&["token", "chatty", "-vvv", "-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "printed\n");
}

#[test]
fn unknown_provider_lists_the_known_ones() {
    let env = Env::new();
    let config = static_config(&env);
    let out = env.run(&["token", "nope", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown provider \"nope\""), "{err}");
    assert!(err.contains("chatty, corp"), "{err}");
    let out = env.run(&["token", "openai", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("provider \"openai\" has no [auth] table"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_failing_source_exits_1_with_one_line() {
    let env = Env::new();
    let hostile = support::toml_path(&support::plugin("hostile"));
    let config = env.config(&format!(
        "[model_providers.bad.auth]\nplugin = {hostile}\ntimeout_ms = 300\n[model_providers.bad.auth.config]\nmode = \"loop\"\n"
    ));
    let out = env.run(&["token", "bad", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "tokenhost: provider \"bad\": timed out: plugin did not answer within 300 ms\n"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn config_errors_exit_2() {
    let env = Env::new();
    let config = env.config("[model_providers.p.auth]\nplugin = \"x.wasm\"\ntimeout = 5\n");
    let out = env.run(&["token", "p", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("provider \"p\"") && err.contains("unknown field `timeout`"),
        "{err}"
    );

    let config = env.config("[model_providers.p.auth]\nplugin = \"missing.wasm\"\n");
    let out = env.run(&["token", "p", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("provider \"p\": cannot read plugin"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_reports_every_provider_and_continues() {
    let env = Env::new();
    let plugin = support::toml_path(&support::plugin("static-token"));
    let hostile = support::toml_path(&support::plugin("hostile"));
    let config = env.config(&format!(
        r#"
        [model_providers.a-good.auth]
        plugin = {plugin}
        config = {{ token = "SECRET-GOOD" }}
        [model_providers.b-denied.auth]
        plugin = {hostile}
        config = {{ mode = "error", kind = "denied", message = "bad client" }}
        [model_providers.c-good.auth]
        plugin = {plugin}
        config = {{ token = "SECRET-C" }}
        "#
    ));
    let out = env.run(&["check", "-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).matches("\nok   ").count(),
        3,
        "{}",
        stdout(&out)
    );

    let out = env.run(&["check", "--resolve", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("ok   a-good: plugin"), "{text}");
    assert!(text.contains("token sha256:"), "{text}");
    assert!(
        text.contains("FAIL provider \"b-denied\": denied: bad client"),
        "{text}"
    );
    assert!(text.contains("ok   c-good"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");
}

#[test]
fn check_lists_load_failures_with_exit_2() {
    let env = Env::new();
    let wrong = support::toml_path(&support::plugin("wrong-world"));
    let config = env.config(&format!(
        "[model_providers.w.auth]\nplugin = {wrong}\n[model_providers.m.auth]\nplugin = \"missing.wasm\"\n"
    ));
    let out = env.run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL m: provider \"m\": cannot read plugin"),
        "{text}"
    );
    assert!(text.contains("FAIL w: provider \"w\": plugin"), "{text}");
    assert!(
        text.contains("does not export tokenhost:plugin/token-source@0.2.0"),
        "{text}"
    );
}

#[test]
fn inspect_describes_a_plugin() {
    let env = Env::new();
    let path = support::plugin("static-token");
    let out = env.run(&["inspect", "--json", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    use sha2::Digest;
    assert_eq!(info["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(info["size"], bytes.len() as u64);
    assert_eq!(info["contract"], "tokenhost:plugin@0.2.0");
    let imports = info["imports"].as_array().unwrap();
    assert!(
        imports.iter().any(|i| i == "tokenhost:plugin/host@0.2.0"),
        "{imports:?}"
    );

    let out = env.run(&[
        "inspect",
        support::plugin("future-contract").to_str().unwrap(),
    ]);
    assert!(
        stdout(&out).contains("contract: tokenhost:plugin@9.0.0"),
        "{}",
        stdout(&out)
    );
    let out = env.run(&["inspect", "/nonexistent.wasm"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn schema_is_json_schema() {
    let env = Env::new();
    let out = env.run(&["schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let text = schema.to_string();
    for key in [
        "model_providers",
        "timeout_ms",
        "refresh_interval_ms",
        "memory_limit_mb",
        "exec-credential",
    ] {
        assert!(text.contains(key), "{key} missing from the schema");
    }
}

#[test]
fn the_compiled_cache_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let config = static_config(&env);
    let out = env.run(&["token", "corp", "-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = env.path().join("cache/tokenhost/compiled");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // One entry: the compiled artifact and its check file, and the plugin's remembered
    // digest, all private.
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let artifacts = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"));
    assert_eq!(artifacts.count(), 1, "{files:?}");
    let memos = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "memo"));
    assert_eq!(memos.count(), 1, "{files:?}");
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

/// Without a policy or a pin, a warm load of an unchanged plugin reads nothing: the
/// digest remembered for the file stands in for reading and hashing it. Any write to the
/// file (same bytes even) makes the next load read and hash it again; a damaged memo is
/// ignored; under a policy the bytes are always read and judged.
#[test]
fn an_unchanged_plugin_is_loaded_without_reading_it_unless_something_judges_it() {
    let env = Env::new();
    let plugin = env.path().join("static-token.wasm");
    std::fs::copy(support::plugin("static-token"), &plugin).unwrap();
    let config = env.config(&format!(
        "[model_providers.corp.auth]\nplugin = {}\nconfig = {{ token = \"tok\" }}\n",
        support::toml_path(&plugin)
    ));
    let config = config.to_str().unwrap();
    let load = |extra: &[&str]| {
        let mut args = vec![
            "-vv",
            "token",
            "corp",
            "--no-broker",
            "--client-reuse-ms",
            "0",
            "-c",
            config,
        ];
        args.extend(extra);
        let out = env.run(&args);
        assert_eq!(stdout(&out), "tok\n", "{}", stderr(&out));
        stderr(&out).contains("loaded without reading it")
    };
    assert!(!load(&[]), "the first load reads, hashes and compiles");
    assert!(load(&[]), "the second one reads nothing");
    // Rewritten with the very same bytes: its change time moved on.
    std::fs::write(&plugin, std::fs::read(&plugin).unwrap()).unwrap();
    assert!(!load(&[]));
    assert!(load(&[]));
    // A damaged memo is not believed.
    let dir = env.path().join("cache/tokenhost/compiled");
    let memo = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "memo"))
        .unwrap();
    let mut bytes = std::fs::read(&memo).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&memo, &bytes).unwrap();
    assert!(!load(&[]));
    // Under a policy the bytes are read and judged every time.
    let policy = env.path().join("policy.toml");
    std::fs::write(&policy, "plugins = \"allow\"\n").unwrap();
    let policy = policy.to_str().unwrap();
    assert!(!load(&["--policy", policy]));
    assert!(!load(&["--policy", policy]));
}

/// Runs `args` with stdout at `stdout`; returns the exit code and stderr.
fn run_with_stdout(env: &Env, args: &[&str], stdout: std::process::Stdio) -> (Option<i32>, String) {
    let out = env
        .command(args)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (out.status.code(), stderr(&out))
}

/// The commands that print: token (bare and --json), check, inspect (text and --json).
fn printing_commands(config: &str, plugin: &str) -> Vec<Vec<String>> {
    [
        vec!["token", "corp", "-c", config],
        vec!["token", "corp", "--json", "-c", config],
        vec!["check", "-c", config],
        vec!["inspect", plugin],
        vec!["inspect", "--json", plugin],
    ]
    .into_iter()
    .map(|args| args.into_iter().map(String::from).collect())
    .collect()
}

#[test]
fn a_closed_stdout_exits_141_quietly() {
    let env = Env::new();
    let config = static_config(&env);
    let plugin = support::plugin("static-token");
    for args in printing_commands(config.to_str().unwrap(), plugin.to_str().unwrap()) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // A pipe whose reader is already gone: every write fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (code, err) = run_with_stdout(&env, &args, writer.into());
        assert_eq!(code, Some(141), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}: nothing on stderr, least of all a panic");
    }
}

#[test]
fn a_full_stdout_exits_1_with_the_cause() {
    let env = Env::new();
    let config = static_config(&env);
    let plugin = support::plugin("static-token");
    for args in printing_commands(config.to_str().unwrap(), plugin.to_str().unwrap()) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (code, err) = run_with_stdout(&env, &args, full.into());
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert_eq!(
            err, "tokenhost: cannot write to stdout: No space left on device (os error 28)\n",
            "{args:?}"
        );
    }
}
