//! The process-wide plugin runtime: one wasmtime `Engine`, its epoch ticker, the linker,
//! and the compiled-code cache. Loading a plugin file happens here.
//!
//! Loading reads the file once, hashes exactly those bytes, and compiles (or fetches from
//! the cache) exactly those bytes: what was hashed is what runs. A file whose bytes were
//! already hashed and approved in this process is not hashed again (see `plugin_file`).
//!
//! Deadlines cannot be lost: every [`LoadedPlugin`] holds a share of the `EpochTicker`
//! that enforces its deadline, so the ticker runs for as long as any plugin loaded from
//! this runtime exists, whoever drops the runtime itself (a broker drops its factory as
//! soon as the manager is built).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::{CONTRACT_PACKAGE, TOKEN_SOURCE_EXPORT, v0_1, v0_2};
use super::cache::{CompiledCache, Origin};
use super::guest::{ContractVersion, GuestPre};
use super::plugin_file::{PluginFile, Prior, check_header};
use super::sandbox::PluginState;
use crate::publisher::SignedPlugin;

/// The largest plugin file read (the biggest real plugins, Python ones, are ~18 MB).
pub const MAX_PLUGIN_BYTES: u64 = 64 << 20;

/// How often the epoch advances. A call's deadline is enforced to within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Why a plugin file could not be loaded. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginLoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path is not a regular file (a device, a FIFO, a directory): reading it could
    /// block forever or never end.
    #[error("plugin {path} is not a regular file ({kind}); give the path of a .wasm file")]
    NotAFile {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than [`MAX_PLUGIN_BYTES`].
    #[error(
        "plugin {path} is larger than {} MiB; this is not a token plugin",
        MAX_PLUGIN_BYTES >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not WebAssembly at all.
    #[error("plugin {path} is not a WebAssembly file (it does not start with \\0asm)")]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// The file is a core module, not a component.
    #[error(
        "plugin {path} is a core WebAssembly module, not a component; build it for \
         wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The component is malformed or uses features this host does not support.
    #[error("plugin {path} is not a valid component: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// wasmtime's reason.
        message: String,
    },
    /// The component is built against another major version of the contract.
    #[error(
        "plugin {path} is built for {found}, but this host speaks {} and {TOKEN_SOURCE_EXPORT}; \
         rebuild the plugin against one of these versions of the contract",
        v0_1::TOKEN_SOURCE_EXPORT
    )]
    ContractVersion {
        /// The file.
        path: PathBuf,
        /// The export it has.
        found: String,
    },
    /// The component does not export the token-source interface.
    #[error(
        "plugin {path} does not export {TOKEN_SOURCE_EXPORT} (or {}); it exports: {exports}",
        v0_1::TOKEN_SOURCE_EXPORT
    )]
    NotATokenSource {
        /// The file.
        path: PathBuf,
        /// What it exports, comma-separated (or "nothing").
        exports: String,
    },
    /// The caller's check of the plugin's digest (the policy, the user's pin) refused it
    /// before it was compiled; the caller knows why.
    #[error("plugin {path} was refused before it was compiled")]
    Refused {
        /// The file.
        path: PathBuf,
    },
    /// The component imports something the host does not provide.
    #[error("plugin {path} needs imports this host does not provide: {message}")]
    Link {
        /// The file.
        path: PathBuf,
        /// wasmtime's reason (names the missing import).
        message: String,
    },
}

/// The WebAssembly runtime could not start (the engine, its linker or the epoch
/// thread).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly runtime: {reason}")]
pub struct RuntimeError {
    /// wasmtime's reason, with its causes.
    reason: String,
}

/// A plugin file, compiled and linked, ready to instantiate.
pub struct LoadedPlugin {
    /// Shared by every provider of this runtime that loaded the same bytes.
    pub(super) pre: Arc<GuestPre>,
    /// Keeps the deadline enforcer alive for as long as this plugin can run.
    _ticker: Arc<EpochTicker>,
    /// The SHA-256 of the bytes that were compiled.
    pub sha256: [u8; 32],
    /// Whether the compiled code came from the cache.
    pub origin: Origin,
}

/// The engine, linker and cache shared by every plugin in the process.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: CompiledCache,
    ticker: Arc<EpochTicker>,
    /// The linked plugins alive in this process, by the digest of their bytes: a second
    /// provider of the same plugin (a broker with a provider per tenant) shares the
    /// first one's mapped code and linking instead of mapping its own copy.
    linked: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::sync::Weak<GuestPre>>>,
}

/// The thread that advances the engine's epoch every [`EPOCH_TICK`]: what interrupts a
/// plugin that runs past its deadline. It stops when the last holder (the runtime and
/// every plugin loaded from it) is dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> std::io::Result<Arc<Self>> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tokenhost-epoch".into())
                .spawn(move || {
                    // Parked rather than asleep, so that dropping the ticker wakes it at
                    // once: a process that loaded a plugin does not wait up to a tick
                    // to exit. An early wake-up (an unpark, or a spurious one) does not
                    // advance the epoch before its time.
                    let mut next = std::time::Instant::now() + EPOCH_TICK;
                    while !stop.load(Ordering::Acquire) {
                        let now = std::time::Instant::now();
                        if now < next {
                            std::thread::park_timeout(next - now);
                            continue;
                        }
                        engine.increment_epoch();
                        next += EPOCH_TICK;
                        if next < now {
                            // Descheduled for more than a tick: one increment, not a burst.
                            next = now + EPOCH_TICK;
                        }
                    }
                })?
        };
        Ok(Arc::new(EpochTicker {
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl PluginRuntime {
    /// A runtime using `cache` for compiled code. Starts the epoch ticker thread.
    pub fn new(cache: CompiledCache) -> Result<Arc<Self>, RuntimeError> {
        Self::start(cache).map_err(|e| RuntimeError {
            reason: error_chain(&e),
        })
    }

    fn start(cache: CompiledCache) -> wasmtime::Result<Arc<Self>> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        // No component-model concurrency (async lifts, streams, futures): the token
        // contract is synchronous, and without it an async call is one fiber switch
        // instead of wasmtime's task machinery (a warm refresh costs half as much).
        config.concurrency_support(false);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::<PluginState>::new(&engine);
        // All of WASI p2 is linked so that any plugin links; the sandbox grants nothing.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // wasi:http too: requests are checked against each provider's allowed_hosts.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // Every contract version's imports: each is its own versioned interface.
        v0_1::TokenProvider::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        v0_2::TokenProvider::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;

        let ticker = EpochTicker::start(&engine)?;
        Ok(Arc::new(PluginRuntime {
            engine,
            linker,
            cache,
            ticker,
            linked: Default::default(),
        }))
    }

    /// The engine (for inspection tools).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled-code cache in use.
    pub fn cache(&self) -> &CompiledCache {
        &self.cache
    }

    /// Reads, checks, compiles (or loads from cache) and links the plugin at `path`.
    /// Nothing judges its bytes, so an unchanged file whose digest the user's cache
    /// remembers is not even read (see the compiled cache's `memo`).
    pub fn load(&self, path: &Path) -> Result<LoadedPlugin, PluginLoadError> {
        self.load_approved(path, Prior::Unjudged, &mut |_| true)
    }

    /// Like [`load`](Self::load), but first asks `verify` about the bytes read (their
    /// SHA-256 and their publisher signatures); `false` refuses the plugin before it is
    /// compiled. The bytes hashed and verified are the bytes compiled (and the cache
    /// key), so replacing the file after the check cannot run unapproved code.
    pub fn load_verified(
        &self,
        path: &Path,
        verify: &mut dyn FnMut(&SignedPlugin<'_>) -> bool,
    ) -> Result<LoadedPlugin, PluginLoadError> {
        self.load_approved(path, Prior::Unknown, verify)
    }

    /// Like [`load_verified`](Self::load_verified), with what is known of the file
    /// before it is read (`prior`): bytes already hashed and found acceptable by the same
    /// `verify` are, if the file is unchanged since, neither verified nor hashed again,
    /// and if their compiled code is cached, not even read (see `plugin_file`); bytes
    /// nothing judges may be found by the digest remembered for the file as it is.
    pub(crate) fn load_approved(
        &self,
        path: &Path,
        prior: Prior<'_>,
        verify: &mut dyn FnMut(&SignedPlugin<'_>) -> bool,
    ) -> Result<LoadedPlugin, PluginLoadError> {
        let file = PluginFile::open(path)?;
        let identity = file.identity().clone();
        let known = match prior {
            Prior::Approved(approved) => {
                Some(approved.sha256).filter(|_| approved.identity == identity)
            }
            Prior::Unjudged => self.cache.remembered_digest(path, identity.fields()),
            Prior::Unknown => None,
        };
        // The same bytes already linked in this process (by digest: a file changed
        // since has another digest, and is read, judged and linked anew).
        if let Some(digest) = known
            && let Some(pre) = self.linked(&digest)
        {
            return Ok(self.loaded(pre, digest, Origin::Cache));
        }
        let cached =
            known.and_then(|digest| Some((self.cache.lookup(&self.engine, &digest)?, digest)));
        if cached.is_some() && matches!(prior, Prior::Unjudged) {
            tracing::debug!(
                "{}: unchanged since its digest was remembered; loaded without reading it",
                path.display()
            );
        }
        let (component, digest, origin) = match cached {
            Some((component, digest)) => (component, digest, Origin::Cache),
            None => {
                let bytes = file.read()?;
                check_header(path, &bytes)?;
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                // Approved bytes need no second verdict; other bytes (a file changed
                // since, with the same identity) are verified as any others.
                let approved = matches!(prior, Prior::Approved(_)) && known == Some(digest);
                if !approved && !verify(&SignedPlugin::new(path, &bytes, digest)) {
                    return Err(PluginLoadError::Refused {
                        path: path.to_path_buf(),
                    });
                }
                if matches!(prior, Prior::Unjudged) {
                    self.cache.remember_digest(path, identity.fields(), &digest);
                }
                if let Some(pre) = self.linked(&digest) {
                    return Ok(self.loaded(pre, digest, Origin::Cache));
                }
                let (component, origin) = self.compile_hashed(path, &bytes, &digest)?;
                (component, digest, origin)
            }
        };
        let version = check_exports(&self.engine, &component, path)?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| PluginLoadError::Link {
                    path: path.to_path_buf(),
                    message: error_chain(&e),
                })?;
        let invalid = |e: wasmtime::Error| PluginLoadError::Invalid {
            path: path.to_path_buf(),
            message: error_chain(&e),
        };
        let pre = Arc::new(match version {
            ContractVersion::V0_1 => {
                GuestPre::V0_1(v0_1::TokenProviderPre::new(instance_pre).map_err(invalid)?)
            }
            ContractVersion::V0_2 => {
                GuestPre::V0_2(v0_2::TokenProviderPre::new(instance_pre).map_err(invalid)?)
            }
        });
        let mut linked = self.linked.lock().unwrap_or_else(|e| e.into_inner());
        linked.retain(|_, pre| pre.strong_count() > 0);
        linked.insert(digest, Arc::downgrade(&pre));
        drop(linked);
        Ok(self.loaded(pre, digest, origin))
    }

    /// The plugin with these bytes, if one is linked and alive in this process.
    fn linked(&self, digest: &[u8; 32]) -> Option<Arc<GuestPre>> {
        let linked = self.linked.lock().unwrap_or_else(|e| e.into_inner());
        linked.get(digest).and_then(std::sync::Weak::upgrade)
    }

    fn loaded(&self, pre: Arc<GuestPre>, sha256: [u8; 32], origin: Origin) -> LoadedPlugin {
        LoadedPlugin {
            pre,
            _ticker: self.ticker.clone(),
            sha256,
            origin,
        }
    }

    /// Checks the header and compiles `bytes` (read from `path`) through the cache.
    pub(crate) fn compile(
        &self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(Component, [u8; 32], Origin), PluginLoadError> {
        check_header(path, bytes)?;
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        let (component, origin) = self.compile_hashed(path, bytes, &sha256)?;
        Ok((component, sha256, origin))
    }

    /// Compiles `bytes`, whose header was checked and whose SHA-256 is `sha256`, through
    /// the cache: the load path hashes a plugin once.
    fn compile_hashed(
        &self,
        path: &Path,
        bytes: &[u8],
        sha256: &[u8; 32],
    ) -> Result<(Component, Origin), PluginLoadError> {
        self.cache
            .load(&self.engine, bytes, sha256)
            .map_err(|e| PluginLoadError::Invalid {
                path: path.to_path_buf(),
                message: error_chain(&e),
            })
    }
}

/// The contract version the component speaks, from its `token-source` export.
fn check_exports(
    engine: &Engine,
    component: &Component,
    path: &Path,
) -> Result<ContractVersion, PluginLoadError> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    // 0.x versions are compatible within a minor version (semver), so a plugin built
    // against 0.1.1 still speaks 0.1.0's contract.
    if let Some(version) = exports
        .iter()
        .find_map(|name| ContractVersion::of_export(name))
    {
        return Ok(version);
    }
    let prefix = format!("{CONTRACT_PACKAGE}/token-source@");
    if let Some(found) = exports.iter().find(|name| name.starts_with(&prefix)) {
        return Err(PluginLoadError::ContractVersion {
            path: path.to_path_buf(),
            found: found.clone(),
        });
    }
    Err(PluginLoadError::NotATokenSource {
        path: path.to_path_buf(),
        exports: if exports.is_empty() {
            "nothing".into()
        } else {
            exports.join(", ")
        },
    })
}

/// An error and its causes on one line.
pub(super) fn error_chain(error: &wasmtime::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        text.push_str(": ");
        text.push_str(&cause.to_string());
    }
    text
}
