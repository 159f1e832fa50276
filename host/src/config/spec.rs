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
}

/// The two kinds of token source.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// A program run as a child process (`command = ...`).
    Command(CommandSpec),
    /// A WebAssembly component (`plugin = ...`).
    Plugin(PluginSpec),
}

/// A command source, with Codex's semantics for `command`, `args` and `cwd`.
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// The component file: absolute.
    pub path: PathBuf,
    /// The deadline for one call into the plugin.
    pub timeout: Duration,
    /// The most linear memory the plugin may use, in bytes.
    pub memory_limit_bytes: u64,
    /// The `auth.config` table as the plugin sees it (see the WIT `host.config`).
    pub config: Vec<(String, String)>,
    /// Capabilities granted beyond the deny-all sandbox.
    pub grants: crate::grants::Grants,
}
