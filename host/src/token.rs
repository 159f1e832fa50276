//! The bearer token as a value that cannot leak by accident.
//!
//! Every source hands the manager a [`Token`]. Its `Debug` and `Display` print a short
//! fingerprint, never the secret; the only way to the value is [`Token::expose`], a
//! name that stands out in review. Construction validates the value once, so nothing
//! downstream can put a CR/LF or a megabyte into an `Authorization` header.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// The longest token value accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A bearer token (without the "Bearer " prefix) and its expiry, if known.
///
/// Cloning is cheap (one reference count): the manager hands out clones on the hot path.
#[derive(Clone)]
pub struct Token {
    inner: Arc<Inner>,
}

struct Inner {
    value: Box<str>,
    expires_at_ms: Option<u64>,
    /// Computed when first asked for: a plugin's warm refresh costs about a microsecond,
    /// and most tokens it makes are never logged or compared.
    fingerprint: std::sync::OnceLock<Fingerprint>,
}

impl Inner {
    fn fingerprint(&self) -> Fingerprint {
        *self
            .fingerprint
            .get_or_init(|| Fingerprint::of(&self.value))
    }
}

/// Why a token value was refused. Never contains the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidToken {
    /// The value is empty (or only white space, for sources that trim).
    #[error("the token is empty")]
    Empty,
    /// The value is longer than [`MAX_TOKEN_LEN`].
    #[error("the token is {len} bytes long; the limit is {MAX_TOKEN_LEN}")]
    TooLong {
        /// The length of the refused value.
        len: usize,
    },
    /// The value holds a byte that cannot appear in an HTTP header value.
    #[error("the token is not a valid HTTP header value (byte 0x{byte:02x} at offset {offset})")]
    NotHeaderValue {
        /// The offending byte (a control byte, never part of the secret's alphabet).
        byte: u8,
        /// Where it is.
        offset: usize,
    },
    /// The value holds a character outside ASCII (see [`validate`] for why).
    #[error(
        "the token holds {} U+{code_point:04X} at byte offset {offset}; bearer tokens are visible ASCII (RFC 6750)",
        describe(*.code_point)
    )]
    NotAscii {
        /// The offending character's code point (shown as `U+XXXX`, never raw: it may be
        /// a control or a direction override).
        code_point: u32,
        /// The byte offset where it starts.
        offset: usize,
    },
}

/// What kind of non-ASCII character `code_point` is, for [`InvalidToken::NotAscii`].
fn describe(code_point: u32) -> &'static str {
    match char::from_u32(code_point) {
        Some(c) if c.is_control() => "the C1 control character",
        Some(
            '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}',
        ) => "the bidirectional formatting character",
        Some(c) if crate::text::is_invisible(c) => "the invisible formatting character",
        _ => "the non-ASCII character",
    }
}

impl Token {
    /// Validates `value` and wraps it. `expires_at_ms` is milliseconds since the Unix epoch.
    pub fn new(value: impl Into<String>, expires_at_ms: Option<u64>) -> Result<Self, InvalidToken> {
        let value: String = value.into();
        validate(&value)?;
        Ok(Token {
            inner: Arc::new(Inner {
                value: value.into_boxed_str(),
                expires_at_ms,
                fingerprint: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The secret value, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.inner.value
    }

    /// When the token expires (milliseconds since the Unix epoch), if known.
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.inner.expires_at_ms
    }

    /// A short, non-reversible identifier of the value, safe to log.
    pub fn fingerprint(&self) -> Fingerprint {
        self.inner.fingerprint()
    }

    /// The same value with another expiry (used when the expiry is learnt from a JWT).
    pub(crate) fn with_expiry(&self, expires_at_ms: Option<u64>) -> Token {
        Token {
            inner: Arc::new(Inner {
                value: self.inner.value.clone(),
                expires_at_ms,
                fingerprint: self.inner.fingerprint.clone(),
            }),
        }
    }

    /// Whether two tokens hold the same value.
    pub fn same_value(&self, other: &Token) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner.value == other.inner.value
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("fingerprint", &self.inner.fingerprint())
            .field("expires_at_ms", &self.inner.expires_at_ms)
            .finish()
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token {}", self.inner.fingerprint())
    }
}

/// Checks what an `Authorization: Bearer` header can carry: non-empty, at most
/// [`MAX_TOKEN_LEN`] bytes, visible ASCII (0x21..=0x7e), with spaces and tabs inside.
///
/// Why ASCII and nothing else: RFC 6750's `b64token` is a subset of visible ASCII, and
/// bearer tokens in use (JWTs, OAuth access tokens, API keys) are ASCII; beyond ASCII,
/// HTTP has only `obs-text`, opaque bytes that RFC 9110 §5.5 keeps for compatibility and
/// that no token issuer produces. A non-ASCII "token" is a mistake or an attack: a C1
/// control (U+009B is a CSI, which restyles a terminal that prints it), a bidirectional
/// override or an invisible character (which make what a person reads differ from what
/// is sent). Refusing all of non-ASCII closes that class at once, where a list of bad
/// characters would have to keep up with Unicode. All of visible ASCII stays allowed,
/// not only the `b64token` alphabet, because real tokens do stray from it (API keys
/// with `:` or `%`), and so do spaces and tabs inside, which are harmless in a header.
pub fn validate(value: &str) -> Result<(), InvalidToken> {
    if value.trim().is_empty() {
        return Err(InvalidToken::Empty);
    }
    if value.len() > MAX_TOKEN_LEN {
        return Err(InvalidToken::TooLong { len: value.len() });
    }
    // Almost every token is printable ASCII: one pass says so; the passes below find
    // what is wrong with the others.
    if value.bytes().all(|b| matches!(b, b' '..=b'~' | b'\t')) {
        return Ok(());
    }
    // RFC 9110 field-value: VCHAR / obs-text / SP / HTAB; no CR, LF, NUL or DEL.
    if let Some((offset, &byte)) = value
        .as_bytes()
        .iter()
        .enumerate()
        .find(|&(_, &b)| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(InvalidToken::NotHeaderValue { byte, offset });
    }
    if let Some((offset, c)) = value.char_indices().find(|(_, c)| !c.is_ascii()) {
        return Err(InvalidToken::NotAscii {
            code_point: u32::from(c),
            offset,
        });
    }
    Ok(())
}

/// The first 8 bytes of the SHA-256 of a token, shown as `sha256:0123456789abcdef`.
///
/// Enough to tell tokens apart in logs and in 401 reports; nothing to learn the token from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 8]);

impl Fingerprint {
    /// The fingerprint of a token value.
    pub fn of(value: &str) -> Self {
        let digest = Sha256::digest(value.as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        Fingerprint(bytes)
    }
}

/// A string that is not a fingerprint (`sha256:` and 16 lowercase hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a token fingerprint (expected sha256: and 16 hex digits)")]
pub struct InvalidFingerprint;

impl std::str::FromStr for Fingerprint {
    type Err = InvalidFingerprint;

    /// Parses the `Display` form, `sha256:0123456789abcdef` (as sent by broker clients).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").ok_or(InvalidFingerprint)?;
        let mut bytes = [0u8; 8];
        match hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            true => hex::decode_to_slice(hex, &mut bytes).map_err(|_| InvalidFingerprint)?,
            false => return Err(InvalidFingerprint),
        }
        Ok(Fingerprint(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let token = Token::new("s3cr3t-value-123", Some(42)).unwrap();
        for shown in [
            format!("{token:?}"),
            format!("{token}"),
            format!("{token:#?}"),
        ] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("sha256:"), "{shown}");
        }
        assert_eq!(token.expose(), "s3cr3t-value-123");
    }

    #[test]
    fn validation_table() {
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        let cases: &[(&str, Option<InvalidToken>)] = &[
            ("abc.def-ghi_jkl~", None),
            ("with space\tand tab", None),
            ("", Some(InvalidToken::Empty)),
            ("  \t", Some(InvalidToken::Empty)),
            (
                "a\r\nX-Injected: 1",
                Some(InvalidToken::NotHeaderValue {
                    byte: b'\r',
                    offset: 1,
                }),
            ),
            (
                "a\nb",
                Some(InvalidToken::NotHeaderValue {
                    byte: b'\n',
                    offset: 1,
                }),
            ),
            (
                "nul\0",
                Some(InvalidToken::NotHeaderValue { byte: 0, offset: 3 }),
            ),
            (
                "del\x7f",
                Some(InvalidToken::NotHeaderValue {
                    byte: 0x7f,
                    offset: 3,
                }),
            ),
            (
                &long,
                Some(InvalidToken::TooLong {
                    len: MAX_TOKEN_LEN + 1,
                }),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(
                validate(value).err(),
                *expected,
                "value of len {}",
                value.len()
            );
        }
        assert!(validate(&"a".repeat(MAX_TOKEN_LEN)).is_ok());
    }

    #[test]
    fn non_ascii_tokens_are_refused_naming_the_character_and_where() {
        let cases: &[(char, &str)] = &[
            ('\u{80}', "the C1 control character U+0080"),
            ('\u{85}', "the C1 control character U+0085"),
            ('\u{9b}', "the C1 control character U+009B"),
            ('\u{9f}', "the C1 control character U+009F"),
            ('\u{061c}', "the bidirectional formatting character U+061C"),
            ('\u{200e}', "the bidirectional formatting character U+200E"),
            ('\u{200f}', "the bidirectional formatting character U+200F"),
            ('\u{202a}', "the bidirectional formatting character U+202A"),
            ('\u{202e}', "the bidirectional formatting character U+202E"),
            ('\u{2066}', "the bidirectional formatting character U+2066"),
            ('\u{2069}', "the bidirectional formatting character U+2069"),
            ('\u{200b}', "the invisible formatting character U+200B"),
            ('\u{feff}', "the invisible formatting character U+FEFF"),
            ('é', "the non-ASCII character U+00E9"),
        ];
        for &(c, what) in cases {
            let value = format!("sk-s3cr3t{c}tail");
            let error = Token::new(value.as_str(), None).unwrap_err();
            assert_eq!(
                error,
                InvalidToken::NotAscii {
                    code_point: u32::from(c),
                    offset: 9
                }
            );
            let shown = error.to_string();
            assert_eq!(
                shown,
                format!(
                    "the token holds {what} at byte offset 9; bearer tokens are visible ASCII (RFC 6750)"
                )
            );
            assert!(!shown.contains("s3cr3t") && !shown.contains(c), "{shown:?}");
        }
        // The first offending character is the one reported.
        assert_eq!(
            validate("ab\u{202e}c\u{9b}"),
            Err(InvalidToken::NotAscii {
                code_point: 0x202e,
                offset: 2
            })
        );
        assert!(validate("!#$%&'*+-./0:=?@AZ[]^_`az{|}~").is_ok());
    }

    #[test]
    fn fingerprints_tell_values_apart() {
        let a = Token::new("a", None).unwrap();
        let b = Token::new("b", None).unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(a.same_value(&Token::new("a", Some(1)).unwrap()));
        assert!(!a.same_value(&b));
    }

    #[test]
    fn fingerprints_parse_from_their_display_form() {
        let fingerprint = Token::new("a", None).unwrap().fingerprint();
        assert_eq!(fingerprint.to_string().parse(), Ok(fingerprint));
        for bad in [
            "",
            "sha256:",
            "sha256:0123",
            "md5:0123456789abcdef",
            "sha256:0123456789ABCDEF",
        ] {
            assert_eq!(bad.parse::<Fingerprint>(), Err(InvalidFingerprint), "{bad}");
        }
    }
}
