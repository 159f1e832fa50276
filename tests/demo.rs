//! `tokenhost demo`, run as a user would: the steps in order on stdout, exit codes, and
//! no token value anywhere in the output.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

fn demo(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokenhost"))
        .arg("demo")
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("TOKENHOST_POLICY")
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn demo_shows_a_plugin_token_401_recovery_and_a_command_token() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = support::plugin("oauth2");
    let output = demo(dir.path(), &["--plugin", plugin.to_str().unwrap()]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // Each expected step, as (line start, fragments it contains), in this order.
    let expected: &[(&str, &[&str])] = &[
        ("1. identity provider listening on http://127.0.0.1:", &[]),
        ("2. API listening on http://127.0.0.1:", &[]),
        ("3. config ", &["demo-plugin", "demo-command"]),
        (
            "4. demo-plugin: token sha256:",
            &["from the oauth2 plugin", "expires in 3600 s"],
        ),
        ("5. GET /v1/models", &["-> 200"]),
        ("6. the API revokes token sha256:", &[]),
        (
            "7. GET /v1/models -> 401",
            &[
                "refreshed through the plugin (token sha256:",
                "the retry -> 200",
            ],
        ),
        (
            "8. demo-command: token sha256:",
            &["from the built-in command source", "GET /v1/models -> 200"],
        ),
        ("demo complete", &[]),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), expected.len(), "stdout:\n{stdout}");
    for (line, (start, fragments)) in lines.iter().zip(expected) {
        assert!(line.starts_with(start), "expected {start:?}, got {line:?}");
        for fragment in *fragments {
            assert!(line.contains(fragment), "expected {fragment:?} in {line:?}");
        }
    }
    // The revoked token is the one step 4 got, and recovery brought a different one.
    let fingerprint = |line: &str, after: &str| {
        let rest = &line[line.find(after).unwrap() + after.len()..];
        rest[..rest
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len())]
            .to_string()
    };
    let first = fingerprint(lines[3], "token sha256:");
    assert_eq!(fingerprint(lines[5], "token sha256:"), first);
    assert_eq!(fingerprint(lines[6], "401 for sha256:"), first);
    assert_ne!(fingerprint(lines[6], "(token sha256:"), first);

    for (name, output) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !output.contains("demo-access-"),
            "a token value on {name}:\n{output}"
        );
    }
}

#[test]
fn demo_without_the_plugin_exits_2_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-oauth2.wasm");
    let output = demo(dir.path(), &["--plugin", missing.to_str().unwrap()]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains("no-such-oauth2.wasm"), "{stderr}");
    assert!(stderr.contains("scripts/build-plugins"), "{stderr}");
    assert!(stderr.contains("--plugin"), "{stderr}");
}
