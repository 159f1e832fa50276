//! `application/x-www-form-urlencoded` bodies and HTTP Basic client authentication.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Encodes `pairs` as a form body (`a=b&c=d`, spaces as `+`).
pub fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Form-urlencodes one value.
pub fn encode_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The `Authorization` value for `client_secret_basic` (RFC 6749 §2.3.1): the client id
/// and secret are each form-urlencoded, joined with `:`, then base64-encoded.
pub fn basic_auth(client_id: &str, client_secret: &str) -> String {
    let joined = format!(
        "{}:{}",
        encode_value(client_id),
        encode_value(client_secret)
    );
    format!("Basic {}", STANDARD.encode(joined))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_forms() {
        assert_eq!(
            encode(&[
                ("grant_type", "client_credentials"),
                ("scope", "api://x/.default openid")
            ]),
            "grant_type=client_credentials&scope=api%3A%2F%2Fx%2F.default+openid"
        );
        assert_eq!(
            encode(&[("a", "b&c=d"), ("é", "+%")]),
            "a=b%26c%3Dd&%C3%A9=%2B%25"
        );
        assert_eq!(encode(&[]), "");
        assert_eq!(encode_value("-._*~"), "-._*%7E");
    }

    #[test]
    fn basic_auth_encodes_before_base64() {
        // RFC 6749 §2.3.1: urlencode(id) ":" urlencode(secret), then base64.
        assert_eq!(basic_auth("client", "secret"), "Basic Y2xpZW50OnNlY3JldA==");
        let header = basic_auth("my client:1", "p@ss:w+rd/=é");
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "my+client%3A1:p%40ss%3Aw%2Brd%2F%3D%C3%A9"
        );
    }
}
