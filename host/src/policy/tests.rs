use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::grants::{Grants, HostPattern};

const SYS: &str = "/etc/tokenhost/policy.toml";
const USER: &str = "/tmp/x.toml";
const AZ: &str = "/opt/tokenhost-test/bin/az";
const DIGEST_A: [u8; 32] = [0xaa; 32];
const DIGEST_B: [u8; 32] = [0xbb; 32];

/// A plugin that carries no signature, with the digest `digest`.
fn unsigned(digest: [u8; 32]) -> crate::publisher::SignedPlugin<'static> {
    const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";
    crate::publisher::SignedPlugin::new(Path::new("/nonexistent/p.wasm"), COMPONENT, digest)
}

fn policy(text: &str, path: &str) -> Policy {
    Policy::parse(text, Path::new(path)).unwrap_or_else(|e| panic!("{e}"))
}

fn hex_a() -> String {
    hex::encode(DIGEST_A)
}

fn hex_b() -> String {
    hex::encode(DIGEST_B)
}

/// Runs `check_command` with a digest closure that counts its calls.
fn command(policy: &Policy, path: &str, digest: [u8; 32]) -> (Vec<Violation>, u32) {
    let calls = Cell::new(0);
    let mut hash = || {
        calls.set(calls.get() + 1);
        Ok(digest)
    };
    let out = policy.check_command("corp", Path::new(path), &mut hash);
    (out, calls.get())
}

fn limits(
    policy: &Policy,
    timeout_ms: u64,
    memory_mb: Option<u64>,
    grants: &Grants,
) -> Vec<Violation> {
    policy.check_limits(
        "corp",
        Duration::from_millis(timeout_ms),
        memory_mb.map(|mb| mb * 1024 * 1024),
        grants,
    )
}

fn hosts(entries: &[&str]) -> Grants {
    Grants {
        hosts: entries
            .iter()
            .map(|h| HostPattern::parse(h).unwrap())
            .collect(),
        ..Grants::default()
    }
}

fn rules(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(|v| v.rule).collect()
}

#[test]
fn no_policy_allows_everything() {
    let p = Policy::unrestricted();
    assert!(p.is_empty());
    assert_eq!(command(&p, AZ, DIGEST_A), (vec![], 0));
    assert!(p.check_plugin("corp", &unsigned(DIGEST_A)).is_empty());
    assert!(limits(&p, 600_000, Some(4096), &hosts(&["*.example.com"])).is_empty());
}

#[test]
fn empty_file_is_valid_and_restricts_nothing() {
    let p = policy("", SYS);
    assert!(!p.is_empty());
    assert_eq!(p.files(), vec![Path::new(SYS)]);
    assert_eq!(command(&p, AZ, DIGEST_A), (vec![], 0));
    assert!(p.check_plugin("corp", &unsigned(DIGEST_A)).is_empty());
    assert!(limits(&p, 600_000, Some(4096), &hosts(&["*.example.com"])).is_empty());
}

#[test]
fn commands_allow_and_deny() {
    let allow = policy(r#"commands = "allow""#, SYS);
    assert_eq!(command(&allow, AZ, DIGEST_A), (vec![], 0));
    let deny = policy(r#"commands = "deny""#, SYS);
    let (out, calls) = command(&deny, AZ, DIGEST_A);
    assert_eq!(calls, 0);
    assert_eq!(rules(&out), ["commands"]);
    assert_eq!(out[0].policy.as_deref(), Some(Path::new(SYS)));
    assert_eq!(
        out[0].to_string(),
        r#"provider "corp": command sources are denied by policy /etc/tokenhost/policy.toml"#
    );
    // Plugins are untouched by a commands rule.
    assert!(deny.check_plugin("corp", &unsigned(DIGEST_A)).is_empty());
}

// Unix paths (`/bin/az` is not absolute on Windows).
#[cfg(unix)]
#[test]
fn command_allowlist_by_path_does_not_hash() {
    let p = policy(&format!("[[commands.allow]]\npath = \"{AZ}\"\n"), SYS);
    assert_eq!(command(&p, AZ, DIGEST_A), (vec![], 0));
    let (out, calls) = command(&p, "/usr/bin/other", DIGEST_A);
    assert_eq!(calls, 0);
    assert_eq!(
        out[0].message,
        format!("command /usr/bin/other is not in the command allowlist of policy {SYS}")
    );
}

// Unix paths (`/bin/az` is not absolute on Windows).
#[cfg(unix)]
#[test]
fn command_allowlist_with_sha256() {
    let p = policy(
        &format!(
            "[[commands.allow]]\npath = \"{AZ}\"\nsha256 = \"{}\"\n",
            hex_a().to_uppercase()
        ),
        SYS,
    );
    assert_eq!(command(&p, AZ, DIGEST_A), (vec![], 1));
    let (out, calls) = command(&p, AZ, DIGEST_B);
    assert_eq!(calls, 1);
    assert_eq!(rules(&out), ["commands"]);
    assert!(out[0].message.contains(&hex_b()), "{}", out[0]);
    assert!(out[0].message.contains("does not match"), "{}", out[0]);
    // A path that is not listed is refused without hashing.
    assert_eq!(command(&p, "/usr/bin/other", DIGEST_A).1, 0);
}

// Unix paths (`/bin/az` is not absolute on Windows).
#[cfg(unix)]
#[test]
fn command_hash_failure_is_a_violation_and_computed_once() {
    let pin = format!(
        "[[commands.allow]]\npath = \"{AZ}\"\nsha256 = \"{}\"\n",
        hex_a()
    );
    let p = policy(&pin, SYS).stack(policy(&pin, USER));
    let mut calls = 0;
    let mut hash = || {
        calls += 1;
        Err(std::io::Error::other("unreadable"))
    };
    let out = p.check_command("corp", Path::new(AZ), &mut hash);
    assert_eq!(calls, 1);
    assert_eq!(out.len(), 2);
    assert!(
        out[0].message.contains("cannot compute the sha256"),
        "{}",
        out[0]
    );
}

#[cfg(unix)]
#[test]
fn command_allowlist_follows_symlinks_in_entries() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("az-real");
    std::fs::write(&real, b"#!/bin/sh\n").unwrap();
    let link = dir.path().join("az");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let p = policy(
        &format!("[[commands.allow]]\npath = {:?}\n", link.to_str().unwrap()),
        SYS,
    );
    let resolved = real.canonicalize().unwrap();
    assert_eq!(
        command(&p, resolved.to_str().unwrap(), DIGEST_A),
        (vec![], 0)
    );
}

#[test]
fn plugins_allow_deny_and_allowlist() {
    assert!(
        policy(r#"plugins = "allow""#, SYS)
            .check_plugin("corp", &unsigned(DIGEST_A))
            .is_empty()
    );
    let out = policy(r#"plugins = "deny""#, SYS).check_plugin("corp", &unsigned(DIGEST_A));
    assert_eq!(
        out[0].to_string(),
        format!(r#"provider "corp": plugin sources are denied by policy {SYS}"#)
    );
    let list = policy(
        &format!(
            "[[plugins.allow]]\nsha256 = \"{}\"\nname = \"corp-login\"\n",
            hex_a()
        ),
        SYS,
    );
    assert!(list.check_plugin("corp", &unsigned(DIGEST_A)).is_empty());
    let out = list.check_plugin("corp", &unsigned(DIGEST_B));
    assert_eq!(
        out[0].to_string(),
        format!(
            r#"provider "corp": plugin sha256 {} is not in the plugin allowlist of policy {SYS}"#,
            hex_b()
        )
    );
    assert_eq!(
        command(&list, AZ, DIGEST_A),
        (vec![], 0),
        "commands untouched"
    );
}

#[test]
fn timeout_and_memory_ceilings() {
    let p = policy("max_timeout_ms = 10000\nmax_memory_mb = 128\n", USER);
    assert!(limits(&p, 10_000, Some(128), &Grants::default()).is_empty());
    let out = limits(&p, 60_000, Some(256), &Grants::default());
    assert_eq!(rules(&out), ["max_timeout_ms", "max_memory_mb"]);
    assert_eq!(
        out[0].to_string(),
        r#"provider "corp": timeout_ms 60000 exceeds max_timeout_ms 10000 of policy /tmp/x.toml"#
    );
    assert_eq!(
        out[1].message,
        "memory_limit_mb 256 exceeds max_memory_mb 128 of policy /tmp/x.toml"
    );
    // Command sources have no memory limit.
    assert!(limits(&p, 1_000, None, &Grants::default()).is_empty());
}

#[test]
fn host_ceiling() {
    let p = policy(
        r#"allowed_hosts = ["*.example.com", "login.corp.io:8443"]"#,
        SYS,
    );
    assert!(
        limits(
            &p,
            1,
            None,
            &hosts(&["a.example.com", "*.b.example.com", "login.corp.io:8443"])
        )
        .is_empty()
    );
    let out = limits(
        &p,
        1,
        None,
        &hosts(&["example.com", "login.corp.io", "a.example.com"]),
    );
    assert_eq!(rules(&out), ["allowed_hosts", "allowed_hosts"]);
    assert!(out[0].message.contains(r#""example.com""#), "{}", out[0]);
    assert!(out[1].message.contains(r#""login.corp.io""#), "{}", out[1]);
    let none = policy("allowed_hosts = []", SYS);
    assert_eq!(limits(&none, 1, None, &hosts(&["a.example.com"])).len(), 1);
}

#[test]
fn env_ceiling() {
    let p = policy(r#"allowed_env = ["AZURE_TENANT_ID", "HOME"]"#, SYS);
    let ok = Grants {
        env: vec!["HOME".into()],
        ..Grants::default()
    };
    assert!(limits(&p, 1, None, &ok).is_empty());
    let bad = Grants {
        env: vec!["HOME".into(), "AWS_SECRET_ACCESS_KEY".into()],
        ..Grants::default()
    };
    let out = limits(&p, 1, None, &bad);
    assert_eq!(rules(&out), ["allowed_env"]);
    assert!(
        out[0].message.contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        out[0]
    );
}

#[cfg(unix)]
#[test]
fn path_ceiling_is_component_wise_on_canonical_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for sub in ["secrets", "secrets/corp", "secrets-evil"] {
        std::fs::create_dir(root.join(sub)).unwrap();
    }
    // The ceiling is written through a symlink; it is canonicalised at load time.
    std::os::unix::fs::symlink(root.join("secrets"), root.join("link")).unwrap();
    let text = format!(
        "allowed_paths = [{:?}, {:?}]",
        root.join("link").to_str().unwrap(),
        root.join("missing").to_str().unwrap()
    );
    let p = policy(&text, SYS);
    let grant = |sub: &str| Grants {
        paths: vec![(root.join(sub), format!("/guest/{sub}"))],
        ..Grants::default()
    };
    assert!(limits(&p, 1, None, &grant("secrets")).is_empty());
    assert!(limits(&p, 1, None, &grant("secrets/corp")).is_empty());
    let out = limits(&p, 1, None, &grant("secrets-evil"));
    assert_eq!(rules(&out), ["allowed_paths"]);
    assert!(out[0].message.contains("/guest/secrets-evil"), "{}", out[0]);
    // A ceiling that does not exist contains nothing.
    assert_eq!(limits(&p, 1, None, &grant("missing")).len(), 1);
}

#[test]
fn stacking_cannot_loosen_the_system_policy() {
    let sys = policy(r#"commands = "deny""#, SYS);
    let user = policy(r#"commands = "allow""#, USER);
    let (out, _) = command(&sys.clone().stack(user), AZ, DIGEST_A);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].policy.as_deref(), Some(Path::new(SYS)));

    let entry = |d: &str| format!("[[plugins.allow]]\nsha256 = \"{d}\"\n");
    let sys = policy(&entry(&hex_a()), SYS);
    let user = policy(&(entry(&hex_a()) + &entry(&hex_b())), USER);
    let both = sys.stack(user);
    assert_eq!(both.files(), vec![Path::new(SYS), Path::new(USER)]);
    assert!(both.check_plugin("corp", &unsigned(DIGEST_A)).is_empty());
    let out = both.check_plugin("corp", &unsigned(DIGEST_B));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].policy.as_deref(), Some(Path::new(SYS)));
}

#[test]
fn stacked_ceilings_take_the_minimum() {
    let sys = policy(
        "max_timeout_ms = 10000\nallowed_hosts = [\"*.example.com\"]",
        SYS,
    );
    let user = policy(
        "max_timeout_ms = 5000\nallowed_hosts = [\"*.a.example.com\"]",
        USER,
    );
    let both = sys.clone().stack(user);
    let out = limits(&both, 7_000, None, &Grants::default());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].policy.as_deref(), Some(Path::new(USER)));
    // A laxer user ceiling does not lift the system's.
    let lax = sys.stack(policy("max_timeout_ms = 60000", USER));
    assert_eq!(limits(&lax, 20_000, None, &Grants::default()).len(), 1);
    // A grant must fit every file's ceiling.
    assert_eq!(limits(&both, 1, None, &hosts(&["x.a.example.com"])), vec![]);
    let out = limits(&both, 1, None, &hosts(&["b.example.com"]));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].policy.as_deref(), Some(Path::new(USER)));
}

#[test]
fn all_violations_are_returned() {
    let p = policy("max_timeout_ms = 100\nmax_memory_mb = 1\nallowed_hosts = []\nallowed_env = []\nallowed_paths = []", SYS)
        .stack(policy("max_timeout_ms = 50", USER));
    let grants = Grants {
        env: vec!["A".into(), "B".into()],
        paths: vec![(PathBuf::from("/tmp"), "/tmp".into())],
        ..hosts(&["a.example.com", "b.example.com"])
    };
    let out = limits(&p, 1_000, Some(64), &grants);
    assert_eq!(
        rules(&out),
        [
            "max_timeout_ms",
            "max_memory_mb",
            "allowed_hosts",
            "allowed_hosts",
            "allowed_env",
            "allowed_env",
            "allowed_paths",
            "max_timeout_ms",
        ]
    );
}

#[test]
fn unknown_keys_and_typos_fail_closed() {
    for (text, key) in [
        (r#"comands = "deny""#, "comands"),
        (
            "[[commands.allow]]\npath = \"/usr/bin/az\"\nsha265 = \"x\"",
            "sha265",
        ),
        (r#"commands = { alow = [] }"#, "alow"),
        ("[[plugins.allow]]\nsha256 = \"00\"\nlabel = \"x\"", "label"),
        ("max_timeout = 5", "max_timeout"),
    ] {
        let err = Policy::parse(text, Path::new(USER)).expect_err(text);
        let msg = err.to_string();
        assert!(matches!(err, PolicyError::Parse { .. }), "{msg}");
        assert!(msg.contains(key) && msg.contains(USER), "{text}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}

// Unix paths (`/bin/az` is not absolute on Windows).
#[cfg(unix)]
#[test]
fn wrong_types_and_values_are_errors() {
    for text in [
        r#"commands = "maybe""#,
        "commands = true",
        r#"max_timeout_ms = "10s""#,
        "max_memory_mb = -1",
        r#"allowed_hosts = "a.example.com""#,
        "[commands]",
    ] {
        let err = Policy::parse(text, Path::new(USER)).expect_err(text);
        assert!(matches!(err, PolicyError::Parse { .. }), "{text}: {err}");
    }
    for (text, needle) in [
        ("[[commands.allow]]\npath = \"bin/az\"", "must be absolute"),
        (
            "[[commands.allow]]\npath = \"/bin/az\"\nsha256 = \"abc\"",
            "not a sha256",
        ),
        ("[[plugins.allow]]\nsha256 = \"zz\"", "not a sha256"),
        (
            "[[plugins.allow]]\nname = \"no digest\"",
            "needs exactly one of sha256, publisher_key and publisher_key_file",
        ),
        (
            r#"allowed_hosts = ["https://a.example.com"]"#,
            "without a scheme",
        ),
        (r#"allowed_env = ["A=B"]"#, "allowed_env"),
        (r#"allowed_paths = ["relative"]"#, "must be absolute"),
        ("max_timeout_ms = 0", "at least 1"),
    ] {
        let err = Policy::parse(text, Path::new(USER)).expect_err(text);
        let msg = err.to_string();
        assert!(matches!(err, PolicyError::Invalid { .. }), "{text}: {msg}");
        assert!(msg.contains(needle) && msg.contains(USER), "{text}: {msg}");
    }
}

#[cfg(unix)]
#[test]
fn ceilings_of_root_and_kernel_filesystems_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/sys", dir.path().join("sys-link")).unwrap();
    let via_link = dir.path().join("sys-link/kernel");
    for (entry, needle) in [
        ("/", "(/) is the root directory"),
        ("/proc", "(/proc) is inside /proc"),
        ("/etc/../proc/self", "is inside /proc"),
        ("/sys", "(/sys) is inside /sys"),
        ("/dev", "(/dev) is inside /dev"),
        // These do not exist: judged by the name with `..` applied.
        ("/dev/tokenhost-no-such-dir", "is inside /dev"),
        ("/tmp/../../proc/no-such-dir", "is inside /proc"),
        (via_link.to_str().unwrap(), "(/sys/kernel) is inside /sys"),
    ] {
        let text = format!("allowed_paths = [{entry:?}]");
        let err = Policy::parse(&text, Path::new(SYS)).expect_err(&text);
        let msg = err.to_string();
        assert!(matches!(err, PolicyError::Invalid { .. }), "{text}: {msg}");
        let named = format!("policy file {SYS} is invalid: allowed_paths entry {entry:?} ");
        assert!(msg.starts_with(&named) && msg.contains(needle), "{msg}");
    }
}

#[test]
fn parse_errors_do_not_quote_the_file() {
    let text = "[[commands.allow]]\npath = \"/usr/bin/az s3cr3t\nsha256 = 1";
    let msg = Policy::parse(text, Path::new(USER))
        .unwrap_err()
        .to_string();
    let expected = format!("policy file {USER} is not valid: line 2, column ");
    assert!(msg.starts_with(&expected), "{msg}");
    assert!(!msg.contains("s3cr3t") && !msg.contains('\n'), "{msg}");
}

#[cfg(unix)]
#[test]
fn load_skips_a_missing_system_file_but_not_a_missing_extra() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("policy.toml");
    let p = Policy::load(&missing, &[]).unwrap();
    assert!(p.is_empty());

    let err = Policy::load(&missing, &[dir.path().join("extra.toml")]).unwrap_err();
    assert!(matches!(err, PolicyError::Read { .. }), "{err}");
    assert!(err.to_string().contains("extra.toml"), "{err}");

    // A dangling symlink at the system path is not "no policy".
    let dangling = dir.path().join("dangling.toml");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    assert!(Policy::load(&dangling, &[]).is_err());
}

#[test]
fn load_stacks_system_then_extras() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("system.toml");
    let extra = dir.path().join("extra.toml");
    std::fs::write(&sys, "plugins = \"deny\"\n").unwrap();
    std::fs::write(&extra, "").unwrap();
    let p = Policy::load(&sys, std::slice::from_ref(&extra)).unwrap();
    assert_eq!(p.files(), vec![sys.as_path(), extra.as_path()]);
    assert_eq!(p.check_plugin("corp", &unsigned(DIGEST_A)).len(), 1);

    std::fs::write(&extra, "plugin = \"deny\"\n").unwrap();
    let err = Policy::load(&sys, &[extra]).unwrap_err();
    assert!(err.to_string().contains("plugin"), "{err}");
}

#[test]
fn user_pin() {
    assert_eq!(check_pin("corp", &hex_a(), &DIGEST_A), None);
    assert_eq!(check_pin("corp", &hex_a().to_uppercase(), &DIGEST_A), None);
    let v = check_pin("corp", &hex_a(), &DIGEST_B).unwrap();
    assert_eq!((v.rule, v.policy.clone()), ("sha256", None));
    let text = v.to_string();
    assert!(text.starts_with(r#"provider "corp": "#), "{text}");
    assert!(text.contains(&hex_a()) && text.contains(&hex_b()), "{text}");
    assert!(text.contains("changed since it was pinned"), "{text}");
    let v = check_pin("corp", "not-hex", &DIGEST_A).unwrap();
    assert!(v.message.contains("not a sha256"), "{v}");
}
