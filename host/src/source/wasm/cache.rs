//! The on-disk cache of compiled plugins.
//!
//! Compiling a plugin costs 30 ms (Rust) to seconds (JavaScript, Python); loading a
//! compiled artifact costs well under a millisecond. Entries live in
//! `$XDG_CACHE_HOME/tokenhost/compiled` (default `~/.cache/tokenhost/compiled`).
//!
//! # Whose compiled code may run
//!
//! `Component::deserialize` is `unsafe`: wasmtime runs the machine code in an artifact
//! as it is. An entry's name (the plugin's SHA-256) says which plugin it claims to be,
//! but nothing in an entry proves that it was compiled from those bytes: whoever can
//! write the cache directory decides what code runs under that plugin's name, with its
//! grants. So an entry is only as trustworthy as the directory it comes from:
//! - **Without a plugin allowlist** (no policy, or `plugins = "allow"`), the user decides
//!   what runs anyway, so the user's own cache ([`CompiledCache::default_location`],
//!   `$XDG_CACHE_HOME/tokenhost/compiled`) is used: only this user (and root) can write
//!   it. Another local user must not be able to: the directory must belong to this user
//!   and be writable by nobody else, and so must every ancestor (root-owned sticky
//!   directories such as `/tmp` aside), checked on open handles along the path (see
//!   `dir`), so no parent can be swapped for a symlink between the check and the read.
//! - **Under a plugin allowlist**, the user is the party the policy constrains, and the
//!   user can write their own cache: a forged entry there would run unapproved code under
//!   an approved plugin's digest. So the user's cache is never read. Compiled code comes
//!   from the administrator's cache ([`CompiledCache::admin`], [`ADMIN_CACHE_DIR`]),
//!   whose directory and ancestors must belong to root and be writable by nobody else;
//!   entries there are written only by `tokenhost precompile` run as root. Without such
//!   a cache, plugins are compiled in memory on every load (30 ms for a Rust plugin,
//!   seconds for JavaScript or Python: precompile those).
//!
//! Within a trusted directory:
//! - **The key names exactly what was compiled.** The file name is the SHA-256 of the
//!   exact bytes that were read and compiled (the same bytes the host hashed and the
//!   policy approved) and a hash of the engine's compilation settings
//!   (`Engine::precompile_compatibility_hash`). wasmtime also checks its version and
//!   settings in the artifact.
//! - **Entries are checked before use, without being read.** Each artifact has a
//!   check file beside it (its length, a checksum (XXH3-128), and the stamp of the
//!   artifact file when the checksum last matched: see `entry`). A truncated, corrupt or
//!   foreign file fails the check and is recompiled (and replaced, where this process may
//!   write), never deserialized. The check guards against accidents (a full disk, a
//!   crash), not against an attacker: that is the directory's job (above).
//! - **Artifacts are mapped, not read.** wasmtime maps the checked file through its open
//!   handle: a warm load of a 35 MB JavaScript artifact reads and copies nothing, and
//!   only the code that runs is paged in. Entries are never written in place, which is
//!   what makes mapping them safe (see `entry`).
//! - **Entries are read and written relative to the checked directory handle**, never
//!   through a symlink, and written atomically (a fresh temporary file, then rename).

#[cfg(unix)]
mod dir;
#[cfg(windows)]
#[path = "cache/dir_windows.rs"]
mod dir;
mod entry;
mod memo;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use dir::{CheckedDir, Owner};

/// The administrator's cache of compiled plugins, used under a plugin allowlist.
pub const ADMIN_CACHE_DIR: &str = "/var/cache/tokenhost/compiled";

/// Where compiled plugins are kept, if anywhere.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: Option<Arc<CheckedDir>>,
    owner: Option<Owner>,
}

/// Where a component came from, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
        let base = crate::paths::cache_home();
        Self::at(base.join("tokenhost").join("compiled"))
    }

    /// The user's cache in `dir`, created private (0700) if missing. Disabled, with a
    /// warning, if it cannot be created or it (or a parent) is not safe from other users.
    pub fn at(dir: PathBuf) -> Self {
        Self::open(&dir, Owner::CurrentUser, true)
    }

    /// The administrator's cache: `$TOKENHOST_ADMIN_CACHE` if set, else
    /// [`ADMIN_CACHE_DIR`]. It is used only if it and every parent belong to root and
    /// nobody else can write them (so pointing the variable elsewhere gains nothing), and
    /// it is written only by a process running as root. Missing: no cache (compile in
    /// memory); created only by [`CompiledCache::admin_for_writing`].
    pub fn admin() -> Self {
        let dir = Self::admin_dir();
        if !dir.exists() {
            return CompiledCache {
                dir: None,
                owner: Some(Owner::Root),
            };
        }
        Self::open(&dir, Owner::Root, false)
    }

    /// The administrator's cache, created if missing, for `tokenhost precompile`; an
    /// error says why it cannot be written.
    pub fn admin_for_writing() -> Result<Self, String> {
        let dir = Self::admin_dir();
        let checked = CheckedDir::open(&dir, Owner::Root, true)
            .map_err(|why| format!("{}: {why}", dir.display()))?;
        if !checked.writable() {
            return Err(format!(
                "{} belongs to root: run tokenhost precompile as root",
                checked.path().display()
            ));
        }
        Ok(CompiledCache {
            dir: Some(Arc::new(checked)),
            owner: Some(Owner::Root),
        })
    }

    fn admin_dir() -> PathBuf {
        crate::paths::non_empty_env("TOKENHOST_ADMIN_CACHE")
            .map_or_else(|| PathBuf::from(ADMIN_CACHE_DIR), PathBuf::from)
    }

    fn open(dir: &Path, owner: Owner, create: bool) -> Self {
        match CheckedDir::open(dir, owner, create) {
            Ok(checked) => CompiledCache {
                dir: Some(Arc::new(checked)),
                owner: Some(owner),
            },
            Err(reason) => {
                tracing::warn!(
                    "compiled-plugin cache disabled: {}: {reason}",
                    dir.display()
                );
                CompiledCache {
                    dir: None,
                    owner: Some(owner),
                }
            }
        }
    }

    /// No cache: every load compiles.
    pub fn disabled() -> Self {
        CompiledCache {
            dir: None,
            owner: None,
        }
    }

    /// The directory in use (canonical), if the cache is enabled.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref().map(CheckedDir::path)
    }

    /// Whether compiled code from this cache may run under a plugin allowlist: only the
    /// administrator's cache (or no cache at all) qualifies.
    pub fn trusted_by_admin(&self) -> bool {
        self.dir.is_none() || self.owner == Some(Owner::Root)
    }

    /// Returns the component for `wasm` (whose SHA-256 is `digest`), from the cache
    /// when a valid entry exists, else compiled (and then stored).
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
    ) -> wasmtime::Result<(Component, Origin)> {
        if let Some(component) = self.lookup(engine, digest) {
            return Ok((component, Origin::Cache));
        }
        Ok((self.compile(engine, wasm, digest)?, Origin::Compiled))
    }

    /// The cached component for the plugin whose SHA-256 is `digest`, if a valid entry
    /// exists: the plugin's bytes are not needed.
    pub(crate) fn lookup(&self, engine: &Engine, digest: &[u8; 32]) -> Option<Component> {
        let dir = self.dir.as_deref()?;
        read_entry(engine, dir, &entry_name(engine, digest))
    }

    /// Compiles `wasm` (whose SHA-256 is `digest`) and stores it, where this process may
    /// write the cache.
    pub(crate) fn compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
    ) -> wasmtime::Result<Component> {
        let component = Component::new(engine, wasm)?;
        if let Some(dir) = self.dir.as_deref().filter(|dir| dir.writable()) {
            let stored = component
                .serialize()
                .map_err(|e| e.to_string())
                .and_then(|artifact| entry::write(dir, &entry_name(engine, digest), &artifact));
            if let Err(e) = stored {
                tracing::warn!(
                    "could not store compiled plugin in {}: {e}",
                    dir.path().display()
                );
            }
        }
        Ok(component)
    }
}

impl CompiledCache {
    /// The digest remembered for the plugin file at `path` when it had `identity`, if
    /// this is the user's own cache on a platform whose file identity a user cannot set
    /// back (see `memo`). The caller uses it only when nothing judges the plugin's bytes.
    pub(crate) fn remembered_digest(&self, path: &Path, identity: &[u64; 7]) -> Option<[u8; 32]> {
        let dir = self.memo_dir()?;
        let bytes = dir.read(&memo::name(path)).ok()??;
        memo::decode(&bytes, identity)
    }

    /// Remembers that the plugin file at `path`, with `identity`, has `digest` (where
    /// [`remembered_digest`](Self::remembered_digest) would read it and this process may
    /// write). A failure only costs the next load a hash.
    pub(crate) fn remember_digest(&self, path: &Path, identity: &[u64; 7], digest: &[u8; 32]) {
        let Some(dir) = self.memo_dir().filter(|dir| dir.writable()) else {
            return;
        };
        let name = memo::name(path);
        if let Err(e) = dir.write(&name, &[&memo::encode(identity, digest)]) {
            tracing::debug!("cannot remember the digest of {}: {e}", path.display());
        }
    }

    fn memo_dir(&self) -> Option<&CheckedDir> {
        if cfg!(not(unix)) || self.owner != Some(Owner::CurrentUser) {
            return None;
        }
        self.dir.as_deref()
    }
}

impl CheckedDir {
    /// Reads entry `name`, a small one (a check file, a digest memo: at most
    /// [`SMALL_ENTRY_BYTES`] are read), if the directory trusts it (see `open_entry`).
    /// `None` if it does not exist; an error if it exists but must not be trusted.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        use std::io::Read;
        let Some(entry) = self.open_entry(name)? else {
            return Ok(None);
        };
        let mut data = Vec::new();
        entry
            .file
            .take(SMALL_ENTRY_BYTES)
            .read_to_end(&mut data)
            .map_err(|e| e.to_string())?;
        Ok(Some(data))
    }
}

/// The most read of a small entry: check files and memos are under 200 bytes.
const SMALL_ENTRY_BYTES: u64 = 64 << 10;

/// An entry's file name: the plugin's digest and the engine's compatibility hash.
fn entry_name(engine: &Engine, digest: &[u8; 32]) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_hash = hasher.0.finalize();
    // `v3`: the mapped format (a bare artifact and its check file; see `entry`), named
    // apart from older tokenhosts' entries so that both can share a cache.
    format!(
        "{}-{}.v3.cwasm",
        hex::encode(digest),
        hex::encode(&engine_hash[..8])
    )
}

fn read_entry(engine: &Engine, dir: &CheckedDir, name: &str) -> Option<Component> {
    let path = dir.path().join(name);
    let entry = match entry::open_checked(dir, name) {
        Ok(Some(entry)) => entry,
        Ok(None) => return None,
        Err(why) => {
            tracing::warn!(
                "ignoring compiled-plugin cache entry {}: {why}",
                path.display()
            );
            return None;
        }
    };
    let mappable = dir.mappable_path(name, &entry.file);
    // SAFETY: see the module comment. The directory and its parents passed the owner
    // checks on open handles; the entry was opened through that handle as a regular file
    // of the directory's owner, who writes entries only through `entry::write` from
    // `Component::serialize` for the key in their name, never in place; its check file
    // vouches for it (see `entry`); and what is mapped is that open file, not its name.
    let loaded = unsafe { Component::deserialize_file(engine, &mappable) };
    drop(entry);
    match loaded {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!("ignoring unusable cache entry {}: {e}", path.display());
            None
        }
    }
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

#[cfg(all(test, unix))]
mod tests;
