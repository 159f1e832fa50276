//! What `tokenhost inspect` says of signatures, and a broker under a key policy.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn inspect_lists_each_signature_and_the_keys_it_verifies_with() {
    let world = World::new().await;
    let Some(signer) = Signer::new(world.dir.path()) else {
        return;
    };
    let contoso = signer.keygen("contoso");
    let ssh = signer.ssh_keygen("id_ssh");
    let stranger = signer.keygen("stranger");
    let plain = world.path("oauth2.wasm");
    std::fs::copy(support::plugin("oauth2"), &plain).unwrap();
    let once = world.path("once.wasm");
    signer.sign(&plain, &once, &contoso, None);
    let twice = world.path("twice.wasm");
    signer.sign(&once, &twice, &stranger, None);
    // A detached signature by the OpenSSH key, made from the unsigned release.
    signer.sign(
        &plain,
        &world.path("ignored.wasm"),
        &ssh,
        Some(&world.path("twice.wasm.sig")),
    );
    let policy = world.policy(
        "p.toml",
        &format!(
            "[[plugins.allow]]\nname = \"contoso\"\npublisher_key_file = {}\n",
            support::toml_path(&contoso.public)
        ),
    );
    let config = world.config(&[(
        "corp",
        &twice,
        &format!(
            "publisher_key = \"{}\"",
            std::fs::read_to_string(&ssh.public).unwrap().trim()
        ),
    )]);
    let out = world
        .tokenhost(&[
            "inspect",
            s(&twice),
            "-c",
            s(&config),
            "--policy",
            s(&policy),
        ])
        .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("signatures:"))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].starts_with("  embedded: key id ")
            && lines[1].ends_with(&format!(
                "verifies with policy {} allow \"contoso\"",
                policy.display()
            )),
        "{text}"
    );
    assert!(
        lines[2].starts_with("  embedded: key id ")
            && lines[2].ends_with("by a key the policy and the config do not name"),
        "{text}"
    );
    assert!(
        lines[3].starts_with(&format!(
            "  detached {}: key id ",
            world.path("twice.wasm.sig").display()
        )) && lines[3].ends_with("verifies with config provider corp publisher_key"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "unsigned: {} (the file without its signature section)",
            sha256_hex(&plain)
        )),
        "{text}"
    );

    // JSON, for scripts; a modified copy: no signature covers it.
    let mut bytes = std::fs::read(&once).unwrap();
    bytes.extend_from_slice(&[0, 2, 1, b'x']);
    let modified = world.path("modified.wasm");
    std::fs::write(&modified, bytes).unwrap();
    let out = world
        .tokenhost(&["inspect", "--json", s(&modified), "--policy", s(&policy)])
        .await;
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let signatures = info["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 1, "{info}");
    assert_eq!(signatures[0]["covers_content"], false);
    assert_eq!(signatures[0]["verified_by"], serde_json::json!([]));
    assert_eq!(info["sha256"], sha256_hex(&modified));
}

/// The broker applies the policy it runs under: under a key policy, `tokenhost serve`
/// refuses a config whose plugin is signed by another key, naming the provider, and the
/// plugin never runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_broker_under_a_key_policy_refuses_a_plugin_signed_by_another_key() {
    let world = World::new().await;
    let Some(signer) = Signer::new(world.dir.path()) else {
        return;
    };
    let contoso = signer.keygen("contoso");
    let mallory = signer.keygen("mallory");
    let by_mallory = world.path("mallory.wasm");
    signer.sign(&support::plugin("oauth2"), &by_mallory, &mallory, None);
    let policy = world.policy(
        "keys.toml",
        &format!(
            "[[plugins.allow]]\npublisher_key_file = {}\n",
            support::toml_path(&contoso.public)
        ),
    );
    let config = world.config(&[("corp", &by_mallory, "")]);
    let run = world.path("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let home = world.dir.path().to_path_buf();
    let serve = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
        let mut child = support::isolate(&mut command, &home)
            .args(["serve", "-c", s(&config)])
            .env("TOKENHOST_POLICY", &policy)
            .env("CORP_SECRET", "s3cret")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("tokenhost serve kept running with its only provider refused");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    });
    let out = serve.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("provider \"corp\""), "{stderr}");
    assert!(stderr.contains("signed by an unknown key"), "{stderr}");
    assert_eq!(world.runs(), 0, "the refused plugin ran");
}
