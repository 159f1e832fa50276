//! The admin policy and the user's pins, enforced where sources are built: real policy
//! files, real plugins, real executables and symlinks, and the CLI's report.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest;
use tokenhost::SourceFactory;
use tokenhost::config::Config;
use tokenhost::policy::Policy;
use tokenhost::source::wasm::CompiledCache;

fn sha256_of(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A policy stack whose "system" file is a temp file (the test-only injection point:
/// `Policy::load` takes the system path; no environment variable can move it).
fn policy(dir: &Path, system: &str, extra: &[&str]) -> Policy {
    let system_path = dir.join("system-policy.toml");
    std::fs::write(&system_path, system).unwrap();
    let extras: Vec<PathBuf> = extra
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let path = dir.join(format!("user-policy-{i}.toml"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    Policy::load(&system_path, &extras).unwrap()
}

/// Builds every provider of `config_text` under `policy`; returns each outcome's text.
fn build_all(dir: &Path, config_text: &str, policy: Policy) -> Vec<(String, Result<(), String>)> {
    let config = Config::parse(config_text, &dir.join("config.toml")).unwrap();
    let factory = SourceFactory::with_policy(CompiledCache::disabled(), policy);
    config
        .providers()
        .map(|spec| {
            (
                spec.id.to_string(),
                factory.build(spec).map(|_| ()).map_err(|e| e.to_string()),
            )
        })
        .collect()
}

fn executable(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn commands_deny_names_the_provider_rule_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let results = build_all(
        dir.path(),
        "[model_providers.corp.auth]\ncommand = \"echo\"\n",
        policy(dir.path(), "commands = \"deny\"\n", &[]),
    );
    let message = results[0].1.clone().unwrap_err();
    assert_eq!(
        message,
        format!(
            "provider \"corp\": command sources are denied by policy {}",
            dir.path().join("system-policy.toml").display()
        )
    );
}

#[test]
fn a_user_policy_cannot_loosen_the_system_one() {
    let dir = tempfile::tempdir().unwrap();
    let static_token = support::plugin("static-token");
    let hostile = support::plugin("hostile");
    let system = format!(
        "commands = \"deny\"\n[[plugins.allow]]\nsha256 = \"{}\"\nname = \"static\"\n",
        sha256_of(&static_token)
    );
    let user = "commands = \"allow\"\nplugins = \"allow\"\nmax_timeout_ms = 60000\n";
    let config = format!(
        "[model_providers.a.auth]\nplugin = {}\n[model_providers.b.auth]\nplugin = {}\n[model_providers.c.auth]\ncommand = \"echo\"\n",
        support::toml_path(&static_token),
        support::toml_path(&hostile),
    );
    let results = build_all(dir.path(), &config, policy(dir.path(), &system, &[user]));
    assert!(results[0].1.is_ok(), "{results:?}");
    let b = results[1].1.clone().unwrap_err();
    assert!(
        b.contains("provider \"b\"") && b.contains("not in the plugin allowlist"),
        "{b}"
    );
    assert!(b.contains("system-policy.toml"), "{b}");
    let c = results[2].1.clone().unwrap_err();
    assert!(c.contains("command sources are denied"), "{c}");
}

#[test]
fn limits_above_a_ceiling_are_refused_not_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = support::toml_path(&support::plugin("static-token"));
    let config = format!(
        "[model_providers.p.auth]\nplugin = {plugin}\ntimeout_ms = 60000\nmemory_limit_mb = 512\nallowed_hosts = [\"login.other.com\", \"api.corp.example\"]\nallowed_env = [\"HOME\"]\n"
    );
    let system = "max_timeout_ms = 10000\nmax_memory_mb = 128\nallowed_hosts = [\"*.corp.example\"]\nallowed_env = [\"AZURE_CLIENT_SECRET\"]\n";
    let results = build_all(dir.path(), &config, policy(dir.path(), system, &[]));
    let message = results[0].1.clone().unwrap_err();
    for expected in [
        "timeout_ms 60000 exceeds max_timeout_ms 10000",
        "max_memory_mb",
        "login.other.com",
        "HOME",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in {message}"
        );
    }
    assert!(
        !message.contains("api.corp.example"),
        "inside the ceiling: {message}"
    );
}

#[test]
fn a_plugin_changed_after_it_was_pinned_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("plugin.wasm");
    std::fs::copy(support::plugin("static-token"), &plugin).unwrap();
    let config = format!(
        "[model_providers.p.auth]\nplugin = \"plugin.wasm\"\nsha256 = \"{}\"\n[model_providers.p.auth.config]\ntoken = \"t\"\n",
        sha256_of(&plugin).to_uppercase()
    );
    assert!(
        build_all(dir.path(), &config, Policy::unrestricted())[0]
            .1
            .is_ok()
    );
    // Swapped after the config was written: refused before it is compiled.
    std::fs::copy(support::plugin("hostile"), &plugin).unwrap();
    let message = build_all(dir.path(), &config, Policy::unrestricted())[0]
        .1
        .clone()
        .unwrap_err();
    assert!(message.starts_with("provider \"p\": "), "{message}");
    assert!(
        message.contains(&sha256_of(&plugin)),
        "names the actual digest: {message}"
    );
}

#[test]
fn command_allowlist_checks_the_resolved_file() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = executable(dir.path(), "allowed.sh", "echo allowed-token");
    std::os::unix::fs::symlink("/bin/echo", dir.path().join("link")).unwrap();
    let system = format!(
        "[[commands.allow]]\npath = \"{}\"\nsha256 = \"{}\"\n",
        allowed.display(),
        sha256_of(&allowed)
    );
    let config = "
        [model_providers.relative.auth]
        command = \"./allowed.sh\"
        [model_providers.symlink.auth]
        command = \"./link\"
        [model_providers.bare.auth]
        command = \"echo\"
    ";
    let results = build_all(dir.path(), config, policy(dir.path(), &system, &[]));
    assert!(
        results
            .iter()
            .find(|(id, _)| id == "relative")
            .unwrap()
            .1
            .is_ok(),
        "{results:?}"
    );
    for id in ["symlink", "bare"] {
        let message = results
            .iter()
            .find(|(i, _)| i == id)
            .unwrap()
            .1
            .clone()
            .unwrap_err();
        assert!(message.contains(&format!("provider \"{id}\"")), "{message}");
        assert!(
            message.contains("echo"),
            "names the resolved file: {message}"
        );
    }
    // The allowed script modified: its sha256 no longer matches.
    executable(dir.path(), "allowed.sh", "echo something-else");
    let results = build_all(dir.path(), config, policy(dir.path(), &system, &[]));
    assert!(
        results
            .iter()
            .find(|(id, _)| id == "relative")
            .unwrap()
            .1
            .is_err(),
        "{results:?}"
    );
}

/// Issue 19, item 9: a ceiling below tokenhost's default lowers the default of every
/// provider that left the value unset (an admin's `max_timeout_ms = 2000` means "at most
/// 2 s", not "refuse everyone"); a value set above the ceiling is still refused, and
/// `tokenhost check` says which happened.
#[test]
fn a_ceiling_lowers_unset_defaults_and_still_refuses_values_set_above_it() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = support::toml_path(&support::plugin("static-token"));
    let config = format!(
        "[model_providers.unset.auth]\nplugin = {plugin}\nconfig = {{ token = \"tok\" }}\n\
         [model_providers.cmd.auth]\ncommand = \"echo\"\nargs = [\"cmd-tok\"]\n\
         [model_providers.set.auth]\nplugin = {plugin}\ntimeout_ms = 5000\nconfig = {{ token = \"x\" }}\n"
    );
    let ceilings = "max_timeout_ms = 2000\nmax_memory_mb = 32\n";
    let results = build_all(dir.path(), &config, policy(dir.path(), ceilings, &[]));
    let outcome = |id: &str| results.iter().find(|(p, _)| p == id).unwrap().1.clone();
    assert_eq!(outcome("unset"), Ok(()));
    assert_eq!(outcome("cmd"), Ok(()));
    let refused = outcome("set").unwrap_err();
    assert!(
        refused.contains("timeout_ms 5000 exceeds max_timeout_ms 2000"),
        "{refused}"
    );

    let config = support::write_config(dir.path(), &config);
    let policy_file = dir.path().join("ceilings.toml");
    std::fs::write(&policy_file, ceilings).unwrap();
    let (config, policy_arg) = (config.to_str().unwrap(), policy_file.to_str().unwrap());
    let out = tokenhost(
        dir.path(),
        &["check", "-c", config, "--policy", policy_arg],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let shown = policy_file.display();
    for expected in [
        format!(
            "note provider \"unset\": timeout_ms is not set, so its default 5000 is lowered to \
             2000 by max_timeout_ms of policy {shown}"
        ),
        format!(
            "note provider \"unset\": memory_limit_mb is not set, so its default 64 is lowered \
             to 32 by max_memory_mb of policy {shown}"
        ),
        "ok   unset: plugin".to_string(),
        "note provider \"cmd\": timeout_ms is not set".to_string(),
        "ok   cmd: command".to_string(),
        "FAIL provider \"set\": timeout_ms 5000 exceeds max_timeout_ms 2000".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("note provider \"set\": timeout_ms"),
        "{text}"
    );

    // The lowered provider hands out tokens under that policy.
    let out = tokenhost(
        dir.path(),
        &["token", "unset", "-c", config, "--no-broker"],
        &[("TOKENHOST_POLICY", &policy_file)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tok\n");
}

fn tokenhost(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tokenhost"))
        .args(args)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env_remove("TOKENHOST_POLICY")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn check_lists_every_violation_and_typos_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = support::toml_path(&support::plugin("static-token"));
    let config = support::write_config(
        dir.path(),
        &format!(
            "[model_providers.cmd.auth]\ncommand = \"echo\"\n[model_providers.big.auth]\nplugin = {plugin}\ntimeout_ms = 99999\nmemory_limit_mb = 1024\n[model_providers.ok.auth]\nplugin = {plugin}\nconfig = {{ token = \"x\" }}\n"
        ),
    );
    let policy = dir.path().join("strict.toml");
    std::fs::write(
        &policy,
        "commands = \"deny\"\nmax_timeout_ms = 5000\nmax_memory_mb = 64\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let out = tokenhost(
        dir.path(),
        &["check", "-c", config, "--policy", policy.to_str().unwrap()],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("policy {}", policy.display())),
        "{text}"
    );
    assert!(
        text.contains("FAIL provider \"cmd\": command sources are denied by policy"),
        "{text}"
    );
    assert!(
        text.contains("FAIL provider \"big\": timeout_ms 99999 exceeds max_timeout_ms 5000"),
        "{text}"
    );
    assert!(
        text.contains("FAIL provider \"big\"") && text.contains("max_memory_mb 64"),
        "{text}"
    );
    assert!(text.contains("ok   ok: plugin"), "{text}");

    // The same policy through $TOKENHOST_POLICY.
    let out = tokenhost(
        dir.path(),
        &["token", "cmd", "-c", config],
        &[("TOKENHOST_POLICY", &policy)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("command sources are denied"));
    assert!(out.stdout.is_empty());

    // A typo in a policy is an error, never ignored.
    std::fs::write(&policy, "comands = \"deny\"\n").unwrap();
    let out = tokenhost(
        dir.path(),
        &[
            "token",
            "ok",
            "-c",
            config,
            "--policy",
            policy.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("comands") && err.contains(&policy.display().to_string()),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // A missing policy named explicitly is an error too.
    let out = tokenhost(
        dir.path(),
        &[
            "token",
            "ok",
            "-c",
            config,
            "--policy",
            "/nonexistent/policy.toml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_path_ceiling_of_root_or_a_kernel_filesystem_makes_the_policy_invalid() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/proc", dir.path().join("p")).unwrap();
    let config = support::write_config(
        dir.path(),
        "[model_providers.cmd.auth]\ncommand = \"echo\"\n",
    );
    let policy = dir.path().join("paths.toml");
    let link = dir.path().join("p/self");
    for (ceiling, cause) in [
        ("/".to_string(), "(/) is the root directory"),
        (link.display().to_string(), "is inside /proc"),
        ("/sys/../dev".to_string(), "(/dev) is inside /dev"),
    ] {
        std::fs::write(&policy, format!("allowed_paths = [{ceiling:?}]\n")).unwrap();
        let out = tokenhost(
            dir.path(),
            &[
                "token",
                "cmd",
                "-c",
                config.to_str().unwrap(),
                "--policy",
                policy.to_str().unwrap(),
            ],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(
            stderr.contains(&format!(
                "policy file {} is invalid: allowed_paths entry {ceiling:?} ",
                policy.display()
            )) && stderr.contains(cause),
            "{ceiling}: {stderr}"
        );
    }
}

/// The embedding example (`host/examples/embed.rs`, built by `cargo test --all-targets`)
/// gets the admin policy without asking for it: an application cannot skip it by default.
#[test]
fn the_embedding_example_applies_the_admin_policy_by_default() {
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/embed");
    if !example.exists() {
        eprintln!(
            "skipped: {} is not built (cargo test --all-targets builds it)",
            example.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = support::write_config(
        dir.path(),
        "[model_providers.cmd.auth]\ncommand = \"echo\"\nargs = [\"tok\"]\n",
    );
    let policy = dir.path().join("deny.toml");
    std::fs::write(&policy, "commands = \"deny\"\n").unwrap();
    let run = |policy: Option<&Path>| {
        let mut command = Command::new(&example);
        command
            .arg(&config)
            .arg("cmd")
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env_remove("TOKENHOST_POLICY");
        if let Some(policy) = policy {
            command.env("TOKENHOST_POLICY", policy);
        }
        command.output().unwrap()
    };
    let allowed = run(None);
    assert!(allowed.status.success(), "{allowed:?}");
    let printed = String::from_utf8_lossy(&allowed.stdout);
    assert!(
        printed.starts_with("sha256:") && !printed.contains("tok\n"),
        "{printed}"
    );

    let denied = run(Some(&policy));
    assert_eq!(denied.status.code(), Some(2), "{denied:?}");
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("provider \"cmd\": command sources are denied by policy"),
        "{err}"
    );
    assert!(
        err.contains(&policy.display().to_string()),
        "names the file: {err}"
    );
    assert!(denied.stdout.is_empty());
}
