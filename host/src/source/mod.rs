//! The one trait every token source meets, and the factory that builds sources from
//! validated configuration.
//!
//! The [`AuthManager`](crate::AuthManager) drives sources only through [`TokenSource`]:
//! it does not know whether a token comes from a child process or a WebAssembly plugin.

pub mod command;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Config, ProviderSpec, SourceSpec};

use crate::error::SourceError;
use crate::token::Token;

/// Why the manager asks a source for a new token (mirrors the WIT `refresh-reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshReason {
    /// A server rejected the current token with HTTP 401.
    Unauthorized,
    /// The current token is about to expire or is older than the refresh interval.
    Expiring,
    /// Somebody asked for a fresh token.
    Forced,
}

/// Something that can produce bearer tokens for one provider.
///
/// Implementations validate tokens (through [`Token::new`]) and build every error with
/// the provider id and a cause that holds no secret. They need not cache or
/// deduplicate calls: the manager does both.
#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// Returns a token using whatever state the source has.
    async fn resolve(&self) -> Result<Token, SourceError>;

    /// Returns a new token; the current one is rejected, expiring or unwanted.
    async fn refresh(&self, reason: RefreshReason) -> Result<Token, SourceError>;
}

/// A provider's source could not be built (its plugin did not load).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The plugin file could not be loaded.
    #[error("provider \"{provider}\": {source}")]
    Plugin {
        /// The provider id.
        provider: String,
        /// Why.
        source: crate::wasm::PluginLoadError,
    },
    /// The WebAssembly runtime could not start.
    #[error("cannot start the WebAssembly runtime: {0}")]
    Runtime(String),
}

/// Builds sources from validated provider specs. The WebAssembly runtime (an engine and
/// its epoch thread) starts only when the first plugin source is built.
pub struct SourceFactory {
    cache: crate::wasm::CompiledCache,
    runtime: std::sync::OnceLock<Arc<crate::wasm::PluginRuntime>>,
}

impl SourceFactory {
    /// A factory whose plugins use `cache` for compiled code.
    pub fn new(cache: crate::wasm::CompiledCache) -> Self {
        SourceFactory {
            cache,
            runtime: std::sync::OnceLock::new(),
        }
    }

    /// The WebAssembly runtime, started on first use.
    pub fn runtime(&self) -> Result<&Arc<crate::wasm::PluginRuntime>, BuildError> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        let runtime = crate::wasm::PluginRuntime::new(self.cache.clone())
            .map_err(|e| BuildError::Runtime(e.to_string()))?;
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// The source for one provider.
    pub fn build(&self, spec: &ProviderSpec) -> Result<Arc<dyn TokenSource>, BuildError> {
        Ok(match &spec.source {
            SourceSpec::Command(command) => Arc::new(command::CommandSource::new(
                spec.id.clone(),
                command.clone(),
            )),
            SourceSpec::Plugin(plugin) => {
                let source = crate::wasm::WasmSource::new(self.runtime()?, spec.id.clone(), plugin)
                    .map_err(|source| BuildError::Plugin {
                        provider: spec.id.to_string(),
                        source,
                    })?;
                Arc::new(source)
            }
        })
    }

    /// A manager for every provider in `config`; stops at the first that fails to build.
    pub fn manager(&self, config: &Config) -> Result<crate::AuthManager, BuildError> {
        let mut builder = crate::AuthManager::builder();
        for spec in config.providers() {
            builder = builder.provider(spec.id.clone(), spec.refresh_interval, self.build(spec)?);
        }
        Ok(builder.build())
    }
}
