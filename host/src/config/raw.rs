//! The configuration file as written: serde types that mirror the TOML.
//!
//! The shape is Codex's `config.toml`: providers live under `[model_providers.<id>]`
//! and their token source under `[model_providers.<id>.auth]`. Unknown top-level keys
//! and unknown provider keys are accepted (a Codex config works as is), except
//! tokenhost's own security-relevant keys in the wrong table (see the `placement` module);
//! unknown keys in an `auth` table are errors, because a typo there would silently
//! weaken a setting.
//! These types also generate the JSON Schema (`tokenhost schema`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawConfig {
    /// Model providers by id. Only providers with an `auth` table have a token source.
    #[serde(default)]
    pub model_providers: BTreeMap<String, RawProvider>,
}

/// One `[model_providers.<id>]` table. Keys other than these are accepted and ignored,
/// except an `auth` key written here instead of in the `auth` table.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RawProvider {
    /// Display name (ignored by tokenhost).
    pub name: Option<String>,
    /// The provider's API base URL (`https://llm.example.com/v1`): relative paths given
    /// to `tokenhost request` and `AuthClient` are appended to it. Must be http(s).
    pub base_url: Option<String>,
    /// Codex: extra HTTP headers sent with every API request (`{ "X-Team" = "a" }`).
    /// Cannot set `Authorization`, which carries the token.
    pub http_headers: Option<BTreeMap<String, String>>,
    /// Codex: query parameters added to every API request (`{ api-version = "2025-01-01" }`).
    pub query_params: Option<BTreeMap<String, String>>,
    /// Codex: read the key from this environment variable. Cannot be combined with `auth`.
    pub env_key: Option<String>,
    /// Codex: a literal bearer token. Cannot be combined with `auth`.
    pub experimental_bearer_token: Option<String>,
    /// Codex: use the OpenAI login. Cannot be combined with `auth`.
    #[serde(default)]
    pub requires_openai_auth: bool,
    /// The token source. Kept as raw TOML here so that its errors can name the provider.
    #[schemars(with = "Option<RawAuth>")]
    pub auth: Option<toml::Value>,
}

/// A `[model_providers.<id>.auth]` table: exactly one of `command` or `plugin`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Command source: the program to run (absolute, relative to `cwd`, or on `PATH`).
    pub command: Option<String>,
    /// Command source: arguments (no shell). Default: none.
    pub args: Option<Vec<String>>,
    /// Command source: working directory. Default: the config file's folder.
    pub cwd: Option<String>,
    /// Command source: how stdout is read: `text` (default), `json` or `exec-credential`.
    pub format: Option<RawFormat>,
    /// Plugin source: the `.wasm` component, relative to the config file's folder; or an
    /// OCI artifact, `oci://registry/repository:tag` or `...@sha256:<digest>`.
    pub plugin: Option<String>,
    /// OCI plugin: how long a tag's resolution is reused before the registry is asked
    /// again, in milliseconds. Default 3600000 (one hour); 0 = ask every time.
    pub oci_refresh_ms: Option<u64>,
    /// OCI plugin: the largest plugin layer pulled, in MiB. Default 64.
    #[schemars(range(min = 1))]
    pub oci_max_mb: Option<u64>,
    /// Pin: the SHA-256 (hex) of the plugin file, or of the command's executable. The
    /// source is refused if the file does not match. Honoured with or without a policy.
    pub sha256: Option<String>,
    /// Plugin source: a publisher key pin (an `ssh-ed25519 ...` line, or a wasmsign2
    /// public key in hex or base64). The plugin must carry a valid signature by this
    /// key (embedded, or detached in `<plugin>.wasm.sig`). Honoured with or without a
    /// policy.
    pub publisher_key: Option<String>,
    /// Per-call deadline in milliseconds. Default 5000, at least 1.
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
    /// Reuse a token at most this long, in milliseconds, before refreshing it.
    /// Default 300000; 0 = reuse until it expires or a server rejects it.
    pub refresh_interval_ms: Option<u64>,
    /// Plugin source: the most memory the plugin may use, in MiB. Default 64.
    #[schemars(range(min = 1))]
    pub memory_limit_mb: Option<u64>,
    /// Plugin source: hosts the plugin may send HTTP requests to (`login.example.com`,
    /// `*.example.net`, `127.0.0.1:8080`). Default: none.
    pub allowed_hosts: Option<Vec<String>>,
    /// Plugin source: environment variables the plugin may read. Default: none.
    pub allowed_env: Option<Vec<String>>,
    /// Plugin source: directories the plugin may read (read-only). Default: none.
    pub allowed_paths: Option<Vec<String>>,
    /// Plugin source: where the plugin's secrets (a refresh token) are kept: `keyring`
    /// (the OS keyring, the default) or `file` (0600 under `$XDG_DATA_HOME/tokenhost`,
    /// for machines with no keyring). Never chosen silently.
    pub secret_store: Option<RawSecretStore>,
    /// Plugin source: settings handed to the plugin (`host.config`).
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub config: Option<toml::Table>,
}

/// Where a plugin's secrets are kept.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RawSecretStore {
    /// The OS keyring.
    Keyring,
    /// A file under `$XDG_DATA_HOME/tokenhost/secrets`.
    File,
}

/// The output formats of a command source.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RawFormat {
    /// The trimmed output is the token.
    Text,
    /// `{"token": "...", "expires_at": RFC 3339 or Unix seconds}`.
    Json,
    /// A kubectl ExecCredential (`client.authentication.k8s.io/v1` or `v1beta1`).
    ExecCredential,
}
