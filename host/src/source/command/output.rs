//! Turning a command's standard output into a token value and an expiry.
//!
//! Pure functions, tested without processes. The output holds the token, so no error
//! built here quotes it: messages are our own words plus field names, JSON types and
//! line/column positions. serde_json's own messages are never surfaced (its data errors
//! can quote values), and a found `kind` or `apiVersion` is only shown when it looks like
//! one rather than like a secret.

use serde_json::{Map, Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::OutputFormat;

/// What [`OutputFormat::Json`] expects, as said in errors.
pub(super) const JSON_EXPECTED: &str = r#"JSON {"token": ..., "expires_at": ...}"#;
/// What [`OutputFormat::ExecCredential`] expects, as said in errors.
pub(super) const EXEC_EXPECTED: &str =
    "ExecCredential (client.authentication.k8s.io/v1 or v1beta1)";
/// The ExecCredential versions understood.
const EXEC_API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];
/// The last second of year 9999: later Unix seconds are taken for a unit mistake.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

/// Output that does not have the shape its format requires. Never holds output text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputError {
    /// The shape that was expected.
    pub expected: &'static str,
    /// What is wrong with the output.
    pub problem: String,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "output that is not the expected {}: {}",
            self.expected, self.problem
        )
    }
}

/// The token value (trimmed, not yet validated) and its expiry in milliseconds since the
/// Unix epoch, read from `stdout` in `format`.
pub(crate) fn parse_output(
    format: OutputFormat,
    stdout: &str,
) -> Result<(String, Option<u64>), OutputError> {
    match format {
        OutputFormat::Text => Ok((stdout.trim().to_owned(), None)),
        OutputFormat::Json => parse_json(stdout),
        OutputFormat::ExecCredential => parse_exec_credential(stdout),
    }
}

fn parse_json(stdout: &str) -> Result<(String, Option<u64>), OutputError> {
    let fail = |problem: String| OutputError {
        expected: JSON_EXPECTED,
        problem,
    };
    let object = parse_object(stdout).map_err(fail)?;
    let token = match object.get("token") {
        Some(Value::String(token)) => token.trim().to_owned(),
        None | Some(Value::Null) => return Err(fail("missing field `token`".into())),
        Some(other) => {
            return Err(fail(format!(
                "field `token` is {}, not a string",
                type_of(other)
            )));
        }
    };
    let expires_at_ms = expiry(object.get("expires_at"), "expires_at", true).map_err(fail)?;
    Ok((token, expires_at_ms))
}

fn parse_exec_credential(stdout: &str) -> Result<(String, Option<u64>), OutputError> {
    let fail = |problem: String| OutputError {
        expected: EXEC_EXPECTED,
        problem,
    };
    let object = parse_object(stdout).map_err(fail)?;

    let kind = string_field(&object, "kind").map_err(fail)?;
    if kind != "ExecCredential" {
        let found = shown_if(kind, |k| {
            k.len() <= 64 && k.chars().all(|c| c.is_ascii_alphabetic())
        });
        return Err(fail(format!(
            "`kind` is {found}, expected `ExecCredential`"
        )));
    }
    let api_version = string_field(&object, "apiVersion").map_err(fail)?;
    if !EXEC_API_VERSIONS.contains(&api_version) {
        let found = shown_if(api_version, looks_like_api_version);
        return Err(fail(format!(
            "`apiVersion` is {found}, expected `{}` or `{}`",
            EXEC_API_VERSIONS[0], EXEC_API_VERSIONS[1]
        )));
    }

    let status = match object.get("status") {
        Some(Value::Object(status)) => status,
        None | Some(Value::Null) => return Err(fail("missing field `status`".into())),
        Some(other) => {
            return Err(fail(format!(
                "field `status` is {}, not an object",
                type_of(other)
            )));
        }
    };
    let token = match status.get("token") {
        Some(Value::String(token)) => token.trim().to_owned(),
        None | Some(Value::Null) => {
            let certificate = ["clientCertificateData", "clientKeyData"]
                .iter()
                .any(|field| status.get(*field).is_some_and(|v| !v.is_null()));
            return Err(fail(if certificate {
                "it holds a client certificate; only token credentials are supported \
                 (`status.token`)"
                    .into()
            } else {
                "missing field `status.token`".into()
            }));
        }
        Some(other) => {
            return Err(fail(format!(
                "field `status.token` is {}, not a string",
                type_of(other)
            )));
        }
    };
    let expires_at_ms = expiry(
        status.get("expirationTimestamp"),
        "status.expirationTimestamp",
        false,
    )
    .map_err(fail)?;
    Ok((token, expires_at_ms))
}

/// Parses `stdout` as one JSON object, describing syntax errors by position only.
fn parse_object(stdout: &str) -> Result<Map<String, Value>, String> {
    if stdout.trim().is_empty() {
        return Err("the output is empty".into());
    }
    match serde_json::from_str::<Value>(stdout) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(format!(
            "the output is {}, not a JSON object",
            type_of(&other)
        )),
        Err(error) => {
            use serde_json::error::Category;
            let what = match error.classify() {
                Category::Eof => "the JSON ends early",
                Category::Syntax | Category::Data | Category::Io => "invalid JSON",
            };
            Err(format!(
                "{what} at line {} column {}",
                error.line(),
                error.column()
            ))
        }
    }
}

/// A required string field.
fn string_field<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match object.get(name) {
        Some(Value::String(value)) => Ok(value),
        None | Some(Value::Null) => Err(format!("missing field `{name}`")),
        Some(other) => Err(format!(
            "field `{name}` is {}, not a string",
            type_of(other)
        )),
    }
}

/// An optional expiry: an RFC 3339 string, or (if `seconds_allowed`) Unix seconds.
fn expiry(value: Option<&Value>, name: &str, seconds_allowed: bool) -> Result<Option<u64>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => rfc3339_ms(text).map(Some).map_err(|why| {
            format!(
                "field `{name}` is not an RFC 3339 date-time such as 2030-01-02T03:04:05Z ({why})"
            )
        }),
        Some(Value::Number(number)) if seconds_allowed => unix_seconds_ms(number)
            .map(Some)
            .map_err(|why| format!("field `{name}` is not usable as Unix seconds: {why}")),
        Some(other) => Err(format!(
            "field `{name}` is {}, expected {}",
            type_of(other),
            if seconds_allowed {
                "an RFC 3339 string or Unix seconds"
            } else {
                "an RFC 3339 string"
            }
        )),
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 date-time. The error never quotes the
/// input (the `time` crate's parse errors name components only).
fn rfc3339_ms(text: &str) -> Result<u64, String> {
    let instant = OffsetDateTime::parse(text, &Rfc3339).map_err(|error| error.to_string())?;
    u64::try_from(instant.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| "it is before 1970".into())
}

/// Milliseconds since the Unix epoch of a Unix seconds number (fractions allowed).
fn unix_seconds_ms(number: &Number) -> Result<u64, String> {
    let too_large = || "it is after year 9999 (milliseconds instead of seconds?)".to_owned();
    if let Some(seconds) = number.as_u64() {
        return if seconds > MAX_UNIX_SECONDS {
            Err(too_large())
        } else {
            Ok(seconds * 1000)
        };
    }
    match number.as_f64() {
        Some(seconds) if seconds < 0.0 => Err("it is negative".into()),
        Some(seconds) if seconds.is_finite() && seconds <= MAX_UNIX_SECONDS as f64 => {
            // In range and non-negative: the cast neither truncates nor saturates.
            Ok((seconds * 1000.0).round() as u64)
        }
        _ => Err(too_large()),
    }
}

/// The JSON type of `value`, for messages.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `value` quoted if `safe` says it cannot be a secret, else only its length.
fn shown_if(value: &str, safe: impl Fn(&str) -> bool) -> String {
    if safe(value) {
        format!("`{value}`")
    } else {
        format!("a {}-character value", value.chars().count())
    }
}

/// `group/version` in lower case (such as `client.authentication.k8s.io/v1alpha1`): what an
/// apiVersion looks like, and what no plausible token does.
pub(super) fn looks_like_api_version(value: &str) -> bool {
    let Some((group, version)) = value.split_once('/') else {
        return false;
    };
    value.len() <= 64
        && group
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && version.starts_with('v')
        && version
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}
