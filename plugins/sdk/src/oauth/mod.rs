//! Token responses: the JSON of a successful answer ([`response`]) and the mapping of
//! error answers (RFC 6749 §5.1 and §5.2, and the other error bodies IdPs and their
//! gateways send) to [`Error`](crate::Error) ([`error_body`]).
//!
//! Everything an IdP wrote that ends up in a message (an `error_description`, a problem
//! detail, a `Location`) is redacted with the request's secrets, then cut to length and
//! kept on one line: see [`clean`].

pub mod error_body;
pub mod response;

pub use error_body::{ErrorText, clean, error_fields, error_text, map_error_status};
pub use response::{TokenResponse, check_token_value, is_bearer, parse_success, seconds};

/// The longest token accepted, in bytes (the WIT contract's limit).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// `error` codes meaning the IdP refused the credentials or the grant: a person must
/// act (RFC 6749 §5.2).
pub const DENIED_CODES: &[&str] = &[
    "invalid_client",
    "unauthorized_client",
    "invalid_grant",
    "invalid_scope",
    "access_denied",
];

/// `error` codes meaning the request itself is wrong: the configuration must change.
/// `invalid_target` is RFC 8693's (and RFC 8707's) "audience/resource not acceptable".
pub const CONFIG_CODES: &[&str] = &[
    "invalid_request",
    "unsupported_grant_type",
    "invalid_target",
];

/// `error` codes meaning "try again later", whatever the HTTP status (RFC 6749 §4.1.2.1's
/// `server_error` and `temporarily_unavailable`, RFC 8628's `slow_down`).
pub const TRANSIENT_CODES: &[&str] = &["temporarily_unavailable", "server_error", "slow_down"];

/// Who answered: the error mapping differs a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// An OAuth 2.0 token endpoint (`token_url`).
    Token,
    /// An instance metadata server (`url`).
    Metadata,
}

impl Endpoint {
    /// `token endpoint` or `metadata server`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Endpoint::Token => "token endpoint",
            Endpoint::Metadata => "metadata server",
        }
    }

    /// The config key holding this endpoint's URL.
    pub fn url_key(self) -> &'static str {
        match self {
            Endpoint::Token => "token_url",
            Endpoint::Metadata => "url",
        }
    }
}
