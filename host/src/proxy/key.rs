//! [`LocalKey`]: the secret a local client must show to use a TCP proxy.
//!
//! Loopback TCP is reachable by every user of the machine, so the proxy would otherwise
//! hand this user's tokens to anyone who connects. The key is 256 random bits from the
//! operating system, shown only in a file private to this user (mode 0600; on Windows an
//! owner-only ACL) and on stdout with `--print-env`, and
//! compared in constant time so that timing tells an attacker nothing about it. It never
//! appears in `Debug`, in an error or in a log line.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use http::HeaderMap;
use subtle::ConstantTimeEq;

/// The key's prefix: a reader of a config file can tell what the value is for.
const PREFIX: &str = "thpk_";

/// A proxy's local key.
pub struct LocalKey {
    value: Box<str>,
}

/// Why a key could not be made or written. Never holds the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("cannot get random bytes for the local key: {0}")]
    Random(String),
    /// The key file could not be written.
    #[error("cannot write the local key to {}: {source}", .path.display())]
    Write {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalKey(..)")
    }
}

impl LocalKey {
    /// A new key: `thpk_` and 256 random bits as 64 hex digits.
    pub fn generate() -> Result<LocalKey, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(LocalKey {
            value: format!("{PREFIX}{}", hex::encode(bytes)).into_boxed_str(),
        })
    }

    /// The key's value, for the file and `--print-env`; a name that stands out in review.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Writes the key to `path`, replacing a previous file atomically, so a reader never
    /// sees half a key or a file that others could read: the new file is private to this
    /// user from its creation (mode 0600; on Windows a protected DACL for this user
    /// alone, whatever the directory would pass on).
    pub fn write_to(&self, path: &Path) -> Result<(), KeyError> {
        let write = |source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut file = tempfile::Builder::new()
            .make_in(dir, crate::sys::create_private_file)
            .map_err(write)?;
        file.write_all(self.value.as_bytes()).map_err(write)?;
        file.write_all(b"\n").map_err(write)?;
        file.as_file().sync_all().map_err(write)?;
        file.persist(path).map_err(|e| write(e.error))?;
        Ok(())
    }

    /// Whether `headers` carry this key: `Authorization: Bearer <key>` (the scheme in any
    /// case), `x-api-key: <key>` (Anthropic's SDK) or `api-key: <key>` (Azure's).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let mut admitted = false;
        for value in headers.get_all(http::header::AUTHORIZATION) {
            let bytes = value.as_bytes();
            if bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ") {
                admitted |= self.equals(bytes[7..].trim_ascii());
            }
        }
        for name in ["x-api-key", "api-key"] {
            for value in headers.get_all(name) {
                admitted |= self.equals(value.as_bytes().trim_ascii());
            }
        }
        admitted
    }

    /// Constant time in the contents (the length is no secret: every key has the same).
    fn equals(&self, offered: &[u8]) -> bool {
        let ours = self.value.as_bytes();
        ours.len() == offered.len() && bool::from(ours.ct_eq(offered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn keys_are_long_random_and_never_printed() {
        let (a, b) = (LocalKey::generate().unwrap(), LocalKey::generate().unwrap());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), PREFIX.len() + 64);
        assert_eq!(format!("{a:?}"), "LocalKey(..)");
    }

    #[test]
    fn the_key_is_accepted_in_the_three_headers_sdks_send() {
        let key = LocalKey::generate().unwrap();
        let k = key.expose();
        let bearer = format!("Bearer {k}");
        let lower = format!("bearer {k}");
        let cases: [(&[(&'static str, &str)], bool); 9] = [
            (&[("authorization", &bearer)], true),
            (&[("authorization", &lower)], true),
            (&[("x-api-key", k)], true),
            (&[("api-key", k)], true),
            (&[("authorization", "Bearer wrong"), ("x-api-key", k)], true),
            (&[], false),
            (&[("authorization", k)], false),
            (&[("authorization", "Bearer thpk_00")], false),
            (&[("x-api-key", &k[..k.len() - 1])], false),
        ];
        for (pairs, expected) in cases {
            assert_eq!(key.admits(&headers(pairs)), expected, "{:?}", pairs.len());
        }
    }

    #[test]
    fn the_key_file_is_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let key = LocalKey::generate().unwrap();
        key.write_to(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim(), key.expose());
        assert_private(&path);
        let err = key.write_to(&dir.path().join("no/such/dir/k")).unwrap_err();
        assert!(!err.to_string().contains(key.expose()));
    }

    #[cfg(unix)]
    fn assert_private(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// This user alone, not what the directory passes on (Wine keeps no ACL on a Unix
    /// file system, so there only the creation path is run).
    #[cfg(windows)]
    fn assert_private(path: &Path) {
        if crate::sys::under_wine() {
            return;
        }
        let sid = crate::sys::current_user().unwrap().text().unwrap();
        let dacl = crate::sys::dacl_of(path).unwrap();
        assert_eq!(dacl, format!("D:P(A;;FA;;;{sid})"));
    }
}
