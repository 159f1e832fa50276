//! [`WasmSource`]: a [`TokenSource`] backed by one plugin instance.
//!
//! One live instance per provider is reused between calls (so a plugin may keep state,
//! such as a refresh token) and replaced after any trap or timeout: a trapped store is
//! dead, and a store whose call was cut short may be inconsistent. Calls are serialised
//! per provider (the manager already makes at most one call at a time; this makes it a
//! guarantee).
//!
//! Every call has two deadlines, both at `timeout`: the epoch callback interrupts guest
//! code that runs past it (and yields to the executor every tick meanwhile), and a tokio
//! timeout ends a call that is parked in a host wait (a sleep, a poll).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{GuestError, GuestRefreshReason, GuestToken, RefreshContext, TokenProvider};
use super::engine::{EPOCH_TICK, LoadedPlugin, PluginLoadError, PluginRuntime, error_chain};
use super::limits::{MemoryLimitExceeded, TooManyResources};
use super::sandbox::{PluginState, Sandbox};
use crate::config::PluginSpec;
use crate::error::{FailureKind, SourceError};
use crate::source::{RefreshReason, TokenSource};
use crate::token::Token;

/// A token source that calls a WebAssembly component plugin.
pub struct WasmSource {
    provider: Arc<str>,
    plugin: LoadedPlugin,
    sandbox: Sandbox,
    timeout: Duration,
    memory_limit_bytes: u64,
    live: tokio::sync::Mutex<Option<Live>>,
}

struct Live {
    store: Store<PluginState>,
    bindings: TokenProvider,
}

enum Call {
    Resolve,
    Refresh(RefreshReason),
}

impl WasmSource {
    /// Loads the plugin in `spec` for `provider` (compiling it, or loading it from the
    /// runtime's cache). The first instance is created on the first call.
    pub fn new(
        runtime: &PluginRuntime,
        provider: Arc<str>,
        spec: &PluginSpec,
    ) -> Result<Self, PluginLoadError> {
        Self::new_verified(runtime, provider, spec, &mut |_| Vec::new())
    }

    /// Like [`new`](Self::new), refusing the plugin if `verify` finds violations in the
    /// digest of the bytes about to be compiled (policy allowlists, the user's pin).
    pub fn new_verified(
        runtime: &PluginRuntime,
        provider: Arc<str>,
        spec: &PluginSpec,
        verify: &mut dyn FnMut(&[u8; 32]) -> Vec<crate::policy::Violation>,
    ) -> Result<Self, PluginLoadError> {
        let plugin = runtime.load_verified(&spec.path, verify)?;
        tracing::debug!(
            provider = %provider,
            sha256 = %hex::encode(plugin.sha256),
            origin = ?plugin.origin,
            "plugin loaded"
        );
        let sandbox =
            Sandbox::new(provider.clone(), spec).map_err(|message| PluginLoadError::Invalid {
                path: spec.path.clone(),
                message,
            })?;
        Ok(WasmSource {
            sandbox,
            provider,
            plugin,
            timeout: spec.timeout,
            memory_limit_bytes: spec.memory_limit_bytes,
            live: tokio::sync::Mutex::new(None),
        })
    }

    /// The SHA-256 of the plugin bytes that were compiled.
    pub fn sha256(&self) -> [u8; 32] {
        self.plugin.sha256
    }

    async fn instantiate(&self) -> Result<Live, SourceError> {
        let state = self
            .sandbox
            .build()
            .map_err(|message| self.error(FailureKind::InvalidConfig, message))?;
        let mut store = Store::new(self.plugin.pre.engine(), state);
        super::limits::install(&mut store);
        store.epoch_deadline_callback(|ctx| {
            Ok(if Instant::now() >= ctx.data().deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let deadline = Instant::now() + self.timeout;
        store.data_mut().begin_call(deadline);
        store.set_epoch_deadline(1);
        let instantiated =
            tokio::time::timeout(self.timeout, self.plugin.pre.instantiate_async(&mut store)).await;
        let last_stderr = store.data_mut().end_call();
        match instantiated {
            Ok(Ok(bindings)) => Ok(Live { store, bindings }),
            Ok(Err(e)) => Err(self.trap_error("starting", &e, last_stderr)),
            Err(_) => Err(self.timeout_error()),
        }
    }

    async fn call(&self, call: Call) -> Result<Token, SourceError> {
        let mut live = self.live.lock().await;
        if live.is_none() {
            *live = Some(self.instantiate().await?);
        }
        let Live { store, bindings } = live.as_mut().expect("instantiated above");
        let deadline = Instant::now() + self.timeout;
        store.data_mut().begin_call(deadline);
        // The callback runs every tick: it yields, or interrupts once past the deadline.
        store.set_epoch_deadline(1);
        let source = bindings.tokenhost_plugin_token_source();
        let outcome = tokio::time::timeout(self.timeout, async {
            match call {
                Call::Resolve => source.call_resolve(&mut *store).await,
                Call::Refresh(reason) => {
                    let context = RefreshContext {
                        reason: guest_reason(reason),
                    };
                    source.call_refresh(&mut *store, context).await
                }
            }
        })
        .await;
        let last_stderr = store.data_mut().end_call();
        let what = match call {
            Call::Resolve => "resolve",
            Call::Refresh(_) => "refresh",
        };
        match outcome {
            Ok(Ok(Ok(token))) => self.accept(token),
            Ok(Ok(Err(error))) => Err(self.guest_error(error)),
            Ok(Err(trap)) => {
                *live = None;
                Err(self.trap_error(what, &trap, last_stderr))
            }
            Err(_elapsed) => {
                *live = None;
                Err(self.timeout_error())
            }
        }
    }

    fn accept(&self, token: GuestToken) -> Result<Token, SourceError> {
        Token::new(token.value, token.expires_at_ms).map_err(|invalid| {
            self.error(
                FailureKind::BadOutput,
                format!("the plugin returned an unusable token: {invalid}"),
            )
        })
    }

    fn guest_error(&self, error: GuestError) -> SourceError {
        let (kind, message) = match error {
            GuestError::InvalidConfig(m) => (FailureKind::InvalidConfig, m),
            GuestError::Denied(m) => (FailureKind::Denied, m),
            GuestError::Unavailable(m) => (FailureKind::Unavailable, m),
        };
        self.error(kind, cap(&message))
    }

    fn trap_error(
        &self,
        what: &str,
        error: &wasmtime::Error,
        last_stderr: Option<String>,
    ) -> SourceError {
        // The memory budget's own refusals name what went over; report them as such,
        // not with wasmtime's backtrace text.
        let budget = if let Some(exceeded) = error.downcast_ref::<MemoryLimitExceeded>() {
            Some(format!(
                "exceeded its memory limit of {} MiB ({})",
                self.memory_limit_bytes / (1024 * 1024),
                exceeded.what
            ))
        } else {
            error
                .downcast_ref::<TooManyResources>()
                .map(|too_many| format!("failed: {too_many}"))
        };
        let (kind, cause) = match (budget, error.downcast_ref::<Trap>()) {
            (Some(cause), _) => (FailureKind::Crashed, cause),
            (None, Some(Trap::Interrupt)) => return self.timeout_error(),
            (None, Some(Trap::StackOverflow)) => {
                (FailureKind::Crashed, "overflowed its stack".to_string())
            }
            (None, Some(Trap::UnreachableCodeReached)) => (
                FailureKind::Crashed,
                "crashed (panic, abort or unreachable code)".to_string(),
            ),
            // A Rust or C guest keeps its own stack in linear memory: overflowing it
            // shows up as an out-of-bounds access rather than a wasm stack overflow.
            (None, Some(Trap::MemoryOutOfBounds)) => (
                FailureKind::Crashed,
                "accessed memory out of bounds (a stack overflow or memory corruption)".to_string(),
            ),
            (None, Some(trap)) => (FailureKind::Crashed, format!("trapped: {trap}")),
            (None, None) if error_chain(error).contains("forcing trap when growing memory") => (
                FailureKind::Crashed,
                format!(
                    "exceeded its memory limit of {} MiB",
                    self.memory_limit_bytes / (1024 * 1024)
                ),
            ),
            (None, None) => (
                FailureKind::Crashed,
                format!("failed: {}", cap(&error_chain(error))),
            ),
        };
        let mut message = format!("plugin {cause} during {what}");
        if let Some(line) = last_stderr {
            message.push_str(&format!("; its last stderr line: {}", cap(&line)));
        }
        self.error(kind, message)
    }

    fn timeout_error(&self) -> SourceError {
        self.error(
            FailureKind::Timeout,
            format!(
                "plugin did not answer within {} ms",
                self.timeout.as_millis()
            ),
        )
    }

    fn error(&self, kind: FailureKind, message: String) -> SourceError {
        SourceError::new(self.provider.clone(), kind, message)
    }
}

#[async_trait]
impl TokenSource for WasmSource {
    async fn resolve(&self) -> Result<Token, SourceError> {
        self.call(Call::Resolve).await
    }

    async fn refresh(&self, reason: RefreshReason) -> Result<Token, SourceError> {
        self.call(Call::Refresh(reason)).await
    }
}

fn guest_reason(reason: RefreshReason) -> GuestRefreshReason {
    match reason {
        RefreshReason::Unauthorized => GuestRefreshReason::Unauthorized,
        RefreshReason::Expiring => GuestRefreshReason::Expiring,
        RefreshReason::Forced => GuestRefreshReason::Forced,
    }
}

/// Caps a message from the plugin at 1 KiB and makes it one safe line.
fn cap(message: &str) -> String {
    super::output::one_line(message, 1024)
}

const _: () = assert!(
    EPOCH_TICK.as_millis() <= 50,
    "deadlines are enforced to one tick"
);
