//! A publisher's ed25519 public key, as an administrator or a user writes it.
//!
//! Accepted forms (text in a policy or config, or the contents of a key file):
//! - an OpenSSH public key line, `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... comment`
//!   (`ssh-keygen -t ed25519` writes one to `id_ed25519.pub`);
//! - wasmsign2's own format: the 33 bytes `wasmsign2 keygen` writes to its public key
//!   file (`0x01` and the 32-byte key), as a file, or written out in hex (66 digits) or
//!   base64;
//! - a PEM `-----BEGIN PUBLIC KEY-----` block (or its DER bytes, as a file).
//!
//! Anything else is an error, never a key that matches nothing: a policy entry whose key
//! could not be read would otherwise silently allow or deny less than the admin meant.
//! A key is public: it may be shown in messages; it is named by its key id, wasmsign2's
//! default (the first 12 bytes of HMAC-SHA-256 keyed `key_id` over the key), which is
//! what `wasmsign2 sign -K <public key>` stores beside a signature.

use std::fmt;
use std::path::Path;

use base64::Engine as _;

/// The most bytes a key file may hold: a key is under a kilobyte in every form.
pub const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// The wasmsign2 type byte of an ed25519 public key.
const ED25519_PK_ID: u8 = 0x01;

/// An ed25519 publisher key that verifies plugin signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublisherKey {
    key: wasmsign2::PublicKey,
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a key in any accepted form.
    #[error(
        "not an ed25519 public key (expected an `ssh-ed25519 AAAA...` line, a wasmsign2 public key in hex or base64, or a PEM public key)"
    )]
    Unrecognised,
    /// An OpenSSH key of another type.
    #[error("an OpenSSH {kind} key: only ssh-ed25519 keys can verify plugin signatures")]
    WrongSshType {
        /// The key type as written (`ssh-rsa`, ...).
        kind: String,
    },
    /// More than one key in one entry.
    #[error("more than one key: one entry names one key")]
    SeveralKeys,
    /// The key file could not be read, or is too large to be a key.
    #[error("cannot read key file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl PublisherKey {
    /// Parses a key written as text (see the module documentation for the forms).
    pub fn parse(text: &str) -> Result<PublisherKey, KeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            return wasmsign2::PublicKey::from_pem(text)
                .map(Self::from_inner)
                .map_err(|_| KeyError::Unrecognised);
        }
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let line = lines.next().ok_or(KeyError::Unrecognised)?;
        if lines.next().is_some() {
            return Err(KeyError::SeveralKeys);
        }
        let mut fields = line.split_whitespace();
        let first = fields.next().ok_or(KeyError::Unrecognised)?;
        if first.starts_with("ssh-") || first.starts_with("ecdsa-") || first.starts_with("sk-") {
            return Self::parse_openssh(line, first, fields.next());
        }
        if fields.next().is_some() {
            return Err(KeyError::Unrecognised);
        }
        let raw = hex::decode(first)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(first).ok())
            .ok_or(KeyError::Unrecognised)?;
        Self::from_raw(&raw)
    }

    /// Parses the contents of a key file: text in any accepted form, or wasmsign2's
    /// 33-byte binary key, or DER.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<PublisherKey, KeyError> {
        if bytes.len() == 33 && bytes[0] == ED25519_PK_ID {
            return Self::from_raw(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(text) if !text.trim().is_empty() => Self::parse(text),
            _ => wasmsign2::PublicKey::from_der(bytes)
                .map(Self::from_inner)
                .map_err(|_| KeyError::Unrecognised),
        }
    }

    /// Reads and parses the key file at `path` (a regular file of at most
    /// [`MAX_KEY_FILE_BYTES`]).
    pub fn read_file(path: &Path) -> Result<PublisherKey, KeyError> {
        let file_error = |reason: String| KeyError::File {
            path: path.display().to_string(),
            reason,
        };
        match super::read_small_file(path, MAX_KEY_FILE_BYTES) {
            Ok(Some(bytes)) => Self::from_file_bytes(&bytes).map_err(|e| file_error(e.to_string())),
            Ok(None) => Err(file_error("it does not exist".into())),
            Err(e) => Err(file_error(e)),
        }
    }

    /// The key's id in hex: wasmsign2's default key id, as `wasmsign2 sign -K` records
    /// it beside a signature.
    pub fn key_id(&self) -> String {
        let with_id = self.key.clone().attach_default_key_id();
        hex::encode(with_id.key_id().map(Vec::as_slice).unwrap_or_default())
    }

    /// The 32 bytes of the ed25519 key.
    pub fn raw(&self) -> [u8; 32] {
        *self.key.pk
    }

    /// The wasmsign2 key, with no key id attached: it is tried against every signature,
    /// whatever key id the signature claims (a key id is not authenticated).
    pub(crate) fn inner(&self) -> &wasmsign2::PublicKey {
        &self.key
    }

    fn from_inner(key: wasmsign2::PublicKey) -> PublisherKey {
        PublisherKey {
            key: wasmsign2::PublicKey {
                pk: key.pk,
                key_id: None,
            },
        }
    }

    /// wasmsign2's format: `0x01` and the 32-byte key. Bare 32 bytes are not accepted:
    /// 64 hex digits are what a sha256 looks like, and a digest written where a key was
    /// meant must be an error, not a key that matches nothing (a deny entry would then
    /// deny nothing).
    fn from_raw(raw: &[u8]) -> Result<PublisherKey, KeyError> {
        if raw.len() != 33 || raw[0] != ED25519_PK_ID {
            return Err(KeyError::Unrecognised);
        }
        wasmsign2::PublicKey::from_bytes(raw)
            .map(Self::from_inner)
            .map_err(|_| KeyError::Unrecognised)
    }

    /// One OpenSSH line: the type must be `ssh-ed25519` and the blob must be exactly an
    /// ed25519 key (checked here before the crate parses it).
    fn parse_openssh(line: &str, kind: &str, blob: Option<&str>) -> Result<PublisherKey, KeyError> {
        if kind != "ssh-ed25519" {
            return Err(KeyError::WrongSshType {
                kind: kind.chars().take(40).collect(),
            });
        }
        let blob = blob
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or(KeyError::Unrecognised)?;
        // string "ssh-ed25519" (4 + 11 bytes), then string key (4 + 32 bytes).
        let expected_prefix = [&[0, 0, 0, 11][..], b"ssh-ed25519", &[0, 0, 0, 32]].concat();
        if blob.len() != expected_prefix.len() + 32 || !blob.starts_with(&expected_prefix) {
            return Err(KeyError::Unrecognised);
        }
        wasmsign2::PublicKey::from_openssh(line)
            .map(Self::from_inner)
            .map_err(|_| KeyError::Unrecognised)
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherKey({})", self.key_id())
    }
}

impl fmt::Display for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519 key {}", self.key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An ed25519 key made by `ssh-keygen -t ed25519` (public half only).
    const SSH: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF83gWKiFl7Fqa5u7/wFRF5jcHuIz3V23Rf2wlDMkNJn test@example";

    #[test]
    fn every_accepted_form_of_one_key_is_the_same_key() {
        let ssh = PublisherKey::parse(SSH).unwrap();
        let raw = ssh.raw();
        let wasmsign2_bytes = [&[1u8][..], &raw].concat();
        let hex33 = hex::encode(&wasmsign2_bytes);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&wasmsign2_bytes);
        let pem = ssh.inner().to_pem();
        for text in [hex33.as_str(), &b64, &pem, &format!("  {SSH}\n")] {
            assert_eq!(PublisherKey::parse(text).unwrap(), ssh, "{text}");
        }
        assert_eq!(
            PublisherKey::from_file_bytes(&wasmsign2_bytes).unwrap(),
            ssh
        );
        assert_eq!(
            PublisherKey::from_file_bytes(&ssh.inner().to_der()).unwrap(),
            ssh
        );
        assert_eq!(PublisherKey::from_file_bytes(SSH.as_bytes()).unwrap(), ssh);
        assert_eq!(ssh.key_id().len(), 24);
        assert_eq!(ssh.to_string(), format!("ed25519 key {}", ssh.key_id()));
    }

    #[test]
    fn malformed_and_foreign_keys_are_errors() {
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host";
        assert!(matches!(
            PublisherKey::parse(rsa),
            Err(KeyError::WrongSshType { kind }) if kind == "ssh-rsa"
        ));
        let two = format!("{SSH}\n{SSH}");
        assert_eq!(PublisherKey::parse(&two), Err(KeyError::SeveralKeys));
        for bad in [
            "",
            "   ",
            "not a key",
            "ssh-ed25519",
            "ssh-ed25519 !!!notbase64",
            // A valid base64 blob of the wrong shape (an ed25519 type with a short key).
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAAQA=",
            "0102",
            &"01".repeat(34),
            // A sha256 where a key was meant: 32 bytes, without wasmsign2's type byte.
            &"ab".repeat(32),
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        ] {
            assert_eq!(
                PublisherKey::parse(bad),
                Err(KeyError::Unrecognised),
                "{bad:?}"
            );
        }
        // A 33-byte key whose type byte is not ed25519's.
        assert!(PublisherKey::from_file_bytes(&[0x02; 33]).is_err());
        assert!(PublisherKey::from_file_bytes(&[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn a_key_file_is_read_bounded_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("k.pub");
        std::fs::write(&good, format!("{SSH}\n")).unwrap();
        assert!(PublisherKey::read_file(&good).is_ok());
        let missing = dir.path().join("missing.pub");
        let err = PublisherKey::read_file(&missing).unwrap_err().to_string();
        assert!(
            err.contains("missing.pub") && err.contains("does not exist"),
            "{err}"
        );
        let big = dir.path().join("big.pub");
        std::fs::write(&big, vec![b'a'; MAX_KEY_FILE_BYTES as usize + 1]).unwrap();
        let err = PublisherKey::read_file(&big).unwrap_err().to_string();
        assert!(err.contains("big.pub") && err.contains("larger"), "{err}");
        // (Windows cannot open a directory as a file at all: a different message.)
        #[cfg(unix)]
        {
            let err = PublisherKey::read_file(dir.path()).unwrap_err().to_string();
            assert!(err.contains("directory"), "{err}");
        }
    }
}
