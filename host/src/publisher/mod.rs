//! Publisher signatures on plugins: keys, and which keys signed the bytes about to run.
//!
//! The format is the WebAssembly signatures design as the `wasmsign2` crate implements
//! it: ed25519 signatures over the SHA-256 of the module or component, stored in a
//! custom section named `signature` (embedded) or in a file beside the plugin
//! (detached: `<plugin>.wasm.sig`, or `<plugin>.sig`). A plugin may carry several
//! signatures, by several keys, in either place.
//!
//! [`SignedPlugin`] answers questions about one plugin's bytes, the very bytes that
//! will be compiled: its digests, its signatures, and whether a given
//! [`PublisherKey`] signed it. The policy (`policy::check`) asks the questions and
//! decides; nothing here allows or refuses anything.
//!
//! Three things about wasmsign2 0.2.8 shape this module:
//! - its `verify_multi` compares the module's content with the signed hashes only at
//!   `signature_delimiter` sections, so a module without delimiters (what `wasmsign2
//!   sign` makes) "verifies" whatever its content is. Only its whole-file `verify` is
//!   used, and every signature must cover the whole body (checked here as well);
//! - it allocates whatever length a section or signature field claims before reading
//!   it: every payload is parsed by [`format`] first, lengths checked against the bytes
//!   that are there, and input sizes are bounded ([`MAX_SIGNATURE_FILE_BYTES`],
//!   [`MAX_SIGNATURES`]);
//! - re-signing a file changes its SHA-256 (the signature section is part of the
//!   file), so [`SignedPlugin::unsigned_sha256`] also gives the digest of the file
//!   without its signature section, which a deny entry must match too.

mod format;
mod key;
mod signed;

use std::path::Path;

pub use key::{KeyError, MAX_KEY_FILE_BYTES, PublisherKey};
pub use signed::{Signature, SignatureOrigin, SignedPlugin};

/// The most bytes a detached signature file may hold (64 signatures are under 8 KiB).
pub const MAX_SIGNATURE_FILE_BYTES: u64 = 64 * 1024;

/// The most signatures one plugin may carry, embedded and detached together. A plugin
/// with more has none that count: checking an unbounded number costs unbounded time.
pub const MAX_SIGNATURES: usize = 64;

/// Reads a small regular file: `Ok(None)` if nothing is at `path`, an error (as text)
/// if it is not a regular file, cannot be read or is larger than `max` bytes. The type
/// and size are checked on the opened handle, and the read itself is bounded.
pub(crate) fn read_small_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    let file =
        match crate::sys::open_without_waiting(std::fs::OpenOptions::new().read(true)).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "it is {}, not a regular file",
            crate::sys::file_kind(meta.file_type())
        ));
    }
    let too_large = || format!("it is larger than {max} bytes");
    if meta.len() > max {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(Some(bytes))
}
