//! The host side of the WIT imports, one file per contract version ([`v0_1`], [`v0_2`])
//! over the shared logic here: `log` and `config`, and (0.2) `interaction` and `secrets`.
//!
//! `log` goes to `tracing` under the provider id, capped in length and in lines per call
//! so a plugin cannot flood the log. `config` returns the provider's `auth.config` table.
//!
//! `warn` and `error` lines are held until the call ends, so that a failure is one line
//! at the default verbosity: a held line that repeats the call's final error (a plugin
//! logging `resolve failed: <the error it returns>`) is written at info level (shown with
//! `-v`), every other one at its own level.

mod secrets;
mod v0_1;
mod v0_2;

pub(super) use secrets::SecretAccess;

use super::sandbox::{LOG_LINE_MAX, LOG_LINES_PER_CALL, PluginState};

/// A log level, whatever the contract version that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl PluginState {
    /// The WIT `host.log`.
    fn log(&mut self, level: LogLevel, message: String) {
        if self.log_lines >= LOG_LINES_PER_CALL {
            self.log_dropped = self.log_dropped.saturating_add(1);
            return;
        }
        self.log_lines += 1;
        let provider = &*self.provider;
        // A line is capped and escaped only if it is written: tracing evaluates an
        // event's arguments only when something listens at that level.
        match level {
            LogLevel::Trace => tracing::trace!(provider, "plugin: {}", cap_line(&message)),
            LogLevel::Debug => tracing::debug!(provider, "plugin: {}", cap_line(&message)),
            LogLevel::Info => tracing::info!(provider, "plugin: {}", cap_line(&message)),
            LogLevel::Warn | LogLevel::Error => self.held_logs.push((level, cap_line(&message))),
        }
    }

    /// The WIT `host.config`.
    fn config(&mut self) -> Vec<(String, String)> {
        self.config.to_vec()
    }
}

/// Writes a call's held `warn` and `error` lines; one that repeats `failure` (the
/// message of the error the call ended with, as the plugin returned it) at info level.
pub(super) fn write_held(provider: &str, held: Vec<(LogLevel, String)>, failure: Option<&str>) {
    for (level, message) in held {
        if failure.is_some_and(|failure| repeats(&message, failure)) {
            tracing::info!(provider, "plugin: {message}");
        } else if matches!(level, LogLevel::Error) {
            tracing::error!(provider, "plugin: {message}");
        } else {
            tracing::warn!(provider, "plugin: {message}");
        }
    }
}

/// Whether log `line` repeats error `message`: it contains it, or (a line cut at
/// [`LOG_LINE_MAX`]) what it has of it is the message's start.
fn repeats(line: &str, message: &str) -> bool {
    let message = message.trim();
    if message.is_empty() {
        return false;
    }
    if line.contains(message) {
        return true;
    }
    let Some(cut) = line.strip_suffix("...") else {
        return false;
    };
    let mut head = message.len().min(64);
    while !message.is_char_boundary(head) {
        head -= 1;
    }
    cut.find(&message[..head])
        .is_some_and(|at| message.starts_with(&cut[at..]))
}

/// Cuts `message` at [`LOG_LINE_MAX`] bytes and escapes control characters, so one
/// call is one log line.
fn cap_line(message: &str) -> String {
    super::output::one_line(message, LOG_LINE_MAX)
}

#[cfg(test)]
mod tests {
    use super::{cap_line, repeats};

    #[test]
    fn lines_are_capped_and_single() {
        assert_eq!(cap_line("hello"), "hello");
        assert_eq!(cap_line("a\nb"), "a\\nb");
        let long = "é".repeat(2000);
        let capped = cap_line(&long);
        assert!(capped.len() <= super::LOG_LINE_MAX + 3);
        assert!(capped.ends_with("..."));
    }

    #[test]
    fn a_line_repeats_an_error_it_contains_or_was_cut_from() {
        let error = "request to https://idp/token failed: connection refused";
        assert!(repeats(&format!("oauth2: resolve failed: {error}"), error));
        assert!(repeats(error, error));
        assert!(!repeats("oauth2: token has no expiry", error));
        assert!(!repeats("anything", ""));
        let long = format!("request to https://idp/token failed: {}", "x".repeat(2000));
        let line = cap_line(&format!("oauth2: resolve failed: {long}"));
        assert!(line.ends_with("..."));
        assert!(repeats(&line, &cap_line(&long)));
        assert!(!repeats(&line, "request to https://idp/token failed: y"));
    }
}
