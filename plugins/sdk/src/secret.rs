//! Secrets: where they come from (env vars, files, config) and keeping them out of
//! messages (with [`Redactor`], from [`crate::redact`]).

use crate::config::Config;
use crate::{Error, MAX_FILE_BYTES, Platform};

/// A secret value. `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself: only for building requests.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

pub use crate::redact::{Redactor, redact};

/// Reads the secret in environment variable `name`, named by config key `key`.
/// Surrounding whitespace (a trailing newline) is dropped.
pub fn from_env(platform: &dyn Platform, key: &str, name: &str) -> Result<Secret, Error> {
    match platform.env_var(name) {
        Ok(value) if value.trim().is_empty() => Err(Error::InvalidConfig(format!(
            "environment variable `{name}` (config key `{key}`) is empty"
        ))),
        Ok(value) => Ok(Secret(value.trim().to_string())),
        Err(std::env::VarError::NotPresent) => Err(Error::InvalidConfig(format!(
            "environment variable `{name}` (config key `{key}`) is not set or not granted to this plugin; \
             set it and list it in the provider's `allowed_env`"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::InvalidConfig(format!(
            "environment variable `{name}` (config key `{key}`) is not valid UTF-8"
        ))),
    }
}

/// Reads a credential file (a JWT) at `path`, named by config key `key`, on every call
/// (such files are rotated). Surrounding whitespace is dropped.
pub fn from_file(platform: &dyn Platform, key: &str, path: &str) -> Result<Secret, Error> {
    let bytes = platform.read_file(path, MAX_FILE_BYTES).map_err(|e| {
        Error::InvalidConfig(format!(
            "cannot read `{path}` (config key `{key}`): {e}; the file must exist and be granted \
             to this plugin in the provider's `allowed_paths`"
        ))
    })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Error::InvalidConfig(format!(
            "`{path}` (config key `{key}`) is larger than {} KiB",
            MAX_FILE_BYTES / 1024
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::InvalidConfig(format!("`{path}` (config key `{key}`) is not UTF-8 text"))
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(Error::InvalidConfig(format!(
            "`{path}` (config key `{key}`) is empty"
        )));
    }
    if value.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Error::InvalidConfig(format!(
            "`{path}` (config key `{key}`) must hold a single token (no spaces or line breaks inside)"
        )));
    }
    Ok(Secret(value.to_string()))
}

/// Whether the config names a client secret (`client_secret_env` or `client_secret`).
pub fn has_client_secret(config: &Config) -> bool {
    config.get("client_secret_env").is_some() || config.get("client_secret").is_some()
}

/// The client secret: from the env var named by `client_secret_env`, or the literal
/// `client_secret` when `allow_secret_in_config = "true"`. `None` when neither is set.
pub fn client_secret(platform: &dyn Platform, config: &Config) -> Result<Option<Secret>, Error> {
    match (config.get("client_secret_env"), config.get("client_secret")) {
        (Some(_), Some(_)) => Err(Error::InvalidConfig(
            "set only one of `client_secret_env` and `client_secret`".to_string(),
        )),
        (Some(name), None) => from_env(platform, "client_secret_env", name).map(Some),
        (None, Some(literal)) => {
            if config.flag("allow_secret_in_config")? {
                Ok(Some(Secret(literal.to_string())))
            } else {
                Err(Error::InvalidConfig(
                    "config key `client_secret` puts a secret in the configuration file, which is refused \
                     unless `allow_secret_in_config = \"true\"` is also set; prefer `client_secret_env` \
                     naming an environment variable listed in `allowed_env`"
                        .to_string(),
                ))
            }
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter22")),
            "Secret(<8 bytes>)"
        );
    }
}
