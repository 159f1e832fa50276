//! `oidc-login`: a person signs in once with their OpenID provider (`tokenhost login
//! <provider>`), by the authorization code flow with PKCE and a loopback redirect, or by
//! the device code flow; the refresh token is kept in the host's secret storage and every
//! later `resolve`/`refresh` uses it, with no person involved.
//!
//! - `login`: discovery, then the configured flow; keeps the tokens.
//! - `resolve`: the stored access token while it is fresh, else a refresh.
//! - `refresh`: a refresh-token grant; a rotated refresh token replaces the old one. An
//!   `invalid_grant` means the sign-in ended: the stored tokens are forgotten and the
//!   answer is `not-signed-in`, which the host shows as "run: tokenhost login <id>".
//!
//! See README.md for the config keys and examples for Entra ID, Okta, Google and Keycloak.

pub mod authcode;
pub mod device;
pub mod oidc;
pub mod settings;
pub mod store;

use tokenhost_plugin::redact::Redactor;
use tokenhost_plugin::secret::Secret;
use tokenhost_plugin::{
    Config, Error, LoginOptions, RefreshContext, RefreshReason, Token, TokenSource,
};

use oidc::{Endpoints, Refused};
use settings::{Flow, Settings};

/// The plugin: its settings, and the endpoints once discovered.
pub struct OidcLogin {
    settings: Settings,
    endpoints: Option<Endpoints>,
}

impl OidcLogin {
    fn endpoints(&mut self) -> Result<&Endpoints, Error> {
        if self.endpoints.is_none() {
            self.endpoints = Some(oidc::discover(&self.settings)?);
        }
        Ok(self.endpoints.as_ref().expect("discovered above"))
    }

    /// A refresh-token grant with the stored refresh token.
    fn refresh_grant(&mut self) -> Result<Token, Error> {
        let Some(refresh_token) = store::refresh_token()? else {
            return Err(Error::not_signed_in(""));
        };
        let token_url = self.endpoints()?.token.clone();
        let mut pairs = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ];
        if let Some(resource) = &self.settings.resource {
            pairs.push(("resource", resource));
        }
        let redactor = Redactor::new(&[Secret::new(refresh_token.clone())]);
        match oidc::token_request(&self.settings, &token_url, &pairs, redactor) {
            Ok(tokens) => store::keep(&tokens.response),
            Err(Refused::Code(code, _)) if code == "invalid_grant" => {
                store::forget()?;
                Err(Error::not_signed_in(
                    "signed out: the identity provider refused the stored refresh token \
                     (invalid_grant: revoked, expired or already used)",
                ))
            }
            Err(refused) => Err(refused.into_error()),
        }
    }
}

impl TokenSource for OidcLogin {
    fn new(config: Config) -> Result<Self, Error> {
        Ok(OidcLogin {
            settings: Settings::from_config(&config)?,
            endpoints: None,
        })
    }

    fn resolve(&mut self) -> Result<Token, Error> {
        if let Some(token) = store::fresh_access_token()? {
            return Ok(token);
        }
        self.refresh_grant()
    }

    fn refresh(&mut self, reason: RefreshReason) -> Result<Token, Error> {
        if reason == RefreshReason::Unauthorized {
            store::forget_access_token()?;
        }
        self.refresh_grant()
    }

    fn refresh_with(&mut self, context: RefreshContext) -> Result<Token, Error> {
        // Another process may have refreshed already (the host's lock serialised us): a
        // fresh stored token that is not the one being replaced is the answer, unless a
        // person forced a new one.
        if context.reason != RefreshReason::Forced
            && let Some(rejected) = &context.rejected_fingerprint
            && let Some(token) = store::fresh_access_token()?
            && store::fingerprint(&token.value) != *rejected
        {
            return Ok(token);
        }
        self.refresh(context.reason)
    }

    fn login(&mut self, options: LoginOptions) -> Result<Token, Error> {
        let _ = options; // the host decides whether a browser opens
        let endpoints = self.endpoints()?.clone();
        let tokens = match self.settings.flow {
            Flow::AuthorizationCode => authcode::login(&self.settings, &endpoints)?,
            Flow::DeviceCode => device::login(&self.settings, &endpoints)?,
        };
        if tokens.response.refresh_token.is_none() {
            tokenhost_plugin::warn!(
                "the provider sent no refresh token (add offline_access to `scopes`?): a new \
                 login will be needed when the access token expires"
            );
        }
        // A new sign-in replaces whatever was stored.
        store::forget()?;
        // A sign-in that cannot be kept whole (over the storage cap) is not kept at all:
        // a refresh token alone would make every later call refresh and fail again.
        let token = store::keep(&tokens.response).inspect_err(|_| {
            let _ = store::forget();
        })?;
        tokenhost_plugin::interaction::show_message("Signed in.")?;
        Ok(token)
    }
}

#[cfg(target_arch = "wasm32")]
tokenhost_plugin::export_token_source!(OidcLogin);
