//! What `tokenhost token` prints, in each `--format`: shared by the lean front and the
//! full command (which includes this file), so both print the same bytes.

use tokenhost::Token;
use tokenhost::clients::kubectl;

/// What `tokenhost token` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The token alone.
    Text,
    /// `{"token": ..., "expires_at_ms": ...}`.
    Json,
    /// A `client.authentication.k8s.io` ExecCredential for kubectl.
    ExecCredential,
}

impl Format {
    /// The format named `name` as the command line spells it (the front's parser; the
    /// full command has clap's, which the test of the front's grammar compares).
    #[allow(dead_code)]
    pub fn named(name: &str) -> Option<Format> {
        match name {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            "exec-credential" => Some(Format::ExecCredential),
            _ => None,
        }
    }
}

/// The ExecCredential's `apiVersion` for `--format exec-credential` (what kubectl asked
/// for in `$KUBERNETES_EXEC_INFO`), `None` for the other formats, or why kubectl's
/// request cannot be met: checked before any source runs.
pub fn api_version(format: Format) -> Result<Option<&'static str>, kubectl::ExecCredentialError> {
    match format {
        Format::ExecCredential => {
            let exec_info = std::env::var("KUBERNETES_EXEC_INFO").ok();
            kubectl::api_version(exec_info.as_deref()).map(Some)
        }
        _ => Ok(None),
    }
}

/// The line to print for `token` in `format` (no line end). `version`: from
/// [`api_version`]; `interval`: the provider's `refresh_interval`, which bounds how long
/// kubectl reuses the token.
pub fn render(
    format: Format,
    token: &Token,
    version: Option<&str>,
    interval: Option<std::time::Duration>,
) -> String {
    match format {
        Format::Text => token.expose().to_string(),
        Format::Json => serde_json::json!({
            "token": token.expose(),
            "expires_at_ms": token.expires_at_ms(),
        })
        .to_string(),
        Format::ExecCredential => {
            let version = version.unwrap_or(kubectl::API_VERSIONS[0]);
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let until = kubectl::reuse_until_ms(now_ms, token.expires_at_ms(), interval);
            kubectl::exec_credential(version, token.expose(), until)
        }
    }
}
