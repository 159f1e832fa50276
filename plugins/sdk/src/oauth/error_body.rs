//! Error answers: what an IdP's error body says ([`error_text`]) and which kind of
//! [`Error`] it is ([`map_error_status`]).
//!
//! Token endpoints and the gateways in front of them answer errors in several shapes,
//! and the text is what tells a person what to fix:
//! - RFC 6749 §5.2: `{"error": "invalid_client", "error_description": "..."}`;
//! - RFC 9457 problem details (Spring, ASP.NET, API gateways): `{"title", "detail"}`;
//! - `{"message": "..."}` (many gateways), `{"error": {"message": "..."}}` (Google and
//!   Azure APIs);
//! - a short `text/plain` body.
//!
//! The text is redacted with the request's secrets, then cut and kept on one line (see
//! [`clean`]): never a secret, never a screenful.

use serde_json::{Map, Value};

use super::{CONFIG_CODES, DENIED_CODES, Endpoint, TRANSIENT_CODES};
use crate::Error;
use crate::http::{Response, reason_phrase, status_text};
use crate::redact::Redactor;

/// The longest error code quoted, in characters.
const MAX_CODE_CHARS: usize = 100;
/// The longest description quoted, in characters.
const MAX_DESCRIPTION_CHARS: usize = 400;
/// The longest line quoted from a `text/plain` body, in characters.
const MAX_TEXT_CHARS: usize = 200;

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

/// What an error body says, cleaned (see [`clean`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorText {
    /// The OAuth `error` code, when `error` is a string.
    pub code: Option<String>,
    /// `error_description`; else a problem detail's `title` and `detail`; else a
    /// `message`; else `error.message`; else the first line of a `text/plain` body.
    pub description: Option<String>,
}

impl ErrorText {
    /// `code: description`, either alone, or empty.
    pub fn detail(&self) -> String {
        match (&self.code, &self.description) {
            (Some(c), Some(d)) => format!("{c}: {d}"),
            (Some(c), None) => c.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => String::new(),
        }
    }

    /// The code, or `""`.
    fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }
}

/// What the error `body` of a response with HTTP `status` and `content_type` says (see
/// the module docs), cleaned with `redactor`.
pub fn error_text(
    body: &[u8],
    content_type: Option<&str>,
    status: u16,
    redactor: &Redactor,
) -> ErrorText {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => object_text(&object, status, redactor),
        Ok(_) => ErrorText::default(),
        Err(_) if is_plain_text(content_type) => {
            let text = String::from_utf8_lossy(body);
            let line = text.lines().map(str::trim).find(|l| !l.is_empty());
            ErrorText {
                code: None,
                description: line
                    .map(|l| clean(l, MAX_TEXT_CHARS, redactor))
                    .filter(|l| !l.is_empty()),
            }
        }
        Err(_) => ErrorText::default(),
    }
}

/// `error` and `error_description` (or the other descriptions [`ErrorText`] lists) from
/// an error body, cleaned with `redactor`.
pub fn error_fields(body: &[u8], redactor: &Redactor) -> (Option<String>, Option<String>) {
    let text = error_text(body, None, 0, redactor);
    (text.code, text.description)
}

fn is_plain_text(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/plain"))
    })
}

fn string_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// [`error_text`] of a JSON object.
pub(crate) fn object_text(
    object: &Map<String, Value>,
    status: u16,
    redactor: &Redactor,
) -> ErrorText {
    let code = string_field(object, "error")
        .map(|e| clean(e, MAX_CODE_CHARS, redactor))
        .filter(|e| !e.is_empty());
    let nested_message = object
        .get("error")
        .and_then(Value::as_object)
        .and_then(|e| string_field(e, "message"));
    let description = string_field(object, "error_description")
        .map(str::to_string)
        .or_else(|| problem_detail(object, status))
        .or_else(|| string_field(object, "message").map(str::to_string))
        .or_else(|| nested_message.map(str::to_string))
        .map(|d| clean(&d, MAX_DESCRIPTION_CHARS, redactor))
        .filter(|d| !d.is_empty());
    ErrorText { code, description }
}

/// RFC 9457's `title` and `detail`, as `title: detail`; a `title` that only repeats the
/// status's reason phrase ("Bad Request") is left out when there is a `detail`.
fn problem_detail(object: &Map<String, Value>, status: u16) -> Option<String> {
    let title = string_field(object, "title");
    let detail = string_field(object, "detail");
    let generic = |t: &str| {
        !reason_phrase(status).is_empty() && t.eq_ignore_ascii_case(reason_phrase(status))
    };
    match (title, detail) {
        (Some(t), Some(d)) if generic(t) || d.starts_with(t) => Some(d.to_string()),
        (Some(t), Some(d)) => Some(format!("{t}: {d}")),
        (Some(t), None) => Some(t.to_string()),
        (None, Some(d)) => Some(d.to_string()),
        (None, None) => None,
    }
}

/// The error for a 2xx answer with no `access_token`, whose body says `text`: an OAuth
/// code is classed as in an error answer (a DENIED code is `denied`, a CONFIG code
/// `invalid-config`, anything else `unavailable`), with its text.
pub fn error_in_success(endpoint: Endpoint, target: &str, status: u16, text: &ErrorText) -> Error {
    let noun = endpoint.noun();
    let detail = text.detail();
    let code = text.code();
    if DENIED_CODES.contains(&code) {
        return Error::Denied(format!("{noun} {target} refused: {detail} (HTTP {status})"));
    }
    if CONFIG_CODES.contains(&code) {
        return Error::InvalidConfig(format!(
            "{noun} {target} rejected the request: {detail} (HTTP {status}); check the plugin's configuration"
        ));
    }
    if text.code.is_some() {
        return Error::Unavailable(format!(
            "{noun} {target} answered HTTP {status} with an error instead of a token: {detail}"
        ));
    }
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    Error::Unavailable(format!(
        "{noun} {target} answered HTTP {status} with no `access_token`{detail}"
    ))
}

/// Maps a non-2xx `response` from `endpoint` at `target` (a URL without query, whose
/// path is `path`) to the error to report. Every piece of the response quoted in the
/// message (the body's text, `Location`, `Retry-After`) passes through `redactor`,
/// holding the request's secrets, before it is cut to length.
///
/// Token endpoints (RFC 6749 §5.2):
/// - a DENIED code (`invalid_client`, ...) with 400/401/403, or a bare 401/403: Denied;
/// - `invalid_request`, `unsupported_grant_type`, `invalid_target` (4xx): InvalidConfig;
/// - 404/405 (wrong URL) and 3xx (redirects are not followed): InvalidConfig;
/// - a TRANSIENT code (`temporarily_unavailable`, ...), 408, 429 and 5xx: Unavailable;
/// - any other 4xx (a gateway's `{"title": "Bad Request", "detail": "..."}`, an unknown
///   code): InvalidConfig, with the body's text: retrying the same request cannot help.
///
/// Metadata servers: 401/403 Denied; 400, 404 ("no such metadata path") and 3xx
/// InvalidConfig; anything else Unavailable (Azure IMDS answers 410 while it starts).
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
    let text = error_text(
        &response.body,
        response.header("content-type"),
        status,
        redactor,
    );
    let detail = text.detail();
    let with_detail = |base: String| {
        if detail.is_empty() {
            base
        } else {
            format!("{base}: {detail}")
        }
    };
    let code = text.code();
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
            if is_4xx && !matches!(status, 408 | 429) && !TRANSIENT_CODES.contains(&code) {
                return Error::InvalidConfig(format!(
                    "{}; check the plugin's configuration",
                    with_detail(format!(
                        "{noun} {target} rejected the request ({})",
                        status_text(status)
                    ))
                ));
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

    let retry_after = response.header("retry-after").filter(|v| v.len() <= 40);
    let retry = retry_after
        .map(|v| format!("; Retry-After: {}", clean(v, 40, redactor)))
        .unwrap_or_default();
    let message = format!(
        "{}{retry}",
        with_detail(format!("{noun} {target} answered {}", status_text(status)))
    );
    match response.retry_after() {
        Some(after) => Error::retry_later(message, after),
        None => Error::Unavailable(message),
    }
}

#[cfg(test)]
mod tests;
