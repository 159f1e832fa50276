//! Contract 0.2's imports: `host` as in 0.1, `interaction` (only during `login`) and
//! `secrets`, on the shared logic.

use super::LogLevel;
use crate::source::wasm::bindings::v0_2::{
    HostImports, InteractionImports, LogLevel as WitLevel, SecretsImports, TypesImports,
};
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

/// The error every `interaction` function returns outside `login`.
const NOT_IN_LOGIN: &str =
    "interaction is available only during login (tokenhost login <provider>)";

impl InteractionImports for PluginState {
    fn show_message(&mut self, text: String) -> Result<(), String> {
        match &self.interaction {
            Some(interaction) => interaction.show_message(&text),
            None => Err(NOT_IN_LOGIN.into()),
        }
    }

    fn open_browser(&mut self, url: String) -> Result<bool, String> {
        match &self.interaction {
            Some(interaction) => interaction.open_browser(&url),
            None => Err(NOT_IN_LOGIN.into()),
        }
    }

    async fn listen_redirect(&mut self, port: Option<u16>, path: String) -> Result<String, String> {
        match &mut self.interaction {
            Some(interaction) => interaction.listen_redirect(port, &path).await,
            None => Err(NOT_IN_LOGIN.into()),
        }
    }

    async fn await_redirect(&mut self, timeout_ms: u64) -> Result<String, String> {
        match &mut self.interaction {
            Some(interaction) => interaction.await_redirect(timeout_ms).await,
            None => Err(NOT_IN_LOGIN.into()),
        }
    }
}

impl SecretsImports for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<String>, String> {
        self.secrets.get(key).await
    }

    async fn set(&mut self, key: String, value: String) -> Result<(), String> {
        self.secrets.set(key, value).await
    }

    async fn delete(&mut self, key: String) -> Result<(), String> {
        self.secrets.delete(key).await
    }
}
