//! Table tests of output parsing: no processes.

use super::output::{EXEC_EXPECTED, JSON_EXPECTED, looks_like_api_version, parse_output};
use crate::config::OutputFormat;
use OutputFormat::{ExecCredential, Json, Text};

/// 2030-01-02T03:04:05Z in milliseconds since the Unix epoch.
const T_MS: u64 = 1_893_553_445_000;

#[test]
fn successes() {
    let v1 = r#"{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                 "status": {"token": "s3cr3t", "expirationTimestamp": "2030-01-02T03:04:05Z"}}"#;
    let v1beta1 = r#"{"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1",
                      "spec": {"interactive": false}, "status": {"token": "s3cr3t"}}"#;
    let cases: &[(OutputFormat, &str, Option<u64>)] = &[
        (Text, "  s3cr3t \n\n", None),
        (Text, "s3cr3t", None),
        (Json, r#"{"token": "s3cr3t"}"#, None),
        (
            Json,
            r#"{"token": " s3cr3t\n", "expires_at": null, "other": [1]}"#,
            None,
        ),
        (
            Json,
            r#"{"token": "s3cr3t", "expires_at": "2030-01-02T03:04:05Z"}"#,
            Some(T_MS),
        ),
        (
            Json,
            r#"{"token": "s3cr3t", "expires_at": "2030-01-02T04:04:05.250+01:00"}"#,
            Some(T_MS + 250),
        ),
        (
            Json,
            r#"{"token": "s3cr3t", "expires_at": 1893553445}"#,
            Some(T_MS),
        ),
        (
            Json,
            r#"{"token": "s3cr3t", "expires_at": 1893553445.5}"#,
            Some(T_MS + 500),
        ),
        (
            Json,
            "\n{\"token\": \"s3cr3t\", \"expires_at\": 0}\n",
            Some(0),
        ),
        (ExecCredential, v1, Some(T_MS)),
        (ExecCredential, v1beta1, None),
    ];
    for (format, input, expires) in cases {
        let parsed = parse_output(*format, input);
        assert_eq!(
            parsed,
            Ok(("s3cr3t".to_owned(), *expires)),
            "{format:?} {input}"
        );
    }
}

#[test]
fn failures_say_what_was_expected_and_never_quote_the_output() {
    let exec = |api: &str, kind: &str, status: &str| {
        format!(r#"{{"apiVersion": "{api}", "kind": "{kind}", "status": {status}}}"#)
    };
    let v1 = "client.authentication.k8s.io/v1";
    let cases: Vec<(OutputFormat, String, &str)> = vec![
        (Json, "".into(), "the output is empty"),
        (Json, "s3cr3t".into(), "invalid JSON at line 1 column 1"),
        (
            Json,
            r#"{"token": "s3cr3t""#.into(),
            "the JSON ends early at line 1 column 18",
        ),
        (
            Json,
            r#"{"token": "s3cr3t"} s3cr3t"#.into(),
            "invalid JSON at line 1 column 21",
        ),
        (
            Json,
            r#""s3cr3t""#.into(),
            "the output is a string, not a JSON object",
        ),
        (Json, r#"{"tok": "s3cr3t"}"#.into(), "missing field `token`"),
        (
            Json,
            r#"{"token": ["s3cr3t"]}"#.into(),
            "field `token` is an array, not a string",
        ),
        (
            Json,
            r#"{"token": "a", "expires_at": "s3cr3t"}"#.into(),
            "field `expires_at` is not an RFC 3339",
        ),
        (
            Json,
            r#"{"token": "a", "expires_at": "2030-13-02T03:04:05Z"}"#.into(),
            "not an RFC 3339",
        ),
        (
            Json,
            r#"{"token": "a", "expires_at": 1893553445000}"#.into(),
            "milliseconds instead of seconds",
        ),
        (
            Json,
            r#"{"token": "a", "expires_at": -1}"#.into(),
            "it is negative",
        ),
        (
            Json,
            r#"{"token": "a", "expires_at": true}"#.into(),
            "is a boolean, expected an RFC 3339 string or Unix",
        ),
        (ExecCredential, "".into(), "the output is empty"),
        (
            ExecCredential,
            exec(v1, "Secret", r#"{"token": "s3cr3t"}"#),
            "`kind` is `Secret`, expected `ExecCredential`",
        ),
        (
            ExecCredential,
            exec(v1, "s3cr3t", r#"{"token": "a"}"#),
            "`kind` is a 6-character value",
        ),
        (
            ExecCredential,
            exec(
                "client.authentication.k8s.io/v1alpha1",
                "ExecCredential",
                r#"{"token": "s3cr3t"}"#,
            ),
            "`apiVersion` is `client.authentication.k8s.io/v1alpha1`, expected \
             `client.authentication.k8s.io/v1` or `client.authentication.k8s.io/v1beta1`",
        ),
        (
            ExecCredential,
            exec("s3cr3t/Xyz", "ExecCredential", "{}"),
            "`apiVersion` is a 10-character value",
        ),
        (
            ExecCredential,
            r#"{"kind": "ExecCredential", "status": {"token": "s3cr3t"}}"#.into(),
            "missing field `apiVersion`",
        ),
        (
            ExecCredential,
            r#"{"apiVersion": "v1", "status": {"token": "s3cr3t"}}"#.into(),
            "missing field `kind`",
        ),
        (
            ExecCredential,
            exec(v1, "ExecCredential", "null"),
            "missing field `status`",
        ),
        (
            ExecCredential,
            exec(v1, "ExecCredential", r#""s3cr3t""#),
            "field `status` is a string, not an object",
        ),
        (
            ExecCredential,
            exec(v1, "ExecCredential", "{}"),
            "missing field `status.token`",
        ),
        (
            ExecCredential,
            exec(
                v1,
                "ExecCredential",
                r#"{"clientCertificateData": "s3cr3t", "clientKeyData": "s3cr3t"}"#,
            ),
            "it holds a client certificate; only token credentials are supported",
        ),
        (
            ExecCredential,
            exec(
                v1,
                "ExecCredential",
                r#"{"token": "a", "expirationTimestamp": 1893553445}"#,
            ),
            "field `status.expirationTimestamp` is a number, expected an RFC 3339 string",
        ),
        (
            ExecCredential,
            exec(
                v1,
                "ExecCredential",
                r#"{"token": "a", "expirationTimestamp": "s3cr3t"}"#,
            ),
            "field `status.expirationTimestamp` is not an RFC 3339",
        ),
    ];
    for (format, input, expected) in &cases {
        let error = parse_output(*format, input).expect_err(input);
        let shown = format!("{error} {error:?}");
        assert!(
            shown.contains(expected),
            "{input}\n  gave: {shown}\n  want: {expected}"
        );
        assert!(!shown.contains("s3cr3t"), "{input} leaked: {shown}");
        let want = if *format == Json {
            JSON_EXPECTED
        } else {
            EXEC_EXPECTED
        };
        assert!(
            error
                .to_string()
                .starts_with(&format!("output that is not the expected {want}: "))
        );
    }
}

#[test]
fn api_version_shape() {
    assert!(looks_like_api_version(
        "client.authentication.k8s.io/v1alpha1"
    ));
    assert!(!looks_like_api_version("v1"));
    assert!(!looks_like_api_version("eyJhbGciOi/JIUzI1NiJ9"));
    assert!(!looks_like_api_version(&format!("a/v{}", "1".repeat(64))));
}
