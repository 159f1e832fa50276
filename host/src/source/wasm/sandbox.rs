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
//! - `memory_limit_mb` bounds the sum of all linear memories, all tables and the
//!   host-side resources the plugin holds (wasi:http fields, requests, responses, bodies,
//!   streams, pollables), counted by one [`MemoryBudget`]; the resource table holds at
//!   most [`MAX_RESOURCES`] entries. Growing past either traps instead of failing
//!   quietly, so the host can say why;
//! - no interaction with a person: the 0.2 `interaction` imports fail, except during a
//!   `login` call (`PluginState::interaction`);
//! - the 0.2 `secrets` imports reach only the provider's own store (the keyring unless
//!   `secret_store = "file"`), capped per provider, and fail when the policy denies it;
//! - at most [`MAX_IN_FLIGHT`](super::http::MAX_IN_FLIGHT) outgoing requests per provider
//!   at once.
//!
//! What a provider's config grants on top (decided in [`crate::grants`]) is applied here
//! and nowhere else: its `allowed_env` variables (if set), its `allowed_paths` as
//! read-only preopens, and wasi:http requests to its `allowed_hosts` (see [`super::http`];
//! a plugin that imports wasi:http without a grant links, and every request is denied).

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::host_impl::{LogLevel, SecretAccess};
use super::http::activity::Activity;
use super::http::proxy::ProxyRules;
use super::http::{HttpClient, HttpHooks, RequestSlots, client_for};
use super::interaction::Interaction;
use super::limits::{BodyBytes, MAX_RESOURCES, MemoryBudget};
use super::output::{LogStream, StreamName};
use crate::granter::Granted;
use crate::grants::{Grants, HostPattern};
use crate::secrets::{SecretError, SecretStore};

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
    pub(super) limits: MemoryBudget,
    pub(super) stdout: LogStream,
    pub(super) stderr: LogStream,
    pub(super) http_ctx: WasiHttpCtx,
    pub(super) http: HttpHooks,
    /// What the instance's outgoing requests are doing (shared with `http`).
    pub(super) requests: Activity,
    /// The plugin's `warn` and `error` log lines of the current call, written when the
    /// call ends (see `host_impl`).
    pub(super) held_logs: Vec<(LogLevel, String)>,
    /// When the current call must end (checked by the epoch callback).
    pub(super) deadline: Instant,
    /// Host `log` lines written in the current call.
    pub(super) log_lines: u32,
    /// Host `log` lines dropped in the current call.
    pub(super) log_dropped: u32,
    /// The person-facing side of a `login` call; `None` in every other call, so the
    /// `interaction` imports fail outside `login`.
    pub(super) interaction: Option<Interaction>,
    /// The provider's secret store, and its lock while a call holds it.
    pub(super) secrets: SecretAccess,
}

/// Builds a [`PluginState`] that grants nothing beyond what the module comment lists.
pub struct Sandbox {
    provider: Arc<str>,
    config: Arc<[(String, String)]>,
    memory_limit_bytes: usize,
    grants: Grants,
    hosts: Arc<[HostPattern]>,
    client: Option<HttpClient>,
    /// The provider's request slots, shared by all its instances.
    slots: RequestSlots,
    /// The provider's secret store, or why it may not have one.
    secrets: Result<SecretStore, SecretError>,
}

impl Sandbox {
    /// A sandbox for `provider`: deny-all, plus what the granter decided.
    pub fn new(provider: Arc<str>, granted: &Granted) -> Result<Self, String> {
        let spec = granted.plugin();
        let hosts: Arc<[HostPattern]> = spec.grants.hosts.clone().into();
        let client = match hosts.is_empty() {
            true => None,
            false => Some(client_for(
                provider.clone(),
                hosts.clone(),
                Arc::new(ProxyRules::from_env()),
            )?),
        };
        let secrets = spec.secrets.store_for(&provider);
        Ok(Sandbox {
            provider,
            config: spec.config.clone().into(),
            memory_limit_bytes: usize::try_from(spec.memory_limit_bytes).unwrap_or(usize::MAX),
            grants: spec.grants.clone(),
            hosts,
            client,
            slots: RequestSlots::default(),
            secrets,
        })
    }

    /// Makes the store data for one instance. Fails only if a granted directory can no
    /// longer be opened.
    pub fn build(&self) -> Result<PluginState, String> {
        let stdout = LogStream::new(self.provider.clone(), StreamName::Stdout);
        let stderr = LogStream::new(self.provider.clone(), StreamName::Stderr);
        let mut builder = WasiCtx::builder();
        builder
            .stdin(tokio::io::empty())
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        for (name, value) in self.grants.environment() {
            builder.env(name, value);
        }
        for (host_path, guest_path) in &self.grants.paths {
            builder
                .preopened_dir(host_path, guest_path, FsPerms::ReadOnly)
                .map_err(|e| format!("cannot open allowed path {guest_path}: {e}"))?;
        }
        let wasi = builder.build();
        let bodies = BodyBytes::default();
        let limits = MemoryBudget::new(
            self.provider.clone(),
            self.memory_limit_bytes,
            bodies.clone(),
        );
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let requests = Activity::default();
        Ok(PluginState {
            provider: self.provider.clone(),
            config: self.config.clone(),
            wasi,
            table,
            limits,
            stdout,
            stderr,
            http_ctx: WasiHttpCtx::new(),
            http: HttpHooks::new(
                self.provider.clone(),
                self.hosts.clone(),
                self.client.clone(),
                self.slots.clone(),
                bodies,
                requests.clone(),
            ),
            requests,
            held_logs: Vec::new(),
            deadline: Instant::now(),
            log_lines: 0,
            log_dropped: 0,
            interaction: None,
            secrets: SecretAccess::new(self.secrets.clone()),
        })
    }
}

impl PluginState {
    /// Resets the per-call budgets and sets the deadline before a call.
    pub(super) fn begin_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.http.deadline = deadline;
        self.log_lines = 0;
        self.log_dropped = 0;
        self.held_logs.clear();
        self.requests.begin_call();
        self.stdout.begin_call();
        self.stderr.begin_call();
        self.secrets.begin_call(deadline);
    }

    /// Ends a call: flushes output and returns what the host knows about it (the
    /// requests, the held log lines and the last stderr line).
    pub(super) fn end_call(&mut self) -> CallEnd {
        if self.log_dropped > 0 {
            tracing::warn!(
                provider = %self.provider,
                "plugin wrote more than {LOG_LINES_PER_CALL} log lines in one call; {} dropped",
                self.log_dropped
            );
        }
        self.stdout.end_call();
        self.interaction = None;
        self.secrets.end_call();
        CallEnd {
            last_stderr: self.stderr.end_call(),
            requests: self.requests.snapshot(),
            held_logs: std::mem::take(&mut self.held_logs),
        }
    }
}

/// What a call left behind, for its outcome's message.
pub(super) struct CallEnd {
    /// The plugin's last stderr line.
    pub(super) last_stderr: Option<String>,
    /// What its requests were doing when it ended.
    pub(super) requests: super::http::activity::CallRequests,
    /// Its `warn` and `error` log lines, not yet written.
    pub(super) held_logs: Vec<(LogLevel, String)>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}
