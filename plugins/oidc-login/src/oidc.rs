//! The provider's endpoints (OpenID Connect discovery) and its token endpoint: the
//! requests every flow makes, and how their answers map to the contract's errors.

use base64::Engine as _;
use serde_json::Value;
use tokenhost_plugin::http::Request;
use tokenhost_plugin::oauth::Endpoint;
use tokenhost_plugin::oauth::error_body;
use tokenhost_plugin::oauth::response::{self, TokenResponse};
use tokenhost_plugin::redact::Redactor;
use tokenhost_plugin::secret::Secret;
use tokenhost_plugin::url::{self, SchemePolicy, Url};
use tokenhost_plugin::{Error, Host, Platform};

use crate::settings::Settings;

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: Option<Url>,
    pub token: Url,
    pub device_authorization: Option<Url>,
}

fn endpoint(doc: &Value, key: &str) -> Result<Option<Url>, Error> {
    match doc.get(key).and_then(Value::as_str) {
        None => Ok(None),
        Some(raw) => url::parse(key, raw, SchemePolicy::HttpsOrLoopback)
            .map(Some)
            .map_err(|e| Error::unavailable(format!("discovery: {e}"))),
    }
}

/// `GET {issuer}/.well-known/openid-configuration`, checking its `issuer`.
pub fn discover(settings: &Settings) -> Result<Endpoints, Error> {
    let raw = format!("{}/.well-known/openid-configuration", settings.issuer);
    let target =
        url::parse("issuer", &raw, SchemePolicy::HttpsOrLoopback).map_err(Error::InvalidConfig)?;
    let doc: Value = Request::get(target)
        .with_timeout_ms(settings.http_timeout_ms)
        .send()
        .map_err(|e| e.map_message(|m| format!("OpenID discovery at {raw}: {m}")))?
        .json()?;
    let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
    if issuer.trim_end_matches('/') != settings.issuer {
        return Err(Error::invalid_config(format!(
            "the discovery document at {raw} names issuer {issuer:?}, not {:?}; set `issuer` to it",
            settings.issuer
        )));
    }
    let token = endpoint(&doc, "token_endpoint")?
        .ok_or_else(|| Error::unavailable(format!("{raw} has no token_endpoint")))?;
    Ok(Endpoints {
        authorization: endpoint(&doc, "authorization_endpoint")?,
        token,
        device_authorization: endpoint(&doc, "device_authorization_endpoint")?,
    })
}

/// How a token-endpoint request failed.
#[derive(Debug)]
pub enum Refused {
    /// An OAuth error code (`invalid_grant`, `authorization_pending`, ...), with the
    /// plugin error it would be.
    Code(String, Error),
    /// Anything else (network, a 5xx without a code).
    Other(Error),
}

impl Refused {
    /// The plugin error.
    pub fn into_error(self) -> Error {
        match self {
            Refused::Code(_, e) | Refused::Other(e) => e,
        }
    }
}

/// A successful token response, with the ID token if one came.
pub struct Tokens {
    pub response: TokenResponse,
    pub id_token: Option<String>,
}

/// POSTs `pairs` (plus `client_id`, and the client secret if configured) to `url` and
/// parses the token response. `redactor` holds the secrets sent, kept out of messages.
pub fn token_request(
    settings: &Settings,
    url: &Url,
    pairs: &[(&str, &str)],
    mut redactor: Redactor,
) -> Result<Tokens, Refused> {
    let secret = client_secret(settings).map_err(Refused::Other)?;
    let mut form: Vec<(&str, &str)> = pairs.to_vec();
    form.push(("client_id", &settings.client_id));
    if let Some(secret) = &secret {
        redactor.add(secret);
        form.push(("client_secret", secret.expose()));
    }
    let request = Request::post_form(url.clone(), &form).with_timeout_ms(settings.http_timeout_ms);
    let response = Host
        .send(&request)
        .map_err(|e| Refused::Other(e.into_plugin_error(url, settings.http_timeout_ms)))?;
    let target = url.display();
    let now = Host.now_ms();
    if (200..300).contains(&response.status) {
        let parsed = response::parse_success(
            Endpoint::Token,
            &target,
            response.status,
            &response.body,
            now,
            &redactor,
        )
        .map_err(Refused::Other)?;
        let id_token = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|v| v.get("id_token")?.as_str().map(str::to_string));
        return Ok(Tokens {
            response: parsed,
            id_token,
        });
    }
    let (code, description) = error_body::error_fields(&response.body, &redactor);
    let error =
        error_body::map_error_status(Endpoint::Token, &target, url.path(), &response, &redactor);
    match code {
        Some(code) => {
            let error = match description {
                Some(d) if !error.message().contains(&d) => {
                    error.map_message(|m| format!("{m}: {d}"))
                }
                _ => error,
            };
            Err(Refused::Code(code, error))
        }
        None => Err(Refused::Other(error)),
    }
}

/// The client secret from `client_secret_env`, if configured.
fn client_secret(settings: &Settings) -> Result<Option<Secret>, Error> {
    match &settings.client_secret_env {
        None => Ok(None),
        Some(name) => {
            tokenhost_plugin::secret::from_env(&Host, "client_secret_env", name).map(Some)
        }
    }
}

/// `len` random bytes as base64url without padding.
pub fn random_b64(len: usize) -> Result<String, Error> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Host.random_bytes(len)?))
}

/// The `nonce` claim of an ID token (its payload, unverified: it came straight from the
/// token endpoint over the connection the plugin opened, OpenID Connect Core §3.1.3.7).
pub fn id_token_nonce(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce")?.as_str().map(str::to_string)
}
