//! The error table, and what of an IdP's text reaches a message.

use super::*;
use crate::secret::Secret;

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
        Error::retry_later(
            format!("token endpoint {T} answered HTTP 429 Too Many Requests; Retry-After: 30"),
            std::time::Duration::from_secs(30)
        )
    );
    assert_eq!(e.to_string(), format!("unavailable: {}", e.message()));
    // The date form, or anything else, is quoted but gives no hint.
    for value in ["Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1.5", ""] {
        let mut r = response(503, "");
        r.headers
            .push(("retry-after".into(), value.as_bytes().to_vec()));
        let e = map_error_status(Endpoint::Token, T, "/", &r, &Redactor::default());
        assert!(matches!(e, Error::Unavailable(_)), "{value}: {e:?}");
    }
    let mut r = response(429, "");
    r.headers
        .push(("retry-after".into(), b"99999999999999999999999".to_vec()));
    let e = map_error_status(Endpoint::Token, T, "/", &r, &Redactor::default());
    assert_eq!(
        e.retry_after(),
        Some(std::time::Duration::from_secs(u64::MAX))
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
        let body = serde_json::json!({"error": "invalid_client", "error_description": description});
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

fn with_type(status: u16, content_type: &str, body: &str) -> Error {
    let mut r = response(status, body);
    r.headers
        .push(("content-type".into(), content_type.as_bytes().to_vec()));
    map_error_status(Endpoint::Token, T, "/", &r, &Redactor::default())
}

#[test]
fn problem_details_keep_their_text_and_4xx_is_not_retried() {
    let e = token(
        400,
        r#"{"title":"Bad Request","detail":"Invalid grant type","status":400}"#,
    );
    assert_eq!(
        e,
        Error::InvalidConfig(format!(
            "token endpoint {T} rejected the request (HTTP 400 Bad Request): Invalid grant type; check the plugin's configuration"
        ))
    );
    let e = token(
        422,
        r#"{"title":"Tenant disabled","detail":"ask your admin"}"#,
    );
    assert!(
        matches!(&e, Error::InvalidConfig(m) if m.contains("(HTTP 422): Tenant disabled: ask your admin;")),
        "{e:?}"
    );
    for (body, shown) in [
        (
            r#"{"message":"Missing header X-Tenant"}"#,
            "Missing header X-Tenant",
        ),
        (
            r#"{"error":{"code":400,"message":"Invalid JWT","status":"INVALID_ARGUMENT"}}"#,
            "Invalid JWT",
        ),
        (r#"{"error":"invalid_dpop_proof"}"#, "invalid_dpop_proof"),
    ] {
        let e = token(400, body);
        assert!(
            matches!(&e, Error::InvalidConfig(m) if m.contains(&format!("(HTTP 400 Bad Request): {shown};"))),
            "{body}: {e:?}"
        );
    }
    let e = with_type(400, "text/plain; charset=utf-8", "\nunknown tenant\nmore\n");
    assert!(
        matches!(&e, Error::InvalidConfig(m) if m.contains("Bad Request): unknown tenant;")),
        "{e:?}"
    );
    let e = with_type(400, "text/html", "<html><body>Bad</body></html>");
    assert!(
        matches!(&e, Error::InvalidConfig(m) if m.contains("(HTTP 400 Bad Request); check")),
        "{e:?}"
    );
    // Still transient: rate limits, timeouts, a transient code, 5xx (with their text).
    for status in [408, 429] {
        assert!(
            matches!(token(status, ""), Error::Unavailable(_)),
            "{status}"
        );
    }
    let e = token(
        503,
        r#"{"title":"Service Unavailable","detail":"maintenance"}"#,
    );
    assert_eq!(
        e,
        Error::Unavailable(format!(
            "token endpoint {T} answered HTTP 503 Service Unavailable: maintenance"
        ))
    );
    assert!(matches!(
        token(400, r#"{"error":"slow_down"}"#),
        Error::Unavailable(_)
    ));
}

#[test]
fn problem_details_are_redacted_and_cut() {
    const SECRET: &str = "hunter2-secret-value";
    let redactor = Redactor::new(&[Secret::new(SECRET)]);
    let body = serde_json::json!({
        "title": "Bad Request",
        "detail": format!("{} {SECRET} eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "y".repeat(395)),
    });
    let e = map_error_status(
        Endpoint::Token,
        T,
        "/",
        &response(400, &body.to_string()),
        &redactor,
    );
    assert!(!e.message().contains("hunter2"), "{e:?}");
    assert!(!e.message().contains("eyJ"), "{e:?}");
    assert!(e.message().len() < 600, "{}", e.message().len());
    let mut r = response(400, &format!("bad secret {SECRET}"));
    r.headers
        .push(("content-type".into(), b"text/plain".to_vec()));
    let e = map_error_status(Endpoint::Token, T, "/", &r, &redactor);
    assert!(
        e.message().contains("bad secret [redacted]") && !e.message().contains("hunter2"),
        "{e:?}"
    );
}
