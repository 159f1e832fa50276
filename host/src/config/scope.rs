//! Which config a provider's stored secrets belong to.
//!
//! Provider ids are chosen per config file: a project's config and the user's own may
//! both call a provider `corp`, perhaps with different plugins and identity providers.
//! Keyed by id alone, one plugin would read the refresh token another stored, so the
//! secret store's entry is named by the id *and* this scope, derived from the config
//! file's canonical path. Reaching the same file through a symlink or a relative path
//! keeps the scope; moving the file means signing in again.

use std::path::Path;

/// The scope of the config at `path`: 16 hex digits of the SHA-256 of its canonical path
/// (the path as given when it cannot be resolved, as for a config parsed from text).
pub(super) fn secrets_scope(path: &Path) -> String {
    use sha2::Digest;
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..8])
}

#[cfg(all(test, unix))]
mod tests {
    use super::secrets_scope;
    use crate::config::{Config, SourceSpec};

    const PLUGIN: &str = "[model_providers.corp.auth]\nplugin = \"p.wasm\"\n";

    fn scope_of(config: &Config) -> String {
        match &config.provider("corp").unwrap().source {
            SourceSpec::Plugin(plugin) => plugin.secrets.scope.clone(),
            other => panic!("not a plugin: {other:?}"),
        }
    }

    #[test]
    fn each_config_file_has_its_own_scope_and_a_symlink_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
        std::fs::write(&a, PLUGIN).unwrap();
        std::fs::write(&b, PLUGIN).unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let scope_a = scope_of(&Config::load(&a).unwrap());
        assert_eq!(scope_a.len(), 16);
        assert_ne!(scope_a, scope_of(&Config::load(&b).unwrap()));
        assert_eq!(scope_a, scope_of(&Config::load(&link).unwrap()));
        assert_eq!(scope_a, secrets_scope(&dir.path().join("./a.toml")));
    }
}
