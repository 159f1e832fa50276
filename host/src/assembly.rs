//! [`Tokenhost`]: the one way in for an application, and for the `tokenhost` binary.
//!
//! It exists so that embedding tokenhost cannot quietly skip the administrator. The
//! builder loads the config, applies the machine's admin policy (the system file and
//! `$TOKENHOST_POLICY`, as the CLI does) unless told otherwise, builds every provider it
//! can, and hands out the [`AuthManager`] and [`AuthClient`]s. A provider that cannot be
//! built (refused by the policy, a plugin that does not load) is reported in
//! [`Tokenhost::failures`] and left out, instead of failing every other provider.
//! Lifting the policy is one explicit call, [`TokenhostBuilder::policy`] with
//! [`Policy::unrestricted`], easy to find in a review.
//!
//! This is the only module that knows config, policy, sources and manager together:
//! data flows config -> policy -> sources -> manager -> callers, and nowhere else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::client::{AuthClient, ClientError};
use crate::config::{self, Config, ConfigError, ProviderSpec};
use crate::factory::{BuildError, SourceFactory};
use crate::manager::AuthManager;
use crate::policy::{Policy, PolicyError};
use crate::source::TokenSource;
#[cfg(feature = "wasm")]
use crate::source::wasm::CompiledCache;

/// The config, policy, sources and manager of one tokenhost, built by
/// [`Tokenhost::builder`].
pub struct Tokenhost {
    config: Config,
    policy: Policy,
    manager: Arc<AuthManager>,
    failures: Vec<ProviderFailure>,
}

/// The config and the effective policy, loaded, with no source built yet: made by
/// [`TokenhostBuilder::prepare`] for a tool that decides something before it pays for a
/// source (the CLI checks the policy, then asks a broker, and builds a source only when
/// no broker answers). The policy it holds is the one [`Prepared::build`] applies.
pub struct Prepared {
    config: Config,
    factory: SourceFactory,
    only: Option<Vec<String>>,
}

/// A provider left out because its source could not be built.
#[derive(Debug)]
pub struct ProviderFailure {
    /// The provider id.
    pub provider: String,
    /// Why (the message names the provider).
    pub error: BuildError,
}

/// Why a [`Tokenhost`] could not be built at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenhostError {
    /// The config could not be found, read or validated.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A policy file could not be read or parsed: fail closed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Builds a [`Tokenhost`]: deny-by-default in that the admin policy applies unless lifted.
#[must_use]
pub struct TokenhostBuilder {
    config: Option<PathBuf>,
    policy: PolicySource,
    #[cfg(feature = "wasm")]
    cache: Option<CompiledCache>,
    only: Option<Vec<String>>,
}

enum PolicySource {
    /// The machine's policy plus these files.
    Environment(Vec<PathBuf>),
    /// Exactly this policy (it may be [`Policy::unrestricted`]).
    Given(Policy),
}

impl Tokenhost {
    /// A builder with the default config location, the machine's admin policy and the
    /// default compiled-plugin cache.
    pub fn builder() -> TokenhostBuilder {
        TokenhostBuilder {
            config: None,
            policy: PolicySource::Environment(Vec::new()),
            #[cfg(feature = "wasm")]
            cache: None,
            only: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The policy every provider was checked against.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The manager of every provider that was built.
    pub fn manager(&self) -> &Arc<AuthManager> {
        &self.manager
    }

    /// The providers left out, and why.
    pub fn failures(&self) -> &[ProviderFailure] {
        &self.failures
    }

    /// The config and the manager, for a server that owns them from now on.
    pub fn into_parts(self) -> (Config, Arc<AuthManager>) {
        (self.config, self.manager)
    }

    /// An [`AuthClient`] for `provider` with its API settings (`base_url`, headers,
    /// query parameters). An unknown provider, or one left out, is an error naming it.
    pub fn client(&self, provider: &str) -> Result<AuthClient, ClientError> {
        let unusable = |message: String| ClientError::Invalid {
            provider: provider.to_string(),
            message,
        };
        if let Some(failure) = self.failures.iter().find(|f| f.provider == provider) {
            return Err(unusable(format!("it was not built: {}", failure.error)));
        }
        let spec = self
            .config
            .provider(provider)
            .ok_or_else(|| unusable("no such provider in the config".into()))?;
        AuthClient::new(self.manager.clone(), spec.id.clone(), spec.api.clone())
    }
}

impl TokenhostBuilder {
    /// Reads the config at `path` instead of the default location (`$TOKENHOST_CONFIG`,
    /// else `~/.config/tokenhost/config.toml`).
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// Stacks one more policy file on the machine's policy: it can only add
    /// restrictions. A missing file is an error.
    pub fn policy_file(mut self, path: impl Into<PathBuf>) -> Self {
        if let PolicySource::Environment(extra) = &mut self.policy {
            extra.push(path.into());
        }
        self
    }

    /// Uses exactly `policy` instead of the machine's. `Policy::unrestricted()` lifts the
    /// administrator's policy: an application should do so only when it is the
    /// administrator.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = PolicySource::Given(policy);
        self
    }

    #[cfg(feature = "wasm")]
    /// Keeps compiled plugins in `cache` (under a plugin allowlist, only the admin's
    /// cache is read, whatever is given here).
    pub fn compiled_cache(mut self, cache: CompiledCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Builds only these providers instead of all: a command-line tool that needs one
    /// token should not compile every plugin. An id the config does not have is an
    /// unknown provider when asked for.
    pub fn only(mut self, providers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.only = Some(providers.into_iter().map(Into::into).collect());
        self
    }

    /// Loads the config and the policy, then builds the providers (see
    /// [`Tokenhost::failures`] for the ones that could not be).
    pub fn build(self) -> Result<Tokenhost, TokenhostError> {
        Ok(self.prepare()?.build())
    }

    /// Loads the config and the policy without building any source (see [`Prepared`]).
    pub fn prepare(self) -> Result<Prepared, TokenhostError> {
        let config = load_config(self.config.as_deref())?;
        let policy = match self.policy {
            PolicySource::Environment(extra) => Policy::from_environment(&extra)?,
            PolicySource::Given(policy) => policy,
        };
        #[cfg(feature = "wasm")]
        let factory = match self.cache {
            Some(cache) => SourceFactory::with_policy(cache, policy),
            // Opened when the first plugin is built, not now: a caller that gets its
            // token from a broker never touches it.
            None => SourceFactory::with_policy_default_cache(policy),
        };
        #[cfg(not(feature = "wasm"))]
        let factory = SourceFactory::with_policy(policy);
        Ok(Prepared {
            config,
            factory,
            only: self.only,
        })
    }
}

impl Prepared {
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The policy every provider will be checked against.
    pub fn policy(&self) -> &Policy {
        self.factory.policy()
    }

    /// Whether the policy (and the provider's own pin) lets `spec` be built, without
    /// building it: no plugin is compiled, no command runs. The error is the one
    /// [`Prepared::build`] would report for it.
    pub fn check(&self, spec: &ProviderSpec) -> Result<(), BuildError> {
        self.factory.check(spec)
    }

    /// Pulls a provider's plugin from its registry now (see [`SourceFactory::pull`]):
    /// `None` if its plugin is a file or it is a command.
    #[cfg(feature = "wasm")]
    pub fn pull(&self, spec: &ProviderSpec) -> Result<Option<crate::oci::Pulled>, BuildError> {
        self.factory.pull(spec)
    }

    /// The source of one provider, under the policy, for a tool that drives a source
    /// directly (an interactive sign-in) instead of through the manager.
    pub fn source(&self, spec: &ProviderSpec) -> Result<Arc<dyn TokenSource>, BuildError> {
        self.factory.build(spec)
    }

    /// Builds the providers (the ones named by [`TokenhostBuilder::only`], if called);
    /// those that cannot be built are in [`Tokenhost::failures`].
    pub fn build(self) -> Tokenhost {
        let Prepared {
            config,
            factory,
            only,
        } = self;
        let mut manager = AuthManager::builder();
        let mut failures = Vec::new();
        let wanted = |id: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == id));
        for spec in config.providers().filter(|spec| wanted(&spec.id)) {
            match factory.build(spec) {
                Ok(source) => {
                    manager = manager.provider(spec.id.clone(), spec.refresh_interval, source)
                }
                Err(error) => {
                    tracing::debug!("left out: {error}");
                    failures.push(ProviderFailure {
                        provider: spec.id.to_string(),
                        error,
                    });
                }
            }
        }
        Tokenhost {
            policy: factory.into_policy(),
            config,
            manager: Arc::new(manager.build()),
            failures,
        }
    }
}

/// The config at `path`, else at [`config::default_path`]; a missing default is
/// [`ConfigError::NotFound`], which says where to put one.
pub fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None => {
            let path = config::default_path();
            if !path.exists() {
                return Err(ConfigError::NotFound { default: path });
            }
            Config::load(&path)
        }
    }
}
