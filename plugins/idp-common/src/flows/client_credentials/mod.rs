//! OAuth 2.0 client credentials grant (RFC 6749 §4.4), authenticating with one of:
//! - a client secret (`client_secret_basic` or `client_secret_post`, §2.3.1);
//! - a JWT client assertion read from a file on every call (RFC 7521/7523: Azure
//!   workload identity, GitHub Actions OIDC, Kubernetes projected tokens);
//! - a client assertion the plugin signs itself on every call from a private key in a
//!   file (`private_key_jwt`: Entra certificate credentials), see [`crate::assertion`].

use super::{Outcome, Prepared, Trigger};
use crate::assertion::{self, AssertionKey, Claims};
use tokenhost_plugin::config::Config;
use tokenhost_plugin::oauth::is_bearer;
use tokenhost_plugin::redact::Redactor;
use tokenhost_plugin::secret::{self, Secret};
use tokenhost_plugin::url::SchemePolicy;
use tokenhost_plugin::{Error, Platform, Token, form};

/// The name used in log lines.
pub const PLUGIN: &str = "oauth2";

/// Every config key this flow reads.
pub const KEYS: &[&str] = &[
    "token_url",
    "client_id",
    "client_secret_env",
    "client_secret",
    "allow_secret_in_config",
    "auth_method",
    "client_assertion_file",
    "client_assertion_type",
    "assertion_key_file",
    "assertion_key_id",
    "assertion_x5t_file",
    "assertion_audience",
    "scope",
    "audience",
    "resource",
    "extra_params",
    "http_timeout_ms",
];

/// Token-request parameters this flow sets itself, which `extra_params` cannot set.
const RESERVED: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "audience",
    "resource",
];

/// Keys that only make sense with `assertion_key_file`.
const SIGNING_KEYS: &[&str] = &[
    "assertion_key_id",
    "assertion_x5t_file",
    "assertion_audience",
];

/// The default `client_assertion_type` (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the client authenticates, as configured.
enum Credential<'a> {
    /// `client_secret_env` or `client_secret`.
    Secret,
    /// `client_assertion_file`: a ready assertion.
    AssertionFile(&'a str),
    /// `assertion_key_file`: a key to sign assertions with.
    SigningKey(&'a str),
}

impl<'a> Credential<'a> {
    /// The one credential `config` names, with the keys that go with it checked.
    fn of(config: &'a Config) -> Result<Credential<'a>, Error> {
        let secret_key = ["client_secret_env", "client_secret"]
            .into_iter()
            .find(|k| config.get(k).is_some());
        let set: Vec<&str> = [
            secret_key,
            config
                .get("client_assertion_file")
                .map(|_| "client_assertion_file"),
            config
                .get("assertion_key_file")
                .map(|_| "assertion_key_file"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let credential = match set.as_slice() {
            [] => {
                return Err(Error::InvalidConfig(
                    "no client credential: set `client_secret_env` (an environment variable listed in `allowed_env`), \
                     `client_assertion_file` (a JWT in a file listed in `allowed_paths`) \
                     or `assertion_key_file` (a private key in a file listed in `allowed_paths`)"
                        .to_string(),
                ));
            }
            [_] if secret_key.is_some() => Credential::Secret,
            [_] => match config.get("client_assertion_file") {
                Some(path) => Credential::AssertionFile(path),
                None => Credential::SigningKey(config.required("assertion_key_file")?),
            },
            [first, second, ..] => {
                return Err(Error::InvalidConfig(format!(
                    "set one client credential, not both `{first}` and `{second}`"
                )));
            }
        };
        let auth_method = config.get("auth_method");
        match (&credential, auth_method) {
            (Credential::Secret, Some(m))
                if m != "client_secret_basic" && m != "client_secret_post" =>
            {
                return Err(Error::InvalidConfig(format!(
                    "config key `auth_method` must be `client_secret_basic` or `client_secret_post`, not `{m}`"
                )));
            }
            (Credential::AssertionFile(_), Some(m))
                if m != "private_key_jwt" && m != "client_secret_jwt" =>
            {
                return Err(Error::InvalidConfig(format!(
                    "config key `auth_method` (`{m}`) applies to client secrets; leave it unset with `client_assertion_file`"
                )));
            }
            (Credential::SigningKey(_), Some(m)) if m != "private_key_jwt" => {
                return Err(Error::InvalidConfig(format!(
                    "config key `auth_method` (`{m}`) applies to client secrets; leave it unset with `assertion_key_file` \
                     (which is `private_key_jwt`)"
                )));
            }
            _ => {}
        }
        if config.get("client_assertion_type").is_some()
            && !matches!(credential, Credential::AssertionFile(_))
        {
            return Err(Error::InvalidConfig(
                "config key `client_assertion_type` applies only with `client_assertion_file`"
                    .to_string(),
            ));
        }
        if !matches!(credential, Credential::SigningKey(_))
            && let Some(key) = SIGNING_KEYS.iter().find(|k| config.get(k).is_some())
        {
            return Err(Error::InvalidConfig(format!(
                "config key `{key}` applies only with `assertion_key_file`"
            )));
        }
        Ok(credential)
    }
}

/// A new assertion signed with the key in `key_path`, for the token endpoint in
/// `config`, and a summary for the log.
fn signed_assertion(
    platform: &dyn Platform,
    config: &Config,
    client_id: &str,
    key_path: &str,
) -> Result<(Secret, String), Error> {
    let unusable = |key: &str, path: &str, why: String| {
        Error::InvalidConfig(format!(
            "`{path}` (config key `{key}`) cannot be used: {why}"
        ))
    };
    let pem = assertion::read_pem(platform, "assertion_key_file", key_path)?;
    let key = AssertionKey::from_pem(&pem)
        .map_err(|why| unusable("assertion_key_file", key_path, why))?;
    drop(pem);
    let x5t = match config.get("assertion_x5t_file") {
        None => None,
        Some(path) => {
            let pem = assertion::read_pem(platform, "assertion_x5t_file", path)?;
            Some(
                assertion::x5t_s256(&pem)
                    .map_err(|why| unusable("assertion_x5t_file", path, why))?,
            )
        }
    };
    let key_id = config.get("assertion_key_id");
    let claims = Claims {
        client_id,
        audience: config
            .get("assertion_audience")
            .unwrap_or(config.required("token_url")?),
        key_id,
        x5t_s256: x5t.as_deref(),
    };
    let signed = assertion::sign(platform, &key, &claims)?;
    let mut summary = format!(
        "client credentials, private_key_jwt ({}, key from `{key_path}`",
        key.alg()
    );
    if let Some(kid) = key_id {
        summary.push_str(&format!(", kid `{kid}`"));
    }
    if x5t.is_some() {
        summary.push_str(", x5t#S256");
    }
    summary.push(')');
    Ok((signed, summary))
}

/// Builds the token request from `config` (reading the secret or assertion, or signing
/// a new assertion).
pub fn prepare(platform: &dyn Platform, config: &Config) -> Result<Prepared, Error> {
    let url = config.url("token_url", SchemePolicy::HttpsOrLoopback)?;
    let client_id = config.required("client_id")?;
    let timeout_ms = config.http_timeout_ms()?;
    let credential = Credential::of(config)?;
    let extra = super::extra_params(config, RESERVED)?;

    let mut form: Vec<(&str, String)> = vec![("grant_type", "client_credentials".to_string())];
    let mut headers = super::base_headers(true);
    let mut secrets: Vec<Secret> = Vec::new();

    let mut summary = match credential {
        Credential::AssertionFile(path) => {
            let assertion_type = config
                .get("client_assertion_type")
                .unwrap_or(JWT_BEARER_ASSERTION);
            let assertion = secret::from_file(platform, "client_assertion_file", path)?;
            form.push(("client_id", client_id.to_string()));
            form.push(("client_assertion_type", assertion_type.to_string()));
            form.push(("client_assertion", assertion.expose().to_string()));
            secrets.push(assertion);
            format!("client credentials, client assertion from `{path}`")
        }
        Credential::SigningKey(path) => {
            let (assertion, summary) = signed_assertion(platform, config, client_id, path)?;
            form.push(("client_id", client_id.to_string()));
            form.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_string()));
            form.push(("client_assertion", assertion.expose().to_string()));
            secrets.push(assertion);
            summary
        }
        Credential::Secret => {
            let method = config.get("auth_method").unwrap_or("client_secret_basic");
            let Some(client_secret) = secret::client_secret(platform, config)? else {
                return Err(Error::InvalidConfig(
                    "no client secret configured".to_string(),
                ));
            };
            if method == "client_secret_basic" {
                headers.push((
                    "authorization".to_string(),
                    form::basic_auth(client_id, client_secret.expose()),
                ));
            } else {
                form.push(("client_id", client_id.to_string()));
                form.push(("client_secret", client_secret.expose().to_string()));
            }
            secrets.push(client_secret);
            format!("client credentials, {method}")
        }
    };
    for key in ["scope", "audience", "resource"] {
        if let Some(value) = config.get(key) {
            form.push((key, value.to_string()));
        }
    }
    super::add_extra_params(&extra, &mut form, &mut secrets, &mut summary);
    Ok(Prepared::token_form(
        url, headers, &form, timeout_ms, secrets, summary,
    ))
}

flow_source!(ClientCredentials, "client credentials");

/// Performs the grant. `resolve` and `refresh` both call this: the grant has no
/// refresh token.
pub fn fetch(platform: &dyn Platform, config: &Config, trigger: Trigger) -> Result<Token, Error> {
    super::warn_unknown(platform, PLUGIN, config, KEYS);
    let prepared = match prepare(platform, config) {
        Ok(p) => p,
        Err(e) => return super::finish(platform, PLUGIN, trigger, &Redactor::default(), Err(e)),
    };
    let result = call(platform, &prepared);
    super::finish(platform, PLUGIN, trigger, &prepared.redactor(), result)
}

fn call(platform: &dyn Platform, prepared: &Prepared) -> Result<Outcome, Error> {
    let response = super::send(platform, PLUGIN, prepared)?;
    let parsed = super::parse_json(platform, PLUGIN, prepared, &response)?;
    if let Some(token_type) = parsed.token_type.as_deref().filter(|t| !is_bearer(t)) {
        return Err(super::not_bearer(prepared, &parsed, token_type));
    }
    let source = format!("token endpoint {}", prepared.request.url.display());
    Ok(Outcome::from_json(parsed, source, response.status))
}

#[cfg(test)]
mod signed_tests;
#[cfg(test)]
mod tests;
