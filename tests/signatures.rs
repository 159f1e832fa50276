//! Publisher signatures (issue #14, part 1): plugins signed by an independent signer,
//! the `wasmsign2` CLI (crates.io `wasmsign2-cli`, pinned, installed by
//! `scripts/install-clients`) with its own keys and with an OpenSSH key made by
//! `ssh-keygen`, then run by the `tokenhost` binary under policies and pins.
//!
//! The plugin is the real `oauth2` plugin against a loopback token endpoint that counts
//! its requests: a refused plugin never ran (no request), and with no policy in the
//! way, a plugin refused by its provider's pin was never compiled either (the compiled
//! cache stays empty).

mod inspect;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest;

use crate::support;
use crate::support::idp::{Reply, Server};
use crate::support::signer::{Keys, Signer, s};

fn sha256_hex(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A loopback token endpoint, a config whose providers run the oauth2 plugin from
/// `plugins` (id -> file, with extra `auth` lines), and a way to run `tokenhost`.
struct World {
    server: Server,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        World {
            server: Server::start(|_, n| Reply::token(&format!("tok-{n}"), 3600)).await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The config: one provider per `(id, plugin file, extra auth lines)`.
    fn config(&self, providers: &[(&str, &Path, &str)]) -> PathBuf {
        let mut text = String::new();
        for (id, plugin, extra) in providers {
            text.push_str(&format!(
                "[model_providers.{id}.auth]\nplugin = {}\nallowed_hosts = [\"{}\"]\nallowed_env = [\"CORP_SECRET\"]\n{extra}\n\
                 [model_providers.{id}.auth.config]\ntoken_url = \"{}\"\nclient_id = \"c\"\nclient_secret_env = \"CORP_SECRET\"\n",
                support::toml_path(plugin),
                self.server.authority(),
                self.server.url("/token"),
            ));
        }
        support::write_config(self.dir.path(), &text)
    }

    fn policy(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `tokenhost <args>` with this world's home.
    async fn tokenhost(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let home = self.dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
            support::isolate(&mut command, &home)
                .args(&args)
                .env("CORP_SECRET", "s3cret")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    /// `tokenhost token <id>` under `policies`: (exit code, stdout, stderr).
    async fn token(&self, id: &str, config: &Path, policies: &[&Path]) -> (i32, String, String) {
        let mut args = vec!["token", id, "-c", s(config)];
        for policy in policies {
            args.extend(["--policy", s(policy)]);
        }
        let out = self.tokenhost(&args).await;
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// How many token requests the plugin has made: how many times it ran.
    fn runs(&self) -> usize {
        self.server.seen().len()
    }

    /// Files in the user's compiled-plugin cache: how many plugins were compiled.
    /// Compiled entries in the user's cache (each `.cwasm` has a check file beside it).
    fn compiled(&self) -> usize {
        let dir = self.path("cache/tokenhost/compiled");
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
                .count()
        })
    }
}

/// Asserts a refusal: exit 2, one line on stderr naming the provider and `reason`,
/// nothing on stdout.
fn refused((code, stdout, stderr): &(i32, String, String), reason: &str) {
    assert_eq!(*code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("tokenhost: provider \"corp\": ") && stderr.contains(reason),
        "expected {reason:?}:\n{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_plugins_are_allowed_by_publisher_key_and_refused_with_their_reasons() {
    let world = World::new().await;
    let Some(signer) = Signer::new(world.dir.path()) else {
        return;
    };
    let contoso = signer.keygen("contoso");
    let ssh = signer.ssh_keygen("id_contoso_ssh");
    let mallory = signer.keygen("mallory");
    let plain = world.path("oauth2.wasm");
    std::fs::copy(support::plugin("oauth2"), &plain).unwrap();

    // Embedded, by the wasmsign2 key; detached, by the OpenSSH key, beside a copy.
    let embedded = world.path("embedded.wasm");
    signer.sign(&plain, &embedded, &contoso, None);
    let detached = world.path("detached.wasm");
    signer.sign(
        &plain,
        &detached,
        &ssh,
        Some(&world.path("detached.wasm.sig")),
    );
    // The other accepted name of a detached signature: `<plugin>.sig`.
    let short = world.path("short.wasm");
    signer.sign(&plain, &short, &ssh, Some(&world.path("short.sig")));
    let by_mallory = world.path("mallory.wasm");
    signer.sign(&plain, &by_mallory, &mallory, None);
    // Modified after signing: a custom section appended to a signed file.
    let modified = world.path("modified.wasm");
    let mut bytes = std::fs::read(&embedded).unwrap();
    bytes.extend_from_slice(&[0, 5, 4, b'e', b'v', b'i', b'l']);
    std::fs::write(&modified, bytes).unwrap();

    let keys = world.policy(
        "keys.toml",
        &format!(
            "[[plugins.allow]]\nname = \"contoso\"\npublisher_key_file = {}\n\n[[plugins.allow]]\nname = \"contoso (ssh)\"\npublisher_key = \"{}\"\n",
            support::toml_path(&contoso.public),
            std::fs::read_to_string(&ssh.public).unwrap().trim(),
        ),
    );

    // One provider id ("corp") per case, so that every message names it the same way.
    let run = |plugin: &Path| world.config(&[("corp", plugin, "")]);

    let allowed = world.token("corp", &run(&embedded), &[&keys]).await;
    assert_eq!(allowed.0, 0, "{}", allowed.2);
    assert_eq!(allowed.1, "tok-0\n");
    for plugin in [&detached, &short] {
        let out = world.token("corp", &run(plugin), &[&keys]).await;
        assert_eq!(out.0, 0, "{}: {}", plugin.display(), out.2);
    }
    assert_eq!(world.runs(), 3);

    let mallory_id = key_id_of(&world, &by_mallory);
    let out = world.token("corp", &run(&by_mallory), &[&keys]).await;
    refused(&out, "it is signed by an unknown key (key id ");
    assert!(out.2.contains(&mallory_id), "{}", out.2);
    assert!(
        out.2.contains(&format!("of policy {}", keys.display())),
        "{}",
        out.2
    );
    refused(
        &world.token("corp", &run(&modified), &[&keys]).await,
        "it was modified after it was signed",
    );
    refused(
        &world.token("corp", &run(&plain), &[&keys]).await,
        "it carries no publisher signature",
    );
    // A detached signature beside another file proves nothing about this one.
    std::fs::copy(
        world.path("detached.wasm.sig"),
        world.path("modified.wasm.sig"),
    )
    .unwrap();
    refused(
        &world.token("corp", &run(&modified), &[&keys]).await,
        "it was modified after it was signed",
    );
    assert_eq!(world.runs(), 3, "a refused plugin never ran");

    // `tokenhost check` says the same, and exits 2.
    let out = world
        .tokenhost(&["check", "-c", s(&run(&by_mallory)), "--policy", s(&keys)])
        .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("FAIL provider \"corp\": plugin sha256 ")
            && text.contains("signed by an unknown key"),
        "{text}"
    );
    assert_eq!(world.runs(), 3);
}

/// The key id the signer stored in `plugin`'s first signature, from `tokenhost inspect`.
fn key_id_of(world: &World, plugin: &Path) -> String {
    inspect_json(world, plugin)["signatures"][0]["key_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The digest of `plugin` without its signature section, from `tokenhost inspect`.
fn unsigned_sha256_of(world: &World, plugin: &Path) -> String {
    inspect_json(world, plugin)["unsigned_sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

fn inspect_json(world: &World, plugin: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tokenhost"))
        .args(["inspect", "--json", s(plugin)])
        .env("XDG_CACHE_HOME", world.path("inspect-cache"))
        .env_remove("TOKENHOST_POLICY")
        .env_remove("TOKENHOST_CONFIG")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_entries_refuse_a_revoked_key_and_a_revoked_release_even_signed_again() {
    let world = World::new().await;
    let Some(signer) = Signer::new(world.dir.path()) else {
        return;
    };
    let contoso = signer.keygen("contoso");
    let leaked = signer.ssh_keygen("leaked");
    let plain = world.path("oauth2.wasm");
    std::fs::copy(support::plugin("oauth2"), &plain).unwrap();
    let release = world.path("release.wasm");
    signer.sign(&plain, &release, &contoso, None);
    // The same release, signed again by a second key (its bytes change: one more
    // signature in the section).
    let resigned = world.path("resigned.wasm");
    signer.sign(&release, &resigned, &leaked, None);
    assert_ne!(sha256_hex(&release), sha256_hex(&resigned));
    let allow = format!(
        "[[plugins.allow]]\nname = \"contoso\"\npublisher_key_file = {}\n",
        support::toml_path(&contoso.public)
    );
    let run = |plugin: &Path| world.config(&[("corp", plugin, "")]);

    let open = world.policy("allow.toml", &allow);
    for plugin in [&release, &resigned] {
        let out = world.token("corp", &run(plugin), &[&open]).await;
        assert_eq!(out.0, 0, "{}", out.2);
    }
    assert_eq!(world.runs(), 2);

    // A revoked key: a plugin that also carries its signature is refused, although the
    // allowed key signed it too.
    let deny_key = world.policy(
        "deny-key.toml",
        &format!(
            "{allow}\n[[plugins.deny]]\nname = \"leaked 2026-11\"\npublisher_key_file = {}\n",
            support::toml_path(&leaked.public)
        ),
    );
    let out = world.token("corp", &run(&resigned), &[&deny_key]).await;
    refused(&out, "is denied by policy");
    assert!(
        out.2.contains("it is signed by denied ed25519 key "),
        "{}",
        out.2
    );
    assert!(out.2.contains("(\"leaked 2026-11\")"), "{}", out.2);
    assert_eq!(world.token("corp", &run(&release), &[&deny_key]).await.0, 0);

    // A revoked release by the digest of the file as published: that file is refused.
    let deny_file = world.policy(
        "deny-file.toml",
        &format!(
            "{allow}\n[[plugins.deny]]\nsha256 = \"{}\"\n",
            sha256_hex(&release)
        ),
    );
    refused(
        &world.token("corp", &run(&release), &[&deny_file]).await,
        &format!("it is the denied release sha256 {}", sha256_hex(&release)),
    );
    // By its unsigned digest (what `tokenhost inspect` prints as `unsigned:`): the
    // release is refused however it is signed, by one key or two, or not at all.
    let unsigned = unsigned_sha256_of(&world, &release);
    assert_eq!(unsigned, unsigned_sha256_of(&world, &resigned));
    let deny_release = world.policy(
        "deny-release.toml",
        &format!("{allow}\n[[plugins.deny]]\nname = \"oauth2 1.1.0\"\nsha256 = \"{unsigned}\"\n"),
    );
    for plugin in [&release, &resigned] {
        let out = world.token("corp", &run(plugin), &[&deny_release]).await;
        refused(
            &out,
            &format!("it is the denied release sha256 {unsigned} (\"oauth2 1.1.0\")"),
        );
    }
    // Deny wins over a sha256 allow entry too, in the same file or another one.
    let pinned = world.policy(
        "pinned.toml",
        &format!(
            "[[plugins.allow]]\nsha256 = \"{}\"\n",
            sha256_hex(&resigned)
        ),
    );
    refused(
        &world
            .token("corp", &run(&resigned), &[&pinned, &deny_release])
            .await,
        "denied release",
    );
    assert_eq!(world.runs(), 3, "a denied plugin never ran");

    // sha256 allow entries work as before, stacked with a key entry: every file must
    // allow.
    assert_eq!(
        world
            .token("corp", &run(&resigned), &[&pinned, &open])
            .await
            .0,
        0
    );
    let out = world.token("corp", &run(&release), &[&pinned, &open]).await;
    refused(&out, "is not in the plugin allowlist of policy");
    assert!(out.2.contains(s(&pinned)), "{}", out.2);
    assert_eq!(world.runs(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_providers_publisher_pin_refuses_other_signers_before_compiling() {
    let world = World::new().await;
    let Some(signer) = Signer::new(world.dir.path()) else {
        return;
    };
    let ssh = signer.ssh_keygen("id_publisher");
    let other = signer.ssh_keygen("id_other");
    let plain = world.path("oauth2.wasm");
    std::fs::copy(support::plugin("oauth2"), &plain).unwrap();
    let signed = world.path("signed.wasm");
    signer.sign(&plain, &signed, &ssh, Some(&world.path("signed.wasm.sig")));
    let pin = |keys: &Keys| {
        format!(
            "publisher_key = \"{}\"",
            std::fs::read_to_string(&keys.public).unwrap().trim()
        )
    };

    // No policy: the user cache is used, so "never compiled" can be counted.
    let wrong = world.config(&[("corp", &signed, &pin(&other))]);
    let out = world.token("corp", &wrong, &[]).await;
    refused(&out, "is not signed by the pinned publisher key ");
    assert!(
        out.2.contains("it is signed by an unknown key"),
        "{}",
        out.2
    );
    let unsigned = world.config(&[("corp", &plain, &pin(&ssh))]);
    refused(
        &world.token("corp", &unsigned, &[]).await,
        "it carries no publisher signature",
    );
    assert_eq!(
        (world.runs(), world.compiled()),
        (0, 0),
        "never ran, never compiled"
    );

    let right = world.config(&[("corp", &signed, &pin(&ssh))]);
    let out = world.token("corp", &right, &[]).await;
    assert_eq!(out.0, 0, "{}", out.2);
    assert_eq!((world.runs(), world.compiled()), (1, 1));

    // A pin on a command source, or a malformed one, is a config error.
    let config = world.path("bad.toml");
    for (auth, reason) in [
        (
            "command = \"echo\"\npublisher_key = \"ssh-ed25519 AAAA\"",
            "publisher_key",
        ),
        (
            &format!(
                "plugin = {}\npublisher_key = \"ssh-rsa AAAAB3\"",
                support::toml_path(&signed)
            ),
            "only ssh-ed25519 keys",
        ),
    ] {
        std::fs::write(&config, format!("[model_providers.corp.auth]\n{auth}\n")).unwrap();
        let out = world.token("corp", &config, &[]).await;
        assert_eq!(out.0, 2, "{}", out.2);
        assert!(out.2.contains(reason), "{reason}: {}", out.2);
    }
}
