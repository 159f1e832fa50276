//! One compiled entry on disk: the artifact, mapped rather than read, and the check file
//! beside it that says the artifact is intact.
//!
//! An entry is two files in the checked directory:
//! - `<key>.cwasm`: exactly what `Component::serialize` produced, so that wasmtime maps
//!   it: nothing is read or copied, and only the pages that run (and the memory image
//!   pages that a guest touches) are ever loaded;
//! - `<key>.cwasm.check`: a magic string, the artifact's length and checksum
//!   (XXH3-128), and the artifact file's stamp (device, inode, size, modification and
//!   change times) from when that checksum was last found to match it.
//!
//! A load compares the artifact's stamp with the one in its check file. Equal: the file
//! has not been written since its checksum matched, so it is mapped without being read
//! (the warm path reads nothing proportional to the plugin's size). Different (a cache
//! copied elsewhere, a file written in place, two processes that stored the same entry
//! at once): the artifact is read once as a stream (no copy is kept) to compute its
//! checksum; a mismatch is a corrupt entry (recompiled and replaced), a match stamps the
//! check file again where this process may write. Like the checksum, the stamp guards
//! against accidents (a crash, a full disk, a stray write), not against an attacker:
//! keeping others out of the directory is the owner check's job (see `dir`).
//!
//! # Why mapping is safe
//! wasmtime requires that a mapped artifact not change while it is mapped: its code runs
//! from the mapping. tokenhost never writes an entry in place: a new entry is a new file
//! renamed over the old name, so a file that is mapped keeps its content (the mapping
//! holds the old inode, which the rename only unlinks). The directory belongs to the
//! user (or root, for the administrator's cache) and nobody else can write in it; the
//! owner could write into a mapped artifact in place, but the owner can already run any
//! code as themselves.

use std::fs::File;
use std::io::Read;

use super::dir::CheckedDir;

/// What identifies a file's content without reading it (see the module comment).
pub(super) type Stamp = [u64; 7];

/// An entry opened, not read, after the directory's checks on its type and owner.
pub(super) struct OpenEntry {
    /// The open file (kept open while wasmtime maps it).
    pub(super) file: File,
    /// Its length in bytes.
    pub(super) len: u64,
    /// Its stamp, where the platform gives one that a user cannot set back.
    pub(super) stamp: Option<Stamp>,
}

const CHECK_MAGIC: &[u8; 16] = b"tokenhost-check1";
const CHECKSUM_LEN: usize = 16;
const STAMP_LEN: usize = 7 * 8;
const CHECK_FILE_LEN: usize = CHECK_MAGIC.len() + 8 + CHECKSUM_LEN + 1 + STAMP_LEN;

/// The contents of a check file.
#[derive(Debug, PartialEq, Eq)]
struct CheckFile {
    len: u64,
    checksum: [u8; CHECKSUM_LEN],
    stamp: Option<Stamp>,
}

impl CheckFile {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHECK_FILE_LEN);
        out.extend_from_slice(CHECK_MAGIC);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.checksum);
        out.push(u8::from(self.stamp.is_some()));
        for field in self.stamp.unwrap_or_default() {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != CHECK_FILE_LEN {
            return None;
        }
        let rest = bytes.strip_prefix(CHECK_MAGIC.as_slice())?;
        let (len, rest) = rest.split_at(8);
        let (checksum, rest) = rest.split_at(CHECKSUM_LEN);
        let (has_stamp, rest) = rest.split_at(1);
        let word = |i: usize| u64::from_le_bytes(rest[i * 8..i * 8 + 8].try_into().unwrap());
        Some(CheckFile {
            len: u64::from_le_bytes(len.try_into().ok()?),
            checksum: checksum.try_into().ok()?,
            stamp: match has_stamp[0] {
                0 => None,
                1 => Some(std::array::from_fn(word)),
                _ => return None,
            },
        })
    }
}

/// The name of the check file of entry `name`.
fn check_name(name: &str) -> String {
    format!("{name}.check")
}

/// Opens entry `name` and makes sure that it is intact (see the module comment):
/// `None` if there is no entry, an error (for a log line) if it must not be used.
pub(super) fn open_checked(dir: &CheckedDir, name: &str) -> Result<Option<OpenEntry>, String> {
    let Some(entry) = dir.open_entry(name)? else {
        return Ok(None);
    };
    let check = dir.read(&check_name(name))?.ok_or("it has no check file")?;
    let check = CheckFile::decode(&check).ok_or("its check file is corrupt")?;
    if check.len != entry.len {
        return Err("corrupt (not the length its check file says)".into());
    }
    if entry.stamp.is_some() && entry.stamp == check.stamp {
        return Ok(Some(entry));
    }
    if checksum_of(&entry.file)? != check.checksum {
        return Err("corrupt (its checksum does not match)".into());
    }
    if dir.writable() && entry.stamp.is_some() {
        let restamped = CheckFile {
            stamp: entry.stamp,
            ..check
        };
        if let Err(why) = dir.write(&check_name(name), &[&restamped.encode()]) {
            tracing::debug!("could not stamp {name} as checked: {why}");
        }
    }
    Ok(Some(entry))
}

/// Stores `artifact` as entry `name`: the artifact first, then its check file (a crash
/// in between leaves an entry without a check file, which is recompiled).
pub(super) fn write(dir: &CheckedDir, name: &str, artifact: &[u8]) -> Result<(), String> {
    let stamp = dir.write(name, &[artifact])?;
    let check = CheckFile {
        len: artifact.len() as u64,
        checksum: checksum(artifact),
        stamp,
    };
    dir.write(&check_name(name), &[&check.encode()])?;
    Ok(())
}

/// The checksum of an artifact in memory.
fn checksum(artifact: &[u8]) -> [u8; CHECKSUM_LEN] {
    xxhash_rust::xxh3::xxh3_128(artifact).to_le_bytes()
}

/// The checksum of an artifact file, read as a stream from its start.
fn checksum_of(file: &File) -> Result<[u8; CHECKSUM_LEN], String> {
    let mut file = file;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buffer = vec![0; 256 << 10];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(hasher.digest128().to_le_bytes()),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_file_round_trips_and_rejects_what_it_did_not_write() {
        for stamp in [None, Some([1, 2, 3, 4, 5, 6, u64::MAX])] {
            let check = CheckFile {
                len: 35 << 20,
                checksum: checksum(b"artifact"),
                stamp,
            };
            let bytes = check.encode();
            assert_eq!(bytes.len(), CHECK_FILE_LEN);
            assert_eq!(CheckFile::decode(&bytes), Some(check));
            assert_eq!(CheckFile::decode(&bytes[..bytes.len() - 1]), None);
            let mut foreign = bytes.clone();
            foreign[0] ^= 1;
            assert_eq!(CheckFile::decode(&foreign), None);
        }
    }

    #[test]
    fn the_streamed_checksum_is_the_checksum_of_the_bytes() {
        let mut file = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..(600u32 << 10)).map(|i| (i % 251) as u8).collect();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        assert_eq!(checksum_of(&file).unwrap(), checksum(&bytes));
    }
}
