//! TOML errors told without the file's text.
//!
//! The `toml` crate's report quotes the offending line under a caret, and serde's
//! messages quote the value they refused. Either may be a secret
//! (`experimental_bearer_token = "sk-...` with its closing quote missing;
//! `http_headers = "Bearer sk-..."`), and these errors reach logs, `tokenhost check` and
//! the broker's `/v1/providers`. Config and policy files both report through
//! [`toml_error`], which keeps the position, the reason and the key, and no value.

/// `error` on one line: `line L, column C: <reason> in <key>`, without the source
/// excerpt, and with any string value the reason quotes left out. `text` is what was
/// parsed, for the position; `None` for a value deserialized from an already-parsed
/// table, which has no position.
pub(crate) fn toml_error(error: &toml::de::Error, text: Option<&str>) -> String {
    // Without its input the error's Display has no excerpt: the message, then the key.
    let mut bare = error.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let reason = redact_values(
        &shown
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    );
    match (text, error.span()) {
        (Some(text), Some(span)) => {
            let (line, column) = position(text, span.start);
            format!("line {line}, column {column}: {reason}")
        }
        _ => reason,
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xc0 != 0x80)
        .count()
        + 1;
    (line, column)
}

/// Replaces the values serde quotes: `string "..."` (Debug-escaped) becomes `a string`,
/// ``unknown variant `...`, `` becomes `unknown variant, `.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let string = rest.find("string \"");
        let variant = rest.find("unknown variant `");
        match (string, variant) {
            (Some(at), v) if v.is_none_or(|v| at < v) => {
                out.push_str(&rest[..at]);
                out.push_str("a string");
                rest = after_quoted(&rest[at + "string \"".len()..]);
            }
            (_, Some(at)) => {
                out.push_str(&rest[..at]);
                out.push_str("unknown variant");
                let tail = &rest[at + "unknown variant `".len()..];
                // The variant is written raw (it may hold a backtick); serde follows it
                // with ", expected ..." or ", there are no variants".
                rest = tail
                    .rfind("`, expected ")
                    .or_else(|| tail.rfind("`, there are no variants"))
                    .map_or("", |end| &tail[end + 1..]);
            }
            _ => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// What follows a Debug-escaped string's closing quote (`text` starts after the opening
/// one); `""` if it never closes.
fn after_quoted(text: &str) -> &str {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return &text[i + 1..],
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_counts_lines_and_characters() {
        let text = "a = 1\nbé = \"x";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 6), (2, 1));
        assert_eq!(position(text, text.len()), (2, 8));
        assert_eq!(position(text, 999), (2, 8));
    }

    #[test]
    fn quoted_values_are_left_out() {
        let cases: &[(&str, &str)] = &[
            (
                r#"invalid type: string "sk-secret", expected a map"#,
                "invalid type: a string, expected a map",
            ),
            (
                r#"invalid type: string "a \"sk-secret\" b", expected u64 in `x`"#,
                "invalid type: a string, expected u64 in `x`",
            ),
            (
                "unknown variant `sk-se`, cret`, expected one of `text`, `json`",
                "unknown variant, expected one of `text`, `json`",
            ),
            (r#"string "never closed sk-secret"#, "a string"),
            ("unknown field `timout_ms`", "unknown field `timout_ms`"),
        ];
        for (message, expected) in cases {
            assert_eq!(redact_values(message), *expected, "{message}");
        }
    }

    #[test]
    fn errors_keep_the_position_and_reason_but_not_the_line() {
        let text = "[p]\nexperimental_bearer_token = \"sk-live-s3cr3t\nx = 1\n";
        let error = toml::from_str::<toml::Table>(text).unwrap_err();
        assert!(
            error.to_string().contains("s3cr3t"),
            "the crate's own report quotes it"
        );
        let shown = toml_error(&error, Some(text));
        assert!(shown.starts_with("line 2, column "), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains('\n'), "{shown}");
    }
}
