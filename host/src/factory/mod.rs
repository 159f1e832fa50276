//! [`SourceFactory`]: builds each provider's [`TokenSource`] from its validated spec, after
//! the admin policy and the user's own pin have had their say.
//!
//! This is the one place where configuration meets policy: data flows config -> policy
//! check -> sources -> manager. Every check runs before anything executes: a command's
//! executable is located and resolved (symlinks followed) before the command allowlist
//! is consulted, and a plugin's digest is taken from the very bytes that are compiled.

mod plugins;

use std::sync::Arc;

use crate::config::{CommandSpec, Config, PluginSpec, ProviderSpec, SourceSpec};
use crate::granter::Granted;
use crate::policy::{Policy, Violation, check_pin, check_publisher_pin};
use crate::publisher::SignedPlugin;
use crate::source::TokenSource;
use crate::source::command::{CheckedProgram, CommandSource, locate};
#[cfg(feature = "wasm")]
use crate::source::wasm::{CompiledCache, PluginLoadError, PluginRuntime};
#[cfg(feature = "wasm")]
use plugins::CacheChoice;
use plugins::Plugins;

/// A provider's source could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The plugin file could not be loaded.
    #[cfg(feature = "wasm")]
    #[error("provider \"{provider}\": {source}")]
    Plugin {
        /// The provider id.
        provider: String,
        /// Why.
        source: PluginLoadError,
    },
    /// The admin policy or the user's pin refused the provider.
    #[error("{}", Violation::joined(.0))]
    Refused(Vec<Violation>),
    /// A command's program could not be found (only looked up when a policy or pin
    /// needs to know which file it is).
    #[error("provider \"{provider}\": command `{program}` not found ({reason})")]
    CommandNotFound {
        /// The provider id.
        provider: String,
        /// The program as written.
        program: String,
        /// Where it was looked for.
        reason: String,
    },
    /// A plugin from a registry could not be pulled, or what was pulled was refused
    /// before anything was compiled.
    #[cfg(feature = "wasm")]
    #[error("provider \"{provider}\": {source}")]
    Oci {
        /// The provider id.
        provider: String,
        /// Why.
        source: crate::oci::OciError,
    },
    /// The WebAssembly runtime could not start.
    #[cfg(feature = "wasm")]
    #[error(transparent)]
    Runtime(#[from] crate::source::wasm::RuntimeError),
    /// A plugin provider, in a build without the `wasm` feature.
    #[error("provider \"{provider}\": this build of tokenhost runs no plugins (feature `wasm`)")]
    NoWasm {
        /// The provider id.
        provider: String,
    },
}

impl BuildError {
    /// Whether a registry could not be reached (and nothing was cached): a source that
    /// is down rather than a configuration to fix (the CLI's exit code 1, not 2).
    pub fn is_unreachable(&self) -> bool {
        match self {
            #[cfg(feature = "wasm")]
            BuildError::Oci { source, .. } => source.is_unreachable(),
            _ => false,
        }
    }

    /// Every policy violation this error carries (empty for other errors).
    pub fn violations(&self) -> &[Violation] {
        match self {
            BuildError::Refused(violations) => violations,
            _ => &[],
        }
    }
}

/// Builds sources from validated provider specs under a policy. The WebAssembly runtime
/// (an engine and its epoch thread) starts only when the first plugin source is built.
pub struct SourceFactory {
    plugins: Plugins,
    policy: Policy,
}

impl SourceFactory {
    /// A factory with no policy whose plugins use `cache` for compiled code. An
    /// application should use [`Tokenhost`](crate::Tokenhost), which applies the
    /// administrator's policy.
    #[cfg(feature = "wasm")]
    pub fn unrestricted(cache: CompiledCache) -> Self {
        Self::with_policy(cache, Policy::unrestricted())
    }

    /// A factory that enforces `policy`. Under a policy that restricts plugins, compiled
    /// code comes only from the administrator's cache (or is compiled in memory): the
    /// user's `cache` could hold a forged entry under an approved plugin's digest.
    #[cfg(feature = "wasm")]
    pub fn with_policy(cache: CompiledCache, policy: Policy) -> Self {
        Self::choosing(CacheChoice::Given(cache), policy)
    }

    /// [`with_policy`](Self::with_policy) with the user's cache in its default location
    /// ([`CompiledCache::default_location`]), opened only when the first plugin source
    /// is built: nothing on disk is touched for a process that never builds one.
    #[cfg(feature = "wasm")]
    pub fn with_policy_default_cache(policy: Policy) -> Self {
        Self::choosing(CacheChoice::DefaultLocation, policy)
    }

    #[cfg(feature = "wasm")]
    fn choosing(cache: CacheChoice, policy: Policy) -> Self {
        SourceFactory {
            plugins: Plugins::new(cache, policy.restricts_plugins()),
            policy,
        }
    }

    /// A factory that enforces `policy`, in a build without the `wasm` feature: plugin
    /// providers are refused ([`BuildError::NoWasm`]).
    #[cfg(not(feature = "wasm"))]
    pub fn with_policy(policy: Policy) -> Self {
        SourceFactory {
            plugins: Plugins,
            policy,
        }
    }

    /// The policy this factory enforces.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy, giving up the factory.
    pub fn into_policy(self) -> Policy {
        self.policy
    }

    /// The WebAssembly runtime, started on first use.
    #[cfg(feature = "wasm")]
    pub fn runtime(&self) -> Result<&Arc<PluginRuntime>, BuildError> {
        self.plugins.runtime()
    }

    /// The source for one provider, if the policy and the user's pin allow it. Limits
    /// the provider left unset are first lowered to the policy's ceilings
    /// ([`Policy::lower_defaults`]).
    pub fn build(&self, spec: &ProviderSpec) -> Result<Arc<dyn TokenSource>, BuildError> {
        match &spec.source {
            SourceSpec::Command(command) => {
                let (spec, command) = self.effective(spec, command);
                let checked = self.check_command(&spec, &command)?;
                Ok(Arc::new(match checked {
                    None => CommandSource::new(spec.id.clone(), command),
                    Some(checked) => CommandSource::checked(spec.id.clone(), command, checked),
                }))
            }
            SourceSpec::Plugin(plugin) => {
                let granted = self.grant(spec, plugin)?;
                let mut verify = |plugin: &SignedPlugin<'_>| self.check_plugin(spec, plugin);
                // Nothing judges the bytes without a policy or a pin: the user decides.
                let judged = !self.policy.is_empty()
                    || spec.sha256.is_some()
                    || spec.publisher_key.is_some();
                self.plugins
                    .build(&spec.id, &granted, &self.policy, judged, &mut verify)
            }
        }
    }

    /// Whether the policy and the user's pin allow this provider as its files are now,
    /// without running or compiling anything: what a client checks before it hands out a
    /// token that a broker (which applies its own policy) got.
    pub fn check(&self, spec: &ProviderSpec) -> Result<(), BuildError> {
        match &spec.source {
            SourceSpec::Command(command) => {
                let (spec, command) = self.effective(spec, command);
                self.check_command(&spec, &command).map(|_| ())
            }
            SourceSpec::Plugin(plugin) => {
                let granted = self.grant(spec, plugin)?;
                let mut verify = |plugin: &SignedPlugin<'_>| self.check_plugin(spec, plugin);
                refuse_if_any(
                    self.plugins
                        .check(&spec.id, &granted, &self.policy, &mut verify)?,
                )
            }
        }
    }

    /// Pulls a plugin from its registry now, resolving its tag even if the last
    /// resolution is recent (`tokenhost pull`), under the same grant decision as
    /// [`build`](Self::build); then checks the pulled bytes as [`check`](Self::check)
    /// does. `None` for a provider whose plugin is a file, or a command.
    #[cfg(feature = "wasm")]
    pub fn pull(&self, spec: &ProviderSpec) -> Result<Option<crate::oci::Pulled>, BuildError> {
        let SourceSpec::Plugin(plugin) = &spec.source else {
            return Ok(None);
        };
        let granted = self.grant(spec, plugin)?;
        let pulled = self.plugins.pull_now(&spec.id, &granted, &self.policy)?;
        if pulled.is_some() {
            self.check(spec)?;
        }
        Ok(pulled)
    }

    /// A command provider as the policy has it run: an unset timeout lowered to its
    /// ceiling.
    fn effective(&self, spec: &ProviderSpec, command: &CommandSpec) -> (ProviderSpec, CommandSpec) {
        let (spec, lowered) = self.policy.lower_defaults(spec);
        for note in lowered {
            tracing::debug!("{note}");
        }
        let command = match &spec.source {
            SourceSpec::Command(lowered) => lowered.clone(),
            SourceSpec::Plugin(_) => command.clone(),
        };
        (spec, command)
    }

    /// What the granter decides for a plugin provider under this factory's policy.
    fn grant(&self, spec: &ProviderSpec, plugin: &PluginSpec) -> Result<Granted, BuildError> {
        crate::granter::decide(spec, plugin, &self.policy).map_err(BuildError::Refused)
    }

    /// A plugin's bytes against the policy's plugin rule and the user's pins.
    fn check_plugin(&self, spec: &ProviderSpec, plugin: &SignedPlugin<'_>) -> Vec<Violation> {
        let id = &*spec.id;
        let mut violations = self.policy.check_plugin(id, plugin);
        violations.extend(
            spec.sha256
                .as_deref()
                .and_then(|pin| check_pin(id, pin, plugin.sha256())),
        );
        violations.extend(
            spec.publisher_key
                .as_ref()
                .and_then(|key| check_publisher_pin(id, key, plugin)),
        );
        violations
    }

    /// A manager for every provider in `config`; stops at the first that fails to build.
    pub fn manager(&self, config: &Config) -> Result<crate::AuthManager, BuildError> {
        let mut builder = crate::AuthManager::builder();
        for spec in config.providers() {
            builder = builder.provider(spec.id.clone(), spec.refresh_interval, self.build(spec)?);
        }
        Ok(builder.build())
    }

    /// Checks a command against the policy and the pin. Without either, the command is
    /// run exactly as Codex would run it (`None`). With them, it is located now and its
    /// real path (symlinks followed) is checked; that canonical file is what will run,
    /// so a later change to `PATH` or to a symlink cannot swap in another program, and if
    /// a digest was approved, the file is hashed again before every run.
    fn check_command(
        &self,
        spec: &ProviderSpec,
        command: &CommandSpec,
    ) -> Result<Option<CheckedProgram>, BuildError> {
        let id = &*spec.id;
        let mut violations =
            self.policy
                .check_limits(id, command.timeout, None, &Default::default());
        if self.policy.is_empty() && spec.sha256.is_none() {
            return Ok(None);
        }
        let located = locate(&command.program, &command.cwd).map_err(|reason| {
            BuildError::CommandNotFound {
                provider: id.to_string(),
                program: command.program.clone(),
                reason,
            }
        })?;
        let resolved = located.canonicalize().unwrap_or_else(|_| located.clone());
        let mut digest = None;
        let mut hash = || -> std::io::Result<[u8; 32]> {
            if let Some(d) = digest {
                return Ok(d);
            }
            let d = crate::digest::sha256_file(&resolved)?;
            digest = Some(d);
            Ok(d)
        };
        violations.extend(self.policy.check_command(id, &resolved, &mut hash));
        if let Some(pin) = &spec.sha256 {
            match hash() {
                Ok(d) => violations.extend(check_pin(id, pin, &d)),
                Err(e) => violations.push(Violation {
                    provider: id.to_string(),
                    rule: "sha256",
                    policy: None,
                    message: format!(
                        "cannot read {} to check its sha256 pin: {e}",
                        resolved.display()
                    ),
                    refusal: None,
                }),
            }
        }
        refuse_if_any(violations)?;
        Ok(Some(CheckedProgram {
            path: resolved,
            sha256: digest,
        }))
    }
}

fn refuse_if_any(violations: Vec<Violation>) -> Result<(), BuildError> {
    match violations.is_empty() {
        true => Ok(()),
        false => Err(BuildError::Refused(violations)),
    }
}
