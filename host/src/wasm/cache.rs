//! The on-disk cache of compiled plugins.
//!
//! Compiling a plugin costs 30 ms (Rust) to seconds (JavaScript, Python); loading a
//! compiled artifact costs well under a millisecond. Entries live in
//! `$XDG_CACHE_HOME/tokenhost/compiled` (default `~/.cache/tokenhost/compiled`).
//!
//! # Why deserializing these entries is sound
//!
//! `Component::deserialize` is `unsafe`: wasmtime runs the machine code in an artifact
//! as it is, so an artifact must come from wasmtime's own compiler, for this engine, and
//! arrive intact. This cache guarantees that as follows:
//! - **Only this user writes entries.** The cache directory is created with mode 0700;
//!   a directory that is not owned by this user or that others can write to is not
//!   used (the cache is disabled with a warning). Whoever can write there can already
//!   run code as this user.
//! - **The key names exactly what was compiled.** The file name is the SHA-256 of the
//!   exact bytes that were read and compiled (the same bytes the host hashed, so there
//!   is no window between check and use) and a hash of the engine's compilation
//!   settings (`Engine::precompile_compatibility_hash`). A changed plugin or engine is
//!   a different key. wasmtime also checks its version and settings in the artifact.
//! - **Entries are checked before use.** Each entry starts with a magic string and a
//!   checksum (XXH3-128) of the artifact that follows; a truncated, corrupt or foreign
//!   file fails the check and is recompiled and replaced, never deserialized. The
//!   checksum guards against accidents (a full disk, a crash), not against an attacker,
//!   who would need to write in a directory only this user can write to (see above):
//!   so it is a fast one. SHA-256 over a 37 MB entry (a compiled JavaScript plugin) was
//!   a fifth of the time of a cached load.
//! - **Entries are written atomically** (a temporary file in the same directory, then
//!   rename), so a reader never sees half an entry.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"tokenhost-cwasm2";
/// The length of the checksum after [`MAGIC`].
const CHECKSUM_LEN: usize = 16;

/// Where compiled plugins are kept, if anywhere.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: Option<PathBuf>,
}

/// Where a component came from, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from a cached artifact.
    Cache,
    /// Compiled now (and stored, if the cache is enabled).
    Compiled,
}

impl CompiledCache {
    /// The cache in the default location: `$XDG_CACHE_HOME/tokenhost/compiled`, else
    /// `~/.cache/tokenhost/compiled`.
    pub fn default_location() -> Self {
        let base = crate::config::non_empty_env("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::config::home_dir().join(".cache"));
        Self::at(base.join("tokenhost").join("compiled"))
    }

    /// A cache in `dir`, created private (0700) if missing. Disabled, with a warning,
    /// if it cannot be created or is not private to this user.
    pub fn at(dir: PathBuf) -> Self {
        match prepare_private_dir(&dir) {
            Ok(()) => CompiledCache { dir: Some(dir) },
            Err(reason) => {
                tracing::warn!(
                    "compiled-plugin cache disabled: {}: {reason}",
                    dir.display()
                );
                CompiledCache { dir: None }
            }
        }
    }

    /// No cache: every load compiles.
    pub fn disabled() -> Self {
        CompiledCache { dir: None }
    }

    /// The directory in use, if the cache is enabled.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Returns the component for `wasm` (whose SHA-256 is `digest`), from the cache
    /// when a valid entry exists, else compiled (and then stored).
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
    ) -> wasmtime::Result<(Component, Origin)> {
        let Some(path) = self.entry_path(engine, digest) else {
            return Ok((Component::new(engine, wasm)?, Origin::Compiled));
        };
        if let Some(component) = self.read_entry(engine, &path) {
            return Ok((component, Origin::Cache));
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.write_entry(&component, &path) {
            tracing::warn!("could not store compiled plugin in {}: {e}", path.display());
        }
        Ok((component, Origin::Compiled))
    }

    fn entry_path(&self, engine: &Engine, digest: &[u8; 32]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hasher.0.finalize();
        Some(dir.join(format!(
            "{}-{}.cwasm",
            hex::encode(digest),
            hex::encode(&engine_hash[..8])
        )))
    }

    fn read_entry(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let data = fs::read(path).ok()?;
        let checked = data
            .strip_prefix(MAGIC.as_slice())
            .filter(|rest| rest.len() > CHECKSUM_LEN)
            .map(|rest| rest.split_at(CHECKSUM_LEN))
            .filter(|(sum, artifact)| checksum(artifact) == *sum);
        let Some((_, artifact)) = checked else {
            tracing::warn!(
                "ignoring corrupt compiled-plugin cache entry {}",
                path.display()
            );
            return None;
        };
        // SAFETY: see the module comment. The directory is private to this user, the
        // entry was written by `write_entry` from `Component::serialize` for the key in
        // its name, and its checksum matched just now, on the bytes we deserialize.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!("ignoring unusable cache entry {}: {e}", path.display());
                None
            }
        }
    }

    fn write_entry(&self, component: &Component, path: &Path) -> anyhow::Result<()> {
        let artifact = component.serialize().map_err(anyhow::Error::from)?;
        let dir = path.parent().expect("entries live in the cache dir");
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(MAGIC)?;
        file.write_all(&checksum(&artifact))?;
        file.write_all(&artifact)?;
        file.as_file().sync_data()?;
        file.persist(path)?;
        Ok(())
    }
}

/// The checksum stored before an artifact.
fn checksum(artifact: &[u8]) -> [u8; CHECKSUM_LEN] {
    xxhash_rust::xxh3::xxh3_128(artifact).to_le_bytes()
}

/// Creates `dir` (mode 0700) if needed, and checks that it is a directory owned by
/// this user that nobody else can write to.
fn prepare_private_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a directory".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(format!(
            "owned by uid {}, not this user ({uid})",
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "writable by others (mode {:o}); run chmod 700 on it",
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

/// Feeds `Hash` output into SHA-256, for a key that is stable across processes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(std::array::from_fn(|i| digest[i]))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_dir_and_refuses_a_shared_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/compiled");
        let cache = CompiledCache::at(dir.clone());
        assert_eq!(cache.dir(), Some(dir.as_path()));
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(CompiledCache::at(dir.clone()).dir(), None);

        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert_eq!(CompiledCache::at(file).dir(), None);
    }
}
