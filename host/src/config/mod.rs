//! Configuration: read the file, check it once, and hand out resolved [`ProviderSpec`]s.
//!
//! Data flows one way: TOML -> [`raw`] serde types -> validation here -> [`spec`] types
//! that sources are built from. Nothing later re-reads raw TOML. Every error names the
//! file or the provider, and the key at fault.

mod placement;
mod problem;
pub mod raw;
mod scope;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::toml_error::toml_error;
pub use problem::{ProviderProblem, SourceKind};
pub use spec::*;

use crate::grants::{self, Grants};
use raw::{RawAuth, RawConfig, RawFormat, RawProvider, RawSecretStore};

/// Default per-call deadline.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Default refresh interval.
pub const DEFAULT_REFRESH_INTERVAL_MS: u64 = 300_000;
/// Default plugin memory limit.
pub const DEFAULT_MEMORY_LIMIT_MB: u64 = 64;
/// The largest memory limit accepted (4 GiB, the most a 32-bit memory can address).
pub const MAX_MEMORY_LIMIT_MB: u64 = 4_096;

/// A configuration problem. Displays as one line naming the file or provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value has the wrong type.
    #[error("config file {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (position included).
        message: String,
    },
    /// A provider's settings are wrong.
    #[error("provider \"{provider}\": {problem}")]
    Provider {
        /// The provider id.
        provider: String,
        /// Which key is wrong, how, and how to fix it.
        problem: ProviderProblem,
    },
    /// No config file was given or found.
    #[error(
        "no config file: pass --config PATH, set TOKENHOST_CONFIG, or create {default}",
        default = .default.display()
    )]
    NotFound {
        /// Where the default config would be.
        default: PathBuf,
    },
}

/// A parsed and validated configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    path: PathBuf,
    providers: BTreeMap<String, ProviderSpec>,
    without_auth: Vec<String>,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Config::parse(&text, &path)
    }

    /// Validates `text` as if read from `path` (relative paths resolve against its folder).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| parse_error(toml_error(&e, Some(text))))?;
        // Parsed again untyped, to see the keys that `RawConfig` accepts and ignores.
        let table: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(toml_error(&e, Some(text))))?;
        placement::check(&table).map_err(|misplaced| match misplaced.provider {
            Some(provider) => ConfigError::Provider {
                provider,
                problem: ProviderProblem::Misplaced {
                    key: misplaced.key,
                    message: misplaced.message,
                },
            },
            None => parse_error(misplaced.message),
        })?;
        let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let scope = scope::secrets_scope(path);
        let mut providers = BTreeMap::new();
        let mut without_auth = Vec::new();
        for (id, provider) in raw.model_providers {
            match resolve_provider(&id, provider, &base, &scope)? {
                Some(spec) => {
                    providers.insert(id, spec);
                }
                None => without_auth.push(id),
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            providers,
            without_auth,
        })
    }

    /// The file this configuration came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every provider with a token source, by id.
    pub fn providers(&self) -> impl Iterator<Item = &ProviderSpec> {
        self.providers.values()
    }

    /// One provider by id.
    pub fn provider(&self, id: &str) -> Option<&ProviderSpec> {
        self.providers.get(id)
    }

    /// The ids of providers that have no `auth` table (and so no token source).
    pub fn providers_without_auth(&self) -> &[String] {
        &self.without_auth
    }
}

/// Where the configuration is looked for when no path is given: `$TOKENHOST_CONFIG`,
/// else `$XDG_CONFIG_HOME/tokenhost/config.toml`, else `~/.config/tokenhost/config.toml`.
pub fn default_path() -> PathBuf {
    if let Some(path) = non_empty_env("TOKENHOST_CONFIG") {
        return PathBuf::from(path);
    }
    crate::paths::config_home()
        .join("tokenhost")
        .join("config.toml")
}

pub use crate::paths::non_empty_env;

fn resolve_provider(
    id: &str,
    provider: RawProvider,
    base: &Path,
    scope: &str,
) -> Result<Option<ProviderSpec>, ConfigError> {
    let fail = |problem: ProviderProblem| ConfigError::Provider {
        provider: id.to_string(),
        problem,
    };
    let invalid =
        |key: &'static str| move |message: String| fail(ProviderProblem::Invalid { key, message });
    let Some(auth) = provider.auth else {
        return Ok(None);
    };
    let api = resolve_api(
        provider.base_url,
        provider.http_headers,
        provider.query_params,
    )
    .map_err(|(key, message)| invalid(key)(message))?;
    // Codex refuses these combinations with this wording; so do we.
    for (key, set) in [
        ("env_key", provider.env_key.is_some()),
        (
            "experimental_bearer_token",
            provider.experimental_bearer_token.is_some(),
        ),
        ("requires_openai_auth", provider.requires_openai_auth),
    ] {
        if set {
            return Err(fail(ProviderProblem::CombinedWithAuth { key }));
        }
    }
    let auth: RawAuth = auth.try_into().map_err(|e: toml::de::Error| {
        fail(ProviderProblem::AuthTable {
            provider: id.to_string(),
            message: toml_error(&e, None),
        })
    })?;

    let timeout_ms = auth.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        return Err(fail(ProviderProblem::OutOfRange {
            key: "timeout_ms",
            min: 1,
            max: None,
            value: timeout_ms,
        }));
    }
    let timeout = Duration::from_millis(timeout_ms);
    let refresh_interval = match auth
        .refresh_interval_ms
        .unwrap_or(DEFAULT_REFRESH_INTERVAL_MS)
    {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };

    let source = match (auth.command, auth.plugin) {
        (Some(_), Some(_)) => {
            return Err(fail(ProviderProblem::TwoSources));
        }
        (None, None) => {
            return Err(fail(ProviderProblem::NoSource));
        }
        (Some(program), None) => {
            for (key, set) in [
                ("memory_limit_mb", auth.memory_limit_mb.is_some()),
                ("config", auth.config.is_some()),
                ("allowed_hosts", auth.allowed_hosts.is_some()),
                ("secret_store", auth.secret_store.is_some()),
                ("allowed_env", auth.allowed_env.is_some()),
                ("allowed_paths", auth.allowed_paths.is_some()),
                ("publisher_key", auth.publisher_key.is_some()),
                ("oci_refresh_ms", auth.oci_refresh_ms.is_some()),
                ("oci_max_mb", auth.oci_max_mb.is_some()),
            ] {
                if set {
                    return Err(fail(ProviderProblem::OtherSourceKind {
                        key,
                        applies_to: SourceKind::Plugin,
                    }));
                }
            }
            if program.trim().is_empty() {
                return Err(fail(ProviderProblem::Empty { key: "command" }));
            }
            SourceSpec::Command(CommandSpec {
                program,
                args: auth.args.unwrap_or_default(),
                cwd: auth
                    .cwd
                    .map(|cwd| base.join(cwd))
                    .unwrap_or_else(|| base.to_path_buf()),
                timeout,
                format: match auth.format {
                    None | Some(RawFormat::Text) => OutputFormat::Text,
                    Some(RawFormat::Json) => OutputFormat::Json,
                    Some(RawFormat::ExecCredential) => OutputFormat::ExecCredential,
                },
            })
        }
        (None, Some(plugin)) => {
            for (key, set) in [
                ("args", auth.args.is_some()),
                ("cwd", auth.cwd.is_some()),
                ("format", auth.format.is_some()),
            ] {
                if set {
                    return Err(fail(ProviderProblem::OtherSourceKind {
                        key,
                        applies_to: SourceKind::Command,
                    }));
                }
            }
            if plugin.trim().is_empty() {
                return Err(fail(ProviderProblem::Empty { key: "plugin" }));
            }
            let memory_mb = auth.memory_limit_mb.unwrap_or(DEFAULT_MEMORY_LIMIT_MB);
            if !(1..=MAX_MEMORY_LIMIT_MB).contains(&memory_mb) {
                return Err(fail(ProviderProblem::OutOfRange {
                    key: "memory_limit_mb",
                    min: 1,
                    max: Some(MAX_MEMORY_LIMIT_MB),
                    value: memory_mb,
                }));
            }
            let grants = Grants {
                hosts: grants::grant_hosts(&auth.allowed_hosts.unwrap_or_default())
                    .map_err(invalid("allowed_hosts"))?,
                env: grants::grant_env(&auth.allowed_env.unwrap_or_default())
                    .map_err(invalid("allowed_env"))?,
                paths: grants::grant_paths(&auth.allowed_paths.unwrap_or_default(), base)
                    .map_err(invalid("allowed_paths"))?,
            };
            let oci = oci_source(&plugin, auth.oci_refresh_ms, auth.oci_max_mb).map_err(fail)?;
            SourceSpec::Plugin(PluginSpec {
                path: match oci {
                    Some(_) => PathBuf::new(),
                    None => base.join(plugin),
                },
                oci: oci.map(Box::new),
                timeout,
                memory_limit_bytes: memory_mb * 1024 * 1024,
                config: plugin_config(auth.config.unwrap_or_default()),
                grants,
                secrets: SecretsSpec {
                    store: match auth.secret_store {
                        None | Some(RawSecretStore::Keyring) => crate::secrets::StoreKind::Keyring,
                        Some(RawSecretStore::File) => crate::secrets::StoreKind::File,
                    },
                    explicit: auth.secret_store.is_some(),
                    scope: scope.to_string(),
                    ..SecretsSpec::default()
                },
            })
        }
    };
    if let Some(pin) = &auth.sha256 {
        crate::digest::parse_sha256(pin).map_err(|e| invalid("sha256")(format!("sha256: {e}")))?;
    }
    let publisher_key = auth
        .publisher_key
        .as_deref()
        .map(crate::publisher::PublisherKey::parse)
        .transpose()
        .map_err(|e| invalid("publisher_key")(format!("publisher_key: {e}")))?;
    let defaulted = Defaulted {
        timeout: auth.timeout_ms.is_none(),
        memory_limit: matches!(source, SourceSpec::Plugin(_)) && auth.memory_limit_mb.is_none(),
    };
    Ok(Some(ProviderSpec {
        id: Arc::from(id),
        refresh_interval,
        source,
        sha256: auth.sha256,
        publisher_key,
        api,
        defaulted,
    }))
}

/// Validates a provider's `base_url`, `http_headers` and `query_params`. Errors name the
/// key; they never repeat a header value (it may be a secret).
fn resolve_api(
    base_url: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    query: Option<BTreeMap<String, String>>,
) -> Result<ApiSpec, (&'static str, String)> {
    if let Some(url) = &base_url {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            (
                "base_url",
                format!("base_url {url:?} is not a valid URL: {e}"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
            return Err((
                "base_url",
                format!("base_url {url:?} must be an http:// or https:// URL"),
            ));
        }
    }
    let headers: Vec<(String, String)> = headers.unwrap_or_default().into_iter().collect();
    let mut names = std::collections::HashSet::new();
    for (name, value) in &headers {
        let parsed = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            let message = format!("http_headers: {name:?} is not a valid HTTP header name");
            ("http_headers", message)
        })?;
        if parsed == http::header::AUTHORIZATION {
            return Err((
                "http_headers",
                format!("http_headers cannot set {name:?}: tokenhost sends the token in it"),
            ));
        }
        if !names.insert(parsed) {
            return Err((
                "http_headers",
                format!("http_headers sets {name:?} twice (header names are case-insensitive)"),
            ));
        }
        http::HeaderValue::from_str(value).map_err(|_| {
            let message =
                format!("http_headers.{name}: the value is not a valid HTTP header value");
            ("http_headers", message)
        })?;
    }
    let query: Vec<(String, String)> = query.unwrap_or_default().into_iter().collect();
    if query.iter().any(|(key, _)| key.is_empty()) {
        return Err(("query_params", "query_params has an empty key".into()));
    }
    Ok(ApiSpec {
        base_url,
        headers,
        query,
    })
}

/// The OCI source of a `plugin = "oci://..."` value (`None` for a file), with its
/// `oci_refresh_ms` and `oci_max_mb`; those two keys are refused beside a file plugin,
/// where they would do nothing.
fn oci_source(
    plugin: &str,
    refresh_ms: Option<u64>,
    max_mb: Option<u64>,
) -> Result<Option<crate::oci::OciSource>, ProviderProblem> {
    if !plugin.starts_with(crate::oci::reference::SCHEME) {
        for (key, set) in [("oci_refresh_ms", refresh_ms), ("oci_max_mb", max_mb)] {
            if set.is_some() {
                return Err(ProviderProblem::Invalid {
                    key,
                    message: format!(
                        "`{key}` applies only to a plugin from a registry (plugin = \"oci://...\")"
                    ),
                });
            }
        }
        return Ok(None);
    }
    let reference =
        crate::oci::OciReference::parse(plugin).map_err(|e| ProviderProblem::Invalid {
            key: "plugin",
            message: format!("plugin: {e}"),
        })?;
    let mut source = crate::oci::OciSource::new(reference);
    if let Some(ms) = refresh_ms {
        source.refresh = Duration::from_millis(ms);
    }
    if let Some(mb) = max_mb {
        if !(1..=MAX_MEMORY_LIMIT_MB).contains(&mb) {
            return Err(ProviderProblem::OutOfRange {
                key: "oci_max_mb",
                min: 1,
                max: Some(MAX_MEMORY_LIMIT_MB),
                value: mb,
            });
        }
        source.max_bytes = mb << 20;
    }
    Ok(Some(source))
}

/// The `auth.config` table as the plugin sees it: strings as they are, anything else as
/// its TOML text (`ttl_ms = 5000` arrives as "5000").
fn plugin_config(table: toml::Table) -> Vec<(String, String)> {
    table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            (key, text)
        })
        .collect()
}

#[cfg(test)]
mod oci_tests;
#[cfg(test)]
mod tests;
