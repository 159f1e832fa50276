//! Keeping secrets out of messages, in every form an identity provider may echo them.
//!
//! An IdP that echoes a request back in its error text (a proxy's "bad header:
//! Authorization: Basic ..."; a description that quotes the form) does not echo the
//! secret as the plugin holds it. It may come back:
//! - as is (`client_secret_post`, an assertion JWT, a subject or refresh token);
//! - form-urlencoded, as it went in the body, with either case of hex digits and `+` or
//!   `%20` for a space;
//! - base64-encoded inside `Basic <base64(urlencode(id) ":" urlencode(secret))>`, with
//!   or without padding, in the standard or the URL-safe alphabet, possibly with the
//!   base64 itself urlencoded (`Basic%20...%3D`);
//! - as any JWT (`eyJ...`), which is a credential whatever it is.
//!
//! A [`Redactor`] replaces each secret's literal forms, then looks at every word left
//! (a run of characters between spaces and punctuation): a word that still reveals a
//! secret once percent-decoded or base64-decoded (at any of the four alignments, so a
//! junk prefix does not hide it), or that looks like a JWT, is replaced whole.
//!
//! Redact *before* cutting text to length: a cut secret no longer matches.

use base64::Engine as _;
use base64::alphabet::{self, Alphabet};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::secret::Secret;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not searched for in messages (a one-letter "secret"
/// would blank out every such letter).
pub const MIN_SECRET_LEN: usize = 4;

/// The shortest base64 run worth decoding (6 bytes of data).
const MIN_BASE64_RUN: usize = 8;

/// Removes a set of secrets from text, in all the forms listed in the module docs.
/// `Debug` shows only how many secrets it holds.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Each secret as bytes, to look for in decoded words.
    plain: Vec<Vec<u8>>,
    /// The literal forms of every secret, longest first.
    needles: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.plain.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for `secrets`.
    pub fn new(secrets: &[Secret]) -> Self {
        let mut redactor = Redactor::default();
        for secret in secrets {
            redactor.add(secret);
        }
        redactor
    }

    /// Adds `secret` (ignored when shorter than [`MIN_SECRET_LEN`]).
    pub fn add(&mut self, secret: &Secret) {
        let raw = secret.expose();
        if raw.len() < MIN_SECRET_LEN || self.plain.iter().any(|p| p == raw.as_bytes()) {
            return;
        }
        self.plain.push(raw.as_bytes().to_vec());
        self.needles.extend(literal_forms(raw));
        // Longest first, so a padded form goes before its unpadded prefix.
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.needles.dedup();
    }

    /// This redactor with `secret` added.
    pub fn with(mut self, secret: &Secret) -> Self {
        self.add(secret);
        self
    }

    /// `text` with every form of every secret, and every JWT, replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(start) = rest.find(is_word_char) {
            result.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(|c| !is_word_char(c)).unwrap_or(rest.len());
            let word = &rest[..end];
            if looks_like_jwt(word) || self.reveals_secret(word) {
                result.push_str(REDACTED);
            } else {
                result.push_str(word);
            }
            rest = &rest[end..];
        }
        result.push_str(rest);
        result
    }

    /// Whether `word`, percent-decoded or base64-decoded, holds a secret.
    fn reveals_secret(&self, word: &str) -> bool {
        if self.plain.is_empty() || word.len() < MIN_SECRET_LEN {
            return false;
        }
        let decoded = percent_decode(word.as_bytes());
        [word.as_bytes(), decoded.as_slice()]
            .into_iter()
            .any(|candidate| self.holds_secret(candidate) || self.base64_holds_secret(candidate))
    }

    /// Whether `bytes`, as is or percent-decoded, contain one of the secrets.
    fn holds_secret(&self, bytes: &[u8]) -> bool {
        let decoded = percent_decode(bytes);
        self.plain
            .iter()
            .any(|secret| contains(bytes, secret) || contains(&decoded, secret))
    }

    /// Whether any base64 run in `bytes` decodes to something holding a secret.
    fn base64_holds_secret(&self, bytes: &[u8]) -> bool {
        bytes
            .split(|b| !is_base64_byte(*b))
            .filter(|run| run.len() >= MIN_BASE64_RUN)
            .any(|run| {
                (0..4).any(|skip| {
                    let mut part = &run[skip.min(run.len())..];
                    if part.len() % 4 == 1 {
                        part = &part[..part.len() - 1];
                    }
                    [&STANDARD_LENIENT, &URL_SAFE_LENIENT]
                        .into_iter()
                        .any(|engine| {
                            engine
                                .decode(part)
                                .is_ok_and(|decoded| self.holds_secret(&decoded))
                        })
                })
            })
    }
}

/// `message` with every form of each secret (see the module docs) replaced by
/// [`REDACTED`].
pub fn redact(message: &str, secrets: &[Secret]) -> String {
    Redactor::new(secrets).redact(message)
}

/// The forms of `raw` replaced wherever they appear, even inside a word.
fn literal_forms(raw: &str) -> Vec<String> {
    let encoded = crate::form::encode_value(raw);
    let lower_hex = lowercase_hex(&encoded);
    let mut forms = vec![
        raw.to_string(),
        encoded.replace('+', "%20"),
        lower_hex.replace('+', "%20"),
        encoded,
        lower_hex,
    ];
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        let padded = engine.encode(raw);
        forms.push(padded.trim_end_matches('=').to_string());
        forms.push(padded);
    }
    forms.retain(|f| f.len() >= MIN_SECRET_LEN);
    forms
}

/// `encoded` with the hex digits of its `%XX` escapes in lower case.
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut after_percent = 0;
    for c in encoded.chars() {
        if after_percent > 0 {
            out.push(c.to_ascii_lowercase());
            after_percent -= 1;
        } else {
            out.push(c);
            if c == '%' {
                after_percent = 2;
            }
        }
    }
    out
}

/// Form-decodes `bytes`: `%XX` escapes (either case) and `+` as a space; anything
/// else, a stray `%` included, is kept.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The characters of a word: everything but white space, quotes, brackets and the
/// punctuation that separates words in prose and JSON.
fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !"\"'`,;()<>[]{}|\\".contains(c)
}

fn is_base64_byte(b: u8) -> bool {
    // `=` ends a run: it is only ever padding at the end (or a `key=` before a value).
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// Whether `word` holds a compact JWS or JWE: `eyJ` (base64url of `{"`) starting a
/// base64url run, then at least three dot-separated base64url segments.
fn looks_like_jwt(word: &str) -> bool {
    let is_b64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    word.match_indices("eyJ").any(|(start, _)| {
        if start > 0 && is_b64url(word.as_bytes()[start - 1]) {
            return false;
        }
        // Segment lengths, up to the first byte that is neither base64url nor a dot.
        let mut segments = vec![0usize];
        for &b in &word.as_bytes()[start..] {
            match b {
                b'.' => segments.push(0),
                b if is_b64url(b) => *segments.last_mut().unwrap_or(&mut 0) += 1,
                _ => break,
            }
        }
        // A JWE may have an empty segment (no encrypted key), never an empty header.
        segments.len() >= 3 && segments[0] >= 10
    })
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_allow_trailing_bits(true)
    .with_decode_padding_mode(DecodePaddingMode::Indifferent);

const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&URL_SAFE_ALPHABET, LENIENT);
const URL_SAFE_ALPHABET: Alphabet = alphabet::URL_SAFE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::{basic_auth, encode_value};

    const SECRET: &str = "hunter2-secret+/=é";

    fn redactor() -> Redactor {
        Redactor::new(&[Secret::new(SECRET), Secret::new("ab")])
    }

    /// Asserts `shown` keeps no trace of `SECRET` or of `basic`'s base64.
    fn assert_clean(shown: &str, basic: &str) {
        let b64 = basic.strip_prefix("Basic ").unwrap();
        for leak in [
            "hunter2",
            b64,
            b64.trim_end_matches('='),
            &encode_value(SECRET),
        ] {
            assert!(!shown.contains(leak), "{leak:?} in {shown:?}");
        }
        assert!(shown.contains(REDACTED), "{shown}");
    }

    #[test]
    fn redacts_raw_and_encoded_forms() {
        let secrets = [Secret::new("s3cr+t/=x"), Secret::new("ab")];
        let msg = "echo: s3cr+t/=x and client_secret=s3cr%2Bt%2F%3Dx; ab stays";
        assert_eq!(
            redact(msg, &secrets),
            "echo: [redacted] and client_secret=[redacted]; ab stays"
        );
        let lower = "client_secret=s3cr%2bt%2f%3dx&scope=a";
        assert!(!redact(lower, &secrets).contains("s3cr"));
        let spaced = [Secret::new("pass word")];
        assert_eq!(
            redact("a=pass%20word b=pass+word", &spaced),
            "a=[redacted] b=[redacted]"
        );
    }

    #[test]
    fn redacts_every_form_of_a_basic_credential() {
        let redactor = redactor();
        for client_id in ["my-app", "a", "client with:colon", "ééé"] {
            let basic = basic_auth(client_id, SECRET);
            let b64 = basic.strip_prefix("Basic ").unwrap();
            let url_safe = b64.replace('+', "-").replace('/', "_");
            for echoed in [
                format!("invalid_client: bad header Authorization: {basic}"),
                format!("got '{basic}'"),
                format!("credential={}", b64.trim_end_matches('=')),
                format!("credential {url_safe}"),
                format!("header=Basic%20{}", encode_value(b64)),
                format!("x{b64}"),
                format!("xyz{b64}"),
                format!("{{\"authorization\":\"{basic}\"}}"),
            ] {
                let shown = redactor.redact(&echoed);
                assert_clean(&shown, &basic);
            }
        }
    }

    #[test]
    fn redacts_jwts_and_tokens_but_keeps_the_rest() {
        let none = Redactor::default();
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let shown = none.redact(&format!(
            "invalid_client: assertion {jwt} expired; client_assertion={jwt}&x=1"
        ));
        assert_eq!(
            shown,
            "invalid_client: assertion [redacted] expired; [redacted]"
        );
        let jwe = "eyJhbGciOiJkaXIifQ..aXY.Y3Q.dGFn";
        assert_eq!(none.redact(jwe), REDACTED);

        let refresh = Redactor::new(&[Secret::new("rt-0123456789")]);
        assert_eq!(
            refresh.redact("invalid_grant: refresh token rt-0123456789 is revoked"),
            "invalid_grant: refresh token [redacted] is revoked"
        );
        // Ordinary text, URLs and short "secrets" are left alone.
        let text = "token endpoint https://login.example.com/t/oauth2/v2.0/token refused: \
                    invalid_client: AADSTS7000215 bad (HTTP 401); ab";
        assert_eq!(redactor().redact(text), text);
    }

    #[test]
    fn debug_hides_the_secrets() {
        let shown = format!("{:?}", redactor());
        assert_eq!(shown, "Redactor { secrets: 1 }");
    }
}
