//! Plugins from an OCI registry (issue #14, part 2): a real registry on loopback
//! (Debian's `docker-registry`, the CNCF distribution registry) started by each test,
//! the real `static-token` plugin pushed to it through the distribution API, and the
//! `tokenhost` binary pulling it by tag and by digest.
//!
//! The failures are checked from the outside: the exit code, one line on stderr naming
//! the provider and the reference, nothing on stdout, nothing compiled (the user's
//! compiled cache stays empty) and nothing half-written in the store.

mod broker;
mod login;
mod signatures;

use std::path::{Path, PathBuf};

use crate::support;
use crate::support::cli::{Env, stderr, stdout};
use crate::support::registry::{Registry, WASM_CONFIG, WASM_LAYER, sha256};

/// A home for `tokenhost`, a config naming `plugin` for provider "corp", and helpers.
struct Home {
    env: Env,
    config: PathBuf,
}

impl Home {
    /// Provider "corp" runs `plugin` (an `oci://` reference), with `extra` auth keys.
    fn new(plugin: &str, extra: &str) -> Home {
        let env = Env::new();
        let config = env.config(&format!(
            "[model_providers.corp.auth]\nplugin = \"{plugin}\"\n{extra}\n\
             [model_providers.corp.auth.config]\ntoken = \"oci-token\"\n"
        ));
        Home { env, config }
    }

    /// Rewrites the config for `plugin` with `extra` auth keys (same home, same store).
    fn reconfigure(&self, plugin: &str, extra: &str) {
        std::fs::write(
            &self.config,
            format!(
                "[model_providers.corp.auth]\nplugin = \"{plugin}\"\n{extra}\n\
                 [model_providers.corp.auth.config]\ntoken = \"oci-token\"\n"
            ),
        )
        .unwrap();
    }

    /// Runs `tokenhost <args> -c <config>`: exit code, stdout, stderr.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let config = self.config.to_str().unwrap();
        let mut all = args.to_vec();
        all.extend(["-c", config]);
        let out = self.env.run(&all);
        (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
    }

    /// `tokenhost token corp` in this process (no broker), each ask a first ask (not a
    /// client's retry, which would refresh the token).
    fn token(&self) -> (i32, String, String) {
        self.token_with(&[])
    }

    /// [`token`](Self::token) with `extra` arguments (a `--policy`).
    fn token_with(&self, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec!["token", "corp", "--no-broker", "--client-reuse-ms", "0"];
        args.extend(extra);
        self.run(&args)
    }

    /// The pulled-plugin store.
    fn store(&self) -> PathBuf {
        self.env.path().join("cache/tokenhost/oci")
    }

    /// The stored layer with `digest`.
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.store().join(format!("blobs/sha256/{hex}.wasm"))
    }

    /// Every file name in the blob directory (none half-written may stay).
    fn blob_files(&self) -> Vec<String> {
        names(&self.store().join("blobs/sha256"))
    }

    /// How many plugins were compiled (the user's compiled cache).
    fn compiled(&self) -> usize {
        names(&self.env.path().join("cache/tokenhost/compiled")).len()
    }
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or(Vec::new(), |entries| {
        entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    })
}

/// The plugin pushed in every test.
fn plugin_bytes() -> Vec<u8> {
    std::fs::read(support::plugin("static-token")).unwrap()
}

/// `bytes` with the last byte changed: same length, another digest.
fn one_byte_off(bytes: &[u8]) -> Vec<u8> {
    let mut changed = bytes.to_vec();
    if let Some(last) = changed.last_mut() {
        *last ^= 0xff;
    }
    changed
}

/// A token printed, exit 0.
fn got_token((code, stdout, stderr): &(i32, String, String)) {
    assert_eq!(*code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "oci-token", "{stderr}");
}

/// A refusal: `code`, one line on stderr naming the provider, the reference and
/// `reason`; nothing on stdout.
fn refused(
    (code, stdout, stderr): &(i32, String, String),
    expected: i32,
    reference: &str,
    reason: &str,
) {
    assert_eq!(*code, expected, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let line = stderr.trim_end();
    assert!(!line.contains('\n'), "{stderr}");
    assert!(
        line.starts_with("tokenhost: provider \"corp\": ")
            && line.contains(reference)
            && line.contains(reason),
        "{stderr}"
    );
}

#[test]
fn a_plugin_is_pulled_by_tag_and_by_digest_and_gives_a_token() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let wasm = plugin_bytes();
    let (manifest, layer) = registry.push_plugin("contoso/static", "1.0", &wasm);

    let by_tag = registry.oci("contoso/static:1.0");
    let home = Home::new(&by_tag, "");
    got_token(&home.token());
    // Stored under its digest, byte for byte, and nothing else beside it.
    assert_eq!(std::fs::read(home.blob(&layer)).unwrap(), wasm);
    assert_eq!(home.blob_files().len(), 1, "{:?}", home.blob_files());

    let by_digest = registry.oci(&format!("contoso/static@{manifest}"));
    let home = Home::new(&by_digest, "");
    got_token(&home.token());

    // `tokenhost pull` and `tokenhost check` show tag -> digest.
    let home = Home::new(&by_tag, "");
    let (code, out, err) = home.run(&["pull"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "ok   corp: {by_tag} -> {manifest} (plugin layer {layer})"
        )),
        "{out}"
    );
    let (code, out, err) = home.run(&["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("{by_tag} -> {manifest}")) && out.contains("unsigned"),
        "{out}"
    );
}

#[test]
fn a_tag_is_resolved_once_per_refresh_interval_and_the_last_good_digest_serves_offline() {
    let Some(mut registry) = Registry::start() else {
        return;
    };
    registry.push_plugin("team/p", "v1", &plugin_bytes());
    let reference = registry.oci("team/p:v1");
    let home = Home::new(&reference, "");

    got_token(&home.token());
    let first = registry.manifest_requests("team/p");
    assert!(first >= 1, "{}", registry.log());
    // Within oci_refresh_ms (default one hour): no request at all.
    got_token(&home.token());
    got_token(&home.token());
    assert_eq!(registry.manifest_requests("team/p"), first);

    // oci_refresh_ms = 0: the tag is resolved on every use.
    home.reconfigure(&reference, "oci_refresh_ms = 0");
    got_token(&home.token());
    assert_eq!(registry.manifest_requests("team/p"), first + 1);

    // The registry goes down: the last good digest is used, with a warning.
    registry.stop();
    let (code, out, err) = home.token();
    assert_eq!((code, out.trim()), (0, "oci-token"), "{err}");
    assert!(
        err.contains("unreachable") && err.contains("last good digest"),
        "{err}"
    );
    // `tokenhost pull` resolves now, and says the registry could not be asked.
    let (code, out, _) = home.run(&["pull"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("registry unreachable, last good digest used"),
        "{out}"
    );
}

#[test]
fn a_registry_that_is_down_with_nothing_cached_is_exit_1() {
    let Some(mut registry) = Registry::start() else {
        return;
    };
    registry.stop();
    let reference = registry.oci("team/p:v1");
    let home = Home::new(&reference, "");
    refused(
        &home.token(),
        1,
        &reference,
        "the registry is unreachable and nothing is cached",
    );
    let (code, _, err) = home.run(&["pull", "corp"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(home.compiled(), 0);
    assert!(home.blob_files().is_empty(), "{:?}", home.blob_files());
}

#[test]
fn a_blob_tampered_with_in_the_registry_is_refused_and_not_stored() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let wasm = plugin_bytes();
    let (_, layer) = registry.push_plugin("team/p", "v1", &wasm);
    // The registry's storage is changed behind its back: same length, one byte off.
    std::fs::write(registry.blob_file(&layer), one_byte_off(&wasm)).unwrap();

    let reference = registry.oci("team/p:v1");
    let home = Home::new(&reference, "");
    refused(
        &home.token(),
        2,
        &reference,
        &format!("does not match its digest (expected {layer}"),
    );
    assert_eq!(home.compiled(), 0);
    assert!(home.blob_files().is_empty(), "{:?}", home.blob_files());
}

#[test]
fn a_stored_blob_changed_on_disk_is_refused_then_pulled_again() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let (_, layer) = registry.push_plugin("team/p", "v1", &plugin_bytes());
    let reference = registry.oci("team/p:v1");
    let home = Home::new(&reference, "");
    got_token(&home.token());
    let compiled = home.compiled();

    let blob = home.blob(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes.extend_from_slice(b"\0\x04\x03abc");
    std::fs::write(&blob, &bytes).unwrap();
    refused(
        &home.token(),
        2,
        &reference,
        "the stored plugin layer does not match its digest",
    );
    assert_eq!(home.compiled(), compiled, "the changed bytes were compiled");
    // Removed, so the next use pulls it again.
    assert!(!blob.exists());
    got_token(&home.token());
}

#[test]
fn an_artifact_that_is_not_a_wasm_plugin_is_refused() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let wasm = plugin_bytes();
    registry.push_artifact(
        "team/image",
        "v1",
        "application/vnd.oci.image.config.v1+json",
        WASM_LAYER,
        &wasm,
        None,
    );
    registry.push_artifact(
        "team/tar",
        "v1",
        WASM_CONFIG,
        "application/vnd.oci.image.layer.v1.tar",
        &wasm,
        None,
    );
    for (repository, reason) in [
        (
            "team/image",
            "config media type \"application/vnd.oci.image.config.v1+json\"",
        ),
        (
            "team/tar",
            "layer media type \"application/vnd.oci.image.layer.v1.tar\"",
        ),
    ] {
        let reference = registry.oci(&format!("{repository}:v1"));
        let home = Home::new(&reference, "");
        refused(
            &home.token(),
            2,
            &reference,
            &format!("not a wasm plugin artifact: {reason}"),
        );
        assert_eq!(home.compiled(), 0);
        assert!(home.blob_files().is_empty());
    }
}

#[test]
fn a_layer_over_the_size_cap_is_refused_as_declared_and_as_counted() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let big = vec![7u8; (1 << 20) + 1];
    registry.push_artifact("team/big", "v1", WASM_CONFIG, WASM_LAYER, &big, None);
    let reference = registry.oci("team/big:v1");
    let home = Home::new(&reference, "oci_max_mb = 1");
    refused(
        &home.token(),
        2,
        &reference,
        "the plugin layer is 1048577 bytes by its manifest, over the 1048576-byte cap",
    );

    // A manifest that understates the size: the download is counted and stopped.
    registry.push_artifact("team/liar", "v1", WASM_CONFIG, WASM_LAYER, &big, Some(1000));
    let reference = registry.oci("team/liar:v1");
    let home = Home::new(&reference, "oci_max_mb = 1");
    refused(
        &home.token(),
        2,
        &reference,
        "or more, over the 1048576-byte cap",
    );
    assert!(home.blob_files().is_empty(), "{:?}", home.blob_files());
    assert_eq!(home.compiled(), 0);
}

#[test]
fn the_policy_judges_the_pulled_bytes_as_it_judges_a_file() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let wasm = plugin_bytes();
    registry.push_plugin("team/p", "v1", &wasm);
    let reference = registry.oci("team/p:v1");
    let home = Home::new(&reference, "");
    let policy = home.env.path().join("policy.toml");
    let digest = sha256(&wasm);
    let hex = digest.strip_prefix("sha256:").unwrap();

    std::fs::write(
        &policy,
        format!("[[plugins.allow]]\nsha256 = \"{}\"\n", "0".repeat(64)),
    )
    .unwrap();
    let policy_arg = policy.to_str().unwrap();
    let out = home.token_with(&["--policy", policy_arg]);
    refused(&out, 2, "", "not in the plugin allowlist");

    std::fs::write(&policy, format!("[[plugins.allow]]\nsha256 = \"{hex}\"\n")).unwrap();
    got_token(&home.token_with(&["--policy", policy_arg]));

    // The user's own pin, on the same bytes.
    home.reconfigure(&reference, &format!("sha256 = \"{}\"", "1".repeat(64)));
    refused(&home.token(), 2, "", "sha256");
}
