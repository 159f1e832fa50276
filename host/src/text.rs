//! Showing untrusted text (plugin output, provider ids from a config file, IdP messages)
//! on a terminal or in a log without letting it forge lines or restyle the screen.
//!
//! There is one escaping rule, [`one_line`], used for every such text: a plugin's log
//! lines and error messages, and provider ids in errors and `tokenhost check` output.

/// `message` as one safe log line: cut at `max` bytes (on a char boundary, marked with
/// `...`), with control characters (C0, DEL and C1: newlines, ESC, U+009B CSI) and
/// invisible formatting characters (zero-width characters, the bidirectional marks,
/// embeddings, overrides and isolates U+061C, U+200B..U+200F, U+202A..U+202E,
/// U+2066..U+2069, the line and paragraph separators, U+FEFF) escaped (`\n`,
/// `\u{1b}`, `\u{202e}`), so the text cannot forge log lines, restyle a terminal or
/// reorder what is shown. Everything else, quotes included, is kept as it is.
pub fn one_line(message: &str, max: usize) -> String {
    let mut end = message.len().min(max);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut line = String::with_capacity(end + 3);
    let kept = &message[..end];
    if kept.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        // Printable ASCII (the usual log line): nothing to escape.
        line.push_str(kept);
    } else {
        escape_into(&mut line, kept);
    }
    if end < message.len() {
        line.push_str("...");
    }
    line
}

fn escape_into(line: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() || is_invisible(c) {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
}

/// `text` escaped as by [`one_line`], never cut: for identifiers such as provider ids.
pub fn escaped(text: &str) -> String {
    one_line(text, usize::MAX)
}

/// Formatting characters that change how text is shown (direction, joining, line
/// breaks) without being visible themselves.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_controls_and_keeps_quotes() {
        assert_eq!(one_line("the host's \"list\"", 100), "the host's \"list\"");
        assert_eq!(one_line("a\nb\r\u{1b}[31m", 100), "a\\nb\\r\\u{1b}[31m");
        assert_eq!(one_line("x\u{202e}y", 100), "x\\u{202e}y");
        let capped = one_line(&"é".repeat(2000), 1024);
        assert!(capped.len() <= 1024 + 3 && capped.ends_with("..."));
        assert_eq!(one_line("short", 1024), "short");
    }

    #[test]
    fn every_control_and_direction_character_is_escaped() {
        for c in [
            '\u{0}', '\u{1b}', '\u{7f}', '\u{80}', '\u{85}', '\u{9b}', '\u{9f}', '\u{061c}',
            '\u{200b}', '\u{200e}', '\u{200f}', '\u{2028}', '\u{2029}', '\u{202a}', '\u{202e}',
            '\u{2066}', '\u{2069}', '\u{feff}',
        ] {
            let shown = escaped(&format!("id{c}x"));
            assert!(
                !shown.contains(c),
                "U+{:04X} shown raw: {shown:?}",
                c as u32
            );
            assert!(
                shown.starts_with("id\\") && shown.ends_with('x'),
                "{shown:?}"
            );
        }
        assert_eq!(escaped("openai-prod é 日本"), "openai-prod é 日本");
    }
}
