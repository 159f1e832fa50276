//! The validated, resolved form of a provider's configuration.
//!
//! Everything here has been checked once by [`crate::config`]: paths are absolute,
//! durations are durations, exactly one source kind is chosen. Sources are built from
//! these types and never see raw TOML.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One provider with an `auth` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSpec {
    /// The provider id (the key under `model_providers`).
    pub id: Arc<str>,
    /// How long a token may be reused before a proactive refresh; `None` = no age limit
    /// (`refresh_interval_ms = 0`: reuse until expiry or a 401).
    pub refresh_interval: Option<Duration>,
    /// Where tokens come from.
    pub source: SourceSpec,
    /// The user's own pin: the SHA-256 (hex) the plugin file or executable must have.
    pub sha256: Option<String>,
    /// The user's publisher pin: the plugin must carry a valid signature by this key.
    pub publisher_key: Option<crate::publisher::PublisherKey>,
    /// Where and how the provider's API is called (`base_url`, `http_headers`,
    /// `query_params`), for [`AuthClient`](crate::client::AuthClient).
    pub api: ApiSpec,
    /// Which limits the provider left unset (and so took tokenhost's defaults): a policy
    /// ceiling lowers those instead of refusing them.
    pub defaulted: Defaulted,
}

/// Which of a provider's limits are tokenhost's defaults rather than set in its `auth`
/// table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Defaulted {
    /// `timeout_ms` was not set.
    pub timeout: bool,
    /// `memory_limit_mb` was not set (plugin sources).
    pub memory_limit: bool,
}

/// A provider's API settings from its `[model_providers.<id>]` table, validated: the
/// base URL parses as http(s), header names and values are valid HTTP.
///
/// `Debug` shows header names and query keys but not their values, which may be secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiSpec {
    /// `base_url`: relative request paths are appended to it.
    pub base_url: Option<String>,
    /// `http_headers`, sorted by name.
    pub headers: Vec<(String, String)>,
    /// `query_params`, sorted by key.
    pub query: Vec<(String, String)>,
}

impl std::fmt::Debug for ApiSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = |pairs: &[(String, String)]| pairs.iter().map(|(k, _)| k.clone()).collect();
        let (headers, query): (Vec<String>, Vec<String>) = (keys(&self.headers), keys(&self.query));
        f.debug_struct("ApiSpec")
            .field("base_url", &self.base_url)
            .field("headers", &headers)
            .field("query", &query)
            .finish()
    }
}

/// The two kinds of token source.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SourceSpec {
    /// A program run as a child process (`command = ...`).
    Command(CommandSpec),
    /// A WebAssembly component (`plugin = ...`).
    Plugin(PluginSpec),
}

impl SourceSpec {
    /// The plugin, for a plugin source.
    pub fn plugin(&self) -> Option<&PluginSpec> {
        match self {
            SourceSpec::Plugin(plugin) => Some(plugin),
            SourceSpec::Command(_) => None,
        }
    }
}

/// "command `<program>`" or "plugin `<path>`": what runs, without its arguments.
impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Command(c) => write!(f, "command `{}`", c.program),
            SourceSpec::Plugin(p) => match &p.oci {
                Some(oci) => write!(f, "plugin {}", oci.reference),
                None => write!(f, "plugin {}", p.path.display()),
            },
        }
    }
}

/// A command source, with Codex's semantics for `command`, `args` and `cwd`.
///
/// `Debug` shows how many arguments there are, not what they are: arguments may hold
/// secrets.
#[derive(Clone, PartialEq)]
pub struct CommandSpec {
    /// The program as written: absolute, relative with a separator (resolved against
    /// `cwd`), or a bare name looked up on `PATH`.
    pub program: String,
    /// Arguments, passed as they are (no shell).
    pub args: Vec<String>,
    /// The working directory: absolute.
    pub cwd: PathBuf,
    /// The deadline for one run.
    pub timeout: Duration,
    /// How stdout is read.
    pub format: OutputFormat,
}

/// How a command's standard output is turned into a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OutputFormat {
    /// The whole output, trimmed, is the token (Codex's contract).
    #[default]
    Text,
    /// `{"token": "...", "expires_at": RFC 3339 string or Unix seconds}`.
    Json,
    /// A kubectl `client.authentication.k8s.io/v1` or `v1beta1` ExecCredential.
    ExecCredential,
}

/// A WebAssembly plugin source.
///
/// `Debug` shows the `config` keys, not their values: a value may be a secret.
#[derive(Clone, PartialEq)]
pub struct PluginSpec {
    /// The component file: absolute. For a plugin from a registry ([`PluginSpec::oci`]),
    /// the pulled layer in the store, set when the plugin is fetched (empty before).
    pub path: PathBuf,
    /// Where the plugin comes from when it is an OCI artifact (`plugin = "oci://..."`):
    /// pulled into the store before it is read, and then read like a file.
    pub oci: Option<Box<crate::oci::OciSource>>,
    /// The deadline for one call into the plugin.
    pub timeout: Duration,
    /// The most linear memory the plugin may use, in bytes.
    pub memory_limit_bytes: u64,
    /// The `auth.config` table as the plugin sees it (see the WIT `host.config`).
    pub config: Vec<(String, String)>,
    /// Capabilities granted beyond the deny-all sandbox.
    pub grants: crate::grants::Grants,
    /// Where the plugin's secrets (contract 0.2 `secrets`) are kept.
    pub secrets: SecretsSpec,
}

/// A plugin's secret storage: `secret_store` from its `[auth]` table, with the policy's
/// say applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsSpec {
    /// The store: the OS keyring unless `secret_store = "file"`.
    pub store: crate::secrets::StoreKind,
    /// The most bytes the provider may store (the policy may lower it).
    pub max_bytes: usize,
    /// The policy denies this store: every use fails, saying so.
    pub denied: bool,
    /// The provider chose the store (`secret_store` in its `[auth]` table), so a policy's
    /// default store does not apply.
    pub explicit: bool,
    /// Which config the secrets belong to: hex of the SHA-256 of the config file's
    /// canonical path (empty for a spec made by hand). Two configs that both name a
    /// provider `corp` (perhaps with different plugins and identity providers) never
    /// read each other's refresh tokens; moving the config file means signing in again.
    pub scope: String,
}

impl Default for SecretsSpec {
    /// The keyring, [`DEFAULT_MAX_BYTES`](crate::secrets::DEFAULT_MAX_BYTES), allowed.
    fn default() -> Self {
        SecretsSpec {
            store: crate::secrets::StoreKind::Keyring,
            max_bytes: crate::secrets::DEFAULT_MAX_BYTES,
            denied: false,
            explicit: false,
            scope: String::new(),
        }
    }
}

impl SecretsSpec {
    /// The store for `provider`, or why it may not have one.
    pub fn store_for(
        &self,
        provider: &std::sync::Arc<str>,
    ) -> Result<crate::secrets::SecretStore, crate::secrets::SecretError> {
        if self.denied {
            return Err(crate::secrets::SecretError::Denied {
                provider: provider.to_string(),
                store: self.store.as_str(),
            });
        }
        Ok(
            crate::secrets::SecretStore::new(provider.clone(), self.store, self.max_bytes)
                .scoped(&self.scope),
        )
    }
}

impl std::fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSpec")
            .field("program", &self.program)
            .field("args", &format_args!("[{} hidden]", self.args.len()))
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .field("format", &self.format)
            .finish()
    }
}

impl std::fmt::Debug for PluginSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.config.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("PluginSpec")
            .field("path", &self.path)
            .field("oci", &self.oci)
            .field("timeout", &self.timeout)
            .field("memory_limit_bytes", &self.memory_limit_bytes)
            .field("config_keys", &keys)
            .field("grants", &self.grants)
            .field("secrets", &self.secrets)
            .finish()
    }
}
