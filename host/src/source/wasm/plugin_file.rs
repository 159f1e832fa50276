//! Reading a plugin file, and remembering that its bytes were hashed and approved.
//!
//! A plugin is read once per load into memory, and those bytes are hashed, verified and
//! compiled: what was approved is what runs. Under a policy a client checks a provider
//! before asking a broker ([`SourceFactory::check`](crate::SourceFactory::check)) and
//! then, without a broker, builds it: [`Approved`] carries the first hash and verdict to
//! the build, which then neither reads nor hashes the file again when the file is
//! unchanged (same [`FileIdentity`]) and its compiled code is in the cache. That shortcut
//! cannot run unapproved code: the cache entry it loads is keyed by the approved digest,
//! and on a cache miss the bytes are read, hashed and compared with that digest again.

use std::fs::{File, Metadata};
use std::path::Path;

use super::engine::{MAX_PLUGIN_BYTES, PluginLoadError};

/// What identifies a plugin file's content without reading it: on Unix the device,
/// inode, size, and modification and change times (any write changes the change time);
/// elsewhere the size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileIdentity([u64; 7]);

impl FileIdentity {
    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileIdentity([
                meta.dev(),
                meta.ino(),
                meta.size(),
                meta.mtime() as u64,
                meta.mtime_nsec() as u64,
                meta.ctime() as u64,
                meta.ctime_nsec() as u64,
            ])
        }
        #[cfg(not(unix))]
        {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .unwrap_or_default();
            FileIdentity([
                meta.len(),
                modified.as_secs(),
                u64::from(modified.subsec_nanos()),
                0,
                0,
                0,
                0,
            ])
        }
    }
}

impl FileIdentity {
    /// The identity's fields, to be remembered with a digest.
    pub(crate) fn fields(&self) -> &[u64; 7] {
        &self.0
    }
}

/// What is known about a plugin file before it is loaded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Prior<'a> {
    /// Nothing: its bytes are read, hashed and verified.
    Unknown,
    /// An earlier check in this process hashed and approved it (see [`Approved`]).
    Approved(&'a Approved),
    /// Nothing judges its bytes (no policy, no pin): the digest remembered for the file
    /// as it is now may stand in for reading and hashing it, and a digest computed now
    /// is remembered (see the compiled cache's `memo`).
    Unjudged,
}

/// A plugin file whose bytes were hashed and approved (by the policy and the user's
/// pins) as the file was then.
#[derive(Debug, Clone)]
pub(crate) struct Approved {
    /// The file as it was when its bytes were read.
    pub(crate) identity: FileIdentity,
    /// The SHA-256 of those bytes.
    pub(crate) sha256: [u8; 32],
}

/// A plugin file opened for loading: a regular file (checked on the opened handle, so
/// a swap after the check cannot matter) of at most [`MAX_PLUGIN_BYTES`].
pub(crate) struct PluginFile<'a> {
    path: &'a Path,
    file: File,
    len: u64,
    identity: FileIdentity,
}

impl<'a> PluginFile<'a> {
    /// Opens `path` without reading it.
    pub(crate) fn open(path: &'a Path) -> Result<Self, PluginLoadError> {
        let read_error = |source| PluginLoadError::Read {
            path: path.to_path_buf(),
            source,
        };
        // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
        let file = crate::sys::open_without_waiting(std::fs::OpenOptions::new().read(true))
            .open(path)
            .map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        let file_type = meta.file_type();
        if !file_type.is_file() {
            let kind = crate::sys::file_kind(file_type);
            return Err(PluginLoadError::NotAFile {
                path: path.to_path_buf(),
                kind,
            });
        }
        if meta.len() > MAX_PLUGIN_BYTES {
            return Err(PluginLoadError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        Ok(PluginFile {
            path,
            file,
            len: meta.len(),
            identity: FileIdentity::of(&meta),
        })
    }

    /// The file as it was when opened.
    pub(crate) fn identity(&self) -> &FileIdentity {
        &self.identity
    }

    /// Reads the whole file through a bounded reader, so that a file that grows while
    /// being read cannot exhaust memory either.
    pub(crate) fn read(self) -> Result<Vec<u8>, PluginLoadError> {
        use std::io::Read;
        let mut bytes = Vec::with_capacity(self.len as usize);
        self.file
            .take(MAX_PLUGIN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| PluginLoadError::Read {
                path: self.path.to_path_buf(),
                source,
            })?;
        if bytes.len() as u64 > MAX_PLUGIN_BYTES {
            return Err(PluginLoadError::TooLarge {
                path: self.path.to_path_buf(),
            });
        }
        Ok(bytes)
    }
}

/// Reads a plugin file (see [`PluginFile`]).
pub(crate) fn read_plugin_file(path: &Path) -> Result<Vec<u8>, PluginLoadError> {
    PluginFile::open(path)?.read()
}

/// Reads a plugin file, with its identity as it was when opened.
pub(crate) fn read_identified(path: &Path) -> Result<(Vec<u8>, FileIdentity), PluginLoadError> {
    let file = PluginFile::open(path)?;
    let identity = file.identity.clone();
    Ok((file.read()?, identity))
}

/// Refuses what is not a WebAssembly component, naming the file.
pub(crate) fn check_header(path: &Path, bytes: &[u8]) -> Result<(), PluginLoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(PluginLoadError::NotWasm {
            path: path.to_path_buf(),
        });
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    if bytes[6..8] == [0, 0] {
        return Err(PluginLoadError::CoreModule {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_in_place_changes_the_identity_and_a_reread_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wasm");
        std::fs::write(&path, b"\0asm\x0d\0\x01\0one").unwrap();
        let (bytes, first) = read_identified(&path).unwrap();
        assert_eq!(bytes, b"\0asm\x0d\0\x01\0one");
        assert_eq!(PluginFile::open(&path).unwrap().identity(), &first);
        // Same length, new content, written in place: the change time moves on.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"\0asm\x0d\0\x01\0two").unwrap();
        assert_ne!(PluginFile::open(&path).unwrap().identity(), &first);
    }
}
