//! `assertion_key_file`: a new signed assertion on every call, and the key never in a
//! message, a log line or a `Debug`.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::Verifier;
use sha2::Sha256;
use tokenhost_plugin::RefreshReason;
use tokenhost_plugin::testing::FakePlatform as Fake;

const URL: &str = "https://login.example.com/tenant/oauth2/v2.0/token";
const RSA: &str = include_str!("../../assertion/testdata/rsa.pem");
const P256_KEY: &str = include_str!("../../assertion/testdata/p256.pem");
const P256_CERT: &str = include_str!("../../assertion/testdata/p256-cert.pem");
const PKCS1: &str = include_str!("../../assertion/testdata/rsa-pkcs1.pem");

fn config(extra: &[(&str, &str)]) -> Config {
    let mut pairs = vec![
        ("token_url", URL),
        ("client_id", "my-app"),
        ("assertion_key_file", "/keys/key.pem"),
    ];
    pairs.extend_from_slice(extra);
    Config::of(&pairs)
}

fn form_of(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The JSON of a JWT segment.
fn segment(jwt: &str, index: usize) -> serde_json::Value {
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Asserts no line of the key's base64 shows in `text`.
fn assert_no_key(text: &str, pem: &str) {
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(line), "key material in {text}");
    }
}

#[test]
fn rs256_signed_on_every_call_with_kid_and_x5t() {
    let cfg = config(&[
        ("assertion_key_id", "key-1"),
        ("assertion_x5t_file", "/keys/cert.pem"),
        ("scope", "api://x/.default"),
    ]);
    let fake = Fake::default()
        .file("/keys/key.pem", RSA)
        .file("/keys/cert.pem", P256_CERT)
        .respond(200, r#"{"access_token":"t1"}"#)
        .respond(200, r#"{"access_token":"t2"}"#);
    fetch(&fake, &cfg, Trigger::Resolve).unwrap();
    fetch(&fake, &cfg, Trigger::Refresh(RefreshReason::Expiring)).unwrap();
    let sent = fake.sent.borrow();
    let mut jtis = Vec::new();
    let public = rsa::RsaPrivateKey::from_pkcs8_pem(RSA)
        .unwrap()
        .to_public_key();
    let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
    for request in sent.iter() {
        assert_eq!(request.header("authorization"), None);
        let form = form_of(std::str::from_utf8(&request.body).unwrap());
        assert_eq!(field(&form, "grant_type"), Some("client_credentials"));
        assert_eq!(field(&form, "client_id"), Some("my-app"));
        assert_eq!(
            field(&form, "client_assertion_type"),
            Some(JWT_BEARER_ASSERTION)
        );
        assert_eq!(field(&form, "scope"), Some("api://x/.default"));
        let jwt = field(&form, "client_assertion").unwrap();
        let header = segment(jwt, 0);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "key-1");
        assert_eq!(
            header["x5t#S256"],
            "zZDANPJzD41L-m43QzIkOiQx2VS93FH506dasFoBHrM"
        );
        let claims = segment(jwt, 1);
        assert_eq!(claims["iss"], "my-app");
        assert_eq!(claims["sub"], "my-app");
        assert_eq!(claims["aud"], URL);
        jtis.push(claims["jti"].as_str().unwrap().to_string());
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        verifier
            .verify(
                input.as_bytes(),
                &rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap(),
            )
            .unwrap();
    }
    assert_ne!(jtis[0], jtis[1], "a reused jti is refused by the IdP");
    let logs = fake.all_logs();
    assert!(
        logs.contains(&format!(
            "POST {URL} (client credentials, private_key_jwt (RS256, key from `/keys/key.pem`, kid `key-1`, x5t#S256))"
        )),
        "{logs}"
    );
    assert_no_key(&logs, RSA);
}

#[test]
fn es256_with_another_audience() {
    let cfg = config(&[("assertion_audience", "https://login.example.com/")]);
    let fake = Fake::default()
        .file("/keys/key.pem", P256_KEY)
        .respond(200, r#"{"access_token":"t"}"#);
    fetch(&fake, &cfg, Trigger::Resolve).unwrap();
    let form = form_of(&fake.last_body());
    let jwt = field(&form, "client_assertion").unwrap();
    assert_eq!(
        segment(jwt, 0),
        serde_json::json!({"alg": "ES256", "typ": "JWT"})
    );
    assert_eq!(segment(jwt, 1)["aud"], "https://login.example.com/");
}

#[test]
fn signing_key_configuration_errors() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("client_secret_env", "S")],
            "set one client credential, not both `client_secret_env` and `assertion_key_file`",
        ),
        (
            &[("client_assertion_file", "/keys/jwt")],
            "not both `client_assertion_file` and `assertion_key_file`",
        ),
        (
            &[("auth_method", "client_secret_basic")],
            "`auth_method` (`client_secret_basic`) applies to client secrets; leave it unset with `assertion_key_file`",
        ),
        (
            &[("client_assertion_type", "urn:x")],
            "`client_assertion_type` applies only with `client_assertion_file`",
        ),
        (
            &[("assertion_x5t_file", "/keys/key.pem")],
            "`/keys/key.pem` (config key `assertion_x5t_file`) cannot be used: it holds no PEM certificate",
        ),
        (
            &[("assertion_x5t_file", "/keys/nope.pem")],
            "cannot read `/keys/nope.pem` (config key `assertion_x5t_file`)",
        ),
    ];
    let fake = Fake::default().file("/keys/key.pem", RSA);
    for (extra, expected) in cases {
        let err = fetch(&fake, &config(extra), Trigger::Resolve).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{extra:?}: {err:?}");
        assert!(err.message().contains(expected), "{extra:?}: {err:?}");
    }
    for key in [
        "assertion_key_id",
        "assertion_x5t_file",
        "assertion_audience",
    ] {
        let cfg = Config::of(&[
            ("token_url", URL),
            ("client_id", "a"),
            ("client_secret_env", "S"),
            (key, "x"),
        ]);
        let err = fetch(&fake, &cfg, Trigger::Resolve).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidConfig(format!(
                "config key `{key}` applies only with `assertion_key_file`"
            ))
        );
    }
    let err = fetch(&Fake::default(), &config(&[]), Trigger::Resolve).unwrap_err();
    assert!(
        err.message()
            .contains("cannot read `/keys/key.pem` (config key `assertion_key_file`)")
            && err.message().contains("allowed_paths"),
        "{err:?}"
    );
    let fake = Fake::default().file("/keys/key.pem", PKCS1);
    let err = fetch(&fake, &config(&[]), Trigger::Resolve).unwrap_err();
    assert!(
        err.message().starts_with(
            "`/keys/key.pem` (config key `assertion_key_file`) cannot be used: the key is `RSA PRIVATE KEY`, not PKCS#8"
        ),
        "{err:?}"
    );
    assert_no_key(err.message(), PKCS1);
    assert_no_key(&fake.all_logs(), PKCS1);
    assert!(fake.sent.borrow().is_empty());
}

#[test]
fn the_key_and_the_assertion_never_show() {
    // An IdP that quotes the whole form back, assertion included.
    let fake = Fake::default().file("/keys/key.pem", RSA);
    let prepared = prepare(&fake, &config(&[])).unwrap();
    let shown = format!("{prepared:?}");
    assert_no_key(&shown, RSA);
    let body = String::from_utf8(prepared.request.body.clone()).unwrap();
    let jwt = field(&form_of(&body), "client_assertion")
        .unwrap()
        .to_string();
    let signature = jwt.rsplit('.').next().unwrap().to_string();
    assert!(!shown.contains(&signature), "{shown}");

    let echo = serde_json::json!({"error": "invalid_client", "error_description": format!("bad assertion in {body}")});
    let fake = Fake::default()
        .file("/keys/key.pem", RSA)
        .respond(401, &echo.to_string());
    let err = fetch(&fake, &config(&[]), Trigger::Resolve).unwrap_err();
    assert!(matches!(err, Error::Denied(_)), "{err:?}");
    assert!(err.message().contains("[redacted]"), "{err:?}");
    assert!(!err.message().contains("eyJ"), "{err:?}");
    assert_no_key(err.message(), RSA);
    assert_no_key(&fake.all_logs(), RSA);
}
