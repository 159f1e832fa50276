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
//!
//! A failed call's error says what the host saw: a timeout names the request the plugin
//! was still waiting for, and a plugin error gets the host's description of the last
//! request that had no response (an untrusted certificate, a name that does not
//! resolve...) unless the plugin already said it.

use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::time::error::Elapsed;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::engine::{EPOCH_TICK, LoadedPlugin, PluginLoadError, PluginRuntime, error_chain};
use super::guest::{ContractVersion, Guest, GuestFailure, GuestToken};
use super::http::activity::CallRequests;
use super::interaction::Interaction;
use super::limits::{MemoryLimitExceeded, TooManyResources};
use super::sandbox::{CallEnd, PluginState, Sandbox};
use crate::error::{FailureKind, SourceError};
use crate::granter::Granted;
use crate::source::{LoginOptions, RefreshReason, TokenSource};
use crate::token::Token;

/// A token source that calls a WebAssembly component plugin.
pub struct WasmSource {
    provider: Arc<str>,
    plugin: LoadedPlugin,
    sandbox: Sandbox,
    timeout: Duration,
    memory_limit_bytes: u64,
    /// The plugin's own `http_timeout_ms` setting, if its config has one.
    http_timeout_ms: Option<u64>,
    /// The deadline of a `login` call: the plugin config's `login_timeout_ms`, else
    /// [`DEFAULT_LOGIN_TIMEOUT`] (a person needs minutes, not the call's `timeout_ms`).
    login_timeout: Duration,
    /// The live instance. futures-util's lock, not tokio's: taking and releasing it
    /// uncontended is one atomic operation each, where tokio's release also locks its
    /// list of waiters (measurable on a warm refresh of about a microsecond).
    live: futures_util::lock::Mutex<Option<Live>>,
}

/// How long a `login` may take when the plugin's config sets no `login_timeout_ms`.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

struct Live {
    store: Store<PluginState>,
    guest: Guest,
}

#[derive(Clone, Copy)]
enum Call {
    Resolve,
    Refresh(RefreshReason, Option<crate::token::Fingerprint>),
    Login(LoginOptions),
}

impl WasmSource {
    /// Loads the `granted` plugin for `provider` (compiling it, or loading it from the
    /// runtime's cache). The first instance is created on the first call.
    pub fn new(
        runtime: &PluginRuntime,
        provider: Arc<str>,
        granted: &Granted,
    ) -> Result<Self, PluginLoadError> {
        Self::new_verified(runtime, provider, granted, &mut |_| true)
    }

    /// Like [`new`](Self::new), refusing the plugin if `verify` says no to the bytes
    /// about to be compiled (their digest and signatures: policy allowlists, the user's
    /// pins).
    pub fn new_verified(
        runtime: &PluginRuntime,
        provider: Arc<str>,
        granted: &Granted,
        verify: &mut dyn FnMut(&crate::publisher::SignedPlugin<'_>) -> bool,
    ) -> Result<Self, PluginLoadError> {
        Self::new_approved(runtime, provider, granted, super::Prior::Unknown, verify)
    }

    /// Like [`new_verified`](Self::new_verified), with what is known of the plugin file
    /// before it is read (`prior`: an earlier check's digest and verdict by the same
    /// `verify`, or that nothing judges its bytes).
    pub(crate) fn new_approved(
        runtime: &PluginRuntime,
        provider: Arc<str>,
        granted: &Granted,
        prior: super::Prior<'_>,
        verify: &mut dyn FnMut(&crate::publisher::SignedPlugin<'_>) -> bool,
    ) -> Result<Self, PluginLoadError> {
        let spec = granted.plugin();
        let plugin = runtime.load_approved(&spec.path, prior, verify)?;
        tracing::debug!(
            provider = %provider,
            sha256 = %hex::encode(plugin.sha256),
            origin = ?plugin.origin,
            "plugin loaded"
        );
        let sandbox = Sandbox::new(provider.clone(), granted).map_err(|message| {
            PluginLoadError::Invalid {
                path: spec.path.clone(),
                message,
            }
        })?;
        let setting = |name: &str| {
            spec.config
                .iter()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.trim().parse::<u64>().ok())
        };
        let http_timeout_ms = setting("http_timeout_ms");
        let login_timeout = setting("login_timeout_ms")
            .filter(|&ms| ms > 0)
            .map_or(DEFAULT_LOGIN_TIMEOUT, Duration::from_millis);
        if let Some(warning) = http_timeout_warning(http_timeout_ms, spec.timeout) {
            tracing::warn!(provider = %provider, "{warning}");
        }
        Ok(WasmSource {
            sandbox,
            provider,
            plugin,
            timeout: spec.timeout,
            memory_limit_bytes: spec.memory_limit_bytes,
            http_timeout_ms,
            login_timeout,
            live: futures_util::lock::Mutex::new(None),
        })
    }

    /// The contract version the plugin speaks.
    pub fn contract(&self) -> ContractVersion {
        self.plugin.pre.version()
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
        let instantiated = until(deadline, self.plugin.pre.instantiate(&mut store)).await;
        let end = store.data_mut().end_call();
        let result = match instantiated {
            Ok(Ok(guest)) => Ok(Live { store, guest }),
            Ok(Err(e)) => Err(self.trap_error("starting", &e, end.last_stderr, &end.requests)),
            Err(_) => Err(self.timeout_error(&end.requests)),
        };
        super::host_impl::write_held(&self.provider, end.held_logs, None);
        result
    }

    async fn call(&self, call: Call) -> Result<Token, SourceError> {
        let mut live = self.live.lock().await;
        if live.is_none() {
            *live = Some(self.instantiate().await?);
        }
        let Live { store, guest } = live.as_mut().expect("instantiated above");
        let timeout = match call {
            Call::Login(_) => self.login_timeout,
            _ => self.timeout,
        };
        let deadline = Instant::now() + timeout;
        store.data_mut().begin_call(deadline);
        if let Call::Login(options) = call {
            // Only a login call can reach the person (see `interaction`).
            store.data_mut().interaction = Some(Interaction::new(
                self.provider.clone(),
                options.interactive,
                deadline,
            ));
        }
        // The callback runs every tick: it yields, or interrupts once past the deadline.
        store.set_epoch_deadline(1);
        let outcome = until(deadline, async {
            match call {
                Call::Resolve => guest.resolve(&mut *store).await,
                Call::Refresh(reason, replacing) => {
                    let replacing = replacing.map(|f| f.to_string());
                    guest.refresh(&mut *store, reason, replacing).await
                }
                Call::Login(options) => guest.login(&mut *store, options.interactive).await,
            }
        })
        .await;
        let CallEnd {
            last_stderr,
            requests,
            held_logs,
        } = store.data_mut().end_call();
        let what = match call {
            Call::Resolve => "resolve",
            Call::Refresh(..) => "refresh",
            Call::Login(_) => "login",
        };
        let mut plugin_message = None;
        let result = match outcome {
            Ok(Ok(Ok(token))) => self.accept(token),
            Ok(Ok(Err(error))) => {
                let (error, message) = self.guest_error(error, &requests);
                plugin_message = Some(message);
                Err(error)
            }
            Ok(Err(trap)) => {
                *live = None;
                Err(self.trap_error(what, &trap, last_stderr, &requests))
            }
            Err(_elapsed) => {
                *live = None;
                Err(self.timeout_error_after(timeout, &requests))
            }
        };
        let failure = plugin_message
            .as_deref()
            .or(result.as_ref().err().map(SourceError::message));
        super::host_impl::write_held(&self.provider, held_logs, failure);
        result
    }

    fn accept(&self, token: GuestToken) -> Result<Token, SourceError> {
        Token::new(token.value, token.expires_at_ms).map_err(|invalid| {
            self.error(
                FailureKind::BadOutput,
                format!("the plugin returned an unusable token: {invalid}"),
            )
        })
    }

    /// The plugin's error with the host's note added, and the plugin's own (capped)
    /// message, which its log lines may repeat.
    fn guest_error(&self, error: GuestFailure, requests: &CallRequests) -> (SourceError, String) {
        let mut retry_after = None;
        let (kind, message) = match error {
            GuestFailure::InvalidConfig(m) => (FailureKind::InvalidConfig, m),
            GuestFailure::Denied(m) => (FailureKind::Denied, m),
            GuestFailure::Unavailable {
                message,
                retry_after_ms,
            } => {
                retry_after = retry_after_ms.map(Duration::from_millis);
                (FailureKind::Unavailable, message)
            }
            GuestFailure::NotSignedIn(m) => (FailureKind::NotSignedIn, m),
            GuestFailure::Unsupported(m) => (
                FailureKind::InvalidConfig,
                format!("the plugin does not support this: {m}"),
            ),
        };
        let message = cap(&message);
        let error = match kind {
            // The sign-in message is for a person; the host's request note is not.
            FailureKind::NotSignedIn => self.error(kind, message.clone()),
            _ => self.error(kind, with_host_note(&message, requests)),
        };
        (error.with_retry_after(retry_after), message)
    }

    fn trap_error(
        &self,
        what: &str,
        error: &wasmtime::Error,
        last_stderr: Option<String>,
        requests: &CallRequests,
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
            (None, Some(Trap::Interrupt)) => return self.timeout_error(requests),
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

    /// The plugin ran out of time: names the request it was waiting for, if any.
    fn timeout_error(&self, requests: &CallRequests) -> SourceError {
        self.timeout_error_after(self.timeout, requests)
    }

    /// Like [`timeout_error`](Self::timeout_error), for a call whose deadline was
    /// `timeout` (a login's is longer).
    fn timeout_error_after(&self, timeout: Duration, requests: &CallRequests) -> SourceError {
        let timeout_ms = timeout.as_millis();
        let mut message = format!("plugin did not answer within {timeout_ms} ms");
        if let Some((request, age)) = &requests.waiting_for {
            let others = match requests.in_flight {
                0 | 1 => String::new(),
                n => format!(", the oldest of {n} requests in flight"),
            };
            message.push_str(&format!(
                ": it was waiting for {request} (no answer after {} ms{others})",
                age.as_millis()
            ));
            match self.http_timeout_ms {
                Some(ms) if u128::from(ms) >= timeout_ms => message.push_str(&format!(
                    "; its http_timeout_ms = {ms} is not below timeout_ms = {timeout_ms}, so \
                     the host's deadline came first"
                )),
                Some(_) => {}
                None => message.push_str(
                    "; if the plugin has an http_timeout_ms setting (the shipped ones do, 4000 \
                     by default), set it below timeout_ms to get the plugin's own error",
                ),
            }
        } else if let Some(failure) = &requests.last_failure {
            message.push_str(&format!("; its last failed request: {failure}"));
        }
        self.error(FailureKind::Timeout, message)
    }

    fn error(&self, kind: FailureKind, message: String) -> SourceError {
        SourceError::new(self.provider.clone(), kind, message)
    }
}

/// Runs `call` until it ends or `deadline` passes. A call that ends on its first poll
/// (a warm refresh that makes no request: it yields only at an epoch tick or in a host
/// wait) never arms a timer: making and dropping a tokio `Sleep` cost about 6% of such
/// a call. One that yields gets the timer then, at the same deadline.
async fn until<F: Future>(deadline: Instant, call: F) -> Result<F::Output, Elapsed> {
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => tokio::time::timeout_at(deadline.into(), call).await,
    }
}

#[async_trait]
impl TokenSource for WasmSource {
    async fn resolve(&self) -> Result<Token, SourceError> {
        self.call(Call::Resolve).await
    }

    async fn refresh(&self, reason: RefreshReason) -> Result<Token, SourceError> {
        self.call(Call::Refresh(reason, None)).await
    }

    async fn refresh_replacing(
        &self,
        reason: RefreshReason,
        replacing: Option<crate::token::Fingerprint>,
    ) -> Result<Token, SourceError> {
        self.call(Call::Refresh(reason, replacing)).await
    }

    async fn login(&self, options: LoginOptions) -> Option<Result<Token, SourceError>> {
        match self.contract() {
            ContractVersion::V0_1 => None,
            ContractVersion::V0_2 => Some(self.call(Call::Login(options)).await),
        }
    }
}

/// `message` (the plugin's) with the host's description of the call's last request that
/// got no response, unless the message already has it.
fn with_host_note(message: &str, requests: &CallRequests) -> String {
    match &requests.last_failure {
        Some(detail) if !message.contains(detail.as_str()) => {
            format!("{message}; the host saw: {detail}")
        }
        _ => message.to_string(),
    }
}

/// The warning for a plugin whose own HTTP timeout (`http_timeout_ms` in its config, the
/// convention of the SDK's plugins) is not below the host's deadline: a slow server is
/// then cut off by the host before the plugin can report it.
fn http_timeout_warning(http_timeout_ms: Option<u64>, timeout: Duration) -> Option<String> {
    let http = http_timeout_ms?;
    let timeout_ms = timeout.as_millis();
    (u128::from(http) >= timeout_ms).then(|| {
        format!(
            "http_timeout_ms = {http} in the plugin's config is not below timeout_ms = \
             {timeout_ms}: a slow server will end the call with the host's timeout instead of \
             the plugin's own error; set http_timeout_ms below timeout_ms"
        )
    })
}

/// Caps a message from the plugin at 1 KiB and makes it one safe line.
fn cap(message: &str) -> String {
    super::output::one_line(message, 1024)
}

const _: () = assert!(
    EPOCH_TICK.as_millis() <= 50,
    "deadlines are enforced to one tick"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_timeout_at_or_above_the_deadline_is_warned_about() {
        let deadline = Duration::from_millis(1500);
        assert_eq!(http_timeout_warning(None, deadline), None);
        assert_eq!(http_timeout_warning(Some(1499), deadline), None);
        for ms in [1500, 4000] {
            let warning = http_timeout_warning(Some(ms), deadline).unwrap();
            assert!(
                warning.contains(&format!("http_timeout_ms = {ms}"))
                    && warning.contains("timeout_ms = 1500"),
                "{warning}"
            );
        }
    }

    #[test]
    fn the_host_note_is_added_once() {
        let mut requests = CallRequests::default();
        assert_eq!(with_host_note("failed", &requests), "failed");
        requests.last_failure = Some("idp:443 refused the connection".into());
        assert_eq!(
            with_host_note("failed", &requests),
            "failed; the host saw: idp:443 refused the connection"
        );
        let already = "x: idp:443 refused the connection";
        assert_eq!(with_host_note(already, &requests), already);
    }
}
