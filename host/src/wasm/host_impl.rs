//! The host side of the WIT `host` interface: `log` and `config`.
//!
//! `log` goes to `tracing` under the provider id, capped in length and in lines per call
//! so a plugin cannot flood the log. `config` returns the provider's `auth.config` table.

use super::bindings::{HostImports, LogLevel, TypesImports};
use super::sandbox::{LOG_LINE_MAX, LOG_LINES_PER_CALL, PluginState};

impl TypesImports for PluginState {}

impl HostImports for PluginState {
    fn log(&mut self, level: LogLevel, message: String) {
        if self.log_lines >= LOG_LINES_PER_CALL {
            self.log_dropped = self.log_dropped.saturating_add(1);
            return;
        }
        self.log_lines += 1;
        let message = cap_line(&message);
        let provider = &*self.provider;
        match level {
            LogLevel::Trace => tracing::trace!(provider, "plugin: {message}"),
            LogLevel::Debug => tracing::debug!(provider, "plugin: {message}"),
            LogLevel::Info => tracing::info!(provider, "plugin: {message}"),
            LogLevel::Warn => tracing::warn!(provider, "plugin: {message}"),
            LogLevel::Error => tracing::error!(provider, "plugin: {message}"),
        }
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.config.to_vec()
    }
}

/// Cuts `message` at [`LOG_LINE_MAX`] bytes and escapes control characters, so one
/// call is one log line.
fn cap_line(message: &str) -> String {
    super::output::one_line(message, LOG_LINE_MAX)
}

#[cfg(test)]
mod tests {
    use super::cap_line;

    #[test]
    fn lines_are_capped_and_single() {
        assert_eq!(cap_line("hello"), "hello");
        assert_eq!(cap_line("a\nb"), "a\\nb");
        let long = "é".repeat(2000);
        let capped = cap_line(&long);
        assert!(capped.len() <= super::LOG_LINE_MAX + 3);
        assert!(capped.ends_with("..."));
    }
}
