//! The device authorization grant (RFC 8628): the person opens a URL on any device and
//! enters a code; the plugin polls the token endpoint at the server's `interval`, slowing
//! down on `slow_down`, until the person approves, refuses, the code expires
//! (`expired_token`) or the login's deadline passes.

use serde_json::Value;
use tokenhost_plugin::http::Request;
use tokenhost_plugin::oauth::response::seconds;
use tokenhost_plugin::redact::Redactor;
use tokenhost_plugin::secret::Secret;
use tokenhost_plugin::{Error, Host, Platform, interaction};

use crate::oidc::{self, Endpoints, Refused, Tokens};
use crate::settings::Settings;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Signs the person in; the token response.
pub fn login(settings: &Settings, endpoints: &Endpoints) -> Result<Tokens, Error> {
    let url = endpoints.device_authorization.as_ref().ok_or_else(|| {
        Error::invalid_config(
            "the provider's discovery document has no device_authorization_endpoint; use \
             flow = \"authorization_code\"",
        )
    })?;
    let mut form: Vec<(&str, &str)> = vec![
        ("client_id", &settings.client_id),
        ("scope", &settings.scopes),
    ];
    if let Some(audience) = &settings.audience {
        form.push(("audience", audience));
    }
    if let Some(resource) = &settings.resource {
        form.push(("resource", resource));
    }
    let answer: Value = Request::post_form(url.clone(), &form)
        .with_timeout_ms(settings.http_timeout_ms)
        .send()
        .map_err(|e| e.map_message(|m| format!("device authorization: {m}")))?
        .json()?;
    let field = |key: &str| answer.get(key).and_then(Value::as_str).map(str::to_string);
    let missing =
        |key: &str| Error::unavailable(format!("the device authorization answer has no `{key}`"));
    let device_code = field("device_code").ok_or_else(|| missing("device_code"))?;
    let user_code = field("user_code").ok_or_else(|| missing("user_code"))?;
    let verification = field("verification_uri").ok_or_else(|| missing("verification_uri"))?;
    let complete = field("verification_uri_complete");
    let mut interval_s = answer.get("interval").and_then(seconds).unwrap_or(5).max(1);
    let expires_s = answer.get("expires_in").and_then(seconds).unwrap_or(600);

    interaction::show_message(&format!(
        "To sign in, open {verification} and enter the code {user_code}"
    ))?;
    interaction::open_browser(complete.as_deref().unwrap_or(&verification))?;

    let now = Host.now_ms();
    // End before the host's deadline for the login, so the person gets this plugin's
    // message rather than a timeout.
    let budget = settings
        .login_timeout_ms
        .saturating_sub(settings.http_timeout_ms + 1000);
    let until = now + (expires_s * 1000).min(budget);
    let redactor = Redactor::new(&[Secret::new(device_code.clone())]);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(interval_s));
        if Host.now_ms() >= until {
            return Err(Error::denied(
                "the device code expired before the sign-in was approved; run tokenhost login again",
            ));
        }
        let pairs = [
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code.as_str()),
        ];
        match oidc::token_request(settings, &endpoints.token, &pairs, redactor.clone()) {
            Ok(tokens) => return Ok(tokens),
            Err(Refused::Code(code, error)) => match code.as_str() {
                "authorization_pending" => {}
                // RFC 8628 §3.5: add 5 seconds to the interval from now on.
                "slow_down" => interval_s += 5,
                "expired_token" => {
                    return Err(Error::denied(
                        "the device code expired before the sign-in was approved; run tokenhost login again",
                    ));
                }
                "access_denied" => return Err(Error::denied("the person refused the sign-in")),
                _ => return Err(error),
            },
            Err(Refused::Other(error)) => return Err(error),
        }
    }
}
