//! Plugin digests remembered by file identity, so that a warm load of a big plugin
//! neither reads nor hashes it.
//!
//! The compiled cache is keyed by the plugin's SHA-256, which costs a read and a hash of
//! the whole plugin (12 MB for a JavaScript one) in every new process. When nothing
//! needs the bytes themselves (no policy and no pin: the user decides what runs, and
//! signatures are not looked at), the digest computed by the last load is kept beside
//! the compiled entries, with the plugin file's identity (device, inode, size,
//! modification and change times) at that moment. A load whose file has the same
//! identity uses that digest; any write to the file changes its change time, which no
//! unprivileged process can set back, and a replaced file is another inode.
//!
//! Trust: a memo is only as trustworthy as the directory it is in, like a compiled entry
//! (see the cache's module comment): it is used only from the user's own cache, and
//! never under a policy or a pin, where the bytes must be judged. Windows gives no
//! change time that a user cannot set, so there the plugin is always hashed. A
//! checksum guards the memo against accidents (a torn write, a stray edit): a memo
//! that fails it is ignored.

use std::path::Path;

use sha2::{Digest, Sha256};

/// What a memo starts with.
const MAGIC: &[u8; 16] = b"tokenhost-memo-1";
const IDENTITY_LEN: usize = 7 * 8;
const BODY_LEN: usize = MAGIC.len() + IDENTITY_LEN + 32;
const CHECKSUM_LEN: usize = 16;
/// A memo's length.
pub(super) const LEN: usize = BODY_LEN + CHECKSUM_LEN;

/// The memo's file name for the plugin at `path` (as the config names it).
pub(super) fn name(path: &Path) -> String {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    format!("plugin-{}.memo", hex::encode(&digest[..16]))
}

/// A memo for a file with `identity` whose bytes have `digest`.
pub(super) fn encode(identity: &[u64; 7], digest: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN);
    out.extend_from_slice(MAGIC);
    for field in identity {
        out.extend_from_slice(&field.to_le_bytes());
    }
    out.extend_from_slice(digest);
    let checksum = xxhash_rust::xxh3::xxh3_128(&out).to_le_bytes();
    out.extend_from_slice(&checksum);
    out
}

/// The digest in `memo`, if it is intact and was made for a file with `identity`.
pub(super) fn decode(memo: &[u8], identity: &[u64; 7]) -> Option<[u8; 32]> {
    if memo.len() != LEN || &memo[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (body, checksum) = memo.split_at(BODY_LEN);
    if xxhash_rust::xxh3::xxh3_128(body).to_le_bytes() != checksum {
        return None;
    }
    let stored = &body[MAGIC.len()..MAGIC.len() + IDENTITY_LEN];
    let matches = stored
        .chunks_exact(8)
        .zip(identity)
        .all(|(bytes, field)| bytes == field.to_le_bytes());
    matches.then(|| body[MAGIC.len() + IDENTITY_LEN..].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_answers_only_for_its_identity_and_only_intact() {
        let identity = [1, 2, 3, 4, 5, 6, 7];
        let digest = [9u8; 32];
        let memo = encode(&identity, &digest);
        assert_eq!(decode(&memo, &identity), Some(digest));
        // Another file, or the same file written since (its change time moved on).
        assert_eq!(decode(&memo, &[1, 2, 3, 4, 5, 6, 8]), None);
        // Any changed byte, a short memo, another format.
        for at in [0, 20, BODY_LEN - 1, LEN - 1] {
            let mut bad = memo.clone();
            bad[at] ^= 1;
            assert_eq!(decode(&bad, &identity), None, "byte {at}");
        }
        assert_eq!(decode(&memo[..LEN - 1], &identity), None);
        assert_ne!(name(Path::new("/a/p.wasm")), name(Path::new("/a/q.wasm")));
    }
}
