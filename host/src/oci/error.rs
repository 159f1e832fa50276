//! [`OciError`]: why a plugin could not be had from its registry. Each variant names the
//! reference (the provider is named by the [`BuildError`](crate::BuildError) around it)
//! and carries nothing secret: credentials travel in headers that no message quotes,
//! and a registry's own words are cut to one short line.

use std::path::PathBuf;

/// A plugin could not be pulled, or what was pulled was refused. Nothing was compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The registry could not be reached (connection refused, DNS, TLS, a deadline, a
    /// 5xx) and no copy of the plugin is cached.
    #[error("{reference}: the registry is unreachable and nothing is cached ({reason})")]
    Unreachable {
        /// The reference, as written.
        reference: String,
        /// Why, one line.
        reason: String,
    },
    /// The registry answered, but not with the artifact: not found, access denied.
    #[error("{reference}: the registry refused: {reason}")]
    Registry {
        /// The reference, as written.
        reference: String,
        /// What it said, one line.
        reason: String,
    },
    /// Bytes received do not have the digest they were asked for by.
    #[error(
        "{reference}: the {what} does not match its digest (expected {expected}, got {actual})"
    )]
    DigestMismatch {
        /// The reference, as written.
        reference: String,
        /// `manifest received`, `plugin layer received` (neither is stored) or `stored
        /// plugin layer` (removed from the store).
        what: &'static str,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The manifest is not the CNCF wasm artifact layout (a config of media type
    /// `application/vnd.wasm.config.v0+json`, one layer of `application/wasm`).
    #[error("{reference}: not a wasm plugin artifact: {reason}")]
    NotWasm {
        /// The reference, as written.
        reference: String,
        /// Which media type or part is wrong.
        reason: String,
    },
    /// The plugin layer is over the size cap (declared in the manifest, or counted
    /// while downloading).
    #[error("{reference}: the plugin layer is {size} bytes{}, over the {max}-byte cap (oci_max_mb)", if *.declared { " by its manifest" } else { " or more" })]
    TooLarge {
        /// The reference, as written.
        reference: String,
        /// The size declared, or the bytes received when the download was stopped.
        size: u64,
        /// The cap.
        max: u64,
        /// Whether the manifest declared it (else it was counted).
        declared: bool,
    },
    /// The cache directory cannot be used or written.
    #[error("{reference}: cannot use the plugin cache {}: {reason}", .path.display())]
    Cache {
        /// The reference, as written.
        reference: String,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl OciError {
    /// Whether the registry could not be reached (a source failure, exit 1), rather
    /// than answering with something refused (a configuration problem, exit 2).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OciError::Unreachable { .. })
    }
}
