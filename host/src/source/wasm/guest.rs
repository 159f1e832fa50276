//! One interface over every contract version a plugin may speak.
//!
//! The version is picked once, at load, from the plugin's exports; [`GuestPre`] and
//! [`Guest`] are enums over the versions' generated bindings (Zed's `enum Extension`),
//! and translate calls and results to version-free types, so [`WasmSource`] has one code
//! path. A 0.1 plugin has no `login`: asking it to log in is `unsupported`, and its
//! `refresh-context` simply has no fingerprint.
//!
//! [`WasmSource`]: super::WasmSource

use wasmtime::Store;

use super::bindings::{v0_1, v0_2};
use super::sandbox::PluginState;
use crate::source::RefreshReason;

/// A contract version this host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    /// `tokenhost:plugin@0.1.x`: resolve and refresh.
    V0_1,
    /// `tokenhost:plugin@0.2.x`: adds login, interaction and secrets.
    V0_2,
}

impl ContractVersion {
    /// The version among the contracts in `bindings` whose
    /// minor version `export` (a `token-source` export name) is compatible with: 0.x
    /// versions are compatible within a minor version, so 0.1.1 speaks 0.1.0.
    pub fn of_export(export: &str) -> Option<Self> {
        let minor = |name: &'static str| name.rsplit_once('.').map_or(name, |(p, _)| p);
        let matches =
            |name: &'static str| export == name || export.starts_with(&format!("{}.", minor(name)));
        if matches(v0_1::TOKEN_SOURCE_EXPORT) {
            Some(ContractVersion::V0_1)
        } else if matches(v0_2::TOKEN_SOURCE_EXPORT) {
            Some(ContractVersion::V0_2)
        } else {
            None
        }
    }
}

/// What a plugin returned instead of a token, whatever its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestFailure {
    /// `invalid-config`.
    InvalidConfig(String),
    /// `denied`.
    Denied(String),
    /// `unavailable`, with the server's retry-after if the plugin knew it.
    Unavailable {
        /// What failed.
        message: String,
        /// How long to wait, in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// `not-signed-in` (0.2): a person must run `tokenhost login`.
    NotSignedIn(String),
    /// `unsupported` (0.2), or `login` asked of a 0.1 plugin.
    Unsupported(String),
}

/// A token as a plugin returned it, not yet validated.
pub struct GuestToken {
    /// The value.
    pub value: String,
    /// The expiry, in milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
}

/// What one call into the plugin returned, when it did not trap.
pub type GuestResult = Result<GuestToken, GuestFailure>;

/// A compiled, linked plugin of some contract version, ready to instantiate.
pub enum GuestPre {
    /// A 0.1 plugin.
    V0_1(v0_1::TokenProviderPre<PluginState>),
    /// A 0.2 plugin.
    V0_2(v0_2::TokenProviderPre<PluginState>),
}

impl GuestPre {
    /// The contract version.
    pub fn version(&self) -> ContractVersion {
        match self {
            GuestPre::V0_1(_) => ContractVersion::V0_1,
            GuestPre::V0_2(_) => ContractVersion::V0_2,
        }
    }

    /// The engine the plugin was compiled for.
    pub fn engine(&self) -> &wasmtime::Engine {
        match self {
            GuestPre::V0_1(pre) => pre.engine(),
            GuestPre::V0_2(pre) => pre.engine(),
        }
    }

    /// A new instance in `store`.
    pub async fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Guest> {
        Ok(match self {
            GuestPre::V0_1(pre) => Guest::V0_1(pre.instantiate_async(store).await?),
            GuestPre::V0_2(pre) => Guest::V0_2(pre.instantiate_async(store).await?),
        })
    }
}

/// A live instance of some contract version.
pub enum Guest {
    /// A 0.1 instance.
    V0_1(v0_1::TokenProvider),
    /// A 0.2 instance.
    V0_2(v0_2::TokenProvider),
}

impl Guest {
    /// Calls `resolve`.
    pub async fn resolve(&self, store: &mut Store<PluginState>) -> wasmtime::Result<GuestResult> {
        Ok(match self {
            Guest::V0_1(b) => from_v0_1(
                b.tokenhost_plugin_token_source()
                    .call_resolve(store)
                    .await?,
            ),
            Guest::V0_2(b) => from_v0_2(
                b.tokenhost_plugin_token_source()
                    .call_resolve(store)
                    .await?,
            ),
        })
    }

    /// Calls `refresh` for `reason`; a 0.2 plugin also gets `rejected`, the fingerprint
    /// of the token being replaced.
    pub async fn refresh(
        &self,
        store: &mut Store<PluginState>,
        reason: RefreshReason,
        rejected: Option<String>,
    ) -> wasmtime::Result<GuestResult> {
        Ok(match self {
            Guest::V0_1(b) => {
                let context = v0_1::RefreshContext {
                    reason: match reason {
                        RefreshReason::Unauthorized => v0_1::GuestRefreshReason::Unauthorized,
                        RefreshReason::Expiring => v0_1::GuestRefreshReason::Expiring,
                        RefreshReason::Forced => v0_1::GuestRefreshReason::Forced,
                    },
                };
                from_v0_1(
                    b.tokenhost_plugin_token_source()
                        .call_refresh(store, context)
                        .await?,
                )
            }
            Guest::V0_2(b) => {
                let context = v0_2::RefreshContext {
                    reason: match reason {
                        RefreshReason::Unauthorized => v0_2::GuestRefreshReason::Unauthorized,
                        RefreshReason::Expiring => v0_2::GuestRefreshReason::Expiring,
                        RefreshReason::Forced => v0_2::GuestRefreshReason::Forced,
                    },
                    rejected_fingerprint: rejected,
                };
                from_v0_2(
                    b.tokenhost_plugin_token_source()
                        .call_refresh(store, &context)
                        .await?,
                )
            }
        })
    }

    /// Calls `login`; a 0.1 plugin has none.
    pub async fn login(
        &self,
        store: &mut Store<PluginState>,
        interactive: bool,
    ) -> wasmtime::Result<GuestResult> {
        Ok(match self {
            Guest::V0_1(_) => Err(GuestFailure::Unsupported(
                "the plugin is built for contract 0.1, which has no interactive login".into(),
            )),
            Guest::V0_2(b) => {
                let options = v0_2::LoginOptions { interactive };
                from_v0_2(
                    b.tokenhost_plugin_token_source()
                        .call_login(store, options)
                        .await?,
                )
            }
        })
    }
}

fn from_v0_1(result: Result<v0_1::GuestToken, v0_1::GuestError>) -> GuestResult {
    match result {
        Ok(token) => Ok(GuestToken {
            value: token.value,
            expires_at_ms: token.expires_at_ms,
        }),
        Err(v0_1::GuestError::InvalidConfig(m)) => Err(GuestFailure::InvalidConfig(m)),
        Err(v0_1::GuestError::Denied(m)) => Err(GuestFailure::Denied(m)),
        Err(v0_1::GuestError::Unavailable(message)) => Err(GuestFailure::Unavailable {
            message,
            retry_after_ms: None,
        }),
    }
}

fn from_v0_2(result: Result<v0_2::GuestToken, v0_2::GuestError>) -> GuestResult {
    match result {
        Ok(token) => Ok(GuestToken {
            value: token.value,
            expires_at_ms: token.expires_at_ms,
        }),
        Err(v0_2::GuestError::InvalidConfig(m)) => Err(GuestFailure::InvalidConfig(m)),
        Err(v0_2::GuestError::Denied(m)) => Err(GuestFailure::Denied(m)),
        Err(v0_2::GuestError::Unavailable(e)) => Err(GuestFailure::Unavailable {
            message: e.message,
            retry_after_ms: e.retry_after_ms,
        }),
        Err(v0_2::GuestError::NotSignedIn(m)) => Err(GuestFailure::NotSignedIn(m)),
        Err(v0_2::GuestError::Unsupported(m)) => Err(GuestFailure::Unsupported(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::ContractVersion;

    #[test]
    fn versions_are_compatible_within_a_minor_version() {
        let of = ContractVersion::of_export;
        assert_eq!(
            of("tokenhost:plugin/token-source@0.1.0"),
            Some(ContractVersion::V0_1)
        );
        assert_eq!(
            of("tokenhost:plugin/token-source@0.1.7"),
            Some(ContractVersion::V0_1)
        );
        assert_eq!(
            of("tokenhost:plugin/token-source@0.2.0"),
            Some(ContractVersion::V0_2)
        );
        assert_eq!(of("tokenhost:plugin/token-source@0.3.0"), None);
        assert_eq!(of("tokenhost:plugin/token-source@9.0.0"), None);
        assert_eq!(of("tokenhost:plugin/token-source@0.10.0"), None);
    }
}
