//! SHA-256 digests as people write them: the pins in configs and policies.
//!
//! A leaf module, so that the config (a provider's `sha256` pin) and the policy (its
//! allow entries) parse digests one way without depending on each other.

use hex::FromHex;

/// Parses a SHA-256 digest written as 64 hex digits (either case).
pub(crate) fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    <[u8; 32]>::from_hex(text).map_err(|_| format!("{text:?} is not a sha256 (64 hex digits)"))
}

/// The SHA-256 of the file at `path`, read as a stream (executables can be large).
pub(crate) fn sha256_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher.finalize().into())
}
