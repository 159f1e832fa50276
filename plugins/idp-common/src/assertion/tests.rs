//! Signing with real keys (made by openssl, in `testdata/`), checked with the public
//! keys; every refused key says why without quoting the file.

use super::*;
use rsa::pkcs1v15::{Signature as RsaSignature, VerifyingKey as RsaVerifyingKey};
use rsa::signature::Verifier;
use serde_json::Value;
use tokenhost_plugin::testing::{FAKE_NOW_MS, FakePlatform};

const RSA: &str = include_str!("testdata/rsa.pem");
const P256_KEY: &str = include_str!("testdata/p256.pem");
const P256_CERT: &str = include_str!("testdata/p256-cert.pem");
/// `openssl x509 -outform DER | openssl dgst -sha256 -binary | basenc --base64url`.
const P256_CERT_X5T: &str = "zZDANPJzD41L-m43QzIkOiQx2VS93FH506dasFoBHrM";

fn claims() -> Claims<'static> {
    Claims {
        client_id: "my-app",
        audience: "https://login.example.com/t/oauth2/v2.0/token",
        key_id: Some("key-1"),
        x5t_s256: Some(P256_CERT_X5T),
    }
}

/// The decoded header and payload of `jwt`, and its signing input and signature.
fn parts(jwt: &str) -> (Value, Value, String, Vec<u8>) {
    let pieces: Vec<&str> = jwt.split('.').collect();
    assert_eq!(pieces.len(), 3, "{jwt}");
    let json = |s: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
    (
        json(pieces[0]),
        json(pieces[1]),
        format!("{}.{}", pieces[0], pieces[1]),
        URL_SAFE_NO_PAD.decode(pieces[2]).unwrap(),
    )
}

fn check_claims(payload: &Value) {
    let now_s = FAKE_NOW_MS / 1000;
    assert_eq!(payload["iss"], "my-app");
    assert_eq!(payload["sub"], "my-app");
    assert_eq!(
        payload["aud"],
        "https://login.example.com/t/oauth2/v2.0/token"
    );
    assert_eq!(payload["iat"], now_s);
    assert_eq!(payload["nbf"], now_s);
    assert_eq!(payload["exp"], now_s + LIFETIME_S);
    assert_eq!(payload["jti"].as_str().unwrap().len(), 22);
}

#[test]
fn rs256_assertions_verify_with_the_public_key() {
    let key = AssertionKey::from_pem(RSA).unwrap();
    assert_eq!(key.alg(), "RS256");
    let fake = FakePlatform::default();
    let jwt = sign(&fake, &key, &claims()).unwrap();
    let (header, payload, input, signature) = parts(jwt.expose());
    assert_eq!(
        header,
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "key-1", "x5t#S256": P256_CERT_X5T})
    );
    check_claims(&payload);
    let public = rsa::RsaPrivateKey::from_pkcs8_pem(RSA)
        .unwrap()
        .to_public_key();
    RsaVerifyingKey::<Sha256>::new(public)
        .verify(
            input.as_bytes(),
            &RsaSignature::try_from(signature.as_slice()).unwrap(),
        )
        .unwrap();
    // Blinding drew randomness beyond the jti.
    assert!(fake.random_drawn.get() > JTI_BYTES as u64);
}

#[test]
fn es256_assertions_verify_and_have_a_fixed_size_signature() {
    let key = AssertionKey::from_pem(P256_KEY).unwrap();
    assert_eq!(key.alg(), "ES256");
    let fake = FakePlatform::default();
    let jwt = sign(
        &fake,
        &key,
        &Claims {
            key_id: None,
            x5t_s256: None,
            ..claims()
        },
    )
    .unwrap();
    let (header, payload, input, signature) = parts(jwt.expose());
    assert_eq!(header, serde_json::json!({"alg": "ES256", "typ": "JWT"}));
    check_claims(&payload);
    // JWS ES256 is r || s, 64 bytes (RFC 7518 §3.4), not DER.
    assert_eq!(signature.len(), 64);
    let secret = p256::SecretKey::from_pkcs8_pem(P256_KEY).unwrap();
    let verifying = p256::ecdsa::VerifyingKey::from(secret.public_key());
    verifying
        .verify(
            input.as_bytes(),
            &p256::ecdsa::Signature::from_slice(&signature).unwrap(),
        )
        .unwrap();
}

#[test]
fn every_assertion_has_a_new_jti() {
    let key = AssertionKey::from_pem(P256_KEY).unwrap();
    let fake = FakePlatform::default();
    let jtis: Vec<String> = (0..3)
        .map(|_| {
            let (_, payload, _, _) = parts(sign(&fake, &key, &claims()).unwrap().expose());
            payload["jti"].as_str().unwrap().to_string()
        })
        .collect();
    assert_ne!(jtis[0], jtis[1]);
    assert_ne!(jtis[1], jtis[2]);
}

#[test]
fn a_file_with_key_and_certificate_works_for_both() {
    let both = format!("{P256_CERT}\n{P256_KEY}");
    assert_eq!(AssertionKey::from_pem(&both).unwrap().alg(), "ES256");
    assert_eq!(x5t_s256(&both).unwrap(), P256_CERT_X5T);
    assert_eq!(x5t_s256(P256_CERT).unwrap(), P256_CERT_X5T);
    assert!(
        x5t_s256(P256_KEY)
            .unwrap_err()
            .contains("no PEM certificate")
    );
}

/// The base64 body lines of a PEM file: what a leak of the key would show.
fn key_material(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect()
}

#[test]
fn refused_keys_say_why_and_never_show_the_key() {
    let cases = [
        (
            include_str!("testdata/rsa-pkcs1.pem"),
            "the key is `RSA PRIVATE KEY`, not PKCS#8; convert it with `openssl pkcs8 -topk8 -nocrypt",
        ),
        (
            include_str!("testdata/p256-encrypted.pem"),
            "the key is encrypted",
        ),
        (
            include_str!("testdata/p384.pem"),
            "the EC key is on curve P-384; only P-256 (ES256) is supported",
        ),
        (
            include_str!("testdata/rsa1024.pem"),
            "the RSA key has 1024 bits; RS256 needs at least 2048",
        ),
        (
            include_str!("testdata/ed25519.pem"),
            "Ed25519 keys are not supported",
        ),
        (P256_CERT, "it holds no PEM private key"),
        ("hunter2-not-a-key", "it holds no PEM private key"),
    ];
    for (pem, expected) in cases {
        let e = AssertionKey::from_pem(pem).unwrap_err();
        assert!(e.contains(expected), "{e}");
        for line in key_material(pem) {
            assert!(!e.contains(line), "{e}");
        }
    }
    let mangled = RSA.replacen("MII", "M!I", 1);
    let e = AssertionKey::from_pem(&mangled).unwrap_err();
    assert_eq!(e, "its `PRIVATE KEY` block is not valid base64");
    let truncated: String = RSA.lines().take(5).collect::<Vec<_>>().join("\n");
    assert!(
        AssertionKey::from_pem(&truncated)
            .unwrap_err()
            .contains("no END line")
    );
}

#[test]
fn debug_shows_only_the_algorithm() {
    for pem in [RSA, P256_KEY] {
        let key = AssertionKey::from_pem(pem).unwrap();
        let shown = format!("{key:?}");
        assert!(shown == "AssertionKey(RS256)" || shown == "AssertionKey(ES256)");
    }
}

#[test]
fn no_randomness_is_an_error_not_a_weak_assertion() {
    use tokenhost_plugin::Host;
    // Natively the real platform has no wasi:random.
    let key = AssertionKey::from_pem(RSA).unwrap();
    let e = sign(&Host, &key, &claims()).unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable(m) if m.contains("wasi:random")),
        "{e:?}"
    );
}
