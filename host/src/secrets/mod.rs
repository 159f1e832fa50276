//! Per-provider secret storage: small values a plugin keeps between processes (a refresh
//! token), through the WIT `secrets` interface.
//!
//! Two stores, chosen by the configuration and never by fallback: the OS keyring
//! ([`keyring`](mod@keyring): Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows), the default; and a [`file`](mod@file) store (0600 in a 0700 directory under
//! `$XDG_DATA_HOME/tokenhost`), only when the provider or the administrator opted in with
//! `secret_store = "file"`. Where no keyring answers, a use fails and says how to opt in.
//!
//! A provider's values are one entry (a JSON object), written whole: a write replaces it
//! atomically. A [`SecretLock`] (a `flock` on a file beside the file store) serialises
//! the read-modify-write of two processes: a plugin that rotates a refresh token holds it
//! from reading the old token to storing the new one, so the second process reads the new
//! one. No value ever appears in an error, a log line or a `Debug`.

#[cfg(feature = "wasm")]
pub mod keyring;

pub mod file;
mod lock;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use lock::SecretLock;

/// The most bytes of secrets (keys and values) one provider may store, unless a policy
/// lowers it.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024;

/// Where a provider's secrets are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// The OS keyring (the default).
    #[default]
    Keyring,
    /// A 0600 file under `$XDG_DATA_HOME/tokenhost/secrets` (`secret_store = "file"`).
    File,
}

impl StoreKind {
    /// `keyring` or `file`, as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Keyring => "keyring",
            StoreKind::File => "file",
        }
    }
}

/// Why a secret could not be read or written. Names the provider and the cause, never a
/// value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// No keyring answered, and the file store was not opted into.
    #[error(
        "provider \"{provider}\": no OS keyring answers ({cause}); to keep secrets in a file \
         instead, set secret_store = \"file\" in the provider's [auth] table"
    )]
    NoKeyring {
        /// The provider.
        provider: String,
        /// What the keyring said.
        cause: String,
    },
    /// The keyring answered with an error.
    #[error("provider \"{provider}\": the OS keyring failed: {cause}")]
    Keyring {
        /// The provider.
        provider: String,
        /// What failed.
        cause: String,
    },
    /// The file store could not be read or written.
    #[error("provider \"{provider}\": the secret file store failed: {cause}")]
    File {
        /// The provider.
        provider: String,
        /// What failed (paths, OS errors; never a value).
        cause: String,
    },
    /// What is stored is not a secrets entry tokenhost wrote.
    #[error(
        "provider \"{provider}\": the stored secrets are unreadable ({cause}); run: tokenhost logout {provider}"
    )]
    Corrupt {
        /// The provider.
        provider: String,
        /// Why (never the content).
        cause: String,
    },
    /// The write would exceed the provider's storage cap.
    #[error("provider \"{provider}\": secrets would take {bytes} bytes, over the cap of {cap}")]
    TooLarge {
        /// The provider.
        provider: String,
        /// The size after the write.
        bytes: usize,
        /// The cap.
        cap: usize,
    },
    /// Another process held the provider's lock until the deadline.
    #[error("provider \"{provider}\": another tokenhost process held the secrets lock too long")]
    LockTimeout {
        /// The provider.
        provider: String,
    },
    /// The policy forbids the store the provider chose.
    #[error("provider \"{provider}\": the administrator's policy denies the {store} secret store")]
    Denied {
        /// The provider.
        provider: String,
        /// The store.
        store: &'static str,
    },
}

/// A provider's stored values. `Debug` shows the keys only.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretMap(BTreeMap<String, String>);

impl SecretMap {
    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Sets `key`.
    pub fn insert(&mut self, key: String, value: String) {
        self.0.insert(key, value);
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.0.remove(key).is_some()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The bytes the keys and values take (what the cap counts).
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl std::fmt::Debug for SecretMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// One provider's secret store: where, how much, and the lock.
#[derive(Debug, Clone)]
pub struct SecretStore {
    provider: Arc<str>,
    /// What the entry, its file and its lock are named by: the provider id, then `@` and
    /// the config's scope (see [`SecretsSpec::scope`](crate::config::SecretsSpec::scope)).
    name: Arc<str>,
    kind: StoreKind,
    /// `$XDG_DATA_HOME/tokenhost`: the file store and the locks.
    dir: PathBuf,
    max_bytes: usize,
}

impl SecretStore {
    /// The store of `kind` for `provider`, under the user's data directory.
    pub fn new(provider: Arc<str>, kind: StoreKind, max_bytes: usize) -> Self {
        Self::at(
            provider,
            kind,
            crate::paths::data_home().join("tokenhost"),
            max_bytes,
        )
    }

    /// The store of `kind` for `provider` with its files under `dir`.
    pub fn at(provider: Arc<str>, kind: StoreKind, dir: PathBuf, max_bytes: usize) -> Self {
        SecretStore {
            name: provider.clone(),
            provider,
            kind,
            dir,
            max_bytes,
        }
    }

    /// The same store, its entry kept apart from every other config's provider of the
    /// same id: `scope` names the config (empty = no scope).
    pub fn scoped(mut self, scope: &str) -> Self {
        if !scope.is_empty() {
            self.name = format!("{}@{scope}", self.provider).into();
        }
        self
    }

    /// The provider.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Which store.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The cap on the provider's stored bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Takes the provider's cross-process lock, waiting until `deadline` at most.
    /// Blocking: call it off the async executor.
    pub fn lock(&self, deadline: std::time::Instant) -> Result<SecretLock, SecretError> {
        SecretLock::acquire(&self.dir.join("locks"), &self.name, deadline).map_err(|e| match e {
            lock::LockError::Timeout => SecretError::LockTimeout {
                provider: self.provider.to_string(),
            },
            lock::LockError::Io(cause) => self.file_error(cause),
        })
    }

    /// Everything stored for the provider (empty when nothing is). Blocking.
    pub fn load(&self) -> Result<SecretMap, SecretError> {
        let text = match self.kind {
            StoreKind::File => file::read(&self.file_path()).map_err(|e| self.file_error(e))?,
            StoreKind::Keyring => self.keyring_read()?,
        };
        match text {
            None => Ok(SecretMap::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| SecretError::Corrupt {
                provider: self.provider.to_string(),
                cause: format!("not a JSON object of strings at line {}", e.line()),
            }),
        }
    }

    /// Replaces everything stored for the provider with `map` (deletes the entry when it
    /// is empty). Blocking.
    pub fn save(&self, map: &SecretMap) -> Result<(), SecretError> {
        let bytes = map.bytes();
        if bytes > self.max_bytes {
            return Err(SecretError::TooLarge {
                provider: self.provider.to_string(),
                bytes,
                cap: self.max_bytes,
            });
        }
        if map.is_empty() {
            return self.clear();
        }
        let text = serde_json::to_string(map).map_err(|_| SecretError::Corrupt {
            provider: self.provider.to_string(),
            cause: "cannot encode".into(),
        })?;
        match self.kind {
            StoreKind::File => file::write(
                &self.dir.join("secrets"),
                &self.file_path(),
                text.as_bytes(),
            )
            .map_err(|e| self.file_error(e)),
            StoreKind::Keyring => self.keyring_write(Some(&text)),
        }
    }

    /// Deletes everything stored for the provider (`tokenhost logout`). Blocking.
    pub fn clear(&self) -> Result<(), SecretError> {
        match self.kind {
            StoreKind::File => file::remove(&self.file_path()).map_err(|e| self.file_error(e)),
            StoreKind::Keyring => self.keyring_write(None),
        }
    }

    /// The provider's file in the file store.
    pub fn file_path(&self) -> PathBuf {
        self.dir
            .join("secrets")
            .join(format!("{}.json", file_stem(&self.name)))
    }

    #[cfg(feature = "wasm")]
    fn keyring_read(&self) -> Result<Option<String>, SecretError> {
        keyring::read(&self.provider, &self.name)
    }

    #[cfg(feature = "wasm")]
    fn keyring_write(&self, text: Option<&str>) -> Result<(), SecretError> {
        keyring::write(&self.provider, &self.name, text)
    }

    #[cfg(not(feature = "wasm"))]
    fn keyring_read(&self) -> Result<Option<String>, SecretError> {
        Err(self.no_keyring_feature())
    }

    #[cfg(not(feature = "wasm"))]
    fn keyring_write(&self, _: Option<&str>) -> Result<(), SecretError> {
        Err(self.no_keyring_feature())
    }

    #[cfg(not(feature = "wasm"))]
    fn no_keyring_feature(&self) -> SecretError {
        SecretError::NoKeyring {
            provider: self.provider.to_string(),
            cause: "this build has no keyring support (feature `wasm`)".into(),
        }
    }

    fn file_error(&self, cause: String) -> SecretError {
        SecretError::File {
            provider: self.provider.to_string(),
            cause,
        }
    }
}

/// A file name for `provider`: its safe characters, then 8 bytes of its SHA-256 so that
/// ids differing only in unsafe characters do not share a file.
pub(crate) fn file_stem(provider: &str) -> String {
    use sha2::Digest;
    let safe: String = provider
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(48)
        .collect();
    let digest = sha2::Sha256::digest(provider.as_bytes());
    format!("{safe}-{}", hex::encode(&digest[..8]))
}

#[cfg(all(test, unix))]
mod tests;
