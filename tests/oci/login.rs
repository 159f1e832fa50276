//! Registry logins kept by a Docker credential helper (issue #14): the real
//! `docker-credential-secretservice` (Debian `golang-docker-credential-helpers`) storing
//! the login in a real Secret Service (gnome-keyring on a private D-Bus), and a real
//! registry (`docker-registry`) that demands it (htpasswd). tokenhost finds the helper
//! through Docker's config (`credsStore`, `credHelpers`), as `docker pull` would; under
//! an admin policy that restricts commands, the helper must be allowed like any command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;
use crate::support::cli::{Env, stderr, stdout};
use crate::support::keyring::Keyring;
use crate::support::registry::Registry;

use super::{Home, plugin_bytes};

const HELPER: &str = "/usr/bin/docker-credential-secretservice";
const USER: &str = "publisher";
const PASSWORD: &str = "s3cret-registry-password";

/// Runs the helper with `verb`, `input` on stdin, against the test's keyring.
fn helper(keyring: &Keyring, verb: &str, input: &str) {
    let mut command = Command::new(HELPER);
    command
        .arg(verb)
        .env("DBUS_SESSION_BUS_ADDRESS", &keyring.address);
    let out = support::output_with_stdin(&mut command, input.as_bytes());
    assert!(
        out.status.success(),
        "{HELPER} {verb}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct World {
    env: Env,
    config: PathBuf,
    keyring: Keyring,
    registry: Registry,
}

/// A registry that demands the login, with the plugin pushed, and a home whose provider
/// "corp" pulls it; `None` (saying why) without `docker-registry` or `htpasswd`.
fn login_registry() -> Option<(Registry, Home)> {
    let registry = Registry::start_with_login(USER, PASSWORD)?;
    registry.push_plugin("team/p", "v1", &plugin_bytes());
    let home = Home::new(&registry.oci("team/p:v1"), "");
    Some((registry, home))
}

impl World {
    fn start() -> Option<World> {
        if !Path::new(HELPER).is_file() {
            eprintln!("SKIPPED: {HELPER} (apt-get install golang-docker-credential-helpers)");
            return None;
        }
        let keyring = Keyring::start()?;
        let (registry, home) = login_registry()?;
        Some(World {
            env: home.env,
            config: home.config,
            keyring,
            registry,
        })
    }

    fn docker_config(&self, json: &str) {
        let dir = self.env.path().join("docker");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
    }

    /// `tokenhost token corp` with every log line on (`RUST_LOG=trace`), with `extra`
    /// arguments.
    fn token(&self, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec![
            "token",
            "corp",
            "--no-broker",
            "--client-reuse-ms",
            "0",
            "-c",
            self.config.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = self
            .env
            .command(&args)
            .env("DOCKER_CONFIG", self.env.path().join("docker"))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.keyring.address)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
    }
}

#[test]
fn a_login_kept_by_a_credential_helper_pulls_from_a_registry_that_demands_it() {
    let Some(world) = World::start() else {
        return;
    };
    let host = world.registry.host();
    // No login anywhere: the registry refuses, and says so.
    world.docker_config(r#"{"credsStore": "secretservice"}"#);
    let (code, out, err) = world.token(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("provider \"corp\"") && err.contains("refused"),
        "{err}"
    );

    // `docker login` with this helper stores the login so; now the pull gets through.
    helper(
        &world.keyring,
        "store",
        &format!(r#"{{"ServerURL": "{host}", "Username": "{USER}", "Secret": "{PASSWORD}"}}"#),
    );
    let (code, out, err) = world.token(&[]);
    assert_eq!((code, out.trim()), (0, "oci-token"), "{err}");
    assert!(
        !err.contains(PASSWORD),
        "the password reached the log:\n{err}"
    );

    // credHelpers names the helper for this registry alone (credsStore is another).
    world.docker_config(&format!(
        r#"{{"credsStore": "nonexistent", "credHelpers": {{"{host}": "secretservice"}}}}"#
    ));
    let fresh = world.env.path().join("cache/tokenhost/oci");
    std::fs::remove_dir_all(&fresh).unwrap();
    let (code, _, err) = world.token(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

#[test]
fn a_policy_that_restricts_commands_decides_whether_the_helper_runs() {
    let Some(world) = World::start() else {
        return;
    };
    let host = world.registry.host();
    helper(
        &world.keyring,
        "store",
        &format!(r#"{{"ServerURL": "{host}", "Username": "{USER}", "Secret": "{PASSWORD}"}}"#),
    );
    world.docker_config(r#"{"credsStore": "secretservice"}"#);
    let policy = world.env.path().join("policy.toml");
    let policy_arg = policy.to_str().unwrap().to_string();

    // An allowlist without the helper: it is not run, the pull is anonymous and the
    // registry refuses; the warning names the helper and the rule.
    std::fs::write(&policy, "[[commands.allow]]\npath = \"/bin/true\"\n").unwrap();
    let (code, _, err) = world.token(&["--policy", &policy_arg]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("docker-credential-secretservice is not run")
            && err.contains("pulling anonymously"),
        "{err}"
    );

    // The helper on the allowlist, with its digest: it runs.
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(HELPER).unwrap(),
    ));
    std::fs::write(
        &policy,
        format!("[[commands.allow]]\npath = \"{HELPER}\"\nsha256 = \"{digest}\"\n"),
    )
    .unwrap();
    let (code, out, err) = world.token(&["--policy", &policy_arg]);
    assert_eq!((code, out.trim()), (0, "oci-token"), "{err}");

    // Commands denied outright: not run either.
    std::fs::remove_dir_all(world.env.path().join("cache/tokenhost/oci")).unwrap();
    std::fs::write(&policy, "commands = \"deny\"\n").unwrap();
    let (code, _, err) = world.token(&["--policy", &policy_arg]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not run"), "{err}");
}

/// A helper that cannot answer (a name that is not a plain name, one not on `PATH`, one
/// that fails, one that prints something else than its JSON, one that holds only an
/// identity token) means an anonymous pull and a warning that names it and says why;
/// the registry then refuses, and nothing the helpers printed on stdout is shown.
/// The helpers here are scripts on `PATH` standing in for a broken helper.
#[test]
fn a_helper_that_cannot_answer_means_an_anonymous_pull_and_a_warning_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let Some((_registry, Home { env, config })) = login_registry() else {
        return;
    };
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, script) in [
        (
            "fails",
            "echo 'stdout-secret-1'; echo 'the keychain is locked' >&2; exit 3",
        ),
        ("garbage", "echo 'stdout-secret-2 is not json'"),
        (
            "identity",
            r#"echo '{"ServerURL":"x","Username":"<token>","Secret":"stdout-secret-3"}'"#,
        ),
    ] {
        let path = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\ncat >/dev/null\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let docker = env.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    for (helper, reason) in [
        ("../evil", "\"../evil\" is not a plain name"),
        ("absent", "docker-credential-absent: not on PATH"),
        (
            "fails",
            "docker-credential-fails get failed (exit status: 3): the keychain is locked",
        ),
        (
            "garbage",
            "docker-credential-garbage get printed something that is not its JSON",
        ),
        ("identity", "holds an identity token"),
    ] {
        std::fs::write(
            docker.join("config.json"),
            format!(r#"{{"credsStore": "{helper}"}}"#),
        )
        .unwrap();
        let out = env
            .command(&[
                "token",
                "corp",
                "--no-broker",
                "-c",
                config.to_str().unwrap(),
            ])
            .env("DOCKER_CONFIG", &docker)
            .env("PATH", &path)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{helper}: {err}");
        assert!(
            err.contains(reason) && err.contains("pulling anonymously"),
            "{helper}: {err}"
        );
        assert!(
            err.contains("refused"),
            "{helper}: the registry's answer: {err}"
        );
        assert!(!err.contains("stdout-secret"), "{helper}: {err}");
    }
}
