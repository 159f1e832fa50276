//! The WIT `secrets` interface: the provider's [`SecretStore`], with its lock taken on
//! the first use in a call and held to the call's end, so that a read-refresh-write by
//! one process cannot interleave with another's. Store calls block (D-Bus, fsync): they
//! run on tokio's blocking pool, bounded by the call's deadline.

use std::time::Instant;

use crate::secrets::{SecretError, SecretLock, SecretMap, SecretStore};

/// The longest key a plugin may use.
const KEY_MAX: usize = 128;

/// A provider's store as one instance reaches it.
pub(crate) struct SecretAccess {
    store: Result<SecretStore, SecretError>,
    lock: Option<SecretLock>,
    deadline: Instant,
}

impl SecretAccess {
    pub(crate) fn new(store: Result<SecretStore, SecretError>) -> Self {
        SecretAccess {
            store,
            lock: None,
            deadline: Instant::now(),
        }
    }

    pub(crate) fn begin_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.lock = None;
    }

    /// Releases the lock.
    pub(crate) fn end_call(&mut self) {
        self.lock = None;
    }

    /// Runs `f` on the stored map, under the lock; `f` returns the new map (if it
    /// changed) and the result.
    pub(crate) async fn with_map<T: Send + 'static>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut SecretMap) -> (bool, T) + Send + 'static,
    ) -> Result<T, String> {
        if key.is_empty() || key.len() > KEY_MAX || key.chars().any(char::is_control) {
            return Err(format!(
                "a secret key is 1 to {KEY_MAX} bytes with no control characters"
            ));
        }
        let store = self.store.clone().map_err(|e| e.to_string())?;
        let lock = self.lock.take();
        let deadline = self.deadline;
        let provider = store.provider().to_string();
        let work = tokio::task::spawn_blocking(move || {
            let lock = match lock {
                Some(lock) => lock,
                None => match store.lock(deadline) {
                    Ok(lock) => lock,
                    Err(e) => return (None, Err(e)),
                },
            };
            let result = store.load().and_then(|mut map| {
                let (changed, value) = f(&mut map);
                if changed {
                    store.save(&map)?;
                }
                Ok(value)
            });
            (Some(lock), result)
        });
        let wait = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, work).await {
            Ok(Ok((lock, result))) => {
                self.lock = lock;
                result.map_err(|e| {
                    tracing::warn!(provider, "{e}");
                    e.to_string()
                })
            }
            Ok(Err(_)) => Err(format!(
                "provider \"{provider}\": the secret store call failed"
            )),
            Err(_) => Err(format!(
                "provider \"{provider}\": the secret store did not answer before the deadline"
            )),
        }
    }

    pub(crate) async fn get(&mut self, key: String) -> Result<Option<String>, String> {
        let k = key.clone();
        self.with_map(&key, move |map| (false, map.get(&k).map(str::to_string)))
            .await
    }

    pub(crate) async fn set(&mut self, key: String, value: String) -> Result<(), String> {
        let k = key.clone();
        self.with_map(&key, move |map| {
            let changed = map.get(&k) != Some(value.as_str());
            map.insert(k, value);
            (changed, ())
        })
        .await
    }

    pub(crate) async fn delete(&mut self, key: String) -> Result<(), String> {
        let k = key.clone();
        self.with_map(&key, move |map| (map.remove(&k), ())).await
    }
}
