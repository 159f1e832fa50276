//! The checks one policy file makes against one provider.
//!
//! Each file is checked on its own and reports its own violations; [`super::Policy`]
//! runs every file of the stack, so a provider must satisfy all of them (the strictest
//! combination) and each refusal names the file that made it.

use std::path::Path;
use std::time::Duration;

use super::containment::{host_within, path_within};
use super::file::{PluginMatch, PolicyFile, Rule};
use super::{PluginRefusal, Violation};
use crate::grants::Grants;
use crate::publisher::{PublisherKey, SignedPlugin};

const MIB: u64 = 1024 * 1024;

/// A command's digest, computed at most once and only if some file pins one.
pub(super) struct LazyDigest<'a> {
    compute: &'a mut dyn FnMut() -> std::io::Result<[u8; 32]>,
    cached: Option<Result<[u8; 32], String>>,
}

impl<'a> LazyDigest<'a> {
    pub(super) fn new(compute: &'a mut dyn FnMut() -> std::io::Result<[u8; 32]>) -> Self {
        LazyDigest {
            compute,
            cached: None,
        }
    }

    fn get(&mut self) -> Result<[u8; 32], String> {
        self.cached
            .get_or_insert_with(|| (self.compute)().map_err(|e| e.to_string()))
            .clone()
    }
}

impl PolicyFile {
    /// A violation of `rule`; `detail` is completed with `of policy <path>`.
    fn violation(&self, provider: &str, rule: &'static str, detail: String) -> Violation {
        Violation {
            provider: provider.to_string(),
            rule,
            policy: Some(self.path.clone()),
            message: format!("{detail} of policy {}", self.path.display()),
            refusal: None,
        }
    }

    /// A violation of a `"deny"` rule: `<kind> sources are denied by policy <path>`.
    fn denied(&self, provider: &str, rule: &'static str, kind: &str) -> Violation {
        Violation {
            provider: provider.to_string(),
            rule,
            policy: Some(self.path.clone()),
            message: format!(
                "{kind} sources are denied by policy {}",
                self.path.display()
            ),
            refusal: None,
        }
    }

    /// Whether the command at the canonical path `resolved` may run.
    pub(super) fn check_command(
        &self,
        provider: &str,
        resolved: &Path,
        digest: &mut LazyDigest<'_>,
    ) -> Option<Violation> {
        let entries = match &self.commands {
            Rule::Allow => return None,
            Rule::Deny => {
                return Some(self.denied(provider, "commands", "command"));
            }
            Rule::Allowlist(entries) => entries,
        };
        let matching: Vec<_> = entries
            .iter()
            .filter(|entry| entry.canonical == resolved || entry.written == resolved)
            .collect();
        if matching.is_empty() {
            return Some(self.violation(
                provider,
                "commands",
                format!(
                    "command {} is not in the command allowlist",
                    resolved.display()
                ),
            ));
        }
        if matching.iter().any(|entry| entry.sha256.is_none()) {
            return None;
        }
        match digest.get() {
            Ok(actual) if matching.iter().any(|entry| entry.sha256 == Some(actual)) => None,
            Ok(actual) => Some(self.violation(
                provider,
                "commands",
                format!(
                    "command {} has sha256 {}, which does not match the sha256 pinned in the command allowlist",
                    resolved.display(),
                    hex::encode(actual)
                ),
            )),
            Err(e) => Some(self.violation(
                provider,
                "commands",
                format!(
                    "cannot compute the sha256 of command {} ({e}), which is pinned in the command allowlist",
                    resolved.display()
                ),
            )),
        }
    }

    /// Whether `plugin` may run under this file's plugin rule. A deny entry wins over
    /// every allow entry: a `sha256` deny entry matches the file's digest and the digest
    /// of the file without its signature section (the same release, signed again), a
    /// key deny entry any valid signature by that key.
    pub(super) fn check_plugin(
        &self,
        provider: &str,
        plugin: &SignedPlugin<'_>,
    ) -> Option<Violation> {
        for entry in &self.plugin_deny {
            let refusal = match &entry.matches {
                PluginMatch::Sha256(denied)
                    if denied == plugin.sha256() || denied == plugin.unsigned_sha256() =>
                {
                    PluginRefusal::DeniedRelease {
                        sha256: hex::encode(denied),
                        name: entry.name.clone(),
                    }
                }
                PluginMatch::Publisher(key) if plugin.signed_by(key) => PluginRefusal::DeniedKey {
                    key_id: key.key_id(),
                    name: entry.name.clone(),
                },
                _ => continue,
            };
            return Some(self.plugin_refused(provider, plugin, refusal));
        }
        let entries = match &self.plugins {
            Rule::Allow => return None,
            Rule::Deny => {
                return Some(
                    self.denied(provider, "plugins", "plugin")
                        .with(PluginRefusal::PluginsDenied),
                );
            }
            Rule::Allowlist(entries) => entries,
        };
        let allowed = entries.iter().any(|entry| match &entry.matches {
            PluginMatch::Sha256(digest) => digest == plugin.sha256(),
            PluginMatch::Publisher(key) => plugin.signed_by(key),
        });
        if allowed {
            return None;
        }
        let names_keys = entries
            .iter()
            .any(|entry| matches!(entry.matches, PluginMatch::Publisher(_)));
        let refusal = match names_keys {
            false => PluginRefusal::NotAllowed,
            true => PluginRefusal::unsigned(plugin),
        };
        Some(self.plugin_refused(provider, plugin, refusal))
    }

    /// A refusal by the plugin rule: `plugin sha256 <hex> is not in the plugin allowlist
    /// of policy <path>`, then the reason when it is more than that.
    fn plugin_refused(
        &self,
        provider: &str,
        plugin: &SignedPlugin<'_>,
        refusal: PluginRefusal,
    ) -> Violation {
        let sha256 = hex::encode(plugin.sha256());
        let message = match &refusal {
            PluginRefusal::NotAllowed => format!(
                "plugin sha256 {sha256} is not in the plugin allowlist of policy {}",
                self.path.display()
            ),
            PluginRefusal::DeniedKey { .. } | PluginRefusal::DeniedRelease { .. } => format!(
                "plugin sha256 {sha256} is denied by policy {}: {refusal}",
                self.path.display()
            ),
            _ => format!(
                "plugin sha256 {sha256} is not in the plugin allowlist of policy {}: {refusal}",
                self.path.display()
            ),
        };
        Violation {
            provider: provider.to_string(),
            rule: "plugins",
            policy: Some(self.path.clone()),
            message,
            refusal: Some(refusal),
        }
    }

    /// The ceilings: every limit and grant that exceeds one is reported.
    pub(super) fn check_limits(
        &self,
        provider: &str,
        timeout: Duration,
        memory_limit_bytes: Option<u64>,
        grants: &Grants,
        out: &mut Vec<Violation>,
    ) {
        if let Some(max) = self.max_timeout_ms
            && timeout.as_millis() > u128::from(max)
        {
            out.push(self.violation(
                provider,
                "max_timeout_ms",
                format!(
                    "timeout_ms {} exceeds max_timeout_ms {max}",
                    timeout.as_millis()
                ),
            ));
        }
        if let (Some(max), Some(bytes)) = (self.max_memory_mb, memory_limit_bytes)
            && bytes > max.saturating_mul(MIB)
        {
            let value = match bytes % MIB {
                0 => format!("memory_limit_mb {}", bytes / MIB),
                _ => format!("memory limit {bytes} bytes"),
            };
            out.push(self.violation(
                provider,
                "max_memory_mb",
                format!("{value} exceeds max_memory_mb {max}"),
            ));
        }
        if let Some(ceiling) = &self.allowed_hosts {
            for host in &grants.hosts {
                let host = host.to_string();
                if !ceiling.iter().any(|c| host_within(&host, c)) {
                    out.push(self.violation(
                        provider,
                        "allowed_hosts",
                        format!(
                            "allowed_hosts entry {host:?} is outside the allowed_hosts ceiling"
                        ),
                    ));
                }
            }
        }
        if let Some(ceiling) = &self.allowed_env {
            for name in &grants.env {
                if !ceiling.contains(name) {
                    out.push(self.violation(
                        provider,
                        "allowed_env",
                        format!("allowed_env entry {name:?} is not in the allowed_env ceiling"),
                    ));
                }
            }
        }
        if let Some(ceiling) = &self.allowed_paths {
            for (canonical, guest) in &grants.paths {
                let inside = ceiling.iter().any(|c| {
                    c.canonical
                        .as_deref()
                        .is_some_and(|dir| path_within(canonical, dir))
                });
                if !inside {
                    out.push(self.violation(
                        provider,
                        "allowed_paths",
                        format!(
                            "allowed_paths entry {guest:?} ({}) is outside the allowed_paths ceiling",
                            canonical.display()
                        ),
                    ));
                }
            }
        }
    }
}

/// Whether `plugin` carries a valid signature by the key a provider pins
/// (`publisher_key` in its `auth` table), which holds with or without a policy.
pub(super) fn check_publisher_pin(
    provider: &str,
    pinned: &PublisherKey,
    plugin: &SignedPlugin<'_>,
) -> Option<Violation> {
    if plugin.signed_by(pinned) {
        return None;
    }
    let refusal = PluginRefusal::unsigned(plugin);
    Some(Violation {
        provider: provider.to_string(),
        rule: "publisher_key",
        policy: None,
        message: format!(
            "plugin sha256 {} is not signed by the pinned publisher key {}: {refusal}",
            hex::encode(plugin.sha256()),
            pinned.key_id()
        ),
        refusal: Some(refusal),
    })
}

impl Violation {
    /// The same violation, with its typed reason.
    fn with(mut self, refusal: PluginRefusal) -> Violation {
        self.refusal = Some(refusal);
        self
    }
}
