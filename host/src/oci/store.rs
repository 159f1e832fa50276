//! [`Store`]: pulled plugins on disk, by digest, in a private directory
//! (`$XDG_CACHE_HOME/tokenhost/oci`, 0700).
//!
//! ```text
//! oci/blobs/sha256/<hex>.wasm        a plugin layer, named by its digest
//! oci/blobs/sha256/<hex>.sig         a signature layer (wasmsign2 detached signatures)
//! oci/manifests/sha256/<hex>.json    a manifest, named by its digest
//! oci/tags/<sha256 of the reference>.json   a tag's last good resolution and when
//! ```
//!
//! Every file is written to a temporary file in the same directory and renamed into
//! place once complete (and, for content, verified): a crash or a refused download
//! leaves no half-written entry under a real name. Names come only from digests that
//! [`parse_digest`](super::reference::parse_digest) accepted, never from a registry's
//! text as is. A stored blob is not trusted for being here: the factory checks the
//! digest of the bytes it compiles against the manifest (and the policy judges them).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use super::OciReference;

/// What a stored layer holds, which gives its file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobKind {
    /// The plugin (`.wasm`).
    Plugin,
    /// Detached publisher signatures (`.sig`).
    Signature,
}

/// The on-disk cache of pulled plugins (see the module documentation).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A tag's last good resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TagRecord {
    /// The reference it resolves (for a person reading the file).
    pub(crate) reference: String,
    /// The manifest digest the tag pointed to.
    pub(crate) manifest: String,
    /// When the registry said so, in Unix milliseconds.
    pub(crate) resolved_at_ms: u64,
}

impl Store {
    /// The user's store: `$XDG_CACHE_HOME/tokenhost/oci` (`~/.cache/tokenhost/oci`).
    /// Nothing is touched until something is read or written.
    pub fn default_location() -> Store {
        Store::at(crate::paths::cache_home().join("tokenhost").join("oci"))
    }

    /// A store in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the private directory (0700) if missing, and checks that it is ours and
    /// no one else can write to it: a blob another user could swap would be compiled.
    pub(crate) fn prepare(&self) -> Result<(), String> {
        crate::paths::prepare_private_dir(&self.dir).map_err(|e| e.to_string())?;
        for sub in ["blobs/sha256", "manifests/sha256", "tags"] {
            std::fs::create_dir_all(self.dir.join(sub)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Where the layer of `kind` with `digest` (`sha256:<hex>`, already validated) lives.
    pub(crate) fn blob_path(&self, kind: BlobKind, digest: &str) -> PathBuf {
        let extension = match kind {
            BlobKind::Plugin => "wasm",
            BlobKind::Signature => "sig",
        };
        self.dir
            .join("blobs/sha256")
            .join(format!("{}.{extension}", hex_of(digest)))
    }

    /// The stored layer of `kind` with `digest`, if there is one.
    pub(crate) fn blob(&self, kind: BlobKind, digest: &str) -> Option<PathBuf> {
        let path = self.blob_path(kind, digest);
        path.is_file().then_some(path)
    }

    /// A temporary file beside the blobs, to download into; removed when dropped unless
    /// [`commit_blob`](Self::commit_blob) renames it into place.
    pub(crate) fn new_blob(&self) -> std::io::Result<NamedTempFile> {
        tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(self.dir.join("blobs/sha256"))
    }

    /// Renames a complete, verified download into place under its digest.
    pub(crate) fn commit_blob(
        &self,
        file: NamedTempFile,
        kind: BlobKind,
        digest: &str,
    ) -> std::io::Result<PathBuf> {
        let path = self.blob_path(kind, digest);
        file.as_file().sync_all()?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(path)
    }

    /// The stored manifest with `digest`, if there is one and its bytes still have it.
    pub(crate) fn manifest(&self, digest: &str) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.manifest_path(digest)).ok()?;
        (sha256_digest(&bytes) == digest).then_some(bytes)
    }

    /// Stores a manifest whose digest was verified.
    pub(crate) fn put_manifest(&self, digest: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.write_atomically(&self.manifest_path(digest), bytes)
    }

    /// The last good resolution of `reference`'s tag, if any.
    pub(crate) fn tag(&self, reference: &OciReference) -> Option<TagRecord> {
        let bytes = std::fs::read(self.tag_path(reference)).ok()?;
        let record: TagRecord = serde_json::from_slice(&bytes).ok()?;
        // A record is only as good as the digest in it.
        super::reference::parse_digest(&record.manifest).ok()?;
        Some(record)
    }

    /// Records a tag's resolution.
    pub(crate) fn put_tag(
        &self,
        reference: &OciReference,
        record: &TagRecord,
    ) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        self.write_atomically(&self.tag_path(reference), &json)
    }

    fn manifest_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("manifests/sha256")
            .join(format!("{}.json", hex_of(digest)))
    }

    /// One file per registry, repository and tag; the name is a digest of them, so no
    /// character of a reference ends up in a path.
    fn tag_path(&self, reference: &OciReference) -> PathBuf {
        let key = format!(
            "{}/{}:{}",
            reference.registry(),
            reference.repository(),
            reference.tag().unwrap_or_default()
        );
        let name = hex_of(&sha256_digest(key.as_bytes())).to_string();
        self.dir.join("tags").join(format!("{name}.json"))
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(&self.dir);
        let mut file = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(dir)?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(bytes).into();
    format!("sha256:{}", hex::encode(digest))
}

/// The hex part of a validated `sha256:<hex>` digest.
fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_written_whole_and_read_back_only_if_they_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("oci"));
        store.prepare().unwrap();
        let manifest = br#"{"schemaVersion":2}"#;
        let digest = sha256_digest(manifest);
        store.put_manifest(&digest, manifest).unwrap();
        assert_eq!(store.manifest(&digest).as_deref(), Some(&manifest[..]));
        // A manifest changed on disk is not returned.
        std::fs::write(store.manifest_path(&digest), b"{}").unwrap();
        assert_eq!(store.manifest(&digest), None);

        // A download that is dropped leaves nothing behind; a committed one is in place.
        let blob_dir = dir.path().join("oci/blobs/sha256");
        drop(store.new_blob().unwrap());
        assert_eq!(std::fs::read_dir(&blob_dir).unwrap().count(), 0);
        let mut file = store.new_blob().unwrap();
        file.write_all(b"wasm").unwrap();
        let blob_digest = sha256_digest(b"wasm");
        let path = store
            .commit_blob(file, BlobKind::Plugin, &blob_digest)
            .unwrap();
        assert_eq!(
            store.blob(BlobKind::Plugin, &blob_digest),
            Some(path.clone())
        );
        assert_eq!(std::fs::read_dir(&blob_dir).unwrap().count(), 1);

        let reference = OciReference::parse("oci://127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(store.tag(&reference), None);
        let record = TagRecord {
            reference: reference.to_string(),
            manifest: digest.clone(),
            resolved_at_ms: 7,
        };
        store.put_tag(&reference, &record).unwrap();
        assert_eq!(store.tag(&reference), Some(record));
        let other = OciReference::parse("oci://127.0.0.1:5000/a/b:v2").unwrap();
        assert_eq!(store.tag(&other), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_store_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("oci"));
        store.prepare().unwrap();
        let mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A store another user could write to is refused.
        std::fs::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(store.prepare().is_err());
    }
}
