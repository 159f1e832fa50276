//! The request each credential builds, and every error a person can meet.

use super::*;
use tokenhost_plugin::RefreshReason;
use tokenhost_plugin::http::{HttpError, Method};
use tokenhost_plugin::testing::FakePlatform as Fake;

const URL: &str = "https://login.example.com/tenant/oauth2/v2.0/token";

fn basic_config(extra: &[(&str, &str)]) -> Config {
    let mut pairs = vec![
        ("token_url", URL),
        ("client_id", "my-app"),
        ("client_secret_env", "APP_SECRET"),
    ];
    pairs.extend_from_slice(extra);
    Config::of(&pairs)
}

#[test]
fn client_secret_basic_request() {
    let fake = Fake::default().env("APP_SECRET", "s3cr:t+/\n").respond(
        200,
        r#"{"access_token":"tok","token_type":"bearer","expires_in":"3600"}"#,
    );
    let issued = fetch(
        &fake,
        &basic_config(&[("scope", "api://x/.default")]),
        Trigger::Resolve,
    )
    .unwrap();
    assert_eq!(
        issued,
        Token {
            value: "tok".into(),
            expires_at_ms: Some(1_000_000 + 3_600_000)
        }
    );
    let sent = fake.sent.borrow();
    let req = &sent[0];
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url.authority, "login.example.com");
    assert_eq!(req.url.path_and_query, "/tenant/oauth2/v2.0/token");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(
        req.header("authorization"),
        Some(form::basic_auth("my-app", "s3cr:t+/").as_str())
    );
    assert_eq!(req.timeout_ms, 4000);
    assert_eq!(
        String::from_utf8(req.body.clone()).unwrap(),
        "grant_type=client_credentials&scope=api%3A%2F%2Fx%2F.default"
    );
    let logs = fake.all_logs();
    assert!(logs.contains("POST https://login.example.com/tenant/oauth2/v2.0/token (client credentials, client_secret_basic)"), "{logs}");
    assert!(logs.contains("expires in 3600 s"), "{logs}");
    assert!(!logs.contains("s3cr") && !logs.contains("tok\""), "{logs}");
}

#[test]
fn client_secret_post_with_audience_and_resource() {
    let fake = Fake::default()
        .env("APP_SECRET", "pw")
        .respond(200, r#"{"access_token":"t"}"#);
    let cfg = basic_config(&[
        ("auth_method", "client_secret_post"),
        ("audience", "https://api"),
        ("resource", "urn:r"),
        ("http_timeout_ms", "900"),
    ]);
    fetch(&fake, &cfg, Trigger::Refresh(RefreshReason::Forced)).unwrap();
    let sent = fake.sent.borrow();
    assert_eq!(sent[0].header("authorization"), None);
    assert_eq!(sent[0].timeout_ms, 900);
    assert_eq!(
        fake.last_body(),
        "grant_type=client_credentials&client_id=my-app&client_secret=pw&audience=https%3A%2F%2Fapi&resource=urn%3Ar"
    );
}

#[test]
fn client_assertion_is_read_on_every_call() {
    let cfg = Config::of(&[
        ("token_url", URL),
        ("client_id", "app"),
        ("client_assertion_file", "/var/run/token"),
    ]);
    let fake = Fake::default()
        .file("/var/run/token", "eyJhbGciOi.first.sig\n")
        .respond(200, r#"{"access_token":"t1"}"#)
        .respond(200, r#"{"access_token":"t2"}"#);
    fetch(&fake, &cfg, Trigger::Resolve).unwrap();
    assert_eq!(
        fake.last_body(),
        "grant_type=client_credentials&client_id=app&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJhbGciOi.first.sig"
    );
    let mut fake = fake;
    fake.files
        .insert("/var/run/token".into(), "eyJhbGciOi.second.sig".into());
    fetch(&fake, &cfg, Trigger::Refresh(RefreshReason::Expiring)).unwrap();
    assert!(
        fake.last_body()
            .ends_with("client_assertion=eyJhbGciOi.second.sig")
    );
    assert_eq!(fake.sent.borrow()[1].header("authorization"), None);
}

#[test]
fn configuration_errors() {
    let fake = Fake::default();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("client_id", "a"), ("client_secret_env", "S")],
            "missing required config key `token_url`",
        ),
        (
            &[("token_url", URL), ("client_secret_env", "S")],
            "missing required config key `client_id`",
        ),
        (
            &[("token_url", URL), ("client_id", "a")],
            "no client credential",
        ),
        (
            &[
                ("token_url", URL),
                ("client_id", "a"),
                ("client_secret_env", "S"),
                ("client_assertion_file", "/f"),
            ],
            "not both",
        ),
        (
            &[
                ("token_url", URL),
                ("client_id", "a"),
                ("client_secret_env", "S"),
            ],
            "`S` (config key `client_secret_env`) is not set or not granted",
        ),
        (
            &[
                ("token_url", URL),
                ("client_id", "a"),
                ("client_secret", "lit"),
            ],
            "allow_secret_in_config",
        ),
        (
            &[
                ("token_url", URL),
                ("client_id", "a"),
                ("client_secret_env", "S"),
                ("auth_method", "tls"),
            ],
            "`auth_method` must be",
        ),
        (
            &[
                ("token_url", URL),
                ("client_id", "a"),
                ("client_assertion_file", "/nope"),
            ],
            "cannot read `/nope` (config key `client_assertion_file`)",
        ),
        (
            &[
                ("token_url", URL),
                ("client_id", "a"),
                ("client_assertion_file", "/f"),
                ("auth_method", "client_secret_basic"),
            ],
            "applies to client secrets",
        ),
        (
            &[
                ("token_url", "http://login.example.com/t"),
                ("client_id", "a"),
                ("client_secret_env", "S"),
            ],
            "must use https://",
        ),
        (
            &[
                ("token_url", URL),
                ("client_id", "a"),
                ("client_secret_env", "S"),
                ("http_timeout_ms", "0"),
            ],
            "http_timeout_ms",
        ),
    ];
    for (pairs, expected) in cases {
        let err = fetch(&fake, &Config::of(pairs), Trigger::Resolve).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{pairs:?}: {err:?}");
        assert!(err.message().contains(expected), "{pairs:?}: {err:?}");
    }
    assert!(fake.sent.borrow().is_empty());
    let err = fetch(
        &fake,
        &Config::of(&[
            ("token_url", URL),
            ("client_id", "a"),
            ("client_assertion_file", "/nope"),
        ]),
        Trigger::Resolve,
    )
    .unwrap_err();
    assert!(err.message().contains("allowed_paths"), "{err:?}");
}

#[test]
fn literal_secret_needs_the_opt_in() {
    let fake = Fake::default().respond(200, r#"{"access_token":"t"}"#);
    let cfg = Config::of(&[
        ("token_url", URL),
        ("client_id", "a"),
        ("client_secret", "lit"),
        ("allow_secret_in_config", "true"),
    ]);
    fetch(&fake, &cfg, Trigger::Resolve).unwrap();
    assert_eq!(
        fake.sent.borrow()[0].header("authorization"),
        Some(form::basic_auth("a", "lit").as_str())
    );
}

#[test]
fn idp_errors_never_show_the_secret() {
    let fake = Fake::default().env("APP_SECRET", "hunter2-secret").respond(
        401,
        r#"{"error":"invalid_client","error_description":"bad secret hunter2-secret"}"#,
    );
    let err = fetch(&fake, &basic_config(&[]), Trigger::Resolve).unwrap_err();
    assert_eq!(
        err,
        Error::Denied(format!(
            "token endpoint {URL} refused: invalid_client: bad secret [redacted] (HTTP 401)"
        ))
    );
    assert!(!fake.all_logs().contains("hunter2"));
}

/// Asserts neither `err` nor `fake`'s log shows any of `leaks`.
fn assert_nothing_leaks(err: &Error, fake: &Fake, leaks: &[&str]) {
    let logs = fake.all_logs();
    for leak in leaks {
        assert!(!err.message().contains(leak), "{leak:?} in {err:?}");
        assert!(!logs.contains(leak), "{leak:?} in {logs}");
    }
    assert!(err.message().contains("[redacted]"), "{err:?}");
}

#[test]
fn an_idp_echoing_the_credentials_never_shows_them() {
    const SECRET: &str = "hunter2-secret/+=";
    let basic = form::basic_auth("my-app", SECRET);
    let b64 = basic.strip_prefix("Basic ").unwrap();
    let encoded = form::encode_value(SECRET);
    let leaks = [SECRET, "hunter2", b64, b64.trim_end_matches('='), &encoded];
    // client_secret_basic: the IdP quotes the Authorization header, in several forms.
    for echoed in [
        format!("bad header Authorization: {basic}"),
        format!("bad credential {}", b64.trim_end_matches('=')),
        format!("Authorization=Basic%20{}", form::encode_value(b64)),
    ] {
        let body = serde_json::json!({"error": "invalid_client", "error_description": echoed});
        let fake = Fake::default()
            .env("APP_SECRET", SECRET)
            .respond(401, &body.to_string());
        let err = fetch(&fake, &basic_config(&[]), Trigger::Resolve).unwrap_err();
        assert!(matches!(err, Error::Denied(_)), "{err:?}");
        assert_nothing_leaks(&err, &fake, &leaks);
    }
    // client_secret_post: the IdP quotes the form body.
    let body = serde_json::json!({"error": "invalid_request", "error_description":
        format!("cannot parse grant_type=client_credentials&client_id=my-app&client_secret={encoded}")});
    let fake = Fake::default()
        .env("APP_SECRET", SECRET)
        .respond(400, &body.to_string());
    let cfg = basic_config(&[("auth_method", "client_secret_post")]);
    let err = fetch(&fake, &cfg, Trigger::Resolve).unwrap_err();
    assert_nothing_leaks(&err, &fake, &leaks);
    // A client assertion, and a token type that is really the issued refresh token.
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJteS1hcHAifQ.c2lnbmF0dXJl";
    let cfg = Config::of(&[
        ("token_url", URL),
        ("client_id", "my-app"),
        ("client_assertion_file", "/run/jwt"),
    ]);
    let body = serde_json::json!({"error": "invalid_client", "error_description": format!("expired assertion {jwt}")});
    let fake = Fake::default()
        .file("/run/jwt", jwt)
        .respond(401, &body.to_string())
        .respond(
            200,
            r#"{"access_token":"t","refresh_token":"rt-0123456789","token_type":"rt-0123456789"}"#,
        );
    let err = fetch(&fake, &cfg, Trigger::Resolve).unwrap_err();
    assert_nothing_leaks(&err, &fake, &[jwt, "c2lnbmF0dXJl"]);
    let err = fetch(&fake, &cfg, Trigger::Resolve).unwrap_err();
    assert!(err.message().contains("not Bearer"), "{err:?}");
    assert_nothing_leaks(&err, &fake, &["rt-0123"]);
}

#[test]
fn transport_and_token_type_errors() {
    let fake = Fake::default()
        .env("APP_SECRET", "pw")
        .fail(HttpError::Denied);
    let err = fetch(&fake, &basic_config(&[]), Trigger::Resolve).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidConfig(
            "request to https://login.example.com denied by the host's allowlist (add `login.example.com` to `allowed_hosts`)".into()
        )
    );
    let fake = Fake::default()
        .env("APP_SECRET", "pw")
        .fail(HttpError::Timeout("connect".into()));
    let err = fetch(&fake, &basic_config(&[]), Trigger::Resolve).unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("timed out (connect; http_timeout_ms = 4000)")),
        "{err:?}"
    );
    let fake = Fake::default()
        .env("APP_SECRET", "pw")
        .respond(200, r#"{"access_token":"t","token_type":"DPoP"}"#);
    let err = fetch(&fake, &basic_config(&[]), Trigger::Resolve).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig(m) if m.contains("type `DPoP`, not Bearer")),
        "{err:?}"
    );
    let fake = Fake::default().env("APP_SECRET", "pw").respond(503, "");
    let err = fetch(&fake, &basic_config(&[]), Trigger::Resolve).unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("HTTP 503")),
        "{err:?}"
    );
}

#[test]
fn warns_on_unknown_keys_and_repeated_tokens() {
    let fake = Fake::default()
        .env("APP_SECRET", "pw")
        .respond(200, r#"{"access_token":"same"}"#)
        .respond(200, r#"{"access_token":"same"}"#);
    let cfg = basic_config(&[("scopes", "x")]);
    fetch(&fake, &cfg, Trigger::Resolve).unwrap();
    fetch(&fake, &cfg, Trigger::Refresh(RefreshReason::Unauthorized)).unwrap();
    let logs = fake.all_logs();
    assert!(
        logs.contains("ignoring unknown config key `scopes`"),
        "{logs}"
    );
    assert!(logs.contains("same token as last time"), "{logs}");
}

#[test]
fn extra_params_go_into_the_form_after_the_flows_own() {
    let fake = Fake::default()
        .env("APP_SECRET", "pw")
        .respond(200, r#"{"access_token":"t"}"#);
    let cfg = basic_config(&[
        ("scope", "s"),
        (
            "extra_params",
            "{ tenant_hint = \"contoso-secret-hint\", claims = [\"a\", \"b\"], n = 5 }",
        ),
    ]);
    fetch(&fake, &cfg, Trigger::Resolve).unwrap();
    assert_eq!(
        fake.last_body(),
        "grant_type=client_credentials&scope=s&claims=a&claims=b&n=5&tenant_hint=contoso-secret-hint"
    );
    let logs = fake.all_logs();
    assert!(
        logs.contains(
            "(client credentials, client_secret_basic, extra params: claims, n, tenant_hint)"
        ),
        "{logs}"
    );
    assert!(!logs.contains("contoso"), "{logs}");
}

#[test]
fn extra_params_cannot_change_the_grant_or_the_credential() {
    let fake = Fake::default().env("APP_SECRET", "pw");
    for (table, expected) in [
        (
            "{ grant_type = \"password\" }",
            "`grant_type` is a parameter the plugin sets itself; it cannot be set here",
        ),
        (
            "{ client_assertion = \"x\" }",
            "`client_assertion` is a parameter the plugin sets itself",
        ),
        (
            "{ scope = \"x\" }",
            "`scope` is a parameter the plugin sets itself; use config key `scope`",
        ),
        ("\"tenant=x\"", "config key `extra_params` must be a table"),
        ("{ a = { b = 1 } }", "`a` must be a string, a number"),
    ] {
        let err = fetch(
            &fake,
            &basic_config(&[("extra_params", table)]),
            Trigger::Resolve,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{table}: {err:?}");
        assert!(err.message().contains(expected), "{table}: {err:?}");
    }
    assert!(fake.sent.borrow().is_empty());
}
