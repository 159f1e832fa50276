//! [`decide`]: the one place where a plugin's capabilities and limits are decided, and
//! [`Granted`], the decision, without which no plugin runs.
//!
//! A provider's `auth` table *asks* (its `allowed_hosts`, `allowed_env`, `allowed_paths`,
//! `timeout_ms`, `memory_limit_mb`, validated when the config is read); the admin's policy
//! sets ceilings. `decide` lowers what the provider left unset to the ceilings, refuses
//! what it set above them, and returns a [`Granted`] plugin. A [`Granted`] can be made
//! only here, or by [`Granted::unrestricted`], the explicit way to run a plugin under no
//! policy at all; [`WasmSource`](crate::source::wasm::WasmSource) and the sandbox take nothing
//! else. So no path from a config to a running plugin can skip the policy unnoticed.

use crate::config::{PluginSpec, ProviderSpec, SourceSpec};
use crate::policy::{Policy, Violation};

/// A plugin whose grants and limits were decided against a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Granted {
    plugin: PluginSpec,
}

impl Granted {
    /// `plugin` exactly as written, under no policy: for tests, benchmarks and an
    /// application that is its own administrator. Prefer [`decide`].
    pub fn unrestricted(plugin: PluginSpec) -> Granted {
        Granted { plugin }
    }

    /// The decided plugin: its file, config, grants and limits.
    pub fn plugin(&self) -> &PluginSpec {
        &self.plugin
    }

    /// The same decision for the plugin file `path`: where an OCI plugin was pulled to.
    /// Grants and limits stay as decided; the bytes at `path` are judged when read.
    #[cfg(feature = "wasm")]
    pub(crate) fn at_path(mut self, path: std::path::PathBuf) -> Granted {
        self.plugin.path = path;
        self
    }
}

/// What `provider`'s `plugin` may do under `policy`: unset limits lowered to the
/// policy's ceilings (each lowering logged at debug), then every limit and grant checked
/// against them. The plugin's digest is checked later, against the very bytes that are
/// compiled.
pub fn decide(
    provider: &ProviderSpec,
    plugin: &PluginSpec,
    policy: &Policy,
) -> Result<Granted, Vec<Violation>> {
    let (effective, lowered) = policy.lower_defaults(provider);
    for note in lowered {
        tracing::debug!("{note}");
    }
    let plugin = match effective.source {
        SourceSpec::Plugin(lowered) => lowered,
        SourceSpec::Command(_) => plugin.clone(),
    };
    let violations = policy.check_limits(
        &provider.id,
        plugin.timeout,
        Some(plugin.memory_limit_bytes),
        &plugin.grants,
    );
    match violations.is_empty() {
        true => Ok(Granted { plugin }),
        false => Err(violations),
    }
}
