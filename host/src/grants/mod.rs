//! Every capability a plugin can ask for, validated in one place.
//!
//! A plugin starts with nothing (see [`crate::source::wasm::sandbox`]). A provider's `auth`
//! table may grant three kinds of capability, each with one function here that
//! validates the request before anything is granted:
//! - [`grant_hosts`]: `allowed_hosts`, the authorities the plugin may send wasi:http
//!   requests to (matching rules in [`host_pattern`]);
//! - [`grant_env`]: `allowed_env`, the environment variables it may see (if set);
//! - [`grant_paths`]: `allowed_paths`, directories it may read, read-only, at their
//!   absolute, normalised path inside the guest; never `/` or a kernel filesystem
//!   (see `kernel_fs`).
//!
//! These are requests: what is granted in the end is decided by
//! [`granter::decide`](crate::granter::decide), which holds them against the admin
//! policy's ceilings; its [`Granted`](crate::granter::Granted) is the only thing the
//! sandbox accepts. This module knows neither the config nor the policy: both build on it.

pub mod host_pattern;
pub(crate) mod kernel_fs;

use std::path::{Component, Path, PathBuf};

pub use host_pattern::HostPattern;
pub(crate) use host_pattern::is_loopback as is_loopback_host;

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

/// Validates `allowed_paths`: each must be an existing directory that is not `/` and
/// not on or above a kernel filesystem (procfs, sysfs, the device files: see
/// `kernel_fs`). Relative entries resolve against `base` (the config file's folder).
///
/// The host opens the canonical path, so a symlink in the granted path itself is
/// resolved once, here, and nothing later can redirect it. The guest sees the entry made
/// absolute with `.` and `..` removed (`cfg/../fs/granted` appears as
/// `<base>/fs/granted`), symlinks kept (`/var/run/secrets` stays `/var/run/secrets` where
/// `/var/run` links to `/run`). If that tidied path is not the same directory (a `..`
/// after a symlink), the guest sees the canonical path instead.
pub fn grant_paths(entries: &[String], base: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    entries
        .iter()
        .map(|entry| {
            let path = normalize(&base.join(entry));
            let canonical = path_canonical(entry, &base.join(entry))?;
            if let Some(reason) = kernel_fs::refusal(&canonical, true) {
                return Err(format!(
                    "allowed_paths entry {entry:?} ({}) {reason}; grant a directory that holds only the files the plugin needs",
                    canonical.display()
                ));
            }
            let guest = match path.canonicalize() {
                Ok(same) if same == canonical => path,
                _ => canonical.clone(),
            };
            let guest = guest
                .to_str()
                .ok_or_else(|| format!("allowed_paths entry {entry:?} is not valid UTF-8"))?
                .to_string();
            Ok((canonical, guest))
        })
        .collect()
}

/// The canonical path of an `allowed_paths` entry, which must be an existing directory.
fn path_canonical(entry: &str, path: &Path) -> Result<PathBuf, String> {
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("allowed_paths entry {entry:?} cannot be opened: {e}"))?;
    if !canonical.is_dir() {
        return Err(format!(
            "allowed_paths entry {entry:?} is not a directory; grant the folder that holds the file"
        ));
    }
    Ok(canonical)
}

/// `path` with `.` components and repeated separators removed and each `..` applied to
/// the component before it, without looking at the filesystem (`/..` is `/`).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
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
    fn normalize_table() {
        let cases: &[(&str, &str)] = &[
            ("/a/b/../c", "/a/c"),
            ("/a/./b//c/", "/a/b/c"),
            ("/a/cfg/fs/../../fs/granted", "/a/fs/granted"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("/a/..", "/"),
            ("a/../../b", "../b"),
        ];
        for (path, expected) in cases {
            assert_eq!(normalize(Path::new(path)), Path::new(expected), "{path}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn root_and_kernel_filesystems_are_never_granted() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/proc", dir.path().join("proc-link")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("root-link")).unwrap();
        let cases: &[(&str, &str)] = &[
            ("/", "(/) is the root directory"),
            ("/proc", "(/proc) is inside /proc"),
            ("/proc/self", "is inside /proc"),
            ("/sys", "(/sys) is inside /sys"),
            ("/dev", "(/dev) is inside /dev"),
            ("/etc/../proc", "(/proc) is inside /proc"),
            ("proc-link", "(/proc) is inside /proc"),
            ("proc-link/self/..", "(/proc) is inside /proc"),
            ("root-link", "(/) is the root directory"),
            ("root-link/sys/kernel", "(/sys/kernel) is inside /sys"),
            ("../../../../../../../..", "(/) is the root directory"),
        ];
        for (entry, expected) in cases {
            let err = grant_paths(&[entry.to_string()], dir.path()).unwrap_err();
            assert!(
                err.starts_with(&format!("allowed_paths entry {entry:?} "))
                    && err.contains(expected),
                "{entry}: {err}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_guest_sees_a_normalised_path_with_symlinks_kept() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("cfg/fs");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(dir.path().join("fs/granted")).unwrap();
        std::fs::create_dir_all(dir.path().join("real/sub")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real/sub"), dir.path().join("link")).unwrap();
        let guest = |entry: &str| grant_paths(&[entry.into()], &base).unwrap()[0].1.clone();
        let root = dir.path().canonicalize().unwrap();
        let shown = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
        // `..` is applied; the result is the directory granted.
        assert_eq!(guest("../../fs/granted"), shown("fs/granted"));
        assert_eq!(guest("./../../fs/./granted/"), shown("fs/granted"));
        // A symlinked entry keeps its name in the guest.
        assert_eq!(guest("../../link"), shown("link"));
        // `link/..` is `real`, not the tidied `<dir>`: the guest sees the canonical path.
        assert_eq!(guest("../../link/.."), root.join("real").to_str().unwrap());
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
