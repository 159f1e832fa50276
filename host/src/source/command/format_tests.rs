//! Command source tests of what a command prints: formats, refused output, and errors
//! that never show stdout. Real child processes; helpers in `tests.rs`.

use tempfile::TempDir;

use super::tests::{SECRET, expect_error, run_script, source, spec};
use crate::config::{CommandSpec, OutputFormat};
use crate::error::FailureKind;
use crate::source::TokenSource;

/// 2030-01-02T03:04:05Z in milliseconds since the Unix epoch.
const T_MS: u64 = 1_893_553_445_000;

#[tokio::test]
async fn empty_output_is_refused() {
    let (_dir, program, result) = run_script(r"printf ' \n\t\n'", OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::BadOutput);
    assert_eq!(
        error.message(),
        format!("command `{program}` printed an empty token")
    );
}

#[tokio::test]
async fn non_utf8_output_is_refused() {
    let (_dir, program, result) = run_script(r"printf 'ab\377\376'", OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::BadOutput);
    let expected =
        format!("command `{program}` printed output that is not UTF-8 (invalid byte at offset 2)");
    assert_eq!(error.message(), expected);
}

#[tokio::test]
async fn invalid_tokens_are_refused() {
    let (_dir, program, result) = run_script(r"printf 'abc\rdef\n'", OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::BadOutput);
    let expected = format!(
        "command `{program}` printed an invalid token: the token is not a valid HTTP header value \
         (byte 0x0d at offset 3)"
    );
    assert_eq!(error.message(), expected);

    let body = "head -c 20000 /dev/zero | tr '\\0' a";
    let (_dir, _, result) = run_script(body, OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::BadOutput);
    assert!(
        error
            .message()
            .ends_with("the token is 20000 bytes long; the limit is 16384"),
        "{error}"
    );
}

#[tokio::test]
async fn json_output_gives_the_expiry() {
    for expires_at in [r#""2030-01-02T03:04:05Z""#, "1893553445"] {
        let body =
            format!("cat <<'EOF'\n{{\"token\": \"tok-json\", \"expires_at\": {expires_at}}}\nEOF");
        let (_dir, _, result) = run_script(&body, OutputFormat::Json).await;
        let token = result.unwrap();
        assert_eq!(
            (token.expose(), token.expires_at_ms()),
            ("tok-json", Some(T_MS)),
            "{expires_at}"
        );
    }
    let (_dir, _, result) = run_script(r#"echo '{"token": "tok-json"}'"#, OutputFormat::Json).await;
    assert_eq!(result.unwrap().expires_at_ms(), None);
}

#[tokio::test]
async fn exec_credential_output_gives_the_expiry() {
    for version in ["v1", "v1beta1"] {
        let body = format!(
            "cat <<'EOF'\n{{\"apiVersion\": \"client.authentication.k8s.io/{version}\", \
             \"kind\": \"ExecCredential\",\n \"status\": {{\"token\": \"tok-k8s\", \
             \"expirationTimestamp\": \"2030-01-02T03:04:05Z\"}}}}\nEOF"
        );
        let (_dir, _, result) = run_script(&body, OutputFormat::ExecCredential).await;
        let token = result.unwrap();
        assert_eq!(
            (token.expose(), token.expires_at_ms()),
            ("tok-k8s", Some(T_MS)),
            "{version}"
        );
    }
}

#[tokio::test]
async fn malformed_structured_output_says_what_was_expected() {
    let exec = |api: &str, kind: &str, status: &str| {
        format!(
            "cat <<'EOF'\n{{\"apiVersion\": \"{api}\", \"kind\": \"{kind}\", \"status\": {status}}}\nEOF"
        )
    };
    let secret_status = format!(r#"{{"token": "{SECRET}"}}"#);
    let v1 = "client.authentication.k8s.io/v1";
    let cases = [
        (
            OutputFormat::Json,
            format!("echo '{{\"tok\": \"{SECRET}\"}}'"),
            r#"printed output that is not the expected JSON {"token": ..., "expires_at": ...}: missing field `token`"#,
        ),
        (
            OutputFormat::Json,
            format!("echo '{SECRET}'"),
            "invalid JSON at line 1 column 1",
        ),
        (
            OutputFormat::ExecCredential,
            exec(v1, "Secret", &secret_status),
            "`kind` is `Secret`, expected `ExecCredential`",
        ),
        (
            OutputFormat::ExecCredential,
            exec(
                "client.authentication.k8s.io/v1alpha1",
                "ExecCredential",
                &secret_status,
            ),
            "`apiVersion` is `client.authentication.k8s.io/v1alpha1`, expected `client.authentication.k8s.io/v1`",
        ),
        (
            OutputFormat::ExecCredential,
            exec(v1, "ExecCredential", "{}"),
            "missing field `status.token`",
        ),
    ];
    for (format, body, expected) in cases {
        let (_dir, program, result) = run_script(&body, format).await;
        let error = expect_error(result, FailureKind::BadOutput);
        assert!(
            error
                .message()
                .starts_with(&format!("command `{program}` printed output that is not"))
        );
        assert!(
            error.message().contains(expected),
            "{error}\n  want: {expected}"
        );
        assert!(!format!("{error} {error:?}").contains(SECRET), "{error}");
    }
}

#[tokio::test]
async fn errors_never_show_stdout_or_args() {
    let (_dir, _, result) = run_script(&format!("echo {SECRET}\nexit 1"), OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::Crashed);
    let shown = format!("{error} | {error:?} | {error:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("exited with status 1"), "{shown}");

    // Arguments may hold secrets: errors and Debug name the program only.
    let dir = TempDir::new().unwrap();
    let failing = source(CommandSpec {
        args: vec![SECRET.to_owned()],
        ..spec("false", dir.path())
    });
    let error = expect_error(failing.resolve().await, FailureKind::Crashed);
    let shown = format!("{error} | {error:?} | {failing:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(
        shown.contains("command `false` exited with status 1"),
        "{shown}"
    );
}
