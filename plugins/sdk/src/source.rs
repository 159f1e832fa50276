//! The trait a plugin implements, and the glue from the WIT export to it.
//!
//! The generated export is a pair of free functions; [`export_token_source!`] keeps one
//! value of the plugin's type per instance (built by [`TokenSource::new`] on the first
//! call) and routes both functions to it. The host keeps an instance alive across calls
//! and replaces it after a trap, so state in `self` lives as long as the instance.
//!
//! [`export_token_source!`]: crate::export_token_source

use std::cell::RefCell;

use crate::bindings::tokenhost::plugin::types as wit;
use crate::{Config, Error, Token};

/// How a login runs (the WIT `login-options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginOptions {
    /// Whether a person is at a terminal and the host may open a browser; otherwise
    /// [`crate::interaction::open_browser`] prints the URL.
    pub interactive: bool,
}

/// Why the host asks for a new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefreshReason {
    /// A server rejected the current token with HTTP 401.
    Unauthorized,
    /// The current token is about to expire, or is older than the refresh interval.
    Expiring,
    /// A person asked for a fresh token (`tokenhost token --refresh`).
    Forced,
}

impl RefreshReason {
    /// `unauthorized`, `expiring` or `forced`, as in the WIT contract.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshReason::Unauthorized => "unauthorized",
            RefreshReason::Expiring => "expiring",
            RefreshReason::Forced => "forced",
        }
    }
}

impl std::fmt::Display for RefreshReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the host knows about a refresh (the WIT `refresh-context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshContext {
    /// Why the host asks.
    pub reason: RefreshReason,
    /// The fingerprint of the token being replaced (`sha256:` and 16 hex digits of the
    /// SHA-256 of its value), if the host holds one: a plugin that caches tokens can tell
    /// whether the rejected token is the one it holds.
    pub rejected_fingerprint: Option<String>,
}

/// A token source: what a plugin implements. Export it with
/// [`export_token_source!`](crate::export_token_source).
pub trait TokenSource: Sized + 'static {
    /// Builds the plugin from the provider's `auth.config` table, on the first call to a
    /// new instance. Check the configuration here: an error is returned to the host for
    /// that call, and `new` is tried again on the next one.
    fn new(config: Config) -> Result<Self, Error>;

    /// Returns a token, using whatever state the plugin already has. The host calls this
    /// when it holds no token for the provider.
    fn resolve(&mut self) -> Result<Token, Error>;

    /// Returns a new token: the one the host holds was rejected, is expiring, or a person
    /// asked for a fresh one. It should not be the token returned last time.
    ///
    /// The default calls [`TokenSource::resolve`], right for a plugin that keeps no
    /// token of its own.
    fn refresh(&mut self, reason: RefreshReason) -> Result<Token, Error> {
        let _ = reason;
        self.resolve()
    }

    /// [`TokenSource::refresh`] with everything the host knows. The default calls
    /// `refresh` with the reason.
    fn refresh_with(&mut self, context: RefreshContext) -> Result<Token, Error> {
        self.refresh(context.reason)
    }

    /// Signs a person in (`tokenhost login <provider>`) with the [`crate::interaction`]
    /// helpers, keeps what later calls need with [`crate::storage`], and returns the
    /// first token. `resolve` and `refresh` must never wait for a person.
    ///
    /// The default says the plugin has no interactive sign-in.
    fn login(&mut self, options: LoginOptions) -> Result<Token, Error> {
        let _ = options;
        Err(Error::Unsupported(
            "this plugin has no interactive sign-in".to_string(),
        ))
    }
}

/// Exports a [`TokenSource`] as the plugin's `token-source` interface. Call it once, at
/// the top level of the plugin crate (a `cdylib` built for `wasm32-wasip2`):
///
/// ```ignore
/// tokenhost_plugin::export_token_source!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_token_source {
    ($source:ty) => {
        const _: () = {
            use $crate::bindings::exports::tokenhost::plugin::token_source::Guest;
            use $crate::bindings::tokenhost::plugin::types as wit;

            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<::std::option::Option<$source>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct Export;

            impl Guest for Export {
                fn resolve() -> ::std::result::Result<wit::Token, wit::Error> {
                    INSTANCE.with(|instance| $crate::__private::resolve(instance))
                }

                fn refresh(
                    context: wit::RefreshContext,
                ) -> ::std::result::Result<wit::Token, wit::Error> {
                    INSTANCE.with(|instance| $crate::__private::refresh(instance, context))
                }

                fn login(
                    options: wit::LoginOptions,
                ) -> ::std::result::Result<wit::Token, wit::Error> {
                    INSTANCE.with(|instance| $crate::__private::login(instance, options))
                }
            }

    $crate::bindings::__export_token_provider!(Export with_types_in $crate::bindings);
        };
    };
}

/// The export's `resolve`, on the instance's value.
#[doc(hidden)]
pub fn resolve<T: TokenSource>(instance: &RefCell<Option<T>>) -> Result<wit::Token, wit::Error> {
    call(instance, T::resolve)
}

/// The export's `refresh`, on the instance's value.
#[doc(hidden)]
pub fn refresh<T: TokenSource>(
    instance: &RefCell<Option<T>>,
    context: wit::RefreshContext,
) -> Result<wit::Token, wit::Error> {
    let reason = match context.reason {
        wit::RefreshReason::Unauthorized => RefreshReason::Unauthorized,
        wit::RefreshReason::Expiring => RefreshReason::Expiring,
        wit::RefreshReason::Forced => RefreshReason::Forced,
    };
    let context = RefreshContext {
        reason,
        rejected_fingerprint: context.rejected_fingerprint,
    };
    call(instance, |source: &mut T| source.refresh_with(context))
}

/// The export's `login`, on the instance's value.
#[doc(hidden)]
pub fn login<T: TokenSource>(
    instance: &RefCell<Option<T>>,
    options: wit::LoginOptions,
) -> Result<wit::Token, wit::Error> {
    let options = LoginOptions {
        interactive: options.interactive,
    };
    call(instance, |source: &mut T| source.login(options))
}

fn call<T: TokenSource>(
    instance: &RefCell<Option<T>>,
    f: impl FnOnce(&mut T) -> Result<Token, Error>,
) -> Result<wit::Token, wit::Error> {
    let mut slot = instance.borrow_mut();
    let source = match &mut *slot {
        Some(source) => source,
        empty => empty.insert(T::new(Config::from_host()).map_err(to_wit_error)?),
    };
    match f(source) {
        Ok(token) => Ok(wit::Token {
            value: token.value,
            expires_at_ms: token.expires_at_ms,
        }),
        Err(e) => Err(to_wit_error(e)),
    }
}

fn to_wit_error(e: Error) -> wit::Error {
    match e {
        Error::InvalidConfig(m) => wit::Error::InvalidConfig(m),
        Error::Denied(m) => wit::Error::Denied(m),
        Error::Unavailable(message) => wit::Error::Unavailable(wit::UnavailableError {
            message,
            retry_after_ms: None,
        }),
        Error::RetryLater { message, after } => wit::Error::Unavailable(wit::UnavailableError {
            message,
            retry_after_ms: Some(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
        }),
        Error::NotSignedIn(m) => wit::Error::NotSignedIn(m),
        Error::Unsupported(m) => wit::Error::Unsupported(m),
    }
}
