//! The sandbox a plugin runs in: the store data and the deny-all builder that makes it.
//!
//! [`Sandbox::new`] grants nothing. Each default is deliberate and written here, and the
//! tests at the bottom check that the defaults are what this comment says:
//! - no preopened directories (every file access fails);
//! - no environment variables, no arguments, no initial working directory;
//! - stdin is empty (closed);
//! - stdout and stderr go to the host log through capped [`LogStream`]s, never to the
//!   host's own stdout;
//! - no TCP, no UDP, no name lookup (and the address check denies everything anyway);
//! - wall and monotonic clocks and random numbers are the host's (harmless, and needed
//!   for expiry computations and nonces);
//! - linear memory, tables and instances are capped by [`StoreLimits`]; growing past
//!   the cap traps instead of failing quietly, so the host can say why.
//!
//! Later grants (HTTP hosts, env vars, paths) are added here, one method per capability,
//! each checked against policy before anything is granted.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::output::{LogStream, StreamName};

/// The most host `log` lines a plugin may write per call; the rest are dropped.
pub const LOG_LINES_PER_CALL: u32 = 100;
/// The longest host `log` line, in bytes; longer ones are cut.
pub const LOG_LINE_MAX: usize = 1024;

/// Everything a plugin's store holds: its WASI context (granting nothing), resource
/// table, limits, and what the `host` interface serves.
pub struct PluginState {
    pub(super) provider: Arc<str>,
    pub(super) config: Arc<[(String, String)]>,
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) stdout: LogStream,
    pub(super) stderr: LogStream,
    /// When the current call must end (checked by the epoch callback).
    pub(super) deadline: Instant,
    /// Host `log` lines written in the current call.
    pub(super) log_lines: u32,
    /// Host `log` lines dropped in the current call.
    pub(super) log_dropped: u32,
}

/// Builds a [`PluginState`] that grants nothing beyond what the module comment lists.
pub struct Sandbox {
    provider: Arc<str>,
    config: Arc<[(String, String)]>,
    memory_limit_bytes: usize,
}

impl Sandbox {
    /// A deny-all sandbox for `provider` with its plugin `config` and memory cap.
    pub fn new(
        provider: Arc<str>,
        config: Arc<[(String, String)]>,
        memory_limit_bytes: u64,
    ) -> Self {
        Sandbox {
            provider,
            config,
            memory_limit_bytes: usize::try_from(memory_limit_bytes).unwrap_or(usize::MAX),
        }
    }

    /// Makes the store data for one instance.
    pub fn build(&self) -> PluginState {
        let stdout = LogStream::new(self.provider.clone(), StreamName::Stdout);
        let stderr = LogStream::new(self.provider.clone(), StreamName::Stderr);
        let wasi = WasiCtx::builder()
            .stdin(tokio::io::empty())
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.memory_limit_bytes)
            .memories(4)
            .tables(64)
            .table_elements(1 << 20)
            .instances(64)
            .trap_on_grow_failure(true)
            .build();
        PluginState {
            provider: self.provider.clone(),
            config: self.config.clone(),
            wasi,
            table: ResourceTable::new(),
            limits,
            stdout,
            stderr,
            deadline: Instant::now(),
            log_lines: 0,
            log_dropped: 0,
        }
    }
}

impl PluginState {
    /// Resets the per-call budgets and sets the deadline before a call.
    pub(super) fn begin_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.log_lines = 0;
        self.log_dropped = 0;
        self.stdout.begin_call();
        self.stderr.begin_call();
    }

    /// Ends a call: flushes output and returns the last stderr line, if any.
    pub(super) fn end_call(&mut self) -> Option<String> {
        if self.log_dropped > 0 {
            tracing::warn!(
                provider = %self.provider,
                "plugin wrote more than {LOG_LINES_PER_CALL} log lines in one call; {} dropped",
                self.log_dropped
            );
        }
        self.stdout.end_call();
        self.stderr.end_call()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
