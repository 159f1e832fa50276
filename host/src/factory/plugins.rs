//! The WebAssembly half of the [`SourceFactory`](super::SourceFactory): loading granted
//! plugins into one lazily started runtime. Without the `wasm` feature this half is a
//! stub that refuses plugin providers by name, so an application that needs only command
//! sources builds without wasmtime.
//!
//! A plugin from a registry (`plugin = "oci://..."`) is pulled here first
//! ([`crate::oci::fetch`]); from then on it is the file it was pulled to, read, judged
//! and compiled as any other, and the digest of the bytes compiled must also be the
//! layer digest its manifest named.

use std::sync::Arc;

use super::BuildError;
use crate::granter::Granted;
use crate::policy::{Policy, Violation};
use crate::publisher::SignedPlugin;
use crate::source::TokenSource;

#[cfg(not(feature = "wasm"))]
pub(super) use disabled::Plugins;
#[cfg(feature = "wasm")]
pub(super) use enabled::{CacheChoice, Plugins};

#[cfg(feature = "wasm")]
mod enabled {
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};

    use super::*;
    use crate::oci::{CredentialHelpers, OciError, Pulled, Store};
    use crate::source::wasm::{
        Approved, CompiledCache, PluginLoadError, PluginRuntime, Prior, WasmSource,
    };

    /// Which compiled-code cache the runtime will use, decided when it starts: opening a
    /// cache directory (create it, check every ancestor) is work a process that gets its
    /// token from a broker never needs.
    pub(crate) enum CacheChoice {
        /// This cache (subject to the policy rule in [`Plugins::runtime`]).
        Given(CompiledCache),
        /// The user's cache in the default location, opened on first use.
        DefaultLocation,
    }

    /// The compiled-code cache and the runtime, both started on first use.
    pub(crate) struct Plugins {
        cache: CacheChoice,
        /// A policy restricts plugins: only the administrator's cache may be read.
        admin_only: bool,
        runtime: OnceLock<Arc<PluginRuntime>>,
        /// Plugin files that [`check`](Self::check) approved, by path and provider: a
        /// build that follows loads them without hashing them again.
        approved: Mutex<Vec<(PathBuf, Arc<str>, Approved)>>,
        /// Where plugins from registries are kept.
        store: Store,
    }

    impl Plugins {
        pub(crate) fn new(cache: CacheChoice, admin_only: bool) -> Self {
            Plugins {
                cache,
                admin_only,
                runtime: OnceLock::new(),
                approved: Mutex::new(Vec::new()),
                store: Store::default_location(),
            }
        }

        /// The WebAssembly runtime, started on first use.
        pub(crate) fn runtime(&self) -> Result<&Arc<PluginRuntime>, BuildError> {
            if let Some(runtime) = self.runtime.get() {
                return Ok(runtime);
            }
            let runtime = PluginRuntime::new(self.cache()).map_err(BuildError::Runtime)?;
            Ok(self.runtime.get_or_init(|| runtime))
        }

        /// The cache to use. Under a policy that restricts plugins, compiled code comes
        /// only from the administrator's cache (or is compiled in memory): the user's
        /// cache could hold a forged entry under an approved plugin's digest.
        fn cache(&self) -> CompiledCache {
            let cache = match &self.cache {
                CacheChoice::Given(cache) => cache.clone(),
                CacheChoice::DefaultLocation => CompiledCache::default_location(),
            };
            if self.admin_only && !cache.trusted_by_admin() {
                tracing::debug!(
                    "a policy restricts plugins: compiled code comes from the administrator's cache only"
                );
                return CompiledCache::admin();
            }
            cache
        }

        /// Loads the granted plugin, refusing it if `verify` finds violations in the bytes
        /// about to be compiled (their digest and signatures). `judged`: whether `verify`
        /// judges anything (a policy, a pin); if not, the digest remembered for the file
        /// as it is may spare reading and hashing it.
        pub(crate) fn build(
            &self,
            provider: &Arc<str>,
            granted: &Granted,
            policy: &Policy,
            judged: bool,
            verify: &mut dyn FnMut(&SignedPlugin<'_>) -> Vec<Violation>,
        ) -> Result<Arc<dyn TokenSource>, BuildError> {
            let (granted, pulled) = self.pull(provider, granted, policy)?;
            let runtime = self.runtime()?;
            let path = &granted.plugin().path;
            let approved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
            let approved = approved
                .iter()
                .find(|(p, id, _)| p == path && id == provider)
                .map(|(_, _, approved)| approved.clone());
            let mut refused = Vec::new();
            let mut corrupted = None;
            let built = WasmSource::new_approved(
                runtime,
                provider.clone(),
                &granted,
                match (&approved, judged) {
                    (Some(approved), _) => Prior::Approved(approved),
                    (None, true) => Prior::Unknown,
                    (None, false) => Prior::Unjudged,
                },
                &mut |d| {
                    if let Some(pulled) = &pulled
                        && *d.sha256() != pulled.layer_sha256()
                    {
                        corrupted = Some(pulled.corrupted(d.sha256()));
                        return false;
                    }
                    refused = match pulled.as_ref().and_then(|p| p.signature.clone()) {
                        Some(signature) => verify(&d.with_signature_files(&[signature])),
                        None => verify(d),
                    };
                    refused.is_empty()
                },
            );
            match (built, corrupted) {
                (Ok(source), _) => Ok(Arc::new(source)),
                (Err(_), Some(error)) => Err(oci_error(provider, error)),
                (Err(PluginLoadError::Refused { .. }), None) => Err(BuildError::Refused(refused)),
                (Err(source), None) => Err(plugin_error(provider, source)),
            }
        }

        /// The violations `verify` finds in the plugin file's bytes as they are now
        /// (pulled first if it comes from a registry), without compiling them. Bytes
        /// found acceptable are remembered (their digest and the file's identity) for a
        /// [`build`](Self::build) of the same provider.
        pub(crate) fn check(
            &self,
            provider: &Arc<str>,
            granted: &Granted,
            policy: &Policy,
            verify: &mut dyn FnMut(&SignedPlugin<'_>) -> Vec<Violation>,
        ) -> Result<Vec<Violation>, BuildError> {
            let (granted, pulled) = self.pull(provider, granted, policy)?;
            let path = &granted.plugin().path;
            let (bytes, identity) = crate::source::wasm::read_identified(path)
                .map_err(|source| plugin_error(provider, source))?;
            let sha256: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
            if let Some(pulled) = &pulled
                && sha256 != pulled.layer_sha256()
            {
                return Err(oci_error(provider, pulled.corrupted(&sha256)));
            }
            let signatures: Vec<_> = pulled.iter().filter_map(|p| p.signature.clone()).collect();
            let plugin = SignedPlugin::new(path, &bytes, sha256).with_signature_files(&signatures);
            let violations = verify(&plugin);
            if violations.is_empty() {
                let mut approved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
                approved.retain(|(p, id, _)| !(p == path && id == provider));
                approved.push((
                    path.clone(),
                    provider.clone(),
                    Approved { identity, sha256 },
                ));
            }
            Ok(violations)
        }

        /// For a plugin from a registry: pulls it (or finds it in the store) and returns
        /// the same grant for the file it is in. A plugin file is returned as it is.
        /// Credential helpers for the registry run only as `policy`'s command rule allows.
        fn pull(
            &self,
            provider: &str,
            granted: &Granted,
            policy: &Policy,
        ) -> Result<(Granted, Option<Pulled>), BuildError> {
            let Some(oci) = &granted.plugin().oci else {
                return Ok((granted.clone(), None));
            };
            let helpers = CredentialHelpers::under(policy, provider);
            let pulled =
                crate::oci::fetch(oci, &self.store, helpers).map_err(|e| oci_error(provider, e))?;
            tracing::debug!(
                "provider \"{provider}\": {} is {} ({:?})",
                pulled.reference,
                pulled.manifest,
                pulled.resolution
            );
            Ok((granted.clone().at_path(pulled.path.clone()), Some(pulled)))
        }

        /// Pulls a registry plugin now, resolving its tag even if the last resolution is
        /// recent (`tokenhost pull`); `None` for a plugin file.
        pub(crate) fn pull_now(
            &self,
            provider: &str,
            granted: &Granted,
            policy: &Policy,
        ) -> Result<Option<Pulled>, BuildError> {
            let Some(oci) = &granted.plugin().oci else {
                return Ok(None);
            };
            let helpers = CredentialHelpers::under(policy, provider);
            crate::oci::fetch_with(oci, &self.store, helpers, true)
                .map(Some)
                .map_err(|e| oci_error(provider, e))
        }
    }

    fn oci_error(provider: &str, source: OciError) -> BuildError {
        BuildError::Oci {
            provider: provider.to_string(),
            source,
        }
    }

    fn plugin_error(provider: &str, source: PluginLoadError) -> BuildError {
        BuildError::Plugin {
            provider: provider.to_string(),
            source,
        }
    }
}

#[cfg(not(feature = "wasm"))]
mod disabled {
    use super::*;

    /// No WebAssembly support: every plugin provider is refused, naming it.
    pub(crate) struct Plugins;

    impl Plugins {
        pub(crate) fn build(
            &self,
            provider: &Arc<str>,
            _: &Granted,
            _: &Policy,
            _: bool,
            _: &mut dyn FnMut(&SignedPlugin<'_>) -> Vec<Violation>,
        ) -> Result<Arc<dyn TokenSource>, BuildError> {
            Err(BuildError::NoWasm {
                provider: provider.to_string(),
            })
        }

        pub(crate) fn check(
            &self,
            provider: &Arc<str>,
            _: &Granted,
            _: &Policy,
            _: &mut dyn FnMut(&SignedPlugin<'_>) -> Vec<Violation>,
        ) -> Result<Vec<Violation>, BuildError> {
            Err(BuildError::NoWasm {
                provider: provider.to_string(),
            })
        }
    }
}
