//! Registry credentials from Docker's config file, as `docker login` and `oras login`
//! leave them: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, `auths` entries
//! with `auth` (base64 `user:password`) or `username` and `password`.
//!
//! Docker's order applies: the registry's `credHelpers` entry, else `credsStore`, else
//! the `auths` entry. Helpers are run as [`helper`](super::helper) says (under the
//! admin's command rule); one that cannot answer means an anonymous pull and a warning.
//! A credential never reaches a log, an error or a `Debug` output: [`Credentials`]
//! shows the user name only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;

use super::helper::CredentialHelpers;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The Docker config file that applies: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
fn config_path() -> PathBuf {
    match crate::paths::non_empty_env("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => crate::paths::home_dir().join(".docker").join("config.json"),
    }
}

/// The credentials the Docker config gives for `registry` (`host` or `host:port`), if
/// any: from its credential helper, run under `helpers`, or from `auths`. A missing or
/// unreadable file, or a helper that cannot answer, means none (anonymous access), with
/// a line saying why.
pub(crate) async fn for_registry(
    registry: &str,
    helpers: CredentialHelpers<'_>,
) -> Option<Credentials> {
    let path = config_path();
    let text = std::fs::read(&path).ok()?;
    let config: DockerConfig = match serde_json::from_slice(&text) {
        Ok(config) => config,
        Err(e) => {
            // serde_json's message gives a position and a type, never the value.
            tracing::warn!("ignoring {}: {e}", path.display());
            return None;
        }
    };
    match helper_for(&config, registry) {
        Some(name) => match super::helper::get(helpers, name, registry).await {
            Ok(found) => found,
            Err(reason) => {
                tracing::warn!(
                    "no credentials for {registry} from the Docker config's credential \
                     helper ({reason}); pulling anonymously"
                );
                None
            }
        },
        None => lookup(&config, registry),
    }
}

/// The credential helper Docker would ask for `registry`: its `credHelpers` entry, else
/// `credsStore`.
fn helper_for<'c>(config: &'c DockerConfig, registry: &str) -> Option<&'c str> {
    config
        .cred_helpers
        .iter()
        .find(|(key, _)| key_host(key).eq_ignore_ascii_case(registry))
        .map(|(_, name)| name.as_str())
        .or(config.creds_store.as_deref())
        .filter(|name| !name.is_empty())
}

fn lookup(config: &DockerConfig, registry: &str) -> Option<Credentials> {
    config
        .auths
        .iter()
        .find(|(key, _)| key_host(key).eq_ignore_ascii_case(registry))
        .and_then(|(_, entry)| decode(entry))
}

/// `https://registry.example.com/v1/` -> `registry.example.com`: Docker writes some
/// keys as URLs.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn decode(entry: &AuthEntry) -> Option<Credentials> {
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Some(Credentials {
            user: user.clone(),
            password: password.clone(),
        });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_deref()?.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> DockerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn auths_entries_are_found_by_registry() {
        let c = config(
            r#"{"auths": {
                "registry.example.com": {"auth": "YWxpY2U6czNjcjN0Om9r"},
                "https://index.docker.io/v1/": {"auth": "Ym9iOnB3"},
                "localhost:5000": {"username": "carol", "password": "pw"},
                "broken.example": {"auth": "not base64!"}
            }}"#,
        );
        let creds = |r| lookup(&c, r).map(|c| (c.user, c.password));
        // The password may hold ':' (only the first one splits).
        assert_eq!(
            creds("registry.example.com"),
            Some(("alice".into(), "s3cr3t:ok".into()))
        );
        assert_eq!(creds("index.docker.io"), Some(("bob".into(), "pw".into())));
        assert_eq!(creds("localhost:5000"), Some(("carol".into(), "pw".into())));
        assert_eq!(creds("localhost:5001"), None);
        assert_eq!(creds("broken.example"), None);
        assert_eq!(creds("other.example"), None);
    }

    #[test]
    fn a_credential_helper_comes_before_auths_as_in_docker() {
        let c = config(
            r#"{"auths": {"a.example": {"auth": "YTpi"}, "b.example": {"auth": "YTpi"}},
                "credsStore": "secretservice",
                "credHelpers": {"b.example": "pass", "https://c.example": "ecr-login"}}"#,
        );
        assert_eq!(helper_for(&c, "b.example"), Some("pass"));
        assert_eq!(helper_for(&c, "c.example"), Some("ecr-login"));
        assert_eq!(helper_for(&c, "a.example"), Some("secretservice"));
        let only_auths = config(r#"{"auths": {"a.example": {"auth": "YTpi"}}, "credsStore": ""}"#);
        assert_eq!(helper_for(&only_auths, "a.example"), None);
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials {
            user: "alice".into(),
            password: "s3cr3t".into(),
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}
