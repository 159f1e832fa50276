//! What a plugin file is: its digest, size, exports and imports, without running it.
//!
//! `tokenhost inspect` prints this, so an administrator can pin a plugin by its SHA-256
//! and see what it asks for (an import of `wasi:http` means it wants the network), and
//! who signed it: each publisher signature and which of the keys that the policy and
//! the config name it verifies with.

use std::path::Path;

use super::bindings::CONTRACT_PACKAGE;
use super::engine::{PluginLoadError, PluginRuntime};
use crate::publisher::{PublisherKey, SignedPlugin};

/// A description of a plugin file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    /// The SHA-256 of the file, in hex (what a policy pins).
    pub sha256: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The contract version the plugin was built against, e.g. `tokenhost:plugin@0.1.0`,
    /// if it exports a `tokenhost:plugin` interface.
    pub contract: Option<String>,
    /// The interfaces and functions it exports.
    pub exports: Vec<String>,
    /// The interfaces and functions it imports.
    pub imports: Vec<String>,
    /// The SHA-256 of the file without its signature section (what a `sha256` deny
    /// entry also matches); the same as `sha256` for a file without one.
    pub unsigned_sha256: String,
    /// Each publisher signature, embedded first, then detached.
    pub signatures: Vec<SignatureInfo>,
    /// Signatures that could not be read (they count for nothing).
    pub signature_problems: Vec<String>,
}

/// One publisher signature of a plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignatureInfo {
    /// `embedded`, or `detached <path>`.
    pub origin: String,
    /// The key id stored with it, in hex (a hint: not authenticated).
    pub key_id: Option<String>,
    /// Whether it covers the file as it is (`false`: modified after signing).
    pub covers_content: bool,
    /// The named keys it verifies with (`policy <file> allow "<name>"`, ...).
    pub verified_by: Vec<String>,
}

/// Reads and compiles (through the cache) the plugin at `path` and describes it.
pub fn inspect(runtime: &PluginRuntime, path: &Path) -> Result<PluginInfo, PluginLoadError> {
    inspect_with_keys(runtime, path, &[])
}

/// Like [`inspect`], also checking each signature against `keys` (each with the label
/// that names where it comes from).
pub fn inspect_with_keys(
    runtime: &PluginRuntime,
    path: &Path,
    keys: &[(String, &PublisherKey)],
) -> Result<PluginInfo, PluginLoadError> {
    let bytes = super::plugin_file::read_plugin_file(path)?;
    let (component, sha256, _) = runtime.compile(path, &bytes)?;
    let signed = SignedPlugin::new(path, &bytes, sha256);
    let signatures = signed
        .signatures()
        .iter()
        .map(|signature| SignatureInfo {
            origin: signature.origin.to_string(),
            key_id: signature.key_id.clone(),
            covers_content: signature.covers_content,
            verified_by: keys
                .iter()
                .filter(|(_, key)| signed.verifies(key, signature))
                .map(|(label, _)| label.clone())
                .collect(),
        })
        .collect();
    let ty = component.component_type();
    let engine = runtime.engine();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let contract = exports.iter().find_map(|name| {
        let rest = name.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
        let (_, version) = rest.split_once('@')?;
        Some(format!("{CONTRACT_PACKAGE}@{version}"))
    });
    Ok(PluginInfo {
        sha256: hex::encode(sha256),
        size: bytes.len() as u64,
        contract,
        exports,
        imports,
        unsigned_sha256: hex::encode(signed.unsigned_sha256()),
        signatures,
        signature_problems: signed.problems().to_vec(),
    })
}
