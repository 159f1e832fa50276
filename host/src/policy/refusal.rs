//! Why a plugin was refused, typed: what [`Violation::refusal`](super::Violation) carries
//! for plugin rules, so that a caller can tell the reasons apart without reading text.

use std::fmt;

use crate::publisher::SignedPlugin;

/// Why the plugin rule of a policy file, or a provider's publisher pin, refused a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginRefusal {
    /// The file says `plugins = "deny"`.
    PluginsDenied,
    /// The plugin's digest is not in an allowlist that names digests only.
    NotAllowed,
    /// A signature was needed and the plugin carries none.
    NoSignature,
    /// The plugin carries signatures, but none covers its bytes as they are: it was
    /// modified after it was signed.
    ModifiedAfterSigning,
    /// Signatures cover the plugin, but none is by a key that would allow it.
    UnknownKey {
        /// The key ids those signatures claim (`None`: a signature without one).
        key_ids: Vec<Option<String>>,
    },
    /// The plugin's signatures could not be read, so none counts.
    Unreadable {
        /// What could not be read.
        problems: Vec<String>,
    },
    /// The plugin carries a valid signature by a key that a deny entry names.
    DeniedKey {
        /// The denied key's id.
        key_id: String,
        /// The deny entry's `name`.
        name: Option<String>,
    },
    /// The plugin is a release that a deny entry names by its digest (of the file, or of
    /// the file without its signature section).
    DeniedRelease {
        /// The denied digest, in hex.
        sha256: String,
        /// The deny entry's `name`.
        name: Option<String>,
    },
}

impl PluginRefusal {
    /// Why no signature the plugin carries is by one of the keys that would have allowed
    /// it: there is none, none covers it, or they are by other keys.
    pub(super) fn unsigned(plugin: &SignedPlugin<'_>) -> PluginRefusal {
        let signatures = plugin.signatures();
        if signatures.is_empty() {
            return match plugin.problems() {
                [] => PluginRefusal::NoSignature,
                problems => PluginRefusal::Unreadable {
                    problems: problems.to_vec(),
                },
            };
        }
        let covering: Vec<Option<String>> = signatures
            .iter()
            .filter(|s| s.covers_content)
            .map(|s| s.key_id.clone())
            .collect();
        match covering.is_empty() {
            true => PluginRefusal::ModifiedAfterSigning,
            false => PluginRefusal::UnknownKey { key_ids: covering },
        }
    }
}

impl fmt::Display for PluginRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginRefusal::PluginsDenied => f.write_str("plugin sources are denied"),
            PluginRefusal::NotAllowed => f.write_str("it is not in the plugin allowlist"),
            PluginRefusal::NoSignature => f.write_str("it carries no publisher signature"),
            PluginRefusal::ModifiedAfterSigning => f.write_str(
                "it was modified after it was signed (no signature covers its bytes as they are)",
            ),
            PluginRefusal::UnknownKey { key_ids } => {
                let ids: Vec<String> = key_ids
                    .iter()
                    .map(|id| match id {
                        Some(id) => format!("key id {id}"),
                        None => "no key id".to_string(),
                    })
                    .collect();
                write!(
                    f,
                    "it is signed by an unknown key ({}), not by a key that allows it",
                    ids.join(", ")
                )
            }
            PluginRefusal::Unreadable { problems } => {
                write!(f, "its signatures cannot be read: {}", problems.join("; "))
            }
            PluginRefusal::DeniedKey { key_id, name } => {
                write!(
                    f,
                    "it is signed by denied ed25519 key {key_id}{}",
                    named(name)
                )
            }
            PluginRefusal::DeniedRelease { sha256, name } => {
                write!(f, "it is the denied release sha256 {sha256}{}", named(name))
            }
        }
    }
}

fn named(name: &Option<String>) -> String {
    match name {
        Some(name) => format!(" ({name:?})"),
        None => String::new(),
    }
}
