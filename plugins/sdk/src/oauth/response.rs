//! A successful token response (RFC 6749 §5.1): the token, its expiry and type.

use serde_json::{Map, Value};

use super::{Endpoint, MAX_TOKEN_BYTES, error_body};
use crate::Error;
use crate::redact::Redactor;
use crate::secret::Secret;

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: Secret,
    /// A `refresh_token` sent along, if any: never used, but a secret to keep out of
    /// messages about this response.
    pub refresh_token: Option<Secret>,
    /// `expires_in`, in seconds, if given and valid.
    pub expires_in_s: Option<u64>,
    /// When the token expires, from `expires_in` (or Azure's `expires_on`).
    pub expires_at_ms: Option<u64>,
    pub token_type: Option<String>,
    /// RFC 8693's `issued_token_type`.
    pub issued_token_type: Option<String>,
    /// Things worth a log line (never secrets).
    pub warnings: Vec<String>,
}

/// Whether `token_type` says Bearer (case-insensitive, RFC 6750 §4).
pub fn is_bearer(token_type: &str) -> bool {
    token_type.eq_ignore_ascii_case("bearer")
}

/// Checks a token can go into an HTTP header: non-empty, at most 16 KiB, visible ASCII
/// and spaces only. The message never includes the token.
pub fn check_token_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".to_string());
    }
    if value.len() > MAX_TOKEN_BYTES {
        return Err(format!("is longer than {} KiB", MAX_TOKEN_BYTES / 1024));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("contains control or non-ASCII characters".to_string());
    }
    Ok(())
}

/// A number of seconds from JSON: a non-negative number or a numeric string.
pub fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
        }
        _ => None,
    }
}

fn string_field(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Parses a 2xx token response body from `endpoint` at `target` (a URL for messages),
/// with `now_ms` the current time. A body with no `access_token` but an `error` (some
/// IdPs answer 200 with an RFC 6749 error) is that error, its text cleaned with
/// `redactor` (see [`error_body::error_in_success`]).
pub fn parse_success(
    endpoint: Endpoint,
    target: &str,
    status: u16,
    body: &[u8],
    now_ms: u64,
    redactor: &Redactor,
) -> Result<TokenResponse, Error> {
    let noun = endpoint.noun();
    let malformed = |why: String| {
        Error::Unavailable(format!("{noun} {target} answered HTTP {status} with {why}"))
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        // serde_json's syntax errors carry a position, never the input.
        malformed(format!("a body that is not valid JSON ({e})"))
    })?;
    let Value::Object(object) = value else {
        return Err(malformed("JSON that is not an object".to_string()));
    };
    let access_token = match object.get("access_token") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(malformed(
                "an `access_token` that is not a string".to_string(),
            ));
        }
        None => {
            let text = error_body::object_text(&object, status, redactor);
            return Err(error_body::error_in_success(
                endpoint, target, status, &text,
            ));
        }
    };
    check_token_value(&access_token)
        .map_err(|why| malformed(format!("an `access_token` that {why}")))?;

    let mut warnings = Vec::new();
    let expires_in_s = match object.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = seconds(v);
            if s.is_none() {
                warnings.push(format!(
                    "{noun} {target} sent an `expires_in` that is not a number of seconds; ignoring it"
                ));
            }
            s
        }
    };
    let expires_at_ms = match expires_in_s {
        Some(s) => Some(now_ms.saturating_add(s.saturating_mul(1000))),
        // Azure (IMDS, AAD v1) also sends `expires_on` in seconds since the epoch.
        None => object
            .get("expires_on")
            .and_then(seconds)
            .filter(|s| *s > 1_000_000_000)
            .map(|s| s.saturating_mul(1000)),
    };
    Ok(TokenResponse {
        access_token: Secret::new(access_token),
        refresh_token: string_field(&object, "refresh_token").map(Secret::new),
        expires_in_s,
        expires_at_ms,
        token_type: string_field(&object, "token_type"),
        issued_token_type: string_field(&object, "issued_token_type"),
        warnings,
    })
}

impl TokenResponse {
    /// The secrets of this response (the access and refresh tokens), to redact from any
    /// message built from its other fields.
    pub fn secrets(&self) -> Vec<Secret> {
        std::iter::once(self.access_token.clone())
            .chain(self.refresh_token.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "https://login.example.com/oauth2/token";

    #[test]
    fn parses_success_with_numeric_and_string_expiry() {
        let r = parse_success(
            Endpoint::Token,
            T,
            200,
            br#"{"access_token":"abc.def","expires_in":3600,"token_type":"Bearer"}"#,
            1_000,
            &Redactor::default(),
        )
        .unwrap();
        assert_eq!(r.access_token.expose(), "abc.def");
        assert_eq!(r.expires_in_s, Some(3600));
        assert_eq!(r.expires_at_ms, Some(1_000 + 3_600_000));
        assert_eq!(r.token_type.as_deref(), Some("Bearer"));
        assert!(r.warnings.is_empty());

        let r = parse_success(
            Endpoint::Metadata,
            T,
            200,
            br#"{"access_token":"t","expires_in":"86399"}"#,
            0,
            &Redactor::default(),
        )
        .unwrap();
        assert_eq!(r.expires_at_ms, Some(86_399_000));
        let r = parse_success(
            Endpoint::Token,
            T,
            200,
            br#"{"access_token":"t","expires_in":59.9}"#,
            0,
            &Redactor::default(),
        )
        .unwrap();
        assert_eq!(r.expires_in_s, Some(59));
        let r = parse_success(
            Endpoint::Token,
            T,
            200,
            br#"{"access_token":"t"}"#,
            0,
            &Redactor::default(),
        )
        .unwrap();
        assert_eq!(r.expires_at_ms, None);
    }

    #[test]
    fn odd_expiry_is_ignored_with_a_warning_and_expires_on_is_a_fallback() {
        let r = parse_success(
            Endpoint::Token,
            T,
            200,
            br#"{"access_token":"t","expires_in":"soon"}"#,
            5,
            &Redactor::default(),
        )
        .unwrap();
        assert_eq!(r.expires_at_ms, None);
        assert_eq!(r.warnings.len(), 1);
        let r = parse_success(
            Endpoint::Token,
            T,
            200,
            br#"{"access_token":"t","expires_in":-5}"#,
            5,
            &Redactor::default(),
        )
        .unwrap();
        assert_eq!(r.expires_at_ms, None);
        let r = parse_success(
            Endpoint::Metadata,
            T,
            200,
            br#"{"access_token":"t","expires_on":"1700000000"}"#,
            5,
            &Redactor::default(),
        )
        .unwrap();
        assert_eq!(r.expires_at_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn malformed_success_is_unavailable_without_the_token() {
        for body in [
            "not json",
            "[]",
            r#"{"token":"x"}"#,
            r#"{"access_token":42}"#,
            r#"{"access_token":""}"#,
            "{\"access_token\":\"sec\\nret\"}",
        ] {
            let e = parse_success(
                Endpoint::Token,
                T,
                200,
                body.as_bytes(),
                0,
                &Redactor::default(),
            )
            .unwrap_err();
            assert!(matches!(e, Error::Unavailable(_)), "{body}: {e:?}");
            assert!(e.message().contains("HTTP 200"), "{e:?}");
            assert!(!e.message().contains("sec"), "{e:?}");
        }
        let long = format!(
            r#"{{"access_token":"{}"}}"#,
            "a".repeat(MAX_TOKEN_BYTES + 1)
        );
        assert!(
            parse_success(
                Endpoint::Token,
                T,
                200,
                long.as_bytes(),
                0,
                &Redactor::default()
            )
            .is_err()
        );
    }

    #[test]
    fn refresh_tokens_are_kept_as_secrets() {
        let body = br#"{"access_token":"at-1","refresh_token":"rt-0123456789"}"#;
        let r = parse_success(Endpoint::Token, T, 200, body, 0, &Redactor::default()).unwrap();
        assert_eq!(
            r.refresh_token.as_ref().map(Secret::expose),
            Some("rt-0123456789")
        );
        assert!(!format!("{r:?}").contains("rt-0123"), "{r:?}");
        assert_eq!(r.secrets().len(), 2);
    }

    #[test]
    fn an_error_in_a_200_is_reported_with_its_text() {
        const SECRET: &str = "hunter2-secret-value";
        let redactor = Redactor::new(&[Secret::new(SECRET)]);
        let parse = |body: &str| {
            parse_success(Endpoint::Token, T, 200, body.as_bytes(), 0, &redactor).unwrap_err()
        };
        let e = parse(
            r#"{"error":"invalid_scope","error_description":"scope api://x is not granted to hunter2-secret-value"}"#,
        );
        assert_eq!(
            e,
            Error::Denied(format!(
                "token endpoint {T} refused: invalid_scope: scope api://x is not granted to [redacted] (HTTP 200)"
            ))
        );
        let e = parse(r#"{"error":"invalid_target"}"#);
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains("invalid_target (HTTP 200)")),
            "{e:?}"
        );
        let e = parse(r#"{"error":"server_error","error_description":"try later"}"#);
        assert!(
            matches!(&e, Error::Unavailable(m) if m.ends_with("with an error instead of a token: server_error: try later")),
            "{e:?}"
        );
        let e = parse(r#"{"title":"Conflict","detail":"tenant is being moved"}"#);
        assert!(
            matches!(&e, Error::Unavailable(m) if m.ends_with("with no `access_token`: Conflict: tenant is being moved")),
            "{e:?}"
        );
    }
}
