//! The OS keyring store, through the `keyring` crate (4.x): the Secret Service on Linux
//! (over D-Bus, e.g. gnome-keyring), Keychain on macOS, Credential Manager on Windows.
//! A provider's secrets are one entry: service `tokenhost`, user `provider:<id>@<scope>`,
//! the scope naming the config (see [`SecretsSpec::scope`](crate::config::SecretsSpec::scope)).
//!
//! Keyring calls are blocking (a D-Bus round trip); callers run them off the executor.

use super::SecretError;

/// The keyring service name of every entry tokenhost writes.
pub const SERVICE: &str = "tokenhost";

fn entry(provider: &str, name: &str) -> Result<keyring::Entry, SecretError> {
    keyring::Entry::new(SERVICE, &format!("provider:{name}")).map_err(|e| error(provider, e))
}

/// The entry `name` of `provider`, `None` if there is none.
pub fn read(provider: &str, name: &str) -> Result<Option<String>, SecretError> {
    match entry(provider, name)?.get_password() {
        Ok(text) => Ok(Some(text)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(error(provider, e)),
    }
}

/// Writes `provider`'s entry `name`, or deletes it (`None`; no error if absent).
pub fn write(provider: &str, name: &str, text: Option<&str>) -> Result<(), SecretError> {
    let entry = entry(provider, name)?;
    match text {
        Some(text) => entry.set_password(text).map_err(|e| error(provider, e)),
        None => match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(error(provider, e)),
        },
    }
}

/// The error for a keyring failure. The keyring's messages describe the store (no
/// service on the bus, a locked collection), never the value.
fn error(provider: &str, e: keyring::Error) -> SecretError {
    let provider = provider.to_string();
    match e {
        keyring::Error::NoDefaultStore => SecretError::NoKeyring {
            provider,
            cause: match keyring::Entry::store_status() {
                Err(cause) => cause.to_string(),
                Ok(()) => "no default store".into(),
            },
        },
        keyring::Error::NoStorageAccess(cause) => SecretError::NoKeyring {
            provider,
            cause: cause.to_string(),
        },
        other => SecretError::Keyring {
            provider,
            cause: other.to_string(),
        },
    }
}
