//! Contract 0.1's imports: `host.log` and `host.config`, on the shared logic.

use super::LogLevel;
use crate::source::wasm::bindings::v0_1::{HostImports, LogLevel as WitLevel, TypesImports};
use crate::source::wasm::sandbox::PluginState;

impl TypesImports for PluginState {}

impl HostImports for PluginState {
    fn log(&mut self, level: WitLevel, message: String) {
        let level = match level {
            WitLevel::Trace => LogLevel::Trace,
            WitLevel::Debug => LogLevel::Debug,
            WitLevel::Info => LogLevel::Info,
            WitLevel::Warn => LogLevel::Warn,
            WitLevel::Error => LogLevel::Error,
        };
        PluginState::log(self, level, message);
    }

    fn config(&mut self) -> Vec<(String, String)> {
        PluginState::config(self)
    }
}
