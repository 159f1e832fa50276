//! The shipped `oauth2` and `token-exchange` plugins against a real OpenID provider that no
//! one here wrote: npm `oidc-provider` 9.13.3 on 127.0.0.1 (tests/idp, installed by
//! scripts/install-idp). Its client authentication checks the signed assertions (and refuses
//! a reused `jti`); its token-exchange grant is registered with its own `registerGrantType`
//! (the handler is test code, the server is real).

use crate::support;
use crate::support::log::CapturedLog;
use crate::support::oidc::{Keys, OidcProvider, key_client, key_material, secret_client};

use std::path::Path;

use tokenhost::grants::{Grants, grant_paths};
use tokenhost::source::wasm::WasmSource;
use tokenhost::{FailureKind, RefreshReason, TokenSource};

const SECRET: &str = "s3cr3t-client-secret-value";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Generous: the machine is shared, and RSA signing runs in the guest.
const TIMEOUT_MS: u64 = 10_000;

/// Grants reading `dir` (where keys or token files are).
fn reading(dir: &Path) -> Grants {
    Grants {
        paths: grant_paths(&[dir.display().to_string()], dir).unwrap(),
        ..Grants::default()
    }
}

/// `plugin` pointed at `idp`, with `grants` and `config`.
fn plugin(
    idp: &OidcProvider,
    plugin: &str,
    grants: Grants,
    config: &[(&str, String)],
) -> WasmSource {
    support::source(plugin, &[idp.authority()], grants, config, TIMEOUT_MS)
}

/// The oauth2 plugin as client `id`, signing with the key at `key`.
fn signing(
    idp: &OidcProvider,
    keys: &Keys,
    id: &str,
    key: &Path,
    extra: &[(&str, String)],
) -> WasmSource {
    let mut config = vec![
        ("token_url", idp.token_url()),
        ("client_id", id.to_string()),
        ("assertion_key_file", key.display().to_string()),
        ("http_timeout_ms", "5000".to_string()),
    ];
    config.extend(extra.iter().cloned());
    plugin(idp, "oauth2", reading(keys.dir.path()), &config)
}

/// A token from client `basic` (client_secret_basic), through the oauth2 plugin.
async fn basic_token(idp: &OidcProvider, extra: &[(&str, String)]) -> String {
    let mut config = vec![
        ("token_url", idp.token_url()),
        ("client_id", "basic".to_string()),
        ("client_secret", SECRET.to_string()),
        ("allow_secret_in_config", "true".to_string()),
    ];
    config.extend(extra.iter().cloned());
    let source = plugin(idp, "oauth2", Grants::default(), &config);
    let token = source
        .resolve()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", idp.stderr()));
    token.expose().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn client_secret_basic_gets_a_token_with_extra_params() {
    let idp = OidcProvider::start(&[secret_client("basic", SECRET)], &[]);
    let log = CapturedLog::default();
    let guard = log.start();
    // oidc-provider ignores parameters a grant did not register: the token still comes.
    let token = basic_token(
        &idp,
        &[("extra_params", r#"{ vendor_hint = "hint-value-1" }"#.into())],
    )
    .await;
    drop(guard);
    assert!(token.len() >= 32, "{token}");
    let logs = log.text();
    assert!(logs.contains("extra params: vendor_hint)"), "{logs}");
    assert!(
        !logs.contains("hint-value-1") && !logs.contains(SECRET),
        "{logs}"
    );
}

/// RS256 (with `kid` and `x5t#S256`) and ES256 clients, each asked twice in a row: a new
/// assertion every time (oidc-provider refuses a `jti` it has seen, as the replay at the
/// end shows).
#[tokio::test(flavor = "multi_thread")]
async fn private_key_jwt_rs256_and_es256_twice_in_a_row() {
    let keys = Keys::new();
    let idp = OidcProvider::start(
        &[
            key_client("rs-client", "RS256", &keys.rsa_public, Some("rsa-1")),
            key_client("es-client", "ES256", &keys.ec_public, None),
        ],
        &[],
    );
    let rs = signing(
        &idp,
        &keys,
        "rs-client",
        &keys.rsa,
        &[
            ("assertion_key_id", "rsa-1".into()),
            ("assertion_x5t_file", keys.rsa_cert.display().to_string()),
        ],
    );
    let es = signing(&idp, &keys, "es-client", &keys.ec, &[]);
    for source in [&rs, &es] {
        let first = source
            .resolve()
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", idp.stderr()));
        let second = source
            .refresh(RefreshReason::Forced)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", idp.stderr()));
        assert_ne!(first.expose(), second.expose());
    }

    let assertions = idp.assertions();
    assert_eq!(assertions.len(), 4, "{assertions:?}");
    let token_url = idp.token_url();
    let x5t = keys.rsa_cert_x5t();
    for (i, a) in assertions.iter().enumerate() {
        let (header, claims) = (&a["header"], &a["claims"]);
        let id = if i < 2 { "rs-client" } else { "es-client" };
        assert_eq!(claims["iss"], id);
        assert_eq!(claims["sub"], id);
        assert_eq!(claims["aud"], token_url.as_str());
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, 300, "{claims}");
        assert_eq!(header["typ"], "JWT");
        if i < 2 {
            assert_eq!(header["alg"], "RS256");
            assert_eq!(header["kid"], "rsa-1");
            assert_eq!(header["x5t#S256"], x5t.as_str());
        } else {
            assert_eq!(header["alg"], "ES256");
            assert!(header.get("kid").is_none(), "{header}");
        }
    }
    let jtis: std::collections::HashSet<&str> = assertions
        .iter()
        .map(|a| a["claims"]["jti"].as_str().unwrap())
        .collect();
    assert_eq!(jtis.len(), 4, "every assertion has its own jti");

    // The same assertion sent again is refused: a plugin reusing one would fail above.
    let replay = format!(
        "grant_type=client_credentials&client_id=rs-client&client_assertion_type={}&client_assertion={}",
        "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
        assertions[0]["jwt"].as_str().unwrap()
    );
    let (status, body) = idp.request("POST", "/token", None, &replay);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_client"), "{body}");
}

/// A key the provider does not know is refused with the IdP's words, and the key shows
/// nowhere: not in the error, not in tokenhost's log at trace, not from the binary at -vvv
/// (whose config also carries an `extra_params` table, as TOML).
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_is_refused_and_the_key_never_shows() {
    let keys = Keys::new();
    let other = Keys::new();
    let idp = OidcProvider::start(
        &[key_client("rs-client", "RS256", &keys.rsa_public, None)],
        &[],
    );
    // The other key, copied beside the granted ones.
    let wrong = keys.dir.path().join("wrong.pem");
    std::fs::copy(&other.rsa, &wrong).unwrap();
    let log = CapturedLog::default();
    let guard = log.start();
    let err = signing(&idp, &keys, "rs-client", &wrong, &[])
        .resolve()
        .await
        .unwrap_err();
    let ok = signing(&idp, &keys, "rs-client", &keys.rsa, &[])
        .resolve()
        .await;
    drop(guard);
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(err.kind(), FailureKind::Denied, "{err}");
    let message = err.to_string();
    assert!(
        message.ends_with(&format!(
            "token endpoint {} refused: invalid_client: client authentication failed (HTTP 401)",
            idp.token_url()
        )),
        "{message}"
    );
    let logs = log.text();
    assert!(logs.contains("private_key_jwt (RS256, key from"), "{logs}");
    let material: Vec<String> = [&keys.rsa, &wrong]
        .iter()
        .flat_map(|k| key_material(k))
        .collect();
    for line in &material {
        assert!(
            !message.contains(line.as_str()),
            "key material in {message}"
        );
        assert!(!logs.contains(line.as_str()), "key material in the log");
    }

    // The real binary, from a config file, verbose: one line, no key.
    let env = support::cli::Env::new();
    let plugin = support::toml_path(&support::plugin("oauth2"));
    let config = env.config(&format!(
        "[model_providers.p.auth]\nplugin = {plugin}\nallowed_hosts = [\"{}\"]\nallowed_paths = [{}]\n\
         [model_providers.p.auth.config]\ntoken_url = \"{}\"\nclient_id = \"rs-client\"\n\
         assertion_key_file = {}\n\
         [model_providers.p.auth.config.extra_params]\nvendor_hint = \"hint-value-2\"\n",
        idp.authority(),
        support::toml_path(keys.dir.path()),
        idp.token_url(),
        support::toml_path(&wrong),
    ));
    let out = tokio::task::spawn_blocking(move || {
        let out = env.run(&["token", "p", "-vvv", "-c", config.to_str().unwrap()]);
        drop(env);
        out
    })
    .await
    .unwrap();
    let stderr = support::cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid_client: client authentication failed"),
        "{stderr}"
    );
    // The TOML table reached the plugin (as the host's TOML text); its value is not logged.
    assert!(stderr.contains("extra params: vendor_hint)"), "{stderr}");
    assert!(!stderr.contains("hint-value-2"), "{stderr}");
    for line in &material {
        assert!(
            !stderr.contains(line.as_str()),
            "key material in stderr:\n{stderr}"
        );
    }
}

/// RFC 8693 through oidc-provider's `registerGrantType`: an access token the server issued
/// is exchanged for a new one (with a vendor parameter from `extra_params`); a subject
/// token it did not issue and an audience it does not serve are refused, in its words.
#[tokio::test(flavor = "multi_thread")]
async fn token_exchange_through_a_registered_grant() {
    let idp = OidcProvider::start(
        &[
            secret_client("basic", SECRET),
            secret_client("exchanger", "exchanger-secret"),
        ],
        &["https://api.example"],
    );
    let subject = basic_token(&idp, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("subject-token");
    std::fs::write(&file, format!("{subject}\n")).unwrap();
    let exchange = |audience: &str| {
        plugin(
            &idp,
            "token-exchange",
            reading(dir.path()),
            &[
                ("token_url", idp.token_url()),
                ("subject_token_file", file.display().to_string()),
                ("subject_token_type", ACCESS_TOKEN_TYPE.to_string()),
                ("audience", audience.to_string()),
                ("client_id", "exchanger".to_string()),
                ("client_secret", "exchanger-secret".to_string()),
                ("allow_secret_in_config", "true".to_string()),
                (
                    "extra_params",
                    r#"{ tenant_hint = "tenant-42" }"#.to_string(),
                ),
            ],
        )
    };

    let token = exchange("https://api.example")
        .resolve()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", idp.stderr()));
    assert_ne!(token.expose(), subject);
    assert!(token.expires_at_ms().is_some());
    let seen = idp.exchanges();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["subject_token"], subject.as_str());
    assert_eq!(seen[0]["audience"], "https://api.example");
    assert_eq!(seen[0]["tenant_hint"], "tenant-42");
    assert_eq!(seen[0]["requested_token_type"], ACCESS_TOKEN_TYPE);

    let err = exchange("https://elsewhere.example")
        .resolve()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::InvalidConfig, "{err}");
    assert!(
        err.to_string().contains(&format!(
            "token endpoint {} rejected the request: invalid_target: audience https://elsewhere.example is not accepted (HTTP 400)",
            idp.token_url()
        )),
        "{err}"
    );

    std::fs::write(&file, "not-a-token-this-server-issued").unwrap();
    let err = exchange("https://api.example").resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Denied, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "token endpoint {} refused: invalid_grant: subject_token is not an active access token issued by this server (HTTP 400)",
            idp.token_url()
        )),
        "{message}"
    );
    assert!(!message.contains("not-a-token"), "{message}");
}
