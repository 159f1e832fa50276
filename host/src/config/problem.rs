//! What can be wrong with one provider's settings, as a type.
//!
//! A program that embeds tokenhost (an editor showing the problem next to the line, a
//! setup wizard) needs to know *which key* is wrong and *how*, not only a sentence.
//! [`ProviderProblem`] says both; its `Display` is the sentence the CLI prints, naming
//! the key and how to fix it, and never a header value or other secret.

use std::fmt;

/// The two kinds of token source, for problems that say which one a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceKind {
    /// `command`: a program that prints a token.
    Command,
    /// `plugin`: a WebAssembly component.
    Plugin,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Command => "command",
            SourceKind::Plugin => "plugin",
        })
    }
}

/// Why a provider's settings were refused (see [`super::ConfigError::Provider`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderProblem {
    /// A key sits in a table where tokenhost would ignore it (a pin beside `auth`
    /// instead of in it, an `include`): refused, because ignoring it would be unsafe.
    #[error("{message}")]
    Misplaced {
        /// The key.
        key: &'static str,
        /// Where it belongs.
        message: String,
    },
    /// `auth` is combined with a provider key that Codex refuses beside it.
    #[error("provider auth cannot be combined with {key}")]
    CombinedWithAuth {
        /// `env_key`, `experimental_bearer_token` or `requires_openai_auth`.
        key: &'static str,
    },
    /// The `auth` table does not parse: an unknown key, or a value of the wrong type.
    #[error("in [model_providers.{provider}.auth]: {message}")]
    AuthTable {
        /// The provider id (as written in the table header).
        provider: String,
        /// The parser's message.
        message: String,
    },
    /// Both `command` and `plugin` are set.
    #[error("auth sets both `command` and `plugin`; choose one")]
    TwoSources,
    /// Neither `command` nor `plugin` is set.
    #[error("auth needs a token source: set `command` (a program) or `plugin` (a .wasm file)")]
    NoSource,
    /// A key that only the other kind of source reads.
    #[error("`{key}` applies only to {applies_to} sources")]
    OtherSourceKind {
        /// The key.
        key: &'static str,
        /// The kind of source that reads it.
        applies_to: SourceKind,
    },
    /// `command` or `plugin` is empty.
    #[error("`{key}` is empty")]
    Empty {
        /// The key.
        key: &'static str,
    },
    /// A number outside what tokenhost accepts.
    #[error("{key} must be {}{}", range(*.min, *.max), shown(*.value, *.max))]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value, if there is one.
        max: Option<u64>,
        /// The value given.
        value: u64,
    },
    /// A value that does not mean anything valid for its key (a URL that is not one,
    /// a header name, a host pattern, a path grant, a sha256 pin).
    #[error("{message}")]
    Invalid {
        /// The key (`base_url`, `http_headers`, `query_params`, `allowed_hosts`,
        /// `allowed_env`, `allowed_paths`, `sha256`).
        key: &'static str,
        /// What is wrong, naming the key; never a header value.
        message: String,
    },
}

fn range(min: u64, max: Option<u64>) -> String {
    match max {
        Some(max) => format!("between {min} and {max}"),
        None => format!("at least {min}"),
    }
}

fn shown(value: u64, max: Option<u64>) -> String {
    match max {
        Some(_) => format!(", not {value}"),
        None => String::new(),
    }
}

impl ProviderProblem {
    /// The key the problem is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ProviderProblem::Misplaced { key, .. }
            | ProviderProblem::CombinedWithAuth { key }
            | ProviderProblem::OtherSourceKind { key, .. }
            | ProviderProblem::Empty { key }
            | ProviderProblem::OutOfRange { key, .. }
            | ProviderProblem::Invalid { key, .. } => Some(key),
            ProviderProblem::AuthTable { .. }
            | ProviderProblem::TwoSources
            | ProviderProblem::NoSource => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, ConfigError};

    /// The provider and the problem of a refused config.
    fn problem(text: &str) -> (String, ProviderProblem) {
        match Config::parse(text, Path::new("/etc/th/config.toml")) {
            Err(ConfigError::Provider { provider, problem }) => (provider, problem),
            other => panic!("expected a provider problem, got {other:?}"),
        }
    }

    #[test]
    fn problems_say_which_key_and_how() {
        let cases: &[(&str, &str)] = &[
            (
                "[model_providers.p.auth]\nplugin = \"x.wasm\"\nmemory_limit_mb = 0",
                "memory_limit_mb",
            ),
            (
                "[model_providers.p.auth]\ncommand = \"t\"\ntimeout_ms = 0",
                "timeout_ms",
            ),
            (
                "[model_providers.p]\nbase_url = \"ftp://x\"\n[model_providers.p.auth]\ncommand = \"t\"",
                "base_url",
            ),
            (
                "[model_providers.p]\nsha256 = \"00\"\n[model_providers.p.auth]\ncommand = \"t\"",
                "sha256",
            ),
            (
                "[model_providers.p.auth]\ncommand = \"t\"\nallowed_hosts = [\"x\"]",
                "allowed_hosts",
            ),
            ("[model_providers.p.auth]\nplugin = \"\"", "plugin"),
        ];
        for (text, key) in cases {
            let (provider, problem) = problem(text);
            assert_eq!(provider, "p");
            assert_eq!(problem.key(), Some(*key), "{text}: {problem:?}");
        }
    }

    #[test]
    fn problems_are_typed() {
        let (_, p) = problem("[model_providers.p.auth]\nplugin = \"x.wasm\"\nmemory_limit_mb = 0");
        assert!(
            matches!(
                p,
                ProviderProblem::OutOfRange {
                    min: 1,
                    value: 0,
                    ..
                }
            ),
            "{p:?}"
        );
        assert!(
            p.to_string()
                .starts_with("memory_limit_mb must be between 1 and "),
            "{p}"
        );
        let (_, p) = problem("[model_providers.p.auth]\ncommand = \"t\"\ncwd = \".\"\nconfig = {}");
        assert_eq!(
            p,
            ProviderProblem::OtherSourceKind {
                key: "config",
                applies_to: SourceKind::Plugin
            }
        );
        assert_eq!(p.to_string(), "`config` applies only to plugin sources");
        let (_, p) = problem("[model_providers.p.auth]\ncommand = \"t\"\nplugin = \"x\"");
        assert_eq!(p, ProviderProblem::TwoSources);
        let (_, p) = problem("[model_providers.p.auth]\ntimeout_ms = 5");
        assert_eq!(p, ProviderProblem::NoSource);
        let (_, p) = problem("[model_providers.p.auth]\ncommand = 5");
        assert!(matches!(p, ProviderProblem::AuthTable { .. }), "{p:?}");
    }
}
