//! [`fetch`]: from an `oci://` reference to a verified plugin file in the [`Store`].
//!
//! The rules, in order:
//! 1. A digest reference, or a tag resolved less than `oci_refresh_ms` ago, whose
//!    manifest and layer are stored: no network at all.
//! 2. Otherwise the registry is asked (the tag resolved, the manifest fetched by
//!    digest, the layer downloaded). A manifest must be the CNCF wasm layout; the layer
//!    must be under the cap, declared and counted; every byte is verified against the
//!    digest it was asked for before it is stored under that digest.
//! 3. A registry that cannot be reached (down, a deadline, a 5xx) is not an error while
//!    the tag's last good digest is stored: that copy is used, with a warning. With
//!    nothing stored it is [`OciError::Unreachable`]. A registry that answers *no*
//!    (not found, denied, a wrong media type) is always an error: it is not down.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::manifest::{Artifact, Layer, artifact};
use super::registry::{Failure, Registry};
use super::store::{BlobKind, TagRecord};
use super::{CredentialHelpers, OciError, OciReference, OciSource, Store};

/// How the digest of a pulled plugin was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resolution {
    /// From the store, without asking the registry: a digest reference, or a tag
    /// resolved less than `oci_refresh_ms` ago.
    Cached,
    /// The registry was asked now.
    Registry,
    /// The registry could not be reached; the tag's last good digest was used.
    Offline {
        /// Why the registry could not be reached.
        reason: String,
    },
}

/// A plugin in the store, ready to be read like any local plugin file.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference it was pulled by.
    pub reference: OciReference,
    /// The manifest's digest (`sha256:<hex>`): what the tag resolved to.
    pub manifest: String,
    /// The plugin layer's digest (`sha256:<hex>`): what the bytes compiled must have.
    pub layer: String,
    /// The stored layer: the plugin file.
    pub path: PathBuf,
    /// The stored signature layer, if the artifact has one: a detached signature file
    /// for the plugin (see [`SignedPlugin::with_signature_files`](crate::publisher::SignedPlugin::with_signature_files)).
    pub signature: Option<PathBuf>,
    /// How the digest was decided.
    pub resolution: Resolution,
}

impl Pulled {
    /// The layer digest as bytes, to compare with the digest of the bytes compiled.
    pub fn layer_sha256(&self) -> [u8; 32] {
        let hex = self.layer.strip_prefix("sha256:").unwrap_or_default();
        let mut digest = [0u8; 32];
        // The digest was validated when the manifest was read.
        let _ = hex::decode_to_slice(hex, &mut digest);
        digest
    }

    /// The error for a stored layer whose bytes turned out not to have its digest; the
    /// file is removed, so that the next pull fetches it again.
    pub fn corrupted(&self, actual: &[u8; 32]) -> OciError {
        let _ = std::fs::remove_file(&self.path);
        OciError::DigestMismatch {
            reference: self.reference.to_string(),
            what: "stored plugin layer",
            expected: self.layer.clone(),
            actual: format!("sha256:{}", hex::encode(actual)),
        }
    }
}

/// The plugin `source` names, from `store` if it is fresh there, else from its registry
/// (see the module documentation). Blocks; safe to call inside or outside a Tokio
/// runtime (the registry is spoken to from a thread of its own).
///
/// `helpers` says which Docker credential helpers may be run for a registry login (the
/// admin policy's command rule, for the provider whose plugin this is).
pub fn fetch(
    source: &OciSource,
    store: &Store,
    helpers: CredentialHelpers<'_>,
) -> Result<Pulled, OciError> {
    fetch_with(source, store, helpers, false)
}

/// [`fetch`], and with `resolve_now` a tag is resolved even if its last resolution is
/// recent (what `tokenhost pull` does).
pub fn fetch_with(
    source: &OciSource,
    store: &Store,
    helpers: CredentialHelpers<'_>,
    resolve_now: bool,
) -> Result<Pulled, OciError> {
    let reference = &source.reference;
    store.prepare().map_err(|reason| OciError::Cache {
        reference: reference.to_string(),
        path: store.dir().to_path_buf(),
        reason,
    })?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if !resolve_now && let Some(pulled) = stored(source, store, now_ms)? {
        return Ok(pulled);
    }
    let run = || -> Result<Pulled, OciError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| OciError::Cache {
                reference: reference.to_string(),
                path: store.dir().to_path_buf(),
                reason: format!("cannot start an I/O runtime: {e}"),
            })?;
        runtime.block_on(from_registry(source, store, helpers, now_ms))
    };
    std::thread::scope(|scope| match scope.spawn(run).join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The plugin, if everything needed is stored and no resolution is due.
fn stored(source: &OciSource, store: &Store, now_ms: u64) -> Result<Option<Pulled>, OciError> {
    let reference = &source.reference;
    let manifest = match reference.digest() {
        Some(digest) => digest.to_string(),
        None => match store.tag(reference) {
            Some(record) if fresh(&record, source.refresh, now_ms) => record.manifest,
            _ => return Ok(None),
        },
    };
    let Some(body) = store.manifest(&manifest) else {
        return Ok(None);
    };
    let Artifact { plugin, signature } = artifact(&body, reference, source.max_bytes)?;
    let Some(path) = store.blob(BlobKind::Plugin, &plugin.digest) else {
        return Ok(None);
    };
    let signature = match signature {
        None => None,
        Some(layer) => match store.blob(BlobKind::Signature, &layer.digest) {
            Some(path) => Some(path),
            None => return Ok(None),
        },
    };
    Ok(Some(Pulled {
        reference: reference.clone(),
        manifest,
        layer: plugin.digest,
        path,
        signature,
        resolution: Resolution::Cached,
    }))
}

fn fresh(record: &TagRecord, refresh: Duration, now_ms: u64) -> bool {
    now_ms.saturating_sub(record.resolved_at_ms) < refresh.as_millis() as u64
        && record.resolved_at_ms <= now_ms
}

async fn from_registry(
    source: &OciSource,
    store: &Store,
    helpers: CredentialHelpers<'_>,
    now_ms: u64,
) -> Result<Pulled, OciError> {
    let reference = &source.reference;
    let text = reference.to_string();
    let credentials = super::credentials::for_registry(reference.registry(), helpers).await;
    let registry = Registry::new(reference, credentials.map(|c| (c.user, c.password)))
        .map_err(|f| failure(&text, f, source.max_bytes))?;
    let cache_error = |path, e| cache_error(&text, path, e);

    // 1. The manifest digest: written, or the tag resolved now (else its last good one).
    let (manifest, resolution) = match (reference.digest(), reference.tag()) {
        (Some(digest), _) => (digest.to_string(), Resolution::Registry),
        (None, tag) => {
            let tag = tag.unwrap_or("latest");
            match registry.manifest(tag).await {
                Ok((body, digest)) => {
                    // Only a plugin artifact is remembered as the tag's last good digest.
                    artifact(&body, reference, source.max_bytes)?;
                    store
                        .put_manifest(&digest, &body)
                        .map_err(|e| cache_error(store.dir().to_path_buf(), e))?;
                    let record = TagRecord {
                        reference: text.clone(),
                        manifest: digest.clone(),
                        resolved_at_ms: now_ms,
                    };
                    store
                        .put_tag(reference, &record)
                        .map_err(|e| cache_error(store.dir().to_path_buf(), e))?;
                    (digest, Resolution::Registry)
                }
                Err(Failure::Unreachable(reason)) => match store.tag(reference) {
                    Some(record) => {
                        tracing::warn!(
                            "{text}: the registry is unreachable ({reason}); using the last \
                             good digest {}",
                            record.manifest
                        );
                        (record.manifest, Resolution::Offline { reason })
                    }
                    None => {
                        return Err(OciError::Unreachable {
                            reference: text.clone(),
                            reason,
                        });
                    }
                },
                Err(other) => return Err(failure(&text, other, source.max_bytes)),
            }
        }
    };

    // 2. The manifest itself, stored or fetched by digest and verified.
    let body = match store.manifest(&manifest) {
        Some(body) => body,
        None => {
            let (body, actual) = registry
                .manifest(&manifest)
                .await
                .map_err(|f| failure(&text, f, source.max_bytes))?;
            if actual != manifest {
                return Err(OciError::DigestMismatch {
                    reference: text.clone(),
                    what: "manifest received",
                    expected: manifest,
                    actual,
                });
            }
            store
                .put_manifest(&manifest, &body)
                .map_err(|e| cache_error(store.dir().to_path_buf(), e))?;
            body
        }
    };
    let Artifact { plugin, signature } = artifact(&body, reference, source.max_bytes)?;

    // 3. The layers, stored or downloaded, counted and verified before they get a name.
    let path = layer(
        &registry,
        store,
        &text,
        BlobKind::Plugin,
        &plugin,
        source.max_bytes,
    )
    .await?;
    let signature = match signature {
        Some(signature) => Some(
            layer(
                &registry,
                store,
                &text,
                BlobKind::Signature,
                &signature,
                signature.size,
            )
            .await?,
        ),
        None => None,
    };
    Ok(Pulled {
        reference: reference.clone(),
        manifest,
        layer: plugin.digest,
        path,
        signature,
        resolution,
    })
}

/// The stored file of `layer`: found in the store, or downloaded now (at most `cap`
/// bytes, verified against its digest, then renamed into place).
async fn layer(
    registry: &Registry,
    store: &Store,
    reference: &str,
    kind: BlobKind,
    layer: &Layer,
    cap: u64,
) -> Result<PathBuf, OciError> {
    if let Some(path) = store.blob(kind, &layer.digest) {
        return Ok(path);
    }
    let cache_error = |path, e| cache_error(reference, path, e);
    let partial = store
        .new_blob()
        .map_err(|e| cache_error(store.dir().to_path_buf(), e))?;
    let file = partial
        .reopen()
        .map_err(|e| cache_error(partial.path().to_path_buf(), e))?;
    let mut file = tokio::fs::File::from_std(file);
    match registry.download(&layer.digest, cap, &mut file).await {
        Ok(()) => {}
        Err(Failure::Digest(actual)) => {
            return Err(OciError::DigestMismatch {
                reference: reference.to_string(),
                what: match kind {
                    BlobKind::Plugin => "plugin layer received",
                    BlobKind::Signature => "signature layer received",
                },
                expected: layer.digest.clone(),
                actual,
            });
        }
        // `partial` is dropped on the way out: nothing half-written stays.
        Err(other) => return Err(failure(reference, other, cap)),
    }
    drop(file);
    store
        .commit_blob(partial, kind, &layer.digest)
        .map_err(|e| cache_error(store.blob_path(kind, &layer.digest), e))
}

/// The store at `path` could not be written or read while pulling `reference`.
fn cache_error(reference: &str, path: PathBuf, e: std::io::Error) -> OciError {
    OciError::Cache {
        reference: reference.to_string(),
        path,
        reason: e.to_string(),
    }
}

fn failure(reference: &str, failure: Failure, max: u64) -> OciError {
    let reference = reference.to_string();
    match failure {
        Failure::Unreachable(reason) => OciError::Unreachable { reference, reason },
        Failure::Refused(reason) => OciError::Registry { reference, reason },
        Failure::TooLarge(size) => OciError::TooLarge {
            reference,
            size,
            max,
            declared: false,
        },
        // Only a download reports a digest, and its caller handles it; kept total.
        Failure::Digest(actual) => OciError::DigestMismatch {
            reference,
            what: "plugin layer received",
            expected: String::from("the manifest's"),
            actual,
        },
        Failure::Io(e) => OciError::Cache {
            reference,
            path: PathBuf::new(),
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_resolution_is_fresh_for_the_refresh_interval() {
        let record = |at| TagRecord {
            reference: String::new(),
            manifest: String::new(),
            resolved_at_ms: at,
        };
        let hour = Duration::from_secs(3600);
        assert!(fresh(&record(1_000), hour, 1_000));
        assert!(fresh(&record(1_000), hour, 3_600_999));
        assert!(!fresh(&record(1_000), hour, 3_601_000));
        // A resolution from the future (a clock set back) is not trusted.
        assert!(!fresh(&record(5_000), hour, 1_000));
        assert!(!fresh(&record(1_000), Duration::ZERO, 1_000));
    }
}
