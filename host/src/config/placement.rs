//! Security-relevant keys written where tokenhost would ignore them: refused.
//!
//! A Codex config keeps unknown top-level and provider keys (see [`super::raw`]), so a
//! key in the wrong table would otherwise be accepted and do nothing. For most keys
//! that is harmless, but a pin that is ignored lets an unpinned file run, and an
//! `include` that is ignored drops whatever the included file said. Refusing is safer
//! than warning: a warning goes to a log while the unpinned plugin runs anyway, and the
//! fix is to move one line. Refused:
//! - any `auth` key ([`AUTH_KEYS`]: `sha256`, `plugin`, `allowed_paths`, ...) directly
//!   under `[model_providers.<id>]`, with or without an `auth` table. None of them is a
//!   Codex provider key (`name`, `base_url`, `env_key`, `wire_api`, `query_params`,
//!   `http_headers`, `env_http_headers`, the retry and timeout keys ... stay accepted);
//! - `sha256` in `[model_providers.<id>.auth.config]`, which a table header written too
//!   early puts there: it would reach the plugin as a setting, not be checked as a pin;
//! - `include`, `sha256` and an `auth` table at the top level, and `include` in a
//!   provider table: tokenhost reads one file and has no global pin or source.
//!
//! Other unknown keys stay accepted, so that a Codex config works as is.

use toml::{Table, Value};

/// The keys of an `auth` table ([`super::raw::RawAuth`]'s fields).
pub(super) const AUTH_KEYS: &[&str] = &[
    "command",
    "args",
    "cwd",
    "format",
    "plugin",
    "oci_refresh_ms",
    "oci_max_mb",
    "sha256",
    "publisher_key",
    "timeout_ms",
    "refresh_interval_ms",
    "memory_limit_mb",
    "allowed_hosts",
    "secret_store",
    "allowed_env",
    "allowed_paths",
    "config",
];

/// A key in the wrong place: the provider it is under, if any, and what to do.
pub(super) struct Misplaced {
    /// The provider id, for keys under `[model_providers.<id>]`.
    pub provider: Option<String>,
    /// The key.
    pub key: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// The first misplaced key in the parsed file, if any.
pub(super) fn check(file: &Table) -> Result<(), Misplaced> {
    let top = |key, message: String| Misplaced {
        provider: None,
        key,
        message,
    };
    if file.contains_key("include") {
        return Err(top("include", include_message("at the top level")));
    }
    if file.contains_key("sha256") {
        return Err(top(
            "sha256",
            "`sha256` at the top level is ignored: a pin belongs in a provider's [model_providers.<id>.auth] table".into(),
        ));
    }
    if file.contains_key("auth") {
        return Err(top(
            "auth",
            "an `auth` table at the top level is ignored: a token source belongs in [model_providers.<id>.auth]".into(),
        ));
    }
    let Some(Value::Table(providers)) = file.get("model_providers") else {
        return Ok(());
    };
    for (id, provider) in providers {
        let Value::Table(provider) = provider else {
            continue;
        };
        check_provider(provider).map_err(|(key, message)| Misplaced {
            provider: Some(id.clone()),
            key,
            message: message.replace("<id>", id),
        })?;
    }
    Ok(())
}

/// The first misplaced key of one provider table, and what to do.
fn check_provider(provider: &Table) -> Result<(), (&'static str, String)> {
    if provider.contains_key("include") {
        return Err(("include", include_message("in [model_providers.<id>]")));
    }
    if let Some(key) = AUTH_KEYS.iter().find(|key| provider.contains_key(**key)) {
        let consequence = match *key {
            "sha256" | "publisher_key" => " and the source would run unpinned",
            _ => "",
        };
        return Err((
            key,
            format!(
                "`{key}` belongs in [model_providers.<id>.auth]; in [model_providers.<id>] it would be ignored{consequence}"
            ),
        ));
    }
    let config = match provider.get("auth") {
        Some(Value::Table(auth)) => auth.get("config"),
        _ => None,
    };
    if let Some(Value::Table(config)) = config
        && config.contains_key("sha256")
    {
        return Err((
            "sha256",
            "`sha256` is in [model_providers.<id>.auth.config], where it is handed to the plugin as a setting and not checked as a pin: move it into [model_providers.<id>.auth], above the config table".into(),
        ));
    }
    Ok(())
}

fn include_message(place: &str) -> String {
    format!(
        "`include` {place} is not supported: tokenhost reads only this file, so the providers, pins and grants of an included file would not apply"
    )
}
