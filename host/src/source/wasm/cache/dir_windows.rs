//! The compiled cache's directory on Windows: the user's own cache only.
//!
//! Windows has no `openat`: entries are opened by path, refusing reparse points
//! (junctions, symbolic links) on the directory and on each entry. The user's cache lives
//! under `%LOCALAPPDATA%`, whose inherited ACL admits only the user, SYSTEM and
//! administrators. An administrator's cache (a directory only an administrator can
//! change, whose entries the policy may trust) is not supported on Windows yet: opening
//! one fails, so under a policy that restricts plugins a plugin is compiled in memory.
//! What one needs (an ACL-based trust test of the directory and its parents, a protected
//! DACL made by `precompile`, checks on handles) is listed in the README's Windows
//! section.

use std::fs::{self, File};
use std::io::Write;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::entry::{OpenEntry, Stamp};

/// Who must own a cache directory for its entries to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// The user running tokenhost (the user's own cache).
    CurrentUser,
    /// An administrator (not supported on Windows yet).
    Root,
}

/// An open, checked cache directory.
#[derive(Debug)]
pub(super) struct CheckedDir {
    path: PathBuf,
}

/// The largest entry read (a compiled 18 MB Python plugin is ~40 MB).
const MAX_ENTRY_BYTES: u64 = 512 << 20;

const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;

fn is_reparse_point(meta: &fs::Metadata) -> bool {
    meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0
}

impl CheckedDir {
    /// Opens the user's cache at `path` (created if `create`); refuses a reparse point
    /// and an administrator's cache.
    pub(super) fn open(path: &Path, owner: Owner, create: bool) -> Result<Self, String> {
        if owner == Owner::Root {
            return Err("an administrator's compiled cache is not supported on Windows".into());
        }
        if create {
            fs::create_dir_all(path).map_err(|e| e.to_string())?;
        }
        let meta = fs::symlink_metadata(path).map_err(|e| e.to_string())?;
        if is_reparse_point(&meta) {
            return Err("is a junction or symbolic link".into());
        }
        if !meta.is_dir() {
            return Err("is not a directory".into());
        }
        Ok(CheckedDir {
            path: path.to_path_buf(),
        })
    }

    /// The directory's path, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process may write entries: the user's cache is the user's.
    pub(super) fn writable(&self) -> bool {
        true
    }

    /// Opens entry `name` without reading it, if it is a regular file of at most
    /// [`MAX_ENTRY_BYTES`]. `None` if it does not exist. It has no stamp: a user can set
    /// every time on a Windows file, so an artifact's checksum is checked on every load.
    pub(super) fn open_entry(&self, name: &str) -> Result<Option<OpenEntry>, String> {
        let path = self.path.join(name);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if is_reparse_point(&meta) || !meta.is_file() {
            return Err("is not a regular file".into());
        }
        if meta.len() > MAX_ENTRY_BYTES {
            return Err(format!("is larger than {} MiB", MAX_ENTRY_BYTES >> 20));
        }
        // Others may read but not write it while it is open (and mapped).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ)
            .open(&path)
            .map_err(|e| e.to_string())?;
        Ok(Some(OpenEntry {
            len: meta.len(),
            file,
            stamp: None,
        }))
    }

    /// Writes entry `name` atomically from `parts`, in order.
    pub(super) fn write(&self, name: &str, parts: &[&[u8]]) -> Result<Option<Stamp>, String> {
        let mut file = tempfile::NamedTempFile::new_in(&self.path).map_err(|e| e.to_string())?;
        parts
            .iter()
            .try_for_each(|part| file.write_all(part))
            .and_then(|()| file.as_file().sync_data())
            .map_err(|e| e.to_string())?;
        file.persist(self.path.join(name))
            .map_err(|e| e.error.to_string())?;
        Ok(None)
    }

    /// A path by which wasmtime can map entry `name` (open as `_file`, which keeps
    /// others from writing it).
    pub(super) fn mappable_path(&self, name: &str, _file: &File) -> PathBuf {
        self.path.join(name)
    }
}

const FILE_SHARE_READ: u32 = 1;
