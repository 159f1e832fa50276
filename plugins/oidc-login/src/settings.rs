//! The plugin's `auth.config` keys, checked once when the instance is built.

use tokenhost_plugin::url::{SchemePolicy, Url};
use tokenhost_plugin::{Config, Error};

/// Which sign-in a person goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Authorization code + PKCE S256 with a loopback redirect (RFC 7636, RFC 8252).
    AuthorizationCode,
    /// The device authorization grant (RFC 8628).
    DeviceCode,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `issuer`: where discovery starts.
    pub issuer: String,
    pub issuer_url: Url,
    pub client_id: String,
    /// The name of the environment variable holding the client secret, if any.
    pub client_secret_env: Option<String>,
    pub flow: Flow,
    /// Space-separated.
    pub scopes: String,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub redirect_port: Option<u16>,
    pub redirect_path: String,
    /// `prompt` sent with the authorization request (e.g. `consent`).
    pub prompt: Option<String>,
    /// How long the person has, in milliseconds.
    pub login_timeout_ms: u64,
    pub http_timeout_ms: u64,
}

/// The keys this plugin reads.
pub const KEYS: &[&str] = &[
    "issuer",
    "client_id",
    "client_secret_env",
    "flow",
    "scopes",
    "audience",
    "resource",
    "redirect_port",
    "redirect_path",
    "prompt",
    "login_timeout_ms",
    "http_timeout_ms",
];

/// The default scopes: an ID token, and a refresh token so that later calls need no
/// person.
pub const DEFAULT_SCOPES: &str = "openid offline_access";

impl Settings {
    /// Reads and checks `config`.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let unknown = config.unknown_keys(KEYS);
        if !unknown.is_empty() {
            return Err(Error::invalid_config(format!(
                "unknown config keys: {}; known: {}",
                unknown.join(", "),
                KEYS.join(", ")
            )));
        }
        let issuer = config.required("issuer")?.trim_end_matches('/').to_string();
        let issuer_url = config.url("issuer", SchemePolicy::HttpsOrLoopback)?;
        let flow = match config.get("flow").unwrap_or("authorization_code") {
            "authorization_code" => Flow::AuthorizationCode,
            "device_code" => Flow::DeviceCode,
            other => {
                return Err(Error::invalid_config(format!(
                    "config key `flow` must be \"authorization_code\" or \"device_code\", not {other:?}"
                )));
            }
        };
        let redirect_path = config
            .get("redirect_path")
            .unwrap_or("/callback")
            .to_string();
        if !redirect_path.starts_with('/') {
            return Err(Error::invalid_config(
                "config key `redirect_path` must start with /",
            ));
        }
        Ok(Settings {
            issuer,
            issuer_url,
            client_id: config.required("client_id")?.to_string(),
            client_secret_env: config.get("client_secret_env").map(str::to_string),
            flow,
            scopes: scopes(config.get("scopes"))?,
            audience: config.get("audience").map(str::to_string),
            resource: config.get("resource").map(str::to_string),
            redirect_port: config.parse("redirect_port", "a port number")?,
            redirect_path,
            prompt: config.get("prompt").map(str::to_string),
            login_timeout_ms: config
                .parse("login_timeout_ms", "milliseconds")?
                .unwrap_or(300_000),
            http_timeout_ms: config.http_timeout_ms()?,
        })
    }
}

/// `scopes` as a space-separated string: given as one, or as a TOML array of strings
/// (which the host hands over as its TOML text).
pub fn scopes(raw: Option<&str>) -> Result<String, Error> {
    let Some(raw) = raw.map(str::trim) else {
        return Ok(DEFAULT_SCOPES.to_string());
    };
    if !raw.starts_with('[') {
        return Ok(raw.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    let bad =
        || Error::invalid_config("config key `scopes` must be a string or an array of strings");
    let table: toml::Table = toml::from_str(&format!("v = {raw}")).map_err(|_| bad())?;
    let array = table
        .get("v")
        .and_then(toml::Value::as_array)
        .ok_or_else(bad)?;
    let names: Option<Vec<&str>> = array.iter().map(toml::Value::as_str).collect();
    Ok(names.ok_or_else(bad)?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_a_string_or_an_array() {
        assert_eq!(scopes(None).unwrap(), DEFAULT_SCOPES);
        assert_eq!(scopes(Some("openid  email")).unwrap(), "openid email");
        assert_eq!(
            scopes(Some(r#"["openid", "api://x/.default"]"#)).unwrap(),
            "openid api://x/.default"
        );
        assert!(scopes(Some("[1, 2]")).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_flows_are_refused() {
        let base = [("issuer", "https://idp.example"), ("client_id", "c")];
        assert!(Settings::from_config(&Config::of(&base)).is_ok());
        let mut extra = base.to_vec();
        extra.push(("client_secret", "x"));
        assert!(Settings::from_config(&Config::of(&extra)).is_err());
        let mut flow = base.to_vec();
        flow.push(("flow", "implicit"));
        assert!(Settings::from_config(&Config::of(&flow)).is_err());
    }
}
