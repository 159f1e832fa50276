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
use crate::publisher::PublisherKey;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    commands: Option<RawRule<RawCommandTable>>,
    plugins: Option<RawRule<RawPluginTable>>,
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

/// `"allow"`, `"deny"`, or a table (`{ allow = [ ... ] }`, and for plugins a `deny` list).
#[derive(Debug)]
enum RawRule<T> {
    Allow,
    Deny,
    Table(T),
}

/// `[[commands.allow]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommandTable {
    allow: Vec<RawCommandEntry>,
}

/// `[[plugins.allow]]` and `[[plugins.deny]]`: at least one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPluginTable {
    allow: Option<Vec<RawPluginEntry>>,
    deny: Option<Vec<RawPluginEntry>>,
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
    sha256: Option<String>,
    publisher_key: Option<String>,
    publisher_key_file: Option<String>,
    name: Option<String>,
}

// Hand-written rather than `#[serde(untagged)]`: an untagged enum reports only "did not
// match any variant", while this keeps the inner table's message (the unknown key).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for RawRule<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RuleVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for RuleVisitor<T> {
            type Value = RawRule<T>;

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
                let table = T::deserialize(MapAccessDeserializer::new(map))?;
                Ok(RawRule::Table(table))
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

/// One `[[plugins.allow]]` or `[[plugins.deny]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PluginEntry {
    /// What it matches.
    pub matches: PluginMatch,
    /// A label for messages.
    pub name: Option<String>,
}

/// What a plugin entry matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PluginMatch {
    /// `sha256`: the component's digest (for a deny entry, also the digest of the file
    /// without its signature section).
    Sha256([u8; 32]),
    /// `publisher_key` or `publisher_key_file`: plugins with a valid signature by it.
    Publisher(PublisherKey),
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
    /// `plugins`: `"allow"`, `"deny"`, or the `[[plugins.allow]]` list (`Allow` when
    /// the table has only a deny list).
    pub plugins: Rule<PluginEntry>,
    /// `[[plugins.deny]]`: refused even when an allow entry matches.
    pub plugin_deny: Vec<PluginEntry>,
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
        let commands = validate_rule(raw.commands.map(|r| r.map(|t| t.allow)), |entry| {
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
        let (plugins, plugin_deny) = validate_plugins(raw.plugins).map_err(invalid)?;
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
            plugin_deny,
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

impl<T> RawRule<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> RawRule<U> {
        match self {
            RawRule::Allow => RawRule::Allow,
            RawRule::Deny => RawRule::Deny,
            RawRule::Table(table) => RawRule::Table(f(table)),
        }
    }
}

fn validate_rule<R, E>(
    raw: Option<RawRule<Vec<R>>>,
    entry: impl FnMut(R) -> Result<E, String>,
) -> Result<Rule<E>, String> {
    Ok(match raw {
        None | Some(RawRule::Allow) => Rule::Allow,
        Some(RawRule::Deny) => Rule::Deny,
        Some(RawRule::Table(entries)) => {
            Rule::Allowlist(entries.into_iter().map(entry).collect::<Result<_, _>>()?)
        }
    })
}

/// The `plugins` rule and its deny list. A table with only a deny list allows every
/// plugin it does not deny.
fn validate_plugins(
    raw: Option<RawRule<RawPluginTable>>,
) -> Result<(Rule<PluginEntry>, Vec<PluginEntry>), String> {
    let table = match raw {
        None | Some(RawRule::Allow) => return Ok((Rule::Allow, Vec::new())),
        Some(RawRule::Deny) => return Ok((Rule::Deny, Vec::new())),
        Some(RawRule::Table(table)) => table,
    };
    if table.allow.is_none() && table.deny.is_none() {
        return Err("the plugins table needs an `allow` or a `deny` list".into());
    }
    let deny = table
        .deny
        .unwrap_or_default()
        .into_iter()
        .map(|entry| plugin_entry(entry, "plugins.deny"))
        .collect::<Result<_, _>>()?;
    let allow = match table.allow {
        None => Rule::Allow,
        Some(entries) => Rule::Allowlist(
            entries
                .into_iter()
                .map(|entry| plugin_entry(entry, "plugins.allow"))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok((allow, deny))
}

/// One plugin entry: exactly one of `sha256`, `publisher_key` and `publisher_key_file`
/// (absolute, read now: a key file that cannot be read makes the policy invalid).
fn plugin_entry(entry: RawPluginEntry, list: &str) -> Result<PluginEntry, String> {
    let matches = match (entry.sha256, entry.publisher_key, entry.publisher_key_file) {
        (Some(hex), None, None) => {
            PluginMatch::Sha256(parse_sha256(&hex).map_err(|e| format!("{list} sha256: {e}"))?)
        }
        (None, Some(text), None) => PluginMatch::Publisher(
            PublisherKey::parse(&text).map_err(|e| format!("{list} publisher_key: {e}"))?,
        ),
        (None, None, Some(file)) => {
            let path = PathBuf::from(&file);
            if !path.is_absolute() {
                return Err(format!(
                    "{list} publisher_key_file {file:?} must be absolute"
                ));
            }
            PluginMatch::Publisher(
                PublisherKey::read_file(&path)
                    .map_err(|e| format!("{list} publisher_key_file: {e}"))?,
            )
        }
        _ => {
            return Err(format!(
                "a {list} entry needs exactly one of sha256, publisher_key and publisher_key_file"
            ));
        }
    };
    Ok(PluginEntry {
        matches,
        name: entry.name,
    })
}
