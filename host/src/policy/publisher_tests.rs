//! The plugin rule with publisher keys: parsing, allow, deny and the pin, on components
//! signed here with the wasmsign2 crate (the end-to-end tests sign with its CLI).

use std::path::Path;

use sha2::Digest;
use wasmsign2::{KeyPair, Module};

use super::*;

const SYS: &str = "/etc/tokenhost/policy.toml";

/// A tiny component: the preamble and one custom section.
fn component(marker: &[u8]) -> Vec<u8> {
    let mut out = b"\0asm\x0d\0\x01\0".to_vec();
    out.push(0);
    out.push(marker.len() as u8 + 2);
    out.push(1);
    out.push(b'x');
    out.extend_from_slice(marker);
    out
}

/// `bytes` signed by `keys` in turn (embedded; each keeps the earlier signatures).
fn signed(bytes: &[u8], keys: &[&KeyPair]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for key in keys {
        let module = Module::deserialize(&mut bytes.as_slice()).unwrap();
        let key_id = key.pk.clone().attach_default_key_id().key_id().cloned();
        let (module, _) = key
            .sk
            .sign_multi(module, key_id.as_ref(), false, false)
            .unwrap();
        let mut out = Vec::new();
        module.serialize(&mut out).unwrap();
        bytes = out;
    }
    bytes
}

fn hex_key(key: &KeyPair) -> String {
    hex::encode(key.pk.to_bytes())
}

fn check(policy: &Policy, bytes: &[u8]) -> Vec<Violation> {
    let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
    let plugin = SignedPlugin::new(Path::new("/nonexistent/p.wasm"), bytes, digest);
    policy.check_plugin("corp", &plugin)
}

fn policy(text: &str) -> Policy {
    Policy::parse(text, Path::new(SYS)).unwrap_or_else(|e| panic!("{e}"))
}

fn refusal(violations: &[Violation]) -> PluginRefusal {
    assert_eq!(violations.len(), 1, "{violations:?}");
    violations[0].refusal.clone().unwrap()
}

#[test]
fn a_plugin_signed_by_an_allowed_key_is_allowed_and_others_say_why_not() {
    let (contoso, other) = (KeyPair::generate(), KeyPair::generate());
    let p = policy(&format!(
        "[[plugins.allow]]\nname = \"contoso\"\npublisher_key = \"{}\"\n",
        hex_key(&contoso)
    ));
    let plain = component(b"release-1");
    assert!(check(&p, &signed(&plain, &[&contoso])).is_empty());
    // Several signatures: one by the allowed key is enough, in any order.
    assert!(check(&p, &signed(&plain, &[&other, &contoso])).is_empty());

    assert_eq!(refusal(&check(&p, &plain)), PluginRefusal::NoSignature);
    let by_other = signed(&plain, &[&other]);
    let out = check(&p, &by_other);
    let other_id = hex::encode(other.pk.clone().attach_default_key_id().key_id().unwrap());
    assert_eq!(
        refusal(&out),
        PluginRefusal::UnknownKey {
            key_ids: vec![Some(other_id.clone())]
        }
    );
    assert_eq!(out[0].rule, "plugins");
    assert!(
        out[0].to_string().starts_with("provider \"corp\": plugin sha256 ")
            && out[0].message.contains("is not in the plugin allowlist of policy /etc/tokenhost/policy.toml: it is signed by an unknown key (key id ")
            && out[0].message.contains(&other_id),
        "{}",
        out[0]
    );

    // Modified after signing: the last byte of the marker changed.
    let mut modified = signed(&plain, &[&contoso]);
    *modified.last_mut().unwrap() ^= 1;
    assert_eq!(
        refusal(&check(&p, &modified)),
        PluginRefusal::ModifiedAfterSigning
    );
    // A section appended after signing.
    let mut appended = signed(&plain, &[&contoso]);
    appended.extend_from_slice(&[0, 3, 2, b'z', b'z']);
    assert_eq!(
        refusal(&check(&p, &appended)),
        PluginRefusal::ModifiedAfterSigning
    );
}

#[test]
fn deny_wins_by_key_and_by_release_even_signed_again() {
    let (contoso, other) = (KeyPair::generate(), KeyPair::generate());
    let plain = component(b"release-1");
    let release = signed(&plain, &[&contoso]);
    let release_sha = hex::encode(sha2::Sha256::digest(&release));
    let allow = format!(
        "[[plugins.allow]]\npublisher_key = \"{}\"\n",
        hex_key(&contoso)
    );

    let by_release = policy(&format!(
        "{allow}[[plugins.deny]]\nname = \"1.1.0\"\nsha256 = \"{release_sha}\"\n"
    ));
    let out = check(&by_release, &release);
    assert_eq!(
        refusal(&out),
        PluginRefusal::DeniedRelease {
            sha256: release_sha.clone(),
            name: Some("1.1.0".into())
        }
    );
    assert!(out[0].message.contains("is denied by policy"), "{}", out[0]);
    // The same release signed again (another signature added): still denied, through
    // the digest of the file without its signature section.
    let resigned = signed(&release, &[&other]);
    assert_ne!(hex::encode(sha2::Sha256::digest(&resigned)), release_sha);
    let unsigned_sha = hex::encode(sha2::Sha256::digest(&plain));
    let by_unsigned = policy(&format!(
        "{allow}[[plugins.deny]]\nsha256 = \"{unsigned_sha}\"\n"
    ));
    for bytes in [&plain, &release, &resigned] {
        assert!(
            matches!(
                refusal(&check(&by_unsigned, bytes)),
                PluginRefusal::DeniedRelease { .. }
            ),
            "deny by the unsigned digest"
        );
    }
    // Another release by the same key is not denied.
    assert!(check(&by_release, &signed(&component(b"release-2"), &[&contoso])).is_empty());

    let by_key = policy(&format!(
        "{allow}[[plugins.deny]]\nname = \"leaked\"\npublisher_key = \"{}\"\n",
        hex_key(&other)
    ));
    assert!(check(&by_key, &release).is_empty());
    let both = signed(&plain, &[&contoso, &other]);
    assert!(matches!(
        refusal(&check(&by_key, &both)),
        PluginRefusal::DeniedKey { name: Some(n), .. } if n == "leaked"
    ));
    // A deny list alone allows everything else, and restricts plugins (compiled code
    // then comes from the administrator's cache only).
    let only_deny = policy(&format!(
        "[[plugins.deny]]\npublisher_key = \"{}\"\n",
        hex_key(&other)
    ));
    assert!(only_deny.restricts_plugins());
    assert!(check(&only_deny, &plain).is_empty());
    assert_eq!(check(&only_deny, &both).len(), 1);
}

#[test]
fn every_file_of_a_stack_must_allow_and_sha256_entries_work_as_before() {
    let contoso = KeyPair::generate();
    let release = signed(&component(b"r"), &[&contoso]);
    let sha = hex::encode(sha2::Sha256::digest(&release));
    let by_key = policy(&format!(
        "[[plugins.allow]]\npublisher_key = \"{}\"\n",
        hex_key(&contoso)
    ));
    let by_digest = policy(&format!("[[plugins.allow]]\nsha256 = \"{sha}\"\n"));
    assert!(check(&by_digest, &release).is_empty());
    assert!(check(&by_key.clone().stack(by_digest.clone()), &release).is_empty());
    let other = signed(&component(b"r2"), &[&contoso]);
    let out = check(&by_key.stack(by_digest), &other);
    assert_eq!(refusal(&out), PluginRefusal::NotAllowed);
    assert!(
        out[0]
            .message
            .ends_with("is not in the plugin allowlist of policy /etc/tokenhost/policy.toml"),
        "{}",
        out[0]
    );
}

#[test]
fn the_providers_pin_needs_a_signature_by_that_key() {
    let (pinned, other) = (KeyPair::generate(), KeyPair::generate());
    let key = crate::publisher::PublisherKey::parse(&hex_key(&pinned)).unwrap();
    let plain = component(b"x");
    let pin = |bytes: &[u8]| {
        let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
        let plugin = SignedPlugin::new(Path::new("/nonexistent/p.wasm"), bytes, digest);
        check_publisher_pin("corp", &key, &plugin)
    };
    assert!(pin(&signed(&plain, &[&pinned])).is_none());
    let out = pin(&signed(&plain, &[&other])).unwrap();
    assert_eq!(out.rule, "publisher_key");
    assert_eq!(out.policy, None);
    assert!(matches!(
        out.refusal,
        Some(PluginRefusal::UnknownKey { .. })
    ));
    assert!(
        out.message.contains(&format!(
            "not signed by the pinned publisher key {}",
            key.key_id()
        )),
        "{out}"
    );
    assert_eq!(
        pin(&plain).unwrap().refusal,
        Some(PluginRefusal::NoSignature)
    );
}

#[test]
fn key_entries_fail_closed_when_malformed_or_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate();
    let file = dir.path().join("contoso.pub");
    key.pk.to_file(&file).unwrap();
    let p = policy(&format!(
        "[[plugins.allow]]\npublisher_key_file = {}\n",
        toml::Value::String(file.display().to_string())
    ));
    assert_eq!(p.publisher_keys().len(), 1);
    assert!(
        p.publisher_keys()[0]
            .0
            .starts_with("policy /etc/tokenhost/policy.toml allow")
    );
    assert!(check(&p, &signed(&component(b"a"), &[&key])).is_empty());

    let missing = dir.path().join("missing.pub");
    for (text, needle) in [
        (
            format!(
                "[[plugins.allow]]\npublisher_key_file = {:?}\n",
                missing.display().to_string()
            ),
            "missing.pub",
        ),
        (
            "[[plugins.allow]]\npublisher_key_file = \"keys/contoso.pub\"\n".to_string(),
            "must be absolute",
        ),
        (
            "[[plugins.allow]]\npublisher_key = \"ssh-rsa AAAAB3NzaC1yc2E\"\n".to_string(),
            "only ssh-ed25519",
        ),
        (
            "[[plugins.deny]]\npublisher_key = \"zz\"\n".to_string(),
            "plugins.deny publisher_key: not an ed25519 public key",
        ),
        (
            format!(
                "[[plugins.allow]]\nsha256 = \"{}\"\npublisher_key = \"{}\"\n",
                "a".repeat(64),
                hex_key(&key)
            ),
            "exactly one of",
        ),
        (
            "[plugins]\n".to_string(),
            "needs an `allow` or a `deny` list",
        ),
    ] {
        let err = Policy::parse(&text, Path::new(SYS)).expect_err(&text);
        assert!(matches!(err, PolicyError::Invalid { .. }), "{text}: {err}");
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
    // Unknown keys in an entry, or a deny list for commands, are parse errors.
    for text in [
        "[[plugins.deny]]\nsha256 = \"00\"\nreason = \"x\"\n",
        "[[commands.deny]]\npath = \"/bin/az\"\n",
    ] {
        let err = Policy::parse(text, Path::new(SYS)).expect_err(text);
        assert!(matches!(err, PolicyError::Parse { .. }), "{text}: {err}");
    }
}
