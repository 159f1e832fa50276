//! The wasmsign2 signature format, parsed defensively before the crate sees it.
//!
//! wasmsign2 0.2.8 allocates whatever length a section or a signature field claims
//! before reading it (`vec![0; len]` for a LEB128 `len` of up to 4 GiB), so a few bytes
//! could make it ask for gigabytes. This module reads the same structures from a slice,
//! checking every length against the bytes that are really there; only payloads that
//! passed are handed to the crate, and then every length it reads is bounded by them.
//!
//! The layout (the WebAssembly signatures design):
//! - a module or component: an 8-byte preamble, then sections `id:u8 len:u32 payload`;
//!   signatures live in a custom section (id 0) named `signature` that must be the first
//!   section, or in a detached file holding that section's payload;
//! - the payload: `version:u8=1 content_type:u8=1 hash_fn:u8=1 count:u32`, then `count`
//!   length-prefixed signed-hash sets: `nhashes:u32 (32-byte hashes) nsigs:u32`, then
//!   `nsigs` length-prefixed signatures: `key_id:bytes alg:u8=1 signature:bytes`.
//!
//! Integers are unsigned LEB128; `bytes` is a length-prefixed byte string.

use std::ops::Range;

/// The most signed-hash sets one payload may hold (wasmsign2's own limit).
const MAX_HASH_SETS: u32 = 64;
/// The most hashes one set may hold (wasmsign2's own limit).
const MAX_HASHES: u32 = 64;
/// The most signatures one set may hold (wasmsign2's own limit).
const MAX_SET_SIGNATURES: u32 = 256;
/// The wasmsign2 algorithm id of ed25519.
const ED25519: u8 = 0x01;
/// A module's preamble: magic and version 1.
const MODULE_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/// A component's preamble: magic, version 0x0d, layer 1.
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
/// The name of the custom section that holds signatures.
const SIGNATURE_SECTION: &[u8] = b"signature";

/// Where a plugin file's parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    /// The payload of the leading `signature` section, if the file has one.
    pub signature: Option<Range<usize>>,
    /// Everything after the preamble and that section: what a signature covers.
    pub body: Range<usize>,
}

/// One signature, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawSignature {
    /// The hashes the signature covers (for a whole-file signature, one: the SHA-256 of
    /// the body).
    pub hashes: Vec<[u8; 32]>,
    /// The key id stored beside it, if any (not authenticated).
    pub key_id: Option<Vec<u8>>,
    /// The 64-byte ed25519 signature.
    pub signature: Vec<u8>,
}

impl RawSignature {
    /// A payload that holds this signature alone, for the crate to verify on its own:
    /// one malformed or foreign signature beside it then cannot make a good one fail.
    pub(super) fn alone(&self) -> Vec<u8> {
        let mut sig = Vec::new();
        put_bytes(&mut sig, self.key_id.as_deref().unwrap_or_default());
        sig.push(ED25519);
        put_bytes(&mut sig, &self.signature);
        let mut set = Vec::new();
        put_u32(&mut set, self.hashes.len() as u32);
        for hash in &self.hashes {
            set.extend_from_slice(hash);
        }
        put_u32(&mut set, 1);
        put_bytes(&mut set, &sig);
        let mut out = vec![1, 1, 1];
        put_u32(&mut out, 1);
        put_bytes(&mut out, &set);
        out
    }
}

/// Finds the leading signature section of a module or component. Only the first
/// section is read: that is where the design puts signatures, and where the crate looks.
pub(super) fn layout(bytes: &[u8]) -> Result<Layout, String> {
    let preamble = bytes
        .get(..8)
        .ok_or("the file is too short to be WebAssembly")?;
    if preamble != MODULE_PREAMBLE && preamble != COMPONENT_PREAMBLE {
        return Err("the file is not a WebAssembly module or component".into());
    }
    let unsigned = Layout {
        signature: None,
        body: 8..bytes.len(),
    };
    let mut reader = Reader::new(bytes, 8);
    if reader.at_end() || reader.byte()? != 0 {
        return Ok(unsigned);
    }
    let len = reader.u32()? as usize;
    let section = reader.take(len, "the first section")?;
    let mut inner = Reader::new(bytes, section.start);
    inner.end = section.end;
    let name_len = inner.u32()? as usize;
    let name = inner.take(name_len, "a custom section's name")?;
    if &bytes[name] != SIGNATURE_SECTION {
        return Ok(unsigned);
    }
    Ok(Layout {
        signature: Some(inner.pos..section.end),
        body: section.end..bytes.len(),
    })
}

/// Every signature in a signature payload (embedded or detached). Signatures with
/// another algorithm are skipped, as the crate skips them.
pub(super) fn signatures(payload: &[u8]) -> Result<Vec<RawSignature>, String> {
    let mut reader = Reader::new(payload, 0);
    for (what, expected) in [("version", 1), ("content type", 1), ("hash function", 1)] {
        let found = reader.byte()?;
        if found != expected {
            return Err(format!(
                "unsupported signature {what} {found:#04x} (expected {expected:#04x})"
            ));
        }
    }
    let sets = reader.count(MAX_HASH_SETS, "signed hash sets")?;
    let mut out = Vec::new();
    for _ in 0..sets {
        let len = reader.u32()? as usize;
        let range = reader.take(len, "a signed hash set")?;
        let mut set = Reader::new(payload, range.start);
        set.end = range.end;
        let count = set.count(MAX_HASHES, "hashes")?;
        let mut hashes = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let hash = set.take(32, "a hash")?;
            hashes.push(payload[hash].try_into().expect("32 bytes"));
        }
        let count = set.count(MAX_SET_SIGNATURES, "signatures")?;
        for _ in 0..count {
            let len = set.u32()? as usize;
            let range = set.take(len, "a signature")?;
            let mut sig = Reader::new(payload, range.start);
            sig.end = range.end;
            let key_id = sig.bytes("a key id")?;
            let alg = sig.byte()?;
            let signature = sig.bytes("a signature")?;
            if alg != ED25519 {
                continue;
            }
            out.push(RawSignature {
                hashes: hashes.clone(),
                key_id: (!key_id.is_empty()).then(|| key_id.to_vec()),
                signature: signature.to_vec(),
            });
        }
    }
    Ok(out)
}

/// A cursor over `data[pos..end]` that never reads past `end`.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Reader {
            data,
            pos,
            end: data.len(),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    fn byte(&mut self) -> Result<u8, String> {
        if self.at_end() {
            return Err("truncated signature data".into());
        }
        self.pos += 1;
        Ok(self.data[self.pos - 1])
    }

    /// An unsigned LEB128 of at most 5 bytes that fits in 32 bits.
    fn u32(&mut self) -> Result<u32, String> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.byte()?;
            if i == 4 && byte & 0xf0 != 0 {
                return Err("a length does not fit in 32 bits".into());
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a length does not fit in 32 bits".into())
    }

    fn count(&mut self, max: u32, what: &str) -> Result<u32, String> {
        let count = self.u32()?;
        if count > max {
            return Err(format!("{count} {what} (at most {max})"));
        }
        Ok(count)
    }

    /// The next `len` bytes, if that many are really there.
    fn take(&mut self, len: usize, what: &str) -> Result<Range<usize>, String> {
        if len > self.end - self.pos {
            return Err(format!(
                "{what} claims {len} bytes, but only {} follow",
                self.end - self.pos
            ));
        }
        self.pos += len;
        Ok(self.pos - len..self.pos)
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        let range = self.take(len, what)?;
        Ok(&self.data[range])
    }
}

fn put_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(id: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![id];
        put_bytes(&mut out, payload);
        out
    }

    fn custom(name: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut inner = Vec::new();
        put_bytes(&mut inner, name);
        inner.extend_from_slice(payload);
        section(0, &inner)
    }

    fn sample() -> RawSignature {
        RawSignature {
            hashes: vec![[7; 32]],
            key_id: Some(vec![1, 2, 3]),
            signature: vec![9; 64],
        }
    }

    #[test]
    fn a_payload_round_trips_and_the_crate_reads_it_the_same_way() {
        let one = sample();
        let payload = one.alone();
        assert_eq!(signatures(&payload).unwrap(), vec![one.clone()]);
        let theirs = wasmsign2::SignatureData::deserialize(&payload).unwrap();
        assert_eq!(theirs.signed_hashes_set.len(), 1);
        assert_eq!(
            theirs.signed_hashes_set[0].hashes,
            vec![one.hashes[0].to_vec()]
        );
        let sig = &theirs.signed_hashes_set[0].signatures[0];
        assert_eq!(sig.key_id.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(sig.signature, one.signature);
    }

    #[test]
    fn the_leading_signature_section_is_found_in_modules_and_components() {
        let payload = sample().alone();
        for preamble in [MODULE_PREAMBLE, COMPONENT_PREAMBLE] {
            let code = section(1, b"types");
            let signed = [&preamble[..], &custom(b"signature", &payload), &code].concat();
            let layout = layout(&signed).unwrap();
            assert_eq!(&signed[layout.signature.clone().unwrap()], &payload[..]);
            assert_eq!(&signed[layout.body], &code[..]);
            let plain = [&preamble[..], &code].concat();
            assert_eq!(layout_of(&plain), (None, 8..plain.len()));
            // A signature section anywhere but first is content, as for the crate.
            let late = [&preamble[..], &code, &custom(b"signature", &payload)].concat();
            assert_eq!(layout_of(&late), (None, 8..late.len()));
            let other = [&preamble[..], &custom(b"name", b"x"), &code].concat();
            assert_eq!(layout_of(&other), (None, 8..other.len()));
        }
        assert!(layout(b"\0asm").is_err());
        assert!(layout(b"\0asm\x02\0\0\0").is_err());
    }

    fn layout_of(bytes: &[u8]) -> (Option<Range<usize>>, Range<usize>) {
        let l = layout(bytes).unwrap();
        (l.signature, l.body)
    }

    #[test]
    fn lengths_that_claim_more_than_is_there_are_errors_before_any_allocation() {
        // A first section claiming 4 GiB - 1 bytes, in a 14-byte file.
        let huge = [&MODULE_PREAMBLE[..], &[0, 0xff, 0xff, 0xff, 0xff, 0x0f]].concat();
        let err = layout(&huge).unwrap_err();
        assert!(err.contains("claims 4294967295 bytes"), "{err}");
        // A name longer than its section.
        let name = [&MODULE_PREAMBLE[..], &[0, 2, 0x7f, b's']].concat();
        assert!(layout(&name).unwrap_err().contains("name"));
        // A 33-bit length.
        let wide = [&MODULE_PREAMBLE[..], &[0, 0xff, 0xff, 0xff, 0xff, 0x1f]].concat();
        assert!(layout(&wide).unwrap_err().contains("32 bits"));

        // Inside a payload: a set, a signature and a key id each claiming too much.
        for payload in [
            vec![1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![1, 1, 1, 1, 3, 0, 1, 0x7f],
            vec![1, 1, 1, 1, 4, 0, 1, 2, 0x7f],
        ] {
            let err = signatures(&payload).unwrap_err();
            assert!(err.contains("claims"), "{payload:?}: {err}");
        }
        // Counts above wasmsign2's limits.
        assert!(
            signatures(&[1, 1, 1, 65])
                .unwrap_err()
                .contains("at most 64")
        );
        assert!(
            signatures(&[1, 1, 1, 1, 2, 65, 0])
                .unwrap_err()
                .contains("hashes")
        );
        // Another version, content type or hash function.
        for bad in [[2, 1, 1, 0], [1, 2, 1, 0], [1, 1, 2, 0]] {
            assert!(signatures(&bad).unwrap_err().contains("unsupported"));
        }
        assert!(signatures(&[1, 1]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn signatures_of_another_algorithm_are_skipped() {
        let mut sig = Vec::new();
        put_bytes(&mut sig, b"");
        sig.push(0x02);
        put_bytes(&mut sig, &[0; 64]);
        let mut set = vec![0];
        put_u32(&mut set, 1);
        put_bytes(&mut set, &sig);
        let mut payload = vec![1, 1, 1, 1];
        put_bytes(&mut payload, &set);
        assert_eq!(signatures(&payload).unwrap(), vec![]);
    }
}
