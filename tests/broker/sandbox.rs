//! The sandbox and the policy hold through the broker too: hostile plugins meet their
//! deadlines and limits in `tokenhost serve` exactly as in-process, a command approved at
//! load is the file that runs later, and a client's own policy applies to what a broker
//! hands it.

use super::*;
use crate::support;

/// A config with one static-token provider `ok` and one hostile provider per mode, each
/// misbehaving on every call, with a 1 s deadline.
fn hostile_config(env: &Env, modes: &[&str]) -> PathBuf {
    let ok = support::toml_path(&support::plugin("static-token"));
    let hostile = support::toml_path(&support::plugin("hostile"));
    let mut text =
        format!("[model_providers.ok.auth]\nplugin = {ok}\nconfig = {{ token = \"fine\" }}\n");
    for mode in modes {
        // The deadline modes get 1 s; the others 4 s, so that filling 32 MiB on a loaded
        // machine still ends at the memory limit, not at the deadline.
        let timeout_ms = match *mode {
            "loop" | "sleep" => 1000,
            _ => 4000,
        };
        text += &format!(
            "[model_providers.evil-{mode}.auth]\nplugin = {hostile}\ntimeout_ms = {timeout_ms}\n\
             memory_limit_mb = 32\nconfig = {{ mode = \"{mode}\", on = \"both\" }}\n"
        );
    }
    support::write_config(env.path(), &text)
}

/// A plugin's 1 s deadline through the broker: the CLI's own fallback would take 60 s.
const BROKER_DEADLINE: Duration = Duration::from_secs(5);

#[test]
fn hostile_plugins_meet_their_deadline_and_limits_through_the_broker() {
    let mut env = Env::new();
    let cases = [
        ("loop", "did not answer within 1000 ms"),
        ("sleep", "did not answer within 1000 ms"),
        ("alloc", "memory limit"),
        ("panic", "crashed"),
        ("stack-overflow", "stack overflow"),
        ("unreachable", "crashed"),
        ("crlf-token", "unusable token"),
        ("empty-token", "the token is empty"),
        (
            "many-fields",
            "exceeded its memory limit of 32 MiB (host-side resources)",
        ),
        ("many-resources", "host resources"),
    ];
    let modes: Vec<&str> = cases.iter().map(|(mode, _)| *mode).collect();
    let config = hostile_config(&env, &modes);
    let (pid, socket) = env.serve(&config);
    for (mode, expected) in cases {
        let started = Instant::now();
        let out = env.token(&[&format!("evil-{mode}")], &config);
        let elapsed = started.elapsed();
        assert!(!out.status.success(), "{mode}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(elapsed < BROKER_DEADLINE, "{mode}: took {elapsed:?}: {err}");
        assert!(
            err.contains(&format!("provider \"evil-{mode}\"")),
            "{mode}: {err}"
        );
        assert!(err.contains(expected), "{mode}: {err}");
        assert!(
            !err.contains("resolving in-process"),
            "{mode}: the broker answered: {err}"
        );
        // The broker keeps serving other providers.
        assert_eq!(stdout(&env.token(&["ok"], &config)), "fine\n", "{mode}");
    }
    // Two providers spinning at once: health still answers within the deadline.
    let spinning: Vec<Child> = (0..2)
        .map(|_| {
            env.command(&["token", "evil-loop", "-c", config.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert!(http(&socket, "GET", "/v1/health", "").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    for mut child in spinning {
        assert!(!child.wait().unwrap().success());
    }
    // And it still stops on SIGTERM while a plugin spins.
    let mut looping = env
        .command(&["token", "evil-loop", "-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    signal(pid, "TERM");
    wait_until(
        || http(&socket, "GET", "/v1/health", "").is_none(),
        || env.log(),
    );
    let _ = looping.wait();
}

/// A command approved by a policy is the canonical file that was checked: re-pointing a
/// symlink after the broker loaded it, or rewriting a pinned file, runs nothing else.
#[test]
fn a_checked_command_is_the_file_that_runs_through_the_broker() {
    let mut env = Env::new();
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let good = bin.join("good");
    let evil = bin.join("evil");
    std::fs::write(&good, "#!/bin/sh\necho good-token\n").unwrap();
    std::fs::write(&evil, "#!/bin/sh\necho attacker-token\n").unwrap();
    for file in [&good, &evil] {
        std::fs::set_permissions(file, mode(0o755)).unwrap();
    }
    let link = bin.join("helper");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let digest = hex::encode(sha256_of(&good));
    let policy = env.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[commands.allow]]\npath = {}\nsha256 = \"{digest}\"\n",
            support::toml_path(&good)
        ),
    )
    .unwrap();
    let config = support::write_config(
        env.path(),
        &format!(
            "[model_providers.p.auth]\ncommand = {}\nrefresh_interval_ms = 0\n",
            support::toml_path(&link)
        ),
    );
    let serve = |env: &mut Env| {
        let log = std::fs::File::create(env.path().join("serve.log")).unwrap();
        let child = env
            .command(&["serve", "-c", config.to_str().unwrap()])
            .env("TOKENHOST_POLICY", &policy)
            .stderr(log)
            .spawn()
            .unwrap();
        env.children.push(child);
        let socket = env.socket(&config);
        wait_until(
            || http(&socket, "GET", "/v1/health", "").is_some(),
            || env.log(),
        );
    };
    serve(&mut env);
    let token = |args: &[&str]| {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-c", config.to_str().unwrap()]);
        env.command(&all)
            .env("TOKENHOST_POLICY", &policy)
            .output()
            .unwrap()
    };
    assert_eq!(stdout(&token(&["p"])), "good-token\n");

    // The symlink now points at another program: the approved file still runs.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&evil, &link).unwrap();
    let out = token(&["p", "--refresh"]);
    assert!(!stdout(&out).contains("attacker"), "{}", stdout(&out));

    // The approved file itself is rewritten: refused before it runs.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let marker = env.path().join("attacker-ran");
    std::fs::write(
        &good,
        format!(
            "#!/bin/sh\ntouch {}\necho attacker-token\n",
            marker.display()
        ),
    )
    .unwrap();
    let out = env
        .command(&["token", "p", "--refresh", "--no-broker", "-c"])
        .arg(&config)
        .env("TOKENHOST_POLICY", &policy)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(!stdout(&out).contains("attacker"), "{}", stdout(&out));
    assert!(err.contains("provider \"p\""), "{err}");
    // A new process refuses it at its own check...
    assert!(err.contains("does not match the sha256 pinned"), "{err}");
    // ...and through the broker: the refresh fails (the manager keeps serving the approved
    // program's still-valid token) and the rewritten file never runs.
    let socket = env.socket(&config);
    let (_, body) = http(&socket, "POST", "/v1/token/p/refresh", "").expect("an answer");
    assert!(!body.to_string().contains("attacker-token"), "{body}");
    let (_, providers) = http(&socket, "GET", "/v1/providers", "").unwrap();
    let last_error = providers["providers"][0]["last_error"].to_string();
    assert!(
        last_error.contains("changed since it was approved"),
        "{providers}"
    );
    assert!(!marker.exists(), "the rewritten command ran");
}

/// `tokenhost token --policy deny.toml` is denied whether or not a broker (which was
/// started without that policy) would hand out a token.
#[test]
fn a_client_policy_applies_to_tokens_from_a_broker() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    env.serve(&config);
    assert_eq!(stdout(&env.token(&["a"], &config)), "tok-1\n");
    let deny = env.path().join("deny.toml");
    std::fs::write(&deny, "commands = \"deny\"\n").unwrap();
    let out = env.token(&["a", "--policy", deny.to_str().unwrap()], &config);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.contains("provider \"a\""), "{err}");
    assert!(err.contains(deny.to_str().unwrap()), "{err}");
    assert_eq!(env.count("a"), 1, "the command did not run again");
}

fn sha256_of(path: &Path) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).into()
}
