//! Token responses: the JSON of a successful answer and the mapping of error answers
//! (RFC 6749 §5.1 and §5.2) to [`Error`].

use serde_json::{Map, Value};

use crate::Error;
use crate::http::{Response, status_text};
use crate::redact::Redactor;
use crate::secret::Secret;

/// The longest token accepted, in bytes (the WIT contract's limit).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// `error` codes meaning the IdP refused the credentials or the grant: a person must
/// act (RFC 6749 §5.2).
pub const DENIED_CODES: &[&str] = &[
    "invalid_client",
    "unauthorized_client",
    "invalid_grant",
    "invalid_scope",
    "access_denied",
];

/// `error` codes meaning the request itself is wrong: the configuration must change.
/// `invalid_target` is RFC 8693's (and RFC 8707's) "audience/resource not acceptable".
pub const CONFIG_CODES: &[&str] = &[
    "invalid_request",
    "unsupported_grant_type",
    "invalid_target",
];

/// Who answered: the error mapping differs a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// An OAuth 2.0 token endpoint (`token_url`).
    Token,
    /// An instance metadata server (`url`).
    Metadata,
}

impl Endpoint {
    fn noun(self) -> &'static str {
        match self {
            Endpoint::Token => "token endpoint",
            Endpoint::Metadata => "metadata server",
        }
    }

    fn url_key(self) -> &'static str {
        match self {
            Endpoint::Token => "token_url",
            Endpoint::Metadata => "url",
        }
    }
}

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
/// with `now_ms` the current time.
pub fn parse_success(
    endpoint: Endpoint,
    target: &str,
    status: u16,
    body: &[u8],
    now_ms: u64,
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
        None => return Err(malformed("no `access_token`".to_string())),
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

/// IdP-supplied text on one line, its secrets redacted and then cut to `max` chars
/// (in that order: a secret cut in two would no longer be recognised).
pub fn clean(text: &str, max: usize, redactor: &Redactor) -> String {
    let one_line: String = redactor
        .redact(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &one_line[..cut]),
        None => one_line.to_string(),
    }
}

/// `error` and `error_description` from an error body, if it is JSON, cleaned with
/// `redactor` (see [`clean`]).
pub fn error_fields(body: &[u8], redactor: &Redactor) -> (Option<String>, Option<String>) {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let error = string_field(&object, "error")
        .map(|e| clean(&e, 100, redactor))
        .filter(|e| !e.is_empty());
    let description = string_field(&object, "error_description")
        .map(|d| clean(&d, 400, redactor))
        .filter(|d| !d.is_empty());
    (error, description)
}

/// Maps a non-2xx `response` from `endpoint` at `target` (a URL without query, whose
/// path is `path`) to the error to report. Every piece of the response quoted in the
/// message (`error`, `error_description`, `Location`, `Retry-After`) passes through
/// `redactor`, holding the request's secrets, before it is cut to length.
///
/// Token endpoints (RFC 6749 §5.2):
/// - a DENIED code (`invalid_client`, ...) with 400/401/403, or a bare 401/403: Denied;
/// - `invalid_request`, `unsupported_grant_type`, `invalid_target` (4xx): InvalidConfig;
/// - 404/405 (wrong URL) and 3xx (redirects are not followed): InvalidConfig;
/// - 429, 5xx and anything else: Unavailable.
///
/// Metadata servers: 401/403 Denied; 400, 404 ("no such metadata path") and 3xx
/// InvalidConfig; anything else Unavailable.
pub fn map_error_status(
    endpoint: Endpoint,
    target: &str,
    path: &str,
    response: &Response,
    redactor: &Redactor,
) -> Error {
    let status = response.status;
    let noun = endpoint.noun();
    let key = endpoint.url_key();
    let (error, description) = error_fields(&response.body, redactor);
    let detail = match (&error, &description) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => String::new(),
    };
    let with_detail = |base: String| {
        if detail.is_empty() {
            base
        } else {
            format!("{base}: {detail}")
        }
    };
    let code = error.as_deref().unwrap_or("");
    let is_4xx = (400..500).contains(&status);

    if (300..400).contains(&status) {
        let location = response
            .header("location")
            .map(|l| {
                let without_query = l.split('?').next().unwrap_or("");
                format!(" to `{}`", clean(without_query, 200, redactor))
            })
            .unwrap_or_default();
        return Error::InvalidConfig(format!(
            "{noun} {target} answered {} (redirect{location}); redirects are not followed: set `{key}` to the final URL",
            status_text(status)
        ));
    }

    match endpoint {
        Endpoint::Token => {
            if DENIED_CODES.contains(&code) && matches!(status, 400 | 401 | 403) {
                return Error::Denied(format!("{noun} {target} refused: {detail} (HTTP {status})"));
            }
            if CONFIG_CODES.contains(&code) && is_4xx {
                return Error::InvalidConfig(format!(
                    "{noun} {target} rejected the request: {detail} (HTTP {status}); check the plugin's configuration"
                ));
            }
            if matches!(status, 401 | 403) {
                return Error::Denied(with_detail(format!(
                    "{noun} {target} refused: {}",
                    status_text(status)
                )));
            }
            if matches!(status, 404 | 405) {
                return Error::InvalidConfig(with_detail(format!(
                    "{noun} {target} answered {}; check `{key}`",
                    status_text(status)
                )));
            }
        }
        Endpoint::Metadata => match status {
            401 | 403 => {
                return Error::Denied(with_detail(format!(
                    "{noun} {target} refused: {}",
                    status_text(status)
                )));
            }
            404 => {
                return Error::InvalidConfig(with_detail(format!(
                    "{noun} {target}: no such metadata path `{path}` ({}); check `{key}`",
                    status_text(status)
                )));
            }
            400 => {
                return Error::InvalidConfig(with_detail(format!(
                    "{noun} {target} rejected the request ({}); check `url` and `header`",
                    status_text(status)
                )));
            }
            _ => {}
        },
    }

    let retry = response
        .header("retry-after")
        .filter(|v| v.len() <= 40)
        .map(|v| format!("; Retry-After: {}", clean(v, 40, redactor)))
        .unwrap_or_default();
    Error::Unavailable(format!(
        "{}{retry}",
        with_detail(format!("{noun} {target} answered {}", status_text(status)))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "https://login.example.com/oauth2/token";

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    fn token(status: u16, body: &str) -> Error {
        map_error_status(
            Endpoint::Token,
            T,
            "/oauth2/token",
            &response(status, body),
            &Redactor::default(),
        )
    }

    fn metadata(status: u16, body: &str) -> Error {
        map_error_status(
            Endpoint::Metadata,
            "http://169.254.169.254/x",
            "/x",
            &response(status, body),
            &Redactor::default(),
        )
    }

    #[test]
    fn parses_success_with_numeric_and_string_expiry() {
        let r = parse_success(
            Endpoint::Token,
            T,
            200,
            br#"{"access_token":"abc.def","expires_in":3600,"token_type":"Bearer"}"#,
            1_000,
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
        )
        .unwrap();
        assert_eq!(r.expires_at_ms, Some(86_399_000));
        let r = parse_success(
            Endpoint::Token,
            T,
            200,
            br#"{"access_token":"t","expires_in":59.9}"#,
            0,
        )
        .unwrap();
        assert_eq!(r.expires_in_s, Some(59));
        let r = parse_success(Endpoint::Token, T, 200, br#"{"access_token":"t"}"#, 0).unwrap();
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
        )
        .unwrap();
        assert_eq!(r.expires_at_ms, None);
        let r = parse_success(
            Endpoint::Metadata,
            T,
            200,
            br#"{"access_token":"t","expires_on":"1700000000"}"#,
            5,
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
            let e = parse_success(Endpoint::Token, T, 200, body.as_bytes(), 0).unwrap_err();
            assert!(matches!(e, Error::Unavailable(_)), "{body}: {e:?}");
            assert!(e.message().contains("HTTP 200"), "{e:?}");
            assert!(!e.message().contains("sec"), "{e:?}");
        }
        let long = format!(
            r#"{{"access_token":"{}"}}"#,
            "a".repeat(MAX_TOKEN_BYTES + 1)
        );
        assert!(parse_success(Endpoint::Token, T, 200, long.as_bytes(), 0).is_err());
    }

    #[test]
    fn token_endpoint_error_table() {
        let e = token(
            401,
            r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
        );
        assert_eq!(
            e,
            Error::Denied(format!(
                "token endpoint {T} refused: invalid_client: Client authentication failed (HTTP 401)"
            ))
        );
        for code in DENIED_CODES {
            let e = token(400, &format!(r#"{{"error":"{code}"}}"#));
            assert!(matches!(e, Error::Denied(_)), "{code}: {e:?}");
            assert!(e.message().contains(code), "{e:?}");
        }
        for code in [
            "invalid_request",
            "unsupported_grant_type",
            "invalid_target",
        ] {
            let e = token(
                400,
                &format!(r#"{{"error":"{code}","error_description":"d"}}"#),
            );
            assert!(matches!(e, Error::InvalidConfig(_)), "{code}: {e:?}");
            assert!(e.message().contains(&format!("{code}: d")), "{e:?}");
            assert!(e.message().contains("HTTP 400"), "{e:?}");
        }
        assert!(matches!(token(401, ""), Error::Denied(m) if m.contains("HTTP 401 Unauthorized")));
        assert!(matches!(token(403, "<html>"), Error::Denied(_)));
        assert!(
            matches!(token(404, "nope"), Error::InvalidConfig(m) if m.contains("check `token_url`"))
        );
        // A DENIED code with a 5xx is still transient.
        assert!(matches!(
            token(503, r#"{"error":"invalid_client"}"#),
            Error::Unavailable(_)
        ));
        for status in [400, 409, 429, 500, 502, 503, 504] {
            let e = token(status, r#"{"error":"temporarily_unavailable"}"#);
            assert!(matches!(e, Error::Unavailable(_)), "{status}: {e:?}");
            assert!(e.message().contains(&format!("HTTP {status}")), "{e:?}");
        }
    }

    #[test]
    fn retry_after_and_redirects() {
        let mut r = response(429, "");
        r.headers.push(("retry-after".into(), b"30".to_vec()));
        let e = map_error_status(Endpoint::Token, T, "/", &r, &Redactor::default());
        assert_eq!(
            e,
            Error::Unavailable(format!(
                "token endpoint {T} answered HTTP 429 Too Many Requests; Retry-After: 30"
            ))
        );
        let mut r = response(302, "");
        r.headers.push((
            "location".into(),
            b"https://other.example/token?secret=1".to_vec(),
        ));
        let e = map_error_status(Endpoint::Token, T, "/", &r, &Redactor::default());
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains("`https://other.example/token`") && !m.contains("secret")),
            "{e:?}"
        );
    }

    #[test]
    fn metadata_error_table() {
        assert!(matches!(metadata(401, ""), Error::Denied(_)));
        assert!(matches!(metadata(403, ""), Error::Denied(_)));
        let e = metadata(404, "Not Found");
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains("no such metadata path `/x`")),
            "{e:?}"
        );
        let e = metadata(
            400,
            r#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#,
        );
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains("Required metadata header")),
            "{e:?}"
        );
        for status in [429, 500, 503] {
            assert!(
                matches!(metadata(status, ""), Error::Unavailable(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn idp_text_is_redacted_before_it_is_cut() {
        const SECRET: &str = "hunter2-secret-value";
        let redactor = Redactor::new(&[Secret::new(SECRET)]);
        let basic = crate::form::basic_auth("app", SECRET);
        // Cut at 400 chars, the secret would straddle the cut and its head survive.
        let straddling = format!("{} {SECRET}", "x".repeat(385));
        let echoed = format!("bad header Authorization: {basic}");
        for description in [straddling, echoed] {
            let body =
                serde_json::json!({"error": "invalid_client", "error_description": description});
            let r = response(401, &body.to_string());
            let e = map_error_status(Endpoint::Token, T, "/", &r, &redactor);
            assert!(matches!(e, Error::Denied(_)), "{e:?}");
            let b64 = basic.strip_prefix("Basic ").unwrap();
            assert!(!e.message().contains("hunter2"), "{e:?}");
            assert!(!e.message().contains(b64), "{e:?}");
            assert!(e.message().contains("[redacted]"), "{e:?}");
        }
        let mut r = response(429, "");
        r.headers
            .push(("retry-after".into(), basic.clone().into_bytes()));
        let e = map_error_status(Endpoint::Token, T, "/", &r, &redactor);
        assert!(
            !e.message().contains("hunter2") && !e.message().contains(&basic[6..]),
            "{e:?}"
        );
        let mut r = response(302, "");
        r.headers.push((
            "location".into(),
            format!("https://x/{SECRET}").into_bytes(),
        ));
        let e = map_error_status(Endpoint::Token, T, "/", &r, &redactor);
        assert!(!e.message().contains("hunter2"), "{e:?}");
    }

    #[test]
    fn refresh_tokens_are_kept_as_secrets() {
        let body = br#"{"access_token":"at-1","refresh_token":"rt-0123456789"}"#;
        let r = parse_success(Endpoint::Token, T, 200, body, 0).unwrap();
        assert_eq!(
            r.refresh_token.as_ref().map(Secret::expose),
            Some("rt-0123456789")
        );
        assert!(!format!("{r:?}").contains("rt-0123"), "{r:?}");
        assert_eq!(r.secrets().len(), 2);
    }

    #[test]
    fn idp_text_is_cut_and_kept_on_one_line() {
        let body = format!(
            r#"{{"error":"invalid_grant","error_description":"line1\nline2 {}"}}"#,
            "x".repeat(1000)
        );
        let e = token(400, &body);
        assert!(!e.message().contains('\n'));
        assert!(e.message().len() < 700, "{}", e.message().len());
        assert!(e.message().contains("line1 line2"));
    }
}
