//! Every capability a plugin can be granted, decided in one place.
//!
//! A plugin starts with nothing (see [`crate::wasm::sandbox`]). A provider's `auth`
//! table may grant three kinds of capability, each with one function here that
//! validates the request before anything is granted:
//! - [`grant_hosts`]: `allowed_hosts`, the authorities the plugin may send wasi:http
//!   requests to (matching rules in [`host_pattern`]);
//! - [`grant_env`]: `allowed_env`, the environment variables it may see (if set);
//! - [`grant_paths`]: `allowed_paths`, directories it may read, at the same path inside
//!   the guest, read-only.
//!
//! The admin policy's ceilings will be checked here too, so that no grant bypasses them.

pub mod host_pattern;

use std::path::{Path, PathBuf};

pub use host_pattern::HostPattern;

/// What a provider's plugin is granted beyond the deny-all sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Authorities for outgoing HTTP.
    pub hosts: Vec<HostPattern>,
    /// Environment variable names the plugin sees (when set in the host's environment).
    pub env: Vec<String>,
    /// Directories readable by the plugin: (canonical host path, path inside the guest).
    pub paths: Vec<(PathBuf, String)>,
}

impl Grants {
    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.env.is_empty() && self.paths.is_empty()
    }

    /// The granted environment: each allowed variable that is set (and valid UTF-8).
    pub fn environment(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
            .collect()
    }
}

/// Validates `allowed_hosts` entries.
pub fn grant_hosts(entries: &[String]) -> Result<Vec<HostPattern>, String> {
    entries
        .iter()
        .map(|entry| HostPattern::parse(entry).map_err(|e| e.to_string()))
        .collect()
}

/// Validates `allowed_env` names: non-empty, no `=` or NUL.
pub fn grant_env(names: &[String]) -> Result<Vec<String>, String> {
    for name in names {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(format!(
                "allowed_env entry {name:?} is not an environment variable name"
            ));
        }
    }
    Ok(names.to_vec())
}

/// Validates `allowed_paths`: each must be an existing directory. Relative entries
/// resolve against `base` (the config file's folder). The guest sees each at the path
/// as written (made absolute); the host opens the canonical path, so a symlink in the
/// granted path itself is resolved once, here, and nothing later can redirect it.
pub fn grant_paths(entries: &[String], base: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    entries
        .iter()
        .map(|entry| {
            let path = base.join(entry);
            let canonical = path
                .canonicalize()
                .map_err(|e| format!("allowed_paths entry {entry:?} cannot be opened: {e}"))?;
            if !canonical.is_dir() {
                return Err(format!(
                    "allowed_paths entry {entry:?} is not a directory; grant the folder that holds the file"
                ));
            }
            let guest = path
                .to_str()
                .ok_or_else(|| format!("allowed_paths entry {entry:?} is not valid UTF-8"))?
                .to_string();
            Ok((canonical, guest))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_checked() {
        assert!(grant_env(&["AZURE_CLIENT_SECRET".into()]).is_ok());
        for bad in ["", "A=B", "A\0"] {
            assert!(grant_env(&[bad.into()]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_must_be_existing_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let granted = grant_paths(&["sub".into()], dir.path()).unwrap();
        assert_eq!(granted[0].1, dir.path().join("sub").to_str().unwrap());
        let err = grant_paths(&["file".into()], dir.path()).unwrap_err();
        assert!(err.contains("is not a directory"), "{err}");
        let err = grant_paths(&["missing".into()], dir.path()).unwrap_err();
        assert!(err.contains("cannot be opened"), "{err}");
    }

    #[test]
    fn environment_includes_only_granted_variables_that_are_set() {
        let grants = Grants {
            env: vec!["PATH".into(), "TOKENHOST_SURELY_UNSET_VAR".into()],
            ..Grants::default()
        };
        let env = grants.environment();
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].0, "PATH");
    }
}
