//! The checks one policy file makes against one provider.
//!
//! Each file is checked on its own and reports its own violations; [`super::Policy`]
//! runs every file of the stack, so a provider must satisfy all of them (the strictest
//! combination) and each refusal names the file that made it.

use std::path::Path;
use std::time::Duration;

use super::Violation;
use super::containment::{host_within, path_within};
use super::file::{PolicyFile, Rule};
use crate::grants::Grants;

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

    /// Whether a plugin whose bytes hash to `sha256` may run.
    pub(super) fn check_plugin(&self, provider: &str, sha256: &[u8; 32]) -> Option<Violation> {
        match &self.plugins {
            Rule::Allow => None,
            Rule::Deny => Some(self.denied(provider, "plugins", "plugin")),
            Rule::Allowlist(entries) if entries.iter().any(|e| e.sha256 == *sha256) => None,
            Rule::Allowlist(_) => Some(self.violation(
                provider,
                "plugins",
                format!(
                    "plugin sha256 {} is not in the plugin allowlist",
                    hex::encode(sha256)
                ),
            )),
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
