//! Publisher signatures that come with a pulled plugin as the artifact's second layer.

use super::*;

/// A signature that comes as the artifact's second layer (a wasmsign2 detached signature
/// file, made by the real CLI) is judged like a `.sig` file beside a local plugin: a
/// policy that allows a publisher key accepts the plugin signed by it, and refuses it
/// signed by another key or unsigned; a signature layer changed in the registry is a
/// digest mismatch, and nothing is compiled or half-written.
#[test]
fn a_signature_layer_is_judged_by_the_publisher_key_policy() {
    use crate::support::registry::SIGNATURE_LAYER;
    use crate::support::signer::{Signer, s};
    let keys_dir = tempfile::tempdir().unwrap();
    let (Some(registry), Some(signer)) = (Registry::start(), Signer::new(keys_dir.path())) else {
        return;
    };
    let contoso = signer.keygen("contoso");
    let other = signer.ssh_keygen("other");
    let plugin = keys_dir.path().join("plugin.wasm");
    std::fs::write(&plugin, plugin_bytes()).unwrap();
    let sign = |keys, name: &str| {
        let (out, sig) = (
            keys_dir.path().join(format!("{name}.wasm")),
            keys_dir.path().join(format!("{name}.sig")),
        );
        signer.sign(&plugin, &out, keys, Some(&sig));
        (std::fs::read(out).unwrap(), std::fs::read(sig).unwrap())
    };
    let (wasm, by_contoso) = sign(&contoso, "contoso");
    let (wasm_again, by_other) = sign(&other, "other");
    assert_eq!(
        wasm, wasm_again,
        "a detached signature leaves the module as it was"
    );
    let (_, layers) = registry.push_layers(
        "team/p",
        "contoso",
        &[(WASM_LAYER, &wasm), (SIGNATURE_LAYER, &by_contoso)],
    );
    registry.push_layers(
        "team/p",
        "other",
        &[(WASM_LAYER, &wasm), (SIGNATURE_LAYER, &by_other)],
    );
    registry.push_layers("team/p", "unsigned", &[(WASM_LAYER, &wasm)]);

    let home = Home::new(&registry.oci("team/p:contoso"), "");
    let policy = home.env.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[plugins.allow]]\nname = \"contoso\"\npublisher_key_file = \"{}\"\n",
            s(&contoso.public)
        ),
    )
    .unwrap();
    let policy_arg = policy.to_str().unwrap();
    let token = |home: &Home| home.token_with(&["--policy", policy_arg]);
    got_token(&token(&home));
    let signature_hex = layers[1].strip_prefix("sha256:").unwrap();
    assert!(
        home.blob_files().contains(&format!("{signature_hex}.sig")),
        "{:?}",
        home.blob_files()
    );
    let (code, out, err) = home.run(&["check", "--policy", policy_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("signed by policy") && out.contains("contoso"),
        "{out}"
    );

    home.reconfigure(&registry.oci("team/p:other"), "");
    refused(&token(&home), 2, "", "signed by an unknown key");
    home.reconfigure(&registry.oci("team/p:unsigned"), "");
    refused(
        &token(&home),
        2,
        "",
        "is not in the plugin allowlist of policy",
    );

    // The signature layer changed in the registry: refused before anything is kept.
    let fresh = Home::new(&registry.oci("team/p:contoso"), "");
    std::fs::write(registry.blob_file(&layers[1]), one_byte_off(&by_contoso)).unwrap();
    let out = fresh.token_with(&["--policy", policy_arg]);
    refused(&out, 2, "team/p:contoso", "signature layer received");
    assert!(
        fresh
            .blob_files()
            .iter()
            .all(|f| !f.ends_with(".sig") && !f.starts_with(".partial")),
        "{:?}",
        fresh.blob_files()
    );
    assert_eq!(fresh.compiled(), 0);
}
