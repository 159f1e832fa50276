//! What the plugin keeps in the host's secret storage: the refresh token, and the last
//! access token with its expiry (so a new process reuses it instead of refreshing).
//! The host holds the provider's lock from the first use in a call to its end, so a
//! refresh that rotates the refresh token cannot race another process's.

use tokenhost_plugin::oauth::response::TokenResponse;
use tokenhost_plugin::{Error, Host, Platform, Token, storage};

const REFRESH_TOKEN: &str = "refresh_token";
const ACCESS_TOKEN: &str = "access_token";
const EXPIRES_AT: &str = "access_token_expires_at_ms";

/// How long before its expiry a stored access token is no longer handed out.
const MARGIN_MS: u64 = 60_000;

/// The stored refresh token, if any.
pub fn refresh_token() -> Result<Option<String>, Error> {
    storage::get(REFRESH_TOKEN)
}

/// The stored access token, if it is valid for at least a minute more.
pub fn fresh_access_token() -> Result<Option<Token>, Error> {
    let Some(value) = storage::get(ACCESS_TOKEN)? else {
        return Ok(None);
    };
    let expires = storage::get(EXPIRES_AT)?.and_then(|v| v.parse::<u64>().ok());
    match expires {
        Some(at) if at > Host.now_ms() + MARGIN_MS => Ok(Some(Token::new(value).expires_at_ms(at))),
        _ => Ok(None),
    }
}

/// Keeps a token response: its access token and expiry, and its refresh token when it
/// sent one (a rotation replaces the old one; without one, the old one stays).
pub fn keep(response: &TokenResponse) -> Result<Token, Error> {
    if let Some(refresh) = &response.refresh_token {
        storage::set(REFRESH_TOKEN, refresh.expose())?;
    }
    let value = response.access_token.expose().to_string();
    storage::set(ACCESS_TOKEN, &value)?;
    let mut token = Token::new(value);
    match response.expires_at_ms {
        Some(at) => {
            storage::set(EXPIRES_AT, &at.to_string())?;
            token = token.expires_at_ms(at);
        }
        None => storage::delete(EXPIRES_AT)?,
    }
    Ok(token)
}

/// Forgets the sign-in (a refused refresh token).
pub fn forget() -> Result<(), Error> {
    for key in [REFRESH_TOKEN, ACCESS_TOKEN, EXPIRES_AT] {
        storage::delete(key)?;
    }
    Ok(())
}

/// Forgets the access token only (the host reported it rejected).
pub fn forget_access_token() -> Result<(), Error> {
    storage::delete(ACCESS_TOKEN)?;
    storage::delete(EXPIRES_AT)
}

/// The host's fingerprint of a token value: `sha256:` and the first 8 bytes of its
/// SHA-256 in hex (as in the WIT `refresh-context`).
pub fn fingerprint(value: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_are_the_hosts() {
        // sha256("abc") = ba7816bf8f01cfea...
        assert_eq!(super::fingerprint("abc"), "sha256:ba7816bf8f01cfea");
    }
}
