//! One plugin's bytes and the signatures that come with them.

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::format::{self, RawSignature};
use super::{MAX_SIGNATURE_FILE_BYTES, MAX_SIGNATURES, PublisherKey, read_small_file};

/// Where a signature came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignatureOrigin {
    /// The plugin's own `signature` section.
    Embedded,
    /// A detached signature file: beside the plugin, or an OCI artifact's signature layer.
    Detached(PathBuf),
}

impl fmt::Display for SignatureOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureOrigin::Embedded => f.write_str("embedded"),
            SignatureOrigin::Detached(path) => write!(f, "detached {}", path.display()),
        }
    }
}

/// One signature a plugin carries.
#[derive(Debug, Clone)]
pub struct Signature {
    /// Where it is stored.
    pub origin: SignatureOrigin,
    /// The key id stored beside it, in hex, if any. It is a hint, not authenticated:
    /// a signature is checked against every key whatever id it claims.
    pub key_id: Option<String>,
    /// Whether it covers the plugin's bytes as they are now. `false`: the plugin was
    /// modified after this signature was made (or it covers only part of the file).
    pub covers_content: bool,
    raw: RawSignature,
}

/// A plugin's bytes, as read for compiling, with the questions a policy asks of them.
/// Nothing is parsed or read until a question needs it; answers are kept.
pub struct SignedPlugin<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    sha256: [u8; 32],
    /// Detached signature files named by where the plugin came from (an OCI artifact's
    /// signature layer), looked at after the ones beside the plugin.
    signature_files: Vec<PathBuf>,
    parsed: OnceCell<Parsed>,
    /// Keys already checked, and whether each signed the plugin.
    verdicts: RefCell<Vec<([u8; 32], bool)>>,
}

struct Parsed {
    /// Where the body starts (after the preamble and the signature section, if any).
    body_start: usize,
    unsigned_sha256: [u8; 32],
    signatures: Vec<Signature>,
    problems: Vec<String>,
}

impl<'a> SignedPlugin<'a> {
    /// The plugin read from `path` (its detached signatures are looked for beside it):
    /// `bytes` are the bytes that will be compiled, and `sha256` is their digest.
    pub fn new(path: &'a Path, bytes: &'a [u8], sha256: [u8; 32]) -> Self {
        SignedPlugin {
            path,
            bytes,
            sha256,
            signature_files: Vec::new(),
            parsed: OnceCell::new(),
            verdicts: RefCell::new(Vec::new()),
        }
    }

    /// The same plugin, with `files` as further detached signatures (each read as a
    /// `.sig` file beside it would be): how a signature that came as a second layer of
    /// an OCI artifact is judged.
    pub fn with_signature_files(&self, files: &[PathBuf]) -> SignedPlugin<'a> {
        let mut signature_files = self.signature_files.clone();
        signature_files.extend(files.iter().cloned());
        SignedPlugin {
            signature_files,
            ..SignedPlugin::new(self.path, self.bytes, self.sha256)
        }
    }

    /// The plugin file.
    pub fn path(&self) -> &Path {
        self.path
    }

    /// The SHA-256 of the file.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The SHA-256 of the file without its signature section: the same release signed
    /// again, by more keys or other keys, has the same `unsigned_sha256`. Equal to
    /// [`sha256`](Self::sha256) for a file without an embedded signature.
    pub fn unsigned_sha256(&self) -> &[u8; 32] {
        &self.parsed().unsigned_sha256
    }

    /// Every signature the plugin carries, embedded first, then each detached file.
    pub fn signatures(&self) -> &[Signature] {
        &self.parsed().signatures
    }

    /// What could not be read: a malformed signature section or file, one too large,
    /// too many signatures. Such signatures count for nothing.
    pub fn problems(&self) -> &[String] {
        &self.parsed().problems
    }

    /// Whether `key` made a valid signature over the plugin as it is now. Verified by
    /// wasmsign2's whole-file `verify`, one signature at a time.
    pub fn signed_by(&self, key: &PublisherKey) -> bool {
        let raw = key.raw();
        if let Some((_, verdict)) = self.verdicts.borrow().iter().find(|(k, _)| *k == raw) {
            return *verdict;
        }
        let verdict = self
            .signatures()
            .iter()
            .any(|signature| self.verifies(key, signature));
        self.verdicts.borrow_mut().push((raw, verdict));
        verdict
    }

    /// Whether this one signature is `key`'s over the plugin as it is now.
    pub fn verifies(&self, key: &PublisherKey, signature: &Signature) -> bool {
        if !signature.covers_content || signature.raw.signature.len() != 64 {
            return false;
        }
        // The crate reads a preamble, then hashes everything after it against the
        // detached payload: give it the preamble and the body, without the section.
        let body = &self.bytes[self.parsed().body_start..];
        let mut reader = std::io::Read::chain(&self.bytes[..8], body);
        key.inner()
            .verify(&mut reader, Some(&signature.raw.alone()))
            .is_ok()
    }

    fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(|| self.parse())
    }

    fn parse(&self) -> Parsed {
        let mut problems = Vec::new();
        let mut found: Vec<(SignatureOrigin, RawSignature)> = Vec::new();
        let (body_start, embedded) = match format::layout(self.bytes) {
            Ok(layout) => (layout.body.start, layout.signature),
            Err(e) => {
                problems.push(format!("the plugin cannot be read for signatures: {e}"));
                (self.bytes.len().min(8), None)
            }
        };
        if let Some(range) = embedded {
            match format::signatures(&self.bytes[range]) {
                Ok(sigs) => found.extend(sigs.into_iter().map(|s| (SignatureOrigin::Embedded, s))),
                Err(e) => {
                    problems.push(format!("the embedded signature section is malformed: {e}"))
                }
            }
        }
        let files = detached_paths(self.path);
        for path in files
            .into_iter()
            .chain(self.signature_files.iter().cloned())
        {
            match read_small_file(&path, MAX_SIGNATURE_FILE_BYTES) {
                Ok(None) => {}
                Ok(Some(payload)) => match format::signatures(&payload) {
                    Ok(sigs) => found.extend(
                        sigs.into_iter()
                            .map(|s| (SignatureOrigin::Detached(path.clone()), s)),
                    ),
                    Err(e) => problems.push(format!(
                        "detached signature {} is malformed: {e}",
                        path.display()
                    )),
                },
                Err(e) => problems.push(format!(
                    "cannot read detached signature {}: {e}",
                    path.display()
                )),
            }
        }
        if found.len() > MAX_SIGNATURES {
            problems.push(format!(
                "the plugin carries {} signatures, more than the {MAX_SIGNATURES} checked: none counts",
                found.len()
            ));
            found.clear();
        }
        let header = &self.bytes[..body_start.min(8)];
        let body = &self.bytes[body_start..];
        let unsigned_sha256: [u8; 32] = Sha256::new()
            .chain_update(header)
            .chain_update(body)
            .finalize()
            .into();
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        let signatures = found
            .into_iter()
            .map(|(origin, raw)| Signature {
                origin,
                key_id: raw.key_id.as_deref().map(hex::encode),
                // A whole-file signature covers exactly one hash: the body's.
                covers_content: raw.hashes == [body_hash],
                raw,
            })
            .collect();
        Parsed {
            body_start,
            unsigned_sha256,
            signatures,
            problems,
        }
    }
}

/// Where detached signatures of `plugin` may be: `<plugin file>.sig`
/// (`oauth2.wasm.sig`, what `wasmsign2 sign -S` is usually given) and the file name with
/// its extension replaced (`oauth2.sig`).
fn detached_paths(plugin: &Path) -> Vec<PathBuf> {
    let mut appended = plugin.as_os_str().to_owned();
    appended.push(".sig");
    let mut paths = vec![PathBuf::from(appended)];
    let replaced = plugin.with_extension("sig");
    if !paths.contains(&replaced) && replaced != plugin {
        paths.push(replaced);
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmsign2::{KeyPair, Module};

    fn component() -> Vec<u8> {
        [
            &b"\0asm\x0d\0\x01\0"[..],
            &[0, 5, 1, b'x', b'a', b'b', b'c'],
        ]
        .concat()
    }

    /// `bytes` signed by `key`: the signed file and the detached signature.
    fn sign(bytes: &[u8], key: &KeyPair, detached: bool) -> (Vec<u8>, Vec<u8>) {
        let module = Module::deserialize(&mut &bytes[..]).unwrap();
        let (module, signature) = key.sk.sign_multi(module, None, detached, false).unwrap();
        let mut out = Vec::new();
        module.serialize(&mut out).unwrap();
        (out, signature)
    }

    fn key(pair: &KeyPair) -> PublisherKey {
        PublisherKey::parse(&hex::encode(pair.pk.to_bytes())).unwrap()
    }

    fn plugin<'a>(path: &'a Path, bytes: &'a [u8]) -> SignedPlugin<'a> {
        SignedPlugin::new(path, bytes, Sha256::digest(bytes).into())
    }

    #[test]
    fn the_crates_verify_multi_ignores_content_without_delimiters_and_this_does_not() {
        let pair = KeyPair::generate();
        let (mut signed, _) = sign(&component(), &pair, false);
        *signed.last_mut().unwrap() = b'X';
        // wasmsign2 0.2.8: verify_multi with no signature_delimiter section compares
        // no hash with the content, so a modified module "verifies".
        assert!(
            pair.pk
                .verify_multi(&mut &signed[..], None, |_| true)
                .is_ok()
        );
        assert!(pair.pk.verify(&mut &signed[..], None).is_err());
        let path = Path::new("/nonexistent/p.wasm");
        let checked = plugin(path, &signed);
        assert!(!checked.signed_by(&key(&pair)));
        assert_eq!(checked.signatures().len(), 1);
        assert!(!checked.signatures()[0].covers_content);
    }

    #[test]
    fn detached_signatures_under_either_name_and_several_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let bytes = component();
        let (_, sig_a) = sign(&bytes, &a, true);
        let (_, sig_b) = sign(&bytes, &b, true);
        let path = dir.path().join("p.wasm");
        std::fs::write(&path, &bytes).unwrap();
        std::fs::write(dir.path().join("p.wasm.sig"), &sig_a).unwrap();
        std::fs::write(dir.path().join("p.sig"), &sig_b).unwrap();
        let checked = plugin(&path, &bytes);
        assert!(checked.signed_by(&key(&a)) && checked.signed_by(&key(&b)));
        assert!(!checked.signed_by(&key(&c)));
        let origins: Vec<String> = checked
            .signatures()
            .iter()
            .map(|s| s.origin.to_string())
            .collect();
        assert_eq!(
            origins,
            [
                format!("detached {}", dir.path().join("p.wasm.sig").display()),
                format!("detached {}", dir.path().join("p.sig").display()),
            ]
        );
        assert_eq!(checked.unsigned_sha256(), checked.sha256());
        // Embedded and detached together; the embedded section is not part of what the
        // detached signature covers.
        let (embedded, _) = sign(&bytes, &c, false);
        let both = plugin(&path, &embedded);
        assert!(both.signed_by(&key(&a)) && both.signed_by(&key(&c)));
        assert_eq!(
            both.unsigned_sha256(),
            &<[u8; 32]>::from(Sha256::digest(&bytes))
        );
        assert_ne!(both.unsigned_sha256(), both.sha256());
    }

    #[test]
    fn malformed_oversized_and_too_many_signatures_count_for_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pair = KeyPair::generate();
        let bytes = component();
        let path = dir.path().join("p.wasm");
        // A detached file whose set claims 4 GiB: an error, not an allocation.
        std::fs::write(
            dir.path().join("p.wasm.sig"),
            [1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f],
        )
        .unwrap();
        std::fs::write(
            dir.path().join("p.sig"),
            vec![0u8; MAX_SIGNATURE_FILE_BYTES as usize + 1],
        )
        .unwrap();
        let checked = plugin(&path, &bytes);
        assert!(checked.signatures().is_empty());
        let problems = checked.problems().join("\n");
        assert!(
            problems.contains("p.wasm.sig is malformed") && problems.contains("claims"),
            "{problems}"
        );
        assert!(
            problems.contains("p.sig") && problems.contains("larger than"),
            "{problems}"
        );

        // 65 signatures: none counts, even the good one.
        std::fs::remove_file(dir.path().join("p.sig")).unwrap();
        let (_, one) = sign(&bytes, &pair, true);
        let parsed = format::signatures(&one).unwrap().remove(0);
        assert_eq!(
            format::signatures(&parsed.alone()).unwrap(),
            std::slice::from_ref(&parsed)
        );
        // One set holding 65 copies of it.
        let mut set = vec![1];
        set.extend_from_slice(&parsed.hashes[0]);
        set.push(65);
        let mut sig = Vec::new();
        sig.push(0);
        sig.push(1);
        sig.push(64);
        sig.extend_from_slice(&parsed.signature);
        for _ in 0..65 {
            set.push(sig.len() as u8);
            set.extend_from_slice(&sig);
        }
        let mut many = vec![1, 1, 1, 1];
        let len = set.len();
        many.extend_from_slice(&[(len & 0x7f) as u8 | 0x80, (len >> 7) as u8]);
        many.extend_from_slice(&set);
        std::fs::write(dir.path().join("p.wasm.sig"), &many).unwrap();
        let checked = plugin(&path, &bytes);
        assert!(checked.signatures().is_empty());
        assert!(
            checked.problems()[0].contains("65 signatures"),
            "{:?}",
            checked.problems()
        );
        assert!(!checked.signed_by(&key(&pair)));
        std::fs::write(dir.path().join("p.wasm.sig"), &one).unwrap();
        assert!(plugin(&path, &bytes).signed_by(&key(&pair)));
    }

    #[test]
    fn detached_signatures_are_looked_for_under_both_names() {
        assert_eq!(
            detached_paths(Path::new("/p/oauth2.wasm")),
            [
                PathBuf::from("/p/oauth2.wasm.sig"),
                PathBuf::from("/p/oauth2.sig")
            ]
        );
        assert_eq!(
            detached_paths(Path::new("/p/plugin")),
            [PathBuf::from("/p/plugin.sig")]
        );
    }
}
