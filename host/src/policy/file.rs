//! One policy file: its TOML shape and its validated form.
//!
//! Parsing fails closed: an unknown key, a typo, a wrong type, a relative path, a
//! malformed digest or host pattern, a path ceiling of `/` or of a kernel filesystem
//! makes the whole file an error, because a rule the admin meant to write but tokenhost
//! ignored would silently lift a restriction.
//! A key that is absent restricts nothing.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};

use super::PolicyError;
use crate::digest::parse_sha256;
use crate::grants::{HostPattern, grant_env, kernel_fs, normalize};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    commands: Option<RawRule<RawCommandEntry>>,
    plugins: Option<RawRule<RawPluginEntry>>,
    max_timeout_ms: Option<u64>,
    max_memory_mb: Option<u64>,
    allowed_hosts: Option<Vec<String>>,
    allowed_env: Option<Vec<String>>,
    allowed_paths: Option<Vec<String>>,
    deny_interactive_login: Option<bool>,
    deny_file_store: Option<bool>,
    max_secret_bytes: Option<u64>,
    secret_store: Option<crate::config::raw::RawSecretStore>,
}

/// `"allow"`, `"deny"`, or a table `{ allow = [ ... ] }`.
#[derive(Debug)]
enum RawRule<E> {
    Allow,
    Deny,
    Allowlist(Vec<E>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllowlist<E> {
    allow: Vec<E>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommandEntry {
    path: String,
    sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPluginEntry {
    sha256: String,
    name: Option<String>,
}

// Hand-written rather than `#[serde(untagged)]`: an untagged enum reports only "did not
// match any variant", while this keeps the inner table's message (the unknown key).
impl<'de, E: Deserialize<'de>> Deserialize<'de> for RawRule<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RuleVisitor<E>(PhantomData<E>);

        impl<'de, E: Deserialize<'de>> Visitor<'de> for RuleVisitor<E> {
            type Value = RawRule<E>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"allow\", \"deny\" or a table with an `allow` list")
            }

            fn visit_str<Err: de::Error>(self, value: &str) -> Result<Self::Value, Err> {
                match value {
                    "allow" => Ok(RawRule::Allow),
                    "deny" => Ok(RawRule::Deny),
                    other => Err(Err::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                let table = RawAllowlist::<E>::deserialize(MapAccessDeserializer::new(map))?;
                Ok(RawRule::Allowlist(table.allow))
            }
        }

        deserializer.deserialize_any(RuleVisitor(PhantomData))
    }
}

/// Which sources of one kind a file lets run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rule<E> {
    /// No restriction (the key is absent or `"allow"`).
    Allow,
    /// None may run.
    Deny,
    /// Only those matching an entry.
    Allowlist(Vec<E>),
}

/// One `[[commands.allow]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CommandEntry {
    /// The path as written (absolute).
    pub written: PathBuf,
    /// The path with symlinks followed, if it exists when the policy is loaded; else as
    /// written. A resolved command is compared against this.
    pub canonical: PathBuf,
    /// The executable's digest, if pinned.
    pub sha256: Option<[u8; 32]>,
}

/// One `[[plugins.allow]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PluginEntry {
    /// The component's digest.
    pub sha256: [u8; 32],
    /// A label for messages.
    pub name: Option<String>,
}

/// One `allowed_paths` ceiling entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CeilingPath {
    /// As written (absolute), for messages.
    pub written: PathBuf,
    /// Canonical, or `None` if it did not exist at load time (then it contains nothing).
    pub canonical: Option<PathBuf>,
}

/// One validated policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PolicyFile {
    /// Where it was read from; every violation names it.
    pub path: PathBuf,
    /// `commands`.
    pub commands: Rule<CommandEntry>,
    /// `plugins`.
    pub plugins: Rule<PluginEntry>,
    /// `max_timeout_ms`.
    pub max_timeout_ms: Option<u64>,
    /// `max_memory_mb`.
    pub max_memory_mb: Option<u64>,
    /// `allowed_hosts`, each validated with [`HostPattern::parse`].
    pub allowed_hosts: Option<Vec<String>>,
    /// `allowed_env`.
    pub allowed_env: Option<Vec<String>>,
    /// `allowed_paths`.
    pub allowed_paths: Option<Vec<CeilingPath>>,
    /// `deny_interactive_login = true`: `tokenhost login` is refused.
    pub deny_interactive_login: bool,
    /// `deny_file_store = true`: no provider may keep secrets in the file store.
    pub deny_file_store: bool,
    /// `max_secret_bytes`: the most bytes of secrets one provider may store.
    pub max_secret_bytes: Option<u64>,
    /// `secret_store = "file"`: the administrator opts every provider that did not choose
    /// into the file store (a headless fleet with no keyring).
    pub file_store_by_default: bool,
}

impl PolicyFile {
    /// Parses and validates `text` as read from `path`.
    pub(super) fn parse(text: &str, path: &Path) -> Result<PolicyFile, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Parse {
            path: path.to_path_buf(),
            message: crate::toml_error::toml_error(&e, Some(text)),
        })?;
        let invalid = |message: String| PolicyError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        for (key, value) in [
            ("max_timeout_ms", raw.max_timeout_ms),
            ("max_memory_mb", raw.max_memory_mb),
            ("max_secret_bytes", raw.max_secret_bytes),
        ] {
            if value == Some(0) {
                return Err(invalid(format!(
                    "{key} must be at least 1 (to forbid a source kind, use `commands = \"deny\"` or `plugins = \"deny\"`)"
                )));
            }
        }
        let commands = validate_rule(raw.commands, |entry| {
            let written = PathBuf::from(&entry.path);
            if !written.is_absolute() {
                return Err(format!(
                    "commands.allow path {:?} must be absolute",
                    entry.path
                ));
            }
            let sha256 = entry
                .sha256
                .as_deref()
                .map(|hex| parse_sha256(hex).map_err(|e| format!("commands.allow sha256: {e}")))
                .transpose()?;
            let canonical = written.canonicalize().unwrap_or_else(|_| written.clone());
            Ok(CommandEntry {
                written,
                canonical,
                sha256,
            })
        })
        .map_err(invalid)?;
        let plugins = validate_rule(raw.plugins, |entry| {
            let sha256 =
                parse_sha256(&entry.sha256).map_err(|e| format!("plugins.allow sha256: {e}"))?;
            Ok(PluginEntry {
                sha256,
                name: entry.name,
            })
        })
        .map_err(invalid)?;
        if let Some(hosts) = &raw.allowed_hosts {
            for host in hosts {
                HostPattern::parse(host).map_err(|e| invalid(e.to_string()))?;
            }
        }
        if let Some(names) = &raw.allowed_env {
            grant_env(names).map_err(invalid)?;
        }
        let allowed_paths = raw
            .allowed_paths
            .map(|entries| {
                entries
                    .into_iter()
                    .map(|entry| {
                        let written = PathBuf::from(&entry);
                        if !written.is_absolute() {
                            return Err(format!("allowed_paths entry {entry:?} must be absolute"));
                        }
                        let canonical = written.canonicalize().ok();
                        // A ceiling that holds `/` or a kernel filesystem promises a grant
                        // that `grant_paths` would refuse anyway: an admin's mistake.
                        let (shown, reason) = match &canonical {
                            Some(dir) => (dir.clone(), kernel_fs::refusal(dir, false)),
                            None => {
                                let tidied = normalize(&written);
                                let reason = kernel_fs::path_refusal(&tidied);
                                (tidied, reason)
                            }
                        };
                        if let Some(reason) = reason {
                            return Err(format!(
                                "allowed_paths entry {entry:?} ({}) {reason}: no plugin may be granted it (to leave paths unrestricted, omit allowed_paths)",
                                shown.display()
                            ));
                        }
                        Ok(CeilingPath { written, canonical })
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .transpose()
            .map_err(invalid)?;
        Ok(PolicyFile {
            path: path.to_path_buf(),
            commands,
            plugins,
            max_timeout_ms: raw.max_timeout_ms,
            max_memory_mb: raw.max_memory_mb,
            allowed_hosts: raw.allowed_hosts,
            allowed_env: raw.allowed_env,
            allowed_paths,
            deny_interactive_login: raw.deny_interactive_login.unwrap_or(false),
            deny_file_store: raw.deny_file_store.unwrap_or(false),
            max_secret_bytes: raw.max_secret_bytes,
            file_store_by_default: matches!(
                raw.secret_store,
                Some(crate::config::raw::RawSecretStore::File)
            ),
        })
    }
}

fn validate_rule<R, E>(
    raw: Option<RawRule<R>>,
    entry: impl FnMut(R) -> Result<E, String>,
) -> Result<Rule<E>, String> {
    Ok(match raw {
        None | Some(RawRule::Allow) => Rule::Allow,
        Some(RawRule::Deny) => Rule::Deny,
        Some(RawRule::Allowlist(entries)) => {
            Rule::Allowlist(entries.into_iter().map(entry).collect::<Result<_, _>>()?)
        }
    })
}
