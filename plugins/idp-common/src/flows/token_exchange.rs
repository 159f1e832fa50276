//! OAuth 2.0 token exchange (RFC 8693), in the shape of GCP's Security Token Service
//! for workload identity federation: a subject token read from a file (an OIDC JWT)
//! is exchanged for an access token.

use super::{Outcome, Prepared, Trigger};
use tokenhost_plugin::config::Config;
use tokenhost_plugin::log::Level;
use tokenhost_plugin::oauth::is_bearer;
use tokenhost_plugin::redact::Redactor;
use tokenhost_plugin::secret;
use tokenhost_plugin::url::SchemePolicy;
use tokenhost_plugin::{Error, Platform, Token, form};

/// The name used in log lines.
pub const PLUGIN: &str = "token-exchange";

/// Every config key this flow reads.
pub const KEYS: &[&str] = &[
    "token_url",
    "subject_token_file",
    "subject_token_type",
    "requested_token_type",
    "audience",
    "scope",
    "resource",
    "client_id",
    "client_secret_env",
    "client_secret",
    "allow_secret_in_config",
    "extra_params",
    "http_timeout_ms",
];

/// Token-request parameters this flow sets itself (or that RFC 8693 defines and that
/// would change what is exchanged), which `extra_params` cannot set.
const RESERVED: &[&str] = &[
    "grant_type",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
    "audience",
    "scope",
    "resource",
    "client_id",
    "client_secret",
];

/// The token-exchange grant type.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The default `subject_token_type`.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The default `requested_token_type`.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Builds the exchange request from `config` (reading the subject token and secret).
pub fn prepare(platform: &dyn Platform, config: &Config) -> Result<Prepared, Error> {
    let url = config.url("token_url", SchemePolicy::HttpsOrLoopback)?;
    let subject_path = config.required("subject_token_file")?;
    let timeout_ms = config.http_timeout_ms()?;
    let subject_type = config.get("subject_token_type").unwrap_or(JWT_TOKEN_TYPE);
    let requested_type = config
        .get("requested_token_type")
        .unwrap_or(ACCESS_TOKEN_TYPE);
    let client_id = config.get("client_id");
    if client_id.is_none() && secret::has_client_secret(config) {
        return Err(Error::InvalidConfig(
            "a client secret needs `client_id` too".to_string(),
        ));
    }
    let extra = super::extra_params(config, RESERVED)?;
    let client_secret = secret::client_secret(platform, config)?;
    let subject = secret::from_file(platform, "subject_token_file", subject_path)?;

    let mut headers = super::base_headers(true);
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", GRANT_TYPE.to_string()),
        ("subject_token", subject.expose().to_string()),
        ("subject_token_type", subject_type.to_string()),
        ("requested_token_type", requested_type.to_string()),
    ];
    for key in ["audience", "scope", "resource"] {
        if let Some(value) = config.get(key) {
            form.push((key, value.to_string()));
        }
    }
    let mut secrets = vec![subject];
    let auth = match (client_id, client_secret) {
        (Some(id), Some(client_secret)) => {
            headers.push((
                "authorization".to_string(),
                form::basic_auth(id, client_secret.expose()),
            ));
            secrets.push(client_secret);
            "client_secret_basic"
        }
        (Some(id), None) => {
            form.push(("client_id", id.to_string()));
            "public client"
        }
        (None, _) => "no client authentication",
    };
    let mut summary = format!("token exchange, subject token from `{subject_path}`, {auth}");
    super::add_extra_params(&extra, &mut form, &mut secrets, &mut summary);
    Ok(Prepared::token_form(
        url, headers, &form, timeout_ms, secrets, summary,
    ))
}

flow_source!(TokenExchange, "token exchange");

/// Performs the exchange (for both `resolve` and `refresh`).
pub fn fetch(platform: &dyn Platform, config: &Config, trigger: Trigger) -> Result<Token, Error> {
    super::warn_unknown(platform, PLUGIN, config, KEYS);
    let prepared = match prepare(platform, config) {
        Ok(p) => p,
        Err(e) => return super::finish(platform, PLUGIN, trigger, &Redactor::default(), Err(e)),
    };
    let requested = config
        .get("requested_token_type")
        .unwrap_or(ACCESS_TOKEN_TYPE);
    let result = call(platform, &prepared, requested);
    super::finish(platform, PLUGIN, trigger, &prepared.redactor(), result)
}

fn call(platform: &dyn Platform, prepared: &Prepared, requested: &str) -> Result<Outcome, Error> {
    let response = super::send(platform, PLUGIN, prepared)?;
    let parsed = super::parse_json(platform, PLUGIN, prepared, &response)?;
    if let Some(token_type) = parsed.token_type.as_deref() {
        // RFC 8693 §2.2.1: "N_A" when the issued token is not an access token.
        let not_applicable =
            token_type.eq_ignore_ascii_case("n_a") && requested != ACCESS_TOKEN_TYPE;
        if !is_bearer(token_type) && !not_applicable {
            return Err(super::not_bearer(prepared, &parsed, token_type));
        }
    }
    match parsed.issued_token_type.as_deref() {
        Some(issued) if issued != requested => platform.log(
            Level::Warn,
            &format!(
                "{PLUGIN}: asked for `{requested}` but the token endpoint issued `{}`",
                super::shown_type(issued, &super::response_redactor(prepared, &parsed))
            ),
        ),
        _ => {}
    }
    let source = format!("token endpoint {}", prepared.request.url.display());
    Ok(Outcome::from_json(parsed, source, response.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenhost_plugin::testing::FakePlatform as Fake;

    const STS: &str = "https://sts.googleapis.com/v1/token";
    const AUD: &str =
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/gh";

    fn gcp() -> Config {
        Config::of(&[
            ("token_url", STS),
            ("subject_token_file", "/run/oidc.jwt"),
            ("audience", AUD),
            ("scope", "https://www.googleapis.com/auth/cloud-platform"),
        ])
    }

    #[test]
    fn gcp_sts_request_and_response() {
        let fake = Fake::default().file("/run/oidc.jwt", "eyJ.subject.sig\n").respond(
            200,
            r#"{"access_token":"ya29.x","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3599}"#,
        );
        let issued = fetch(&fake, &gcp(), Trigger::Resolve).unwrap();
        assert_eq!(
            issued,
            Token {
                value: "ya29.x".into(),
                expires_at_ms: Some(1_000_000 + 3_599_000)
            }
        );
        let body = fake.last_body();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("grant_type"), Some(GRANT_TYPE));
        assert_eq!(get("subject_token"), Some("eyJ.subject.sig"));
        assert_eq!(get("subject_token_type"), Some(JWT_TOKEN_TYPE));
        assert_eq!(get("requested_token_type"), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(get("audience"), Some(AUD));
        assert_eq!(
            get("scope"),
            Some("https://www.googleapis.com/auth/cloud-platform")
        );
        assert_eq!(get("client_id"), None);
        assert_eq!(fake.sent.borrow()[0].header("authorization"), None);
        assert!(!fake.all_logs().contains("eyJ.subject"));
    }

    #[test]
    fn client_authentication() {
        let mut pairs = vec![
            ("token_url", STS),
            ("subject_token_file", "/t"),
            ("client_id", "cid"),
            ("client_secret_env", "CS"),
        ];
        let fake = Fake::default()
            .file("/t", "sub")
            .env("CS", "pw")
            .respond(200, r#"{"access_token":"a"}"#);
        fetch(&fake, &Config::of(&pairs), Trigger::Resolve).unwrap();
        assert_eq!(
            fake.sent.borrow()[0].header("authorization"),
            Some(form::basic_auth("cid", "pw").as_str())
        );
        pairs.pop();
        let fake = Fake::default()
            .file("/t", "sub")
            .respond(200, r#"{"access_token":"a"}"#);
        fetch(&fake, &Config::of(&pairs), Trigger::Resolve).unwrap();
        assert!(fake.last_body().ends_with("&client_id=cid"));
        let err = fetch(
            &fake,
            &Config::of(&[
                ("token_url", STS),
                ("subject_token_file", "/t"),
                ("client_secret_env", "CS"),
            ]),
            Trigger::Resolve,
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("needs `client_id`")),
            "{err:?}"
        );
    }

    #[test]
    fn errors() {
        let fake = Fake::default();
        let err = fetch(&fake, &Config::of(&[("token_url", STS)]), Trigger::Resolve).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidConfig("missing required config key `subject_token_file`".into())
        );
        let err = fetch(&fake, &gcp(), Trigger::Resolve).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("`/run/oidc.jwt`") && m.contains("allowed_paths")),
            "{err:?}"
        );

        let fake = Fake::default()
            .file("/run/oidc.jwt", "eyJ.subject.sig")
            .respond(400, r#"{"error":"invalid_grant","error_description":"The audience in ID Token [x] does not match; token eyJ.subject.sig"}"#);
        let err = fetch(&fake, &gcp(), Trigger::Resolve).unwrap_err();
        assert!(
            matches!(&err, Error::Denied(m) if m.starts_with(&format!("token endpoint {STS} refused: invalid_grant: The audience")) && m.contains("[redacted]") && !m.contains("eyJ.subject")),
            "{err:?}"
        );

        let fake = Fake::default().file("/run/oidc.jwt", "s").respond(
            400,
            r#"{"error":"invalid_target","error_description":"bad audience"}"#,
        );
        let err = fetch(&fake, &gcp(), Trigger::Resolve).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{err:?}");
    }

    #[test]
    fn extra_params_are_sent_and_never_logged() {
        let mut pairs = vec![("token_url", STS), ("subject_token_file", "/t")];
        pairs.push((
            "extra_params",
            "{ options = \"{\\\"userProject\\\":\\\"p-123\\\"}\", hint = \"hunter2-hint\" }",
        ));
        let fake = Fake::default().file("/t", "sub").respond(
            400,
            r#"{"error":"invalid_request","error_description":"unknown hint hunter2-hint"}"#,
        );
        let err = fetch(&fake, &Config::of(&pairs), Trigger::Resolve).unwrap_err();
        let body = fake.last_body();
        assert!(
            body.ends_with("&hint=hunter2-hint&options=%7B%22userProject%22%3A%22p-123%22%7D"),
            "{body}"
        );
        assert!(err.message().contains("unknown hint [redacted]"), "{err:?}");
        let logs = fake.all_logs();
        assert!(logs.contains(", extra params: hint, options)"), "{logs}");
        assert!(
            !logs.contains("hunter2") && !logs.contains("p-123"),
            "{logs}"
        );
        for name in ["subject_token", "actor_token", "audience"] {
            let cfg = Config::of(&[
                ("token_url", STS),
                ("subject_token_file", "/t"),
                ("extra_params", &format!("{{ {name} = \"x\" }}")),
            ]);
            let err = fetch(&fake, &cfg, Trigger::Resolve).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig(m) if m.contains(&format!("`{name}` is a parameter the plugin sets itself"))),
                "{err:?}"
            );
        }
    }

    #[test]
    fn token_types() {
        let fake = Fake::default()
            .file("/run/oidc.jwt", "s")
            .respond(200, r#"{"access_token":"a","token_type":"N_A"}"#);
        let err = fetch(&fake, &gcp(), Trigger::Resolve).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("`N_A`")),
            "{err:?}"
        );

        let mut cfg = vec![("token_url", STS), ("subject_token_file", "/run/oidc.jwt")];
        cfg.push((
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ));
        let fake = Fake::default().file("/run/oidc.jwt", "s").respond(
            200,
            r#"{"access_token":"a","token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:jwt"}"#,
        );
        fetch(&fake, &Config::of(&cfg), Trigger::Resolve).unwrap();
        assert!(
            fake.all_logs()
                .contains("asked for `urn:ietf:params:oauth:token-type:id_token`")
        );
    }
}
