//! Registry logins kept by a Docker credential helper (issue #14): the real
//! `docker-credential-secretservice` (Debian `golang-docker-credential-helpers`) storing
//! the login in a real Secret Service (gnome-keyring on a private D-Bus), and a real
//! registry (`docker-registry`) that demands it (htpasswd). tokenhost finds the helper
//! through Docker's config (`credsStore`, `credHelpers`), as `docker pull` would; under
//! an admin policy that restricts commands, the helper must be allowed like any command.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support;
use crate::support::cli::{Env, stderr, stdout};
use crate::support::keyring::Keyring;
use crate::support::registry::Registry;

const HELPER: &str = "/usr/bin/docker-credential-secretservice";
const USER: &str = "publisher";
const PASSWORD: &str = "s3cret-registry-password";

/// Runs the helper with `verb`, `input` on stdin, against the test's keyring.
fn helper(keyring: &Keyring, verb: &str, input: &str) {
    let mut child = Command::new(HELPER)
        .arg(verb)
        .env("DBUS_SESSION_BUS_ADDRESS", &keyring.address)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
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

impl World {
    fn start() -> Option<World> {
        if !Path::new(HELPER).is_file() {
            eprintln!("SKIPPED: {HELPER} (apt-get install golang-docker-credential-helpers)");
            return None;
        }
        let keyring = Keyring::start()?;
        let registry = Registry::start_with_login(USER, PASSWORD)?;
        registry.push_plugin(
            "team/p",
            "v1",
            &std::fs::read(support::plugin("static-token")).unwrap(),
        );
        let env = Env::new();
        let config = env.config(&format!(
            "[model_providers.corp.auth]\nplugin = \"{}\"\n\
             [model_providers.corp.auth.config]\ntoken = \"oci-token\"\n",
            registry.oci("team/p:v1")
        ));
        Some(World {
            env,
            config,
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
