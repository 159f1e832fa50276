//! An instance metadata server: GCE (`Metadata-Flavor: Google`) or Azure IMDS
//! (`Metadata: true`). A GET with one identifying header; the answer is JSON with
//! `access_token` and `expires_in` or, with `format = "text"`, the token itself (e.g.
//! GCE's `.../identity?audience=...` ID token).

use super::{Outcome, Prepared, Trigger};
use tokenhost_plugin::config::Config;
use tokenhost_plugin::http::{Method, Request};
use tokenhost_plugin::oauth::{Endpoint, check_token_value, is_bearer};
use tokenhost_plugin::redact::Redactor;
use tokenhost_plugin::url::SchemePolicy;
use tokenhost_plugin::{Error, Platform, Token};

/// The name used in log lines.
pub const PLUGIN: &str = "metadata";

/// Every config key this flow reads.
pub const KEYS: &[&str] = &["url", "header", "format", "http_timeout_ms"];

/// The default `header`.
pub const DEFAULT_HEADER: &str = "Metadata-Flavor: Google";

/// Parses `header` ("Name: value"); `none` sends no extra header.
fn parse_header(raw: &str) -> Result<Option<(String, String)>, Error> {
    if raw.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let bad = || {
        Error::InvalidConfig(
            "config key `header` must look like `Name: value` (for example `Metadata-Flavor: Google` or `Metadata: true`), or be `none`".to_string(),
        )
    };
    let (name, value) = raw.split_once(':').ok_or_else(bad)?;
    let (name, value) = (name.trim(), value.trim());
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
    let value_ok = value
        .chars()
        .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic());
    if !name_ok || !value_ok {
        return Err(bad());
    }
    Ok(Some((name.to_ascii_lowercase(), value.to_string())))
}

/// Whether the answer is JSON (`format = "json"`, the default) or the token as text.
fn text_format(config: &Config) -> Result<bool, Error> {
    match config.get("format") {
        None | Some("json") => Ok(false),
        Some("text") => Ok(true),
        Some(_) => Err(Error::InvalidConfig(
            "config key `format` must be `json` (a JSON object with `access_token`) or `text` (the token itself)".to_string(),
        )),
    }
}

/// Builds the GET request from `config`.
pub fn prepare(config: &Config) -> Result<Prepared, Error> {
    let url = config.url("url", SchemePolicy::AnyHttp)?;
    let timeout_ms = config.http_timeout_ms()?;
    let text = text_format(config)?;
    let header = parse_header(config.get("header").unwrap_or(DEFAULT_HEADER))?;
    let mut headers = super::base_headers(false);
    if text {
        headers.retain(|(k, _)| k != "accept");
    }
    let summary = match &header {
        Some((name, _)) => format!("instance metadata, header `{name}`"),
        None => "instance metadata".to_string(),
    };
    headers.extend(header);
    Ok(Prepared {
        request: Request {
            method: Method::Get,
            url,
            headers,
            body: Vec::new(),
            timeout_ms,
        },
        secrets: Vec::new(),
        endpoint: Endpoint::Metadata,
        summary,
    })
}

flow_source!(Metadata, "instance metadata");

/// Fetches the token (for both `resolve` and `refresh`).
pub fn fetch(platform: &dyn Platform, config: &Config, trigger: Trigger) -> Result<Token, Error> {
    super::warn_unknown(platform, PLUGIN, config, KEYS);
    let result = prepare(config).and_then(|prepared| {
        let text = text_format(config)?;
        call(platform, &prepared, text)
    });
    super::finish(platform, PLUGIN, trigger, &Redactor::default(), result)
}

fn call(platform: &dyn Platform, prepared: &Prepared, text: bool) -> Result<Outcome, Error> {
    let response = super::send(platform, PLUGIN, prepared)?;
    let target = prepared.request.url.display();
    let source = format!("metadata server {target}");
    if text {
        let value = std::str::from_utf8(&response.body)
            .map(str::trim)
            .unwrap_or("");
        check_token_value(value).map_err(|why| {
            Error::Unavailable(format!(
                "metadata server {target} answered HTTP {} with a token that {why}",
                response.status
            ))
        })?;
        let issued = Token {
            value: value.to_string(),
            expires_at_ms: None,
        };
        return Ok(Outcome {
            issued,
            expires_in_s: None,
            source,
            status: response.status,
        });
    }
    let parsed = super::parse_json(platform, PLUGIN, prepared, &response)?;
    if let Some(token_type) = parsed.token_type.as_deref().filter(|t| !is_bearer(t)) {
        return Err(super::not_bearer(prepared, &parsed, token_type));
    }
    Ok(Outcome::from_json(parsed, source, response.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenhost_plugin::http::HttpError;
    use tokenhost_plugin::testing::FakePlatform as Fake;

    const GCE: &str = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";

    #[test]
    fn gce_request_and_response() {
        let fake = Fake::default().respond(
            200,
            r#"{"access_token":"ya29.m","expires_in":3599,"token_type":"Bearer"}"#,
        );
        let issued = fetch(&fake, &Config::of(&[("url", GCE)]), Trigger::Resolve).unwrap();
        assert_eq!(
            issued,
            Token {
                value: "ya29.m".into(),
                expires_at_ms: Some(1_000_000 + 3_599_000)
            }
        );
        let sent = fake.sent.borrow();
        assert_eq!(sent[0].method, Method::Get);
        assert_eq!(sent[0].url.authority, "metadata.google.internal");
        assert_eq!(sent[0].header("metadata-flavor"), Some("Google"));
        assert!(sent[0].body.is_empty());
    }

    #[test]
    fn azure_imds_string_expiry() {
        let url = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F";
        let fake = Fake::default().respond(
            200,
            r#"{"access_token":"eyJ0","expires_in":"86399","expires_on":"1700086399","token_type":"Bearer"}"#,
        );
        let issued = fetch(
            &fake,
            &Config::of(&[("url", url), ("header", "Metadata: true")]),
            Trigger::Resolve,
        )
        .unwrap();
        assert_eq!(issued.expires_at_ms, Some(1_000_000 + 86_399_000));
        let sent = fake.sent.borrow();
        assert_eq!(sent[0].header("metadata"), Some("true"));
        assert_eq!(sent[0].header("metadata-flavor"), None);
        assert!(
            sent[0]
                .url
                .path_and_query
                .contains("api-version=2018-02-01")
        );
    }

    #[test]
    fn text_format_returns_the_body() {
        let fake = Fake::default().respond(200, "eyJhbGciOiJSUzI1NiJ9.e30.sig\n");
        let cfg = Config::of(&[
            (
                "url",
                "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/identity?audience=x",
            ),
            ("format", "text"),
        ]);
        let issued = fetch(&fake, &cfg, Trigger::Resolve).unwrap();
        assert_eq!(
            issued,
            Token {
                value: "eyJhbGciOiJSUzI1NiJ9.e30.sig".into(),
                expires_at_ms: None
            }
        );
        assert_eq!(fake.sent.borrow()[0].header("accept"), None);
    }

    #[test]
    fn headers_and_config_errors() {
        assert_eq!(parse_header("none"), Ok(None));
        assert_eq!(
            parse_header(" X-A : b c "),
            Ok(Some(("x-a".into(), "b c".into())))
        );
        for bad in ["novalue", ": v", "a b: c", "x: \u{1}"] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
        let fake = Fake::default();
        for (pairs, expected) in [
            (vec![], "missing required config key `url`"),
            (
                vec![("url", GCE), ("header", "oops")],
                "`header` must look like",
            ),
            (vec![("url", GCE), ("format", "xml")], "`format` must be"),
            (vec![("url", "ftp://x/")], "config key `url`"),
        ] {
            let err = fetch(&fake, &Config::of(&pairs), Trigger::Resolve).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidConfig(m) if m.contains(expected)),
                "{pairs:?}: {err:?}"
            );
        }
        let none = prepare(&Config::of(&[("url", GCE), ("header", "none")])).unwrap();
        assert_eq!(none.request.header("metadata-flavor"), None);
    }

    #[test]
    fn error_mapping() {
        let fake = Fake::default().respond(404, "Not Found");
        let err = fetch(&fake, &Config::of(&[("url", GCE)]), Trigger::Resolve).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains("no such metadata path `/computeMetadata/v1/instance/service-accounts/default/token`")),
            "{err:?}"
        );
        let fake = Fake::default().respond(403, "");
        assert!(matches!(
            fetch(&fake, &Config::of(&[("url", GCE)]), Trigger::Resolve),
            Err(Error::Denied(_))
        ));
        let fake = Fake::default().respond(500, "");
        assert!(matches!(
            fetch(&fake, &Config::of(&[("url", GCE)]), Trigger::Resolve),
            Err(Error::Unavailable(_))
        ));
        let fake = Fake::default().fail(HttpError::Denied);
        let err = fetch(&fake, &Config::of(&[("url", GCE)]), Trigger::Resolve).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidConfig(
                "request to http://metadata.google.internal denied by the host's allowlist (add `metadata.google.internal` to `allowed_hosts`)".into()
            )
        );
    }
}
