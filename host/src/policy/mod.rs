//! The admin policy: which token sources may run, and the most they may be granted.
//!
//! This exists for the locked-down enterprise, where the admin decides and the user
//! cannot opt out (after kubectl's `credentialPluginPolicy` and Istio's sha256-pinned
//! WasmPlugins). A policy is a stack of TOML files: the system file
//! ([`system_policy_path`](crate::sys::system_policy_path)) plus any the user names
//! (`$TOKENHOST_POLICY`, `--policy`). A provider must satisfy every file, so
//! a file can only add restrictions; none can lift another's.
//!
//! A file may say (absent keys restrict nothing; unknown keys are errors):
//! - `commands` / `plugins`: `"allow"`, `"deny"`, or an allowlist;
//! - sign-in and secrets: `deny_interactive_login = true` (no `tokenhost login`),
//!   `deny_file_store = true` (plugins' secrets only in the OS keyring),
//!   `max_secret_bytes` (per provider), `secret_store = "file"` (the administrator opts
//!   providers that chose no store into the file store);
//! - ceilings: `max_timeout_ms`, `max_memory_mb`, `allowed_hosts`, `allowed_env`,
//!   `allowed_paths`. A limit or grant set above a ceiling is refused, never clamped; a
//!   limit left unset takes the ceiling where the ceiling is below tokenhost's default
//!   ([`Policy::lower_defaults`]). An
//!   `allowed_paths` ceiling may not be `/` or reach into a kernel filesystem (see
//!   `grants::kernel_fs`): no grant may.
//!
//! ```toml
//! plugins = "deny"
//! max_timeout_ms = 10000
//! allowed_hosts = ["*.corp.example.com"]
//! allowed_paths = ["/var/run/secrets"]
//!
//! [[commands.allow]]
//! path = "/usr/bin/az"      # absolute; compared after symlinks are followed
//! sha256 = "3f2a..."        # optional: the executable's digest
//! ```
//!
//! `[[plugins.allow]]` entries take one of `sha256` (the file's digest),
//! `publisher_key` (a key's text) or `publisher_key_file` (an absolute path, read when
//! the policy is loaded), and an optional `name`: a plugin is allowed if its digest is
//! listed or it carries a valid signature by a listed key (see [`crate::publisher`]).
//! `[[plugins.deny]]` entries take the same keys and win over every allow entry: a
//! revoked release (by `sha256`, matched against the file and the file without its
//! signature section, so signing it again does not lift the deny) or a revoked key.
//!
//! ```toml
//! [[plugins.allow]]
//! name = "contoso"
//! publisher_key_file = "/etc/tokenhost/keys/contoso.pub"
//!
//! [[plugins.deny]]
//! name = "contoso entra-login 1.1.0 (CVE-...)"
//! sha256 = "8994c9..."
//! ```
//!
//! The checks are pure: callers resolve the command, read the plugin bytes and pass the
//! results in. Each check returns every [`Violation`] (for `tokenhost check`), each
//! naming the provider, the rule and the file. [`check_pin`] and
//! [`check_publisher_pin`] check a user's own pins, which hold with or without a policy.

mod check;
mod containment;
mod defaults;
mod file;
#[cfg(test)]
mod publisher_tests;
mod refusal;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::parse_sha256;
use crate::grants::Grants;
use crate::publisher::{PublisherKey, SignedPlugin};
use check::LazyDigest;
pub use defaults::Lowered;
use file::{PluginMatch, PolicyFile};
pub use refusal::PluginRefusal;

/// The effective admin policy: a stack of parsed files, each checked on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    files: Vec<PolicyFile>,
}

/// A policy file that cannot be used. Every variant names the file; tokenhost must not
/// run any source when loading fails (fail closed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read (for an explicitly named file, also: it is missing).
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value has the wrong type.
    #[error("policy file {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, on one line (it names an unknown key).
        message: String,
    },
    /// A value is well-typed but wrong: a relative path, a malformed sha256, a bad host
    /// pattern or environment variable name, a zero ceiling, a path ceiling of `/` or of
    /// a kernel filesystem.
    #[error("policy file {path} is invalid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// One reason a provider may not run. Displays as one line:
/// `provider "<id>": <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider \"{provider}\": {message}")]
pub struct Violation {
    /// The provider id.
    pub provider: String,
    /// The rule broken: `commands`, `plugins`, `max_timeout_ms`, `max_memory_mb`,
    /// `allowed_hosts`, `allowed_env`, `allowed_paths`, or `sha256` / `publisher_key`
    /// (the user's own pins).
    pub rule: &'static str,
    /// The policy file that refused; `None` for the user's own pin.
    pub policy: Option<PathBuf>,
    /// What was refused and by which file, without the `provider "<id>": ` prefix.
    pub message: String,
    /// For the plugin rule and the publisher pin: why, typed.
    pub refusal: Option<PluginRefusal>,
}

impl Violation {
    /// Every violation on one line, `; `-separated.
    pub fn joined(violations: &[Violation]) -> String {
        let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
        lines.join("; ")
    }
}

impl Policy {
    /// No policy: everything is allowed. Lifting the administrator's policy is this
    /// call, so that it can be found in a review.
    pub fn unrestricted() -> Policy {
        Policy::default()
    }

    /// The machine's policy, as every tokenhost process applies it: the system file
    /// ([`system_policy_path`](crate::sys::system_policy_path), if present), then the file `$TOKENHOST_POLICY` names, then
    /// each of `extra`. A file that cannot be read or parsed is an error: fail closed.
    pub fn from_environment(extra: &[PathBuf]) -> Result<Policy, PolicyError> {
        let mut files = Self::environment_file().into_iter().collect::<Vec<_>>();
        files.extend(extra.iter().cloned());
        Policy::load(&crate::sys::system_policy_path(), &files)
    }

    /// Whether [`from_environment`](Self::from_environment) with no extra files would
    /// read any file at all: something is at the system path (even a dangling link, which
    /// is an error there), or `$TOKENHOST_POLICY` names a file. `false` means no policy
    /// applies, without reading or parsing anything (what `tokenhost`'s lean front asks
    /// before answering by itself).
    pub fn none_in_environment() -> bool {
        let system = std::fs::symlink_metadata(crate::sys::system_policy_path());
        let system_absent = matches!(system, Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        system_absent && Self::environment_file().is_none()
    }

    /// The file `$TOKENHOST_POLICY` names, if any.
    fn environment_file() -> Option<PathBuf> {
        crate::paths::non_empty_env("TOKENHOST_POLICY").map(PathBuf::from)
    }

    /// Loads `system` (skipped if there is nothing at that path), then each of `extra`
    /// (a missing one is an error: the user asked for it). The system path is a
    /// parameter only so tests can use a temporary file; nothing overrides it at run time.
    pub fn load(system: &Path, extra: &[PathBuf]) -> Result<Policy, PolicyError> {
        let mut policy = match std::fs::read_to_string(system) {
            Ok(text) => Policy::parse(&text, &absolute(system))?,
            // A dangling symlink is something the admin put there: not "no policy".
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && std::fs::symlink_metadata(system).is_err() =>
            {
                Policy::unrestricted()
            }
            Err(source) => {
                return Err(PolicyError::Read {
                    path: system.to_path_buf(),
                    source,
                });
            }
        };
        for path in extra {
            let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
                path: path.clone(),
                source,
            })?;
            policy = policy.stack(Policy::parse(&text, &absolute(path))?);
        }
        Ok(policy)
    }

    /// Parses one file's `text` as read from `path` (named in every error and violation).
    /// Ceiling paths and allowlisted commands are canonicalised now, if they exist.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        Ok(Policy {
            files: vec![PolicyFile::parse(text, path)?],
        })
    }

    /// Both policies at once: a provider must satisfy every file of each.
    pub fn stack(mut self, other: Policy) -> Policy {
        self.files.extend(other.files);
        self
    }

    /// The files in the stack, in load order.
    pub fn files(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    /// Whether no file was loaded (an empty file still counts as loaded).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether a command source may run the executable at `resolved` (absolute, symlinks
    /// followed). `sha256` computes the executable's digest; it is called at most once,
    /// and only if an allowlist entry for this path pins a digest. If it fails, the pin
    /// cannot be verified and the command is refused.
    pub fn check_command(
        &self,
        provider: &str,
        resolved: &Path,
        sha256: &mut dyn FnMut() -> std::io::Result<[u8; 32]>,
    ) -> Vec<Violation> {
        let mut digest = LazyDigest::new(sha256);
        self.files
            .iter()
            .filter_map(|f| f.check_command(provider, resolved, &mut digest))
            .collect()
    }

    /// Whether some file limits which plugins may run (an allowlist, or `"deny"`). Then
    /// the user is the party the policy constrains, and nothing the user can write, such
    /// as their compiled-plugin cache, may decide what code runs (see
    /// [`CompiledCache`](crate::source::wasm::CompiledCache)).
    pub fn restricts_plugins(&self) -> bool {
        self.files
            .iter()
            .any(|f| !matches!(f.plugins, file::Rule::Allow) || !f.plugin_deny.is_empty())
    }

    /// Whether a plugin may run: `plugin` holds the exact bytes that will be compiled
    /// (its digest and signatures).
    pub fn check_plugin(&self, provider: &str, plugin: &SignedPlugin<'_>) -> Vec<Violation> {
        self.files
            .iter()
            .filter_map(|f| f.check_plugin(provider, plugin))
            .collect()
    }

    /// Every publisher key the plugin rules name, each with where: `policy <path> allow
    /// "<name>"` (or `deny`), for `tokenhost inspect`.
    pub fn publisher_keys(&self) -> Vec<(String, &PublisherKey)> {
        let mut out = Vec::new();
        for file in &self.files {
            let allow = match &file.plugins {
                file::Rule::Allowlist(entries) => entries.as_slice(),
                _ => &[],
            };
            for (list, entries) in [("allow", allow), ("deny", file.plugin_deny.as_slice())] {
                for entry in entries {
                    if let PluginMatch::Publisher(key) = &entry.matches {
                        let name = entry
                            .name
                            .as_deref()
                            .map(|n| format!(" {n:?}"))
                            .unwrap_or_default();
                        out.push((format!("policy {} {list}{name}", file.path.display()), key));
                    }
                }
            }
        }
        out
    }

    /// The ceilings: `timeout` against `max_timeout_ms`, `memory_limit_bytes` against
    /// `max_memory_mb` (`None` for command sources, which have no memory limit), and each
    /// of `grants`' hosts, environment names and canonical paths against the matching
    /// `allowed_*` ceiling.
    pub fn check_limits(
        &self,
        provider: &str,
        timeout: Duration,
        memory_limit_bytes: Option<u64>,
        grants: &Grants,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        for file in &self.files {
            file.check_limits(provider, timeout, memory_limit_bytes, grants, &mut out);
        }
        out
    }
}

/// Checks a user's own pin (`sha256 = "..."` in a provider's `auth` table) against the
/// digest of the file about to run. A pin that is not 64 hex digits never matches.
pub fn check_pin(provider: &str, pinned: &str, actual: &[u8; 32]) -> Option<Violation> {
    let message = match parse_sha256(pinned) {
        Ok(expected) if expected == *actual => return None,
        Ok(expected) => format!(
            "sha256 is {}, but the config pins {}: the file changed since it was pinned",
            hex::encode(actual),
            hex::encode(expected)
        ),
        Err(e) => format!("the sha256 pin {pinned:?} cannot be checked: {e}"),
    };
    Some(Violation {
        provider: provider.to_string(),
        rule: "sha256",
        policy: None,
        message,
        refusal: None,
    })
}

/// Checks a user's own publisher pin (`publisher_key = "..."` in a provider's `auth`
/// table): the plugin about to run must carry a valid signature by that key.
pub fn check_publisher_pin(
    provider: &str,
    pinned: &PublisherKey,
    plugin: &SignedPlugin<'_>,
) -> Option<Violation> {
    check::check_publisher_pin(provider, pinned, plugin)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
