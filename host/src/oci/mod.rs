//! Plugins distributed as OCI artifacts: `plugin = "oci://registry/repository:tag"` (or
//! `@sha256:<digest>`) in a provider's `auth` table.
//!
//! Why a module of its own: pulling is the only network I/O tokenhost does on its own
//! behalf, and it must never weaken what a local file gets. So the pull ends where a
//! local plugin starts: the artifact's one `application/wasm` layer is verified against
//! its digest, stored by digest in the user's cache, and that file becomes the plugin's
//! path. From there the factory reads it, and the admin policy and the user's pins
//! judge the very bytes that are compiled, through the same code as any file (see
//! [`factory`](crate::SourceFactory)). Nothing here decides whether a plugin may run.
//!
//! - [`reference`](mod@reference): parsing `oci://` references, and the HTTPS-except-loopback rule (pure,
//!   in every build: the config parses references without the `wasm` feature).
//! - `store`: blobs, manifests and tag resolutions on disk, by digest, written atomically.
//! - `registry`: the registry protocol (the `oci-client` crate), with a deadline on every
//!   request and a size cap on every download.
//! - `credentials`: Docker's `config.json` (`auths`), for registries that need a login.
//! - `helper`: Docker credential helpers (`credHelpers`, `credsStore`), run only as the
//!   admin's command rule allows.
//! - `manifest`: which manifests are plugins (the wasm layout, and an optional layer of
//!   detached publisher signatures).
//! - `fetch`: the rules that tie them together: when a tag is resolved again, when the
//!   last good digest is used offline, which manifests are accepted.

//!
//! Logging: the `oci-client` crate logs a registry's token answer (a bearer token for
//! that registry) at debug level under the target `oci_client`. The `tokenhost` binary
//! caps that target at info; an application with its own `tracing` subscriber should add
//! `oci_client=info` to its filter.

pub mod reference;

#[cfg(feature = "wasm")]
mod credentials;
#[cfg(feature = "wasm")]
mod error;
#[cfg(feature = "wasm")]
mod fetch;
#[cfg(feature = "wasm")]
mod helper;
#[cfg(feature = "wasm")]
mod manifest;
#[cfg(feature = "wasm")]
mod registry;
#[cfg(feature = "wasm")]
mod store;

use std::time::Duration;

#[cfg(feature = "wasm")]
pub use error::OciError;
#[cfg(feature = "wasm")]
pub use fetch::{Pulled, Resolution, fetch, fetch_with};
#[cfg(feature = "wasm")]
pub use helper::CredentialHelpers;
#[cfg(feature = "wasm")]
pub use manifest::SIGNATURE_LAYER_MEDIA_TYPE;
pub use reference::{OciReference, ReferenceError};
#[cfg(feature = "wasm")]
pub use store::Store;

/// How often a tag is resolved again by default: one hour (`oci_refresh_ms`).
pub const DEFAULT_REFRESH_MS: u64 = 3_600_000;
/// The largest plugin layer pulled by default, in MiB (`oci_max_mb`).
pub const DEFAULT_MAX_MB: u64 = 64;

/// A plugin that comes from an OCI registry, as the config asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciSource {
    /// What to pull.
    pub reference: OciReference,
    /// How long a tag's resolution is trusted before the registry is asked again.
    pub refresh: Duration,
    /// The largest layer accepted, in bytes (the manifest's declared size and the bytes
    /// received are both held to it).
    pub max_bytes: u64,
}

impl OciSource {
    /// `reference` with the default refresh interval and size cap.
    pub fn new(reference: OciReference) -> Self {
        OciSource {
            reference,
            refresh: Duration::from_millis(DEFAULT_REFRESH_MS),
            max_bytes: DEFAULT_MAX_MB << 20,
        }
    }
}
