//! What a plugin file is: its digest, size, exports and imports, without running it.
//!
//! `tokenhost inspect` prints this, so an administrator can pin a plugin by its SHA-256
//! and see what it asks for (an import of `wasi:http` means it wants the network).

use std::path::Path;

use super::bindings::CONTRACT_PACKAGE;
use super::engine::{PluginLoadError, PluginRuntime};

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
}

/// Reads and compiles (through the cache) the plugin at `path` and describes it.
pub fn inspect(runtime: &PluginRuntime, path: &Path) -> Result<PluginInfo, PluginLoadError> {
    let bytes = super::engine::read_plugin_file(path)?;
    let (component, sha256, _) = runtime.compile(path, &bytes)?;
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
    })
}
