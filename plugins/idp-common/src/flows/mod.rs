//! The three ways to get a token, each over a [`Platform`]:
//! - [`client_credentials`]: OAuth 2.0 client credentials (RFC 6749 §4.4), with a client
//!   secret or a client assertion (RFC 7521/7523);
//! - [`token_exchange`]: OAuth 2.0 token exchange (RFC 8693);
//! - [`metadata`]: an instance metadata server (GCE, Azure IMDS).
//!
//! Each has `KEYS` (its config keys), `prepare` (config to request, no network),
//! `fetch` (the whole call) and `Source`, the flow as a plugin's [`TokenSource`]. Every
//! error message leaves through `finish`, which removes the request's secrets from it
//! (with [`Prepared::redactor`]); IdP text quoted in a message is redacted before it is
//! cut to length.

/// Declares, in a flow module, the flow type `$name` (whose [`Flow::fetch`] is the
/// module's `fetch`) and `Source`, the flow as a plugin's token source.
macro_rules! flow_source {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The ", $what, " flow.")]
        pub struct $name;

        impl super::Flow for $name {
            fn fetch(
                platform: &dyn Platform,
                config: &Config,
                trigger: Trigger,
            ) -> Result<Token, Error> {
                fetch(platform, config, trigger)
            }
        }

        #[doc = concat!("The ", $what, " flow as a plugin's token source.")]
        pub type Source = super::FlowSource<$name>;
    };
}

pub mod client_credentials;
pub mod metadata;
pub mod token_exchange;

use std::cell::Cell;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;

use tokenhost_plugin::config::Config;
use tokenhost_plugin::http::{Method, Request, Response};
use tokenhost_plugin::log::Level;
use tokenhost_plugin::oauth::{self, Endpoint, TokenResponse};
use tokenhost_plugin::redact::Redactor;
use tokenhost_plugin::secret::Secret;
use tokenhost_plugin::url::Url;
use tokenhost_plugin::{Error, Host, Platform, RefreshReason, Token, TokenSource};

/// Why the host asked for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `resolve`.
    Resolve,
    /// `refresh`, with the reason.
    Refresh(RefreshReason),
}

impl Trigger {
    fn describe(self) -> String {
        match self {
            Trigger::Resolve => "resolve".to_string(),
            Trigger::Refresh(reason) => format!("refresh ({reason})"),
        }
    }
}

/// A flow: one way to get a token over a [`Platform`].
pub trait Flow: 'static {
    /// Runs the whole flow once.
    fn fetch(platform: &dyn Platform, config: &Config, trigger: Trigger) -> Result<Token, Error>;
}

/// A [`Flow`] as a plugin: keeps the provider's config and runs the flow on the host's
/// platform for every `resolve` and `refresh` (the host caches the tokens).
pub struct FlowSource<F: Flow> {
    config: Config,
    flow: PhantomData<F>,
}

impl<F: Flow> TokenSource for FlowSource<F> {
    fn new(config: Config) -> Result<Self, Error> {
        Ok(FlowSource {
            config,
            flow: PhantomData,
        })
    }

    fn resolve(&mut self) -> Result<Token, Error> {
        F::fetch(&Host, &self.config, Trigger::Resolve)
    }

    fn refresh(&mut self, reason: RefreshReason) -> Result<Token, Error> {
        F::fetch(&Host, &self.config, Trigger::Refresh(reason))
    }
}

/// What a successful flow reports.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub issued: Token,
    /// `expires_in`, for the log.
    pub expires_in_s: Option<u64>,
    /// Who issued the token, e.g. `token endpoint https://...`.
    pub source: String,
    pub status: u16,
}

impl Outcome {
    /// The outcome of a successful JSON token response from `source` (for example
    /// `token endpoint https://...`), answered with HTTP `status`.
    pub(crate) fn from_json(parsed: TokenResponse, source: String, status: u16) -> Outcome {
        Outcome {
            issued: Token {
                value: parsed.access_token.expose().to_string(),
                expires_at_ms: parsed.expires_at_ms,
            },
            expires_in_s: parsed.expires_in_s,
            source,
            status,
        }
    }
}

/// A request ready to send, with what is needed to report on it.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub request: Request,
    /// Secrets in the request, to be removed from any message.
    pub secrets: Vec<Secret>,
    pub endpoint: Endpoint,
    /// How the request authenticates, for the log (never a secret).
    pub summary: String,
}

impl Prepared {
    /// A token request: `form` POSTed to the token endpoint `url`.
    pub(crate) fn token_form(
        url: Url,
        headers: Vec<(String, String)>,
        form: &[(&str, String)],
        timeout_ms: u64,
        secrets: Vec<Secret>,
        summary: String,
    ) -> Prepared {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Prepared {
            request: Request {
                method: Method::Post,
                url,
                headers,
                body: tokenhost_plugin::form::encode(&pairs).into_bytes(),
                timeout_ms,
            },
            secrets,
            endpoint: Endpoint::Token,
            summary,
        }
    }
}

impl Prepared {
    /// What to keep out of every message about this request: its secrets, and the
    /// value and credential of each `Authorization` header, taken from the request itself
    /// so that no flow can forget one (the `Basic` value of `client_secret_basic`).
    pub fn redactor(&self) -> Redactor {
        let mut redactor = Redactor::new(&self.secrets);
        for (name, value) in &self.request.headers {
            if name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("proxy-authorization")
            {
                redactor.add(&Secret::new(value.clone()));
                if let Some((_scheme, credential)) = value.split_once(' ') {
                    redactor.add(&Secret::new(credential.trim()));
                }
            }
        }
        redactor
    }
}

/// Parameters `extra_params` may not set because they have their own config key.
const KEYED_PARAMS: &[&str] = &["scope", "audience", "resource", "client_id"];

/// The `extra_params` table: vendor-specific token-request parameters (Entra's
/// `client_info`, a tenant hint, ...), sent as they are after the flow's own. A name in
/// `reserved` (what the flow sets itself) is refused, so that the table cannot change
/// the grant or the credential behind the flow's back. Messages name parameters, never
/// their values.
pub(crate) fn extra_params(
    config: &Config,
    reserved: &[&str],
) -> Result<Vec<(String, String)>, Error> {
    let pairs = config.table("extra_params")?.unwrap_or_default();
    for (name, _) in &pairs {
        if name.trim().is_empty() {
            return Err(Error::InvalidConfig(
                "config key `extra_params` has an empty parameter name".to_string(),
            ));
        }
        if reserved.contains(&name.as_str()) {
            let hint = if KEYED_PARAMS.contains(&name.as_str()) {
                format!("use config key `{name}`")
            } else {
                "it cannot be set here".to_string()
            };
            return Err(Error::InvalidConfig(format!(
                "config key `extra_params`: `{name}` is a parameter the plugin sets itself; {hint}"
            )));
        }
    }
    Ok(pairs)
}

/// Appends `extra` (from [`extra_params`]) to `form`, keeps the values out of every
/// message (`secrets`) and names the parameters, without values, in `summary`.
pub(crate) fn add_extra_params<'a>(
    extra: &'a [(String, String)],
    form: &mut Vec<(&'a str, String)>,
    secrets: &mut Vec<Secret>,
    summary: &mut String,
) {
    if extra.is_empty() {
        return;
    }
    let mut names: Vec<&str> = Vec::new();
    for (name, value) in extra {
        form.push((name.as_str(), value.clone()));
        secrets.push(Secret::new(value.clone()));
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    summary.push_str(&format!(", extra params: {}", names.join(", ")));
}

/// Logs a warning for each config key not in `known`.
pub(crate) fn warn_unknown(platform: &dyn Platform, plugin: &str, config: &Config, known: &[&str]) {
    for key in config.unknown_keys(known) {
        platform.log(
            Level::Warn,
            &format!(
                "{plugin}: ignoring unknown config key `{key}` (known keys: {})",
                known.join(", ")
            ),
        );
    }
}

/// The headers every request carries.
pub(crate) fn base_headers(form: bool) -> Vec<(String, String)> {
    let mut headers = vec![
        ("accept".to_string(), "application/json".to_string()),
        (
            "user-agent".to_string(),
            tokenhost_plugin::http::USER_AGENT.to_string(),
        ),
    ];
    if form {
        headers.push((
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
    }
    headers
}

/// Sends the prepared request and returns the raw 2xx response; a transport failure or
/// non-2xx status becomes the mapped error.
pub(crate) fn send(
    platform: &dyn Platform,
    plugin: &str,
    prepared: &Prepared,
) -> Result<Response, Error> {
    let request = &prepared.request;
    platform.log(
        Level::Info,
        &format!(
            "{plugin}: {} {} ({})",
            request.method.as_str(),
            request.url.display(),
            prepared.summary
        ),
    );
    let response = platform
        .send(request)
        .map_err(|e| e.into_plugin_error(&request.url, request.timeout_ms))?;
    if !(200..300).contains(&response.status) {
        return Err(oauth::map_error_status(
            prepared.endpoint,
            &request.url.display(),
            request.url.path(),
            &response,
            &prepared.redactor(),
        ));
    }
    Ok(response)
}

/// Parses a 2xx JSON token response and logs its warnings.
pub(crate) fn parse_json(
    platform: &dyn Platform,
    plugin: &str,
    prepared: &Prepared,
    response: &Response,
) -> Result<TokenResponse, Error> {
    let parsed = oauth::parse_success(
        prepared.endpoint,
        &prepared.request.url.display(),
        response.status,
        &response.body,
        platform.now_ms(),
        &prepared.redactor(),
    )?;
    for warning in &parsed.warnings {
        platform.log(Level::Warn, &format!("{plugin}: {warning}"));
    }
    Ok(parsed)
}

/// A type named in a token response (`token_type`, `issued_token_type`), redacted and
/// then cut for a message.
pub(crate) fn shown_type(token_type: &str, redactor: &Redactor) -> String {
    redactor
        .redact(token_type)
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect()
}

/// The secrets of a request and of the token response to it.
pub(crate) fn response_redactor(prepared: &Prepared, parsed: &TokenResponse) -> Redactor {
    let mut redactor = prepared.redactor();
    for secret in parsed.secrets() {
        redactor.add(&secret);
    }
    redactor
}

/// The error for a token that is not Bearer (`token_type`, from `parsed`).
pub(crate) fn not_bearer(prepared: &Prepared, parsed: &TokenResponse, token_type: &str) -> Error {
    Error::InvalidConfig(format!(
        "{} {} issued a token of type `{}`, not Bearer; tokenhost sends only Bearer tokens",
        match prepared.endpoint {
            Endpoint::Token => "token endpoint",
            Endpoint::Metadata => "metadata server",
        },
        prepared.request.url.display(),
        shown_type(token_type, &response_redactor(prepared, parsed))
    ))
}

thread_local! {
    /// A hash of the last token this instance returned.
    static LAST_TOKEN: Cell<Option<u64>> = const { Cell::new(None) };
}

fn token_hash(value: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// Reports the outcome of a flow: redacts and logs an error, or logs the success (and a
/// warning when a refresh got the same token back).
pub(crate) fn finish(
    platform: &dyn Platform,
    plugin: &str,
    trigger: Trigger,
    redactor: &Redactor,
    result: Result<Outcome, Error>,
) -> Result<Token, Error> {
    match result {
        Err(error) => {
            let error = error.map_message(|m| redactor.redact(&m));
            platform.log(
                Level::Warn,
                &format!(
                    "{plugin}: {} failed: {}",
                    trigger.describe(),
                    error.message()
                ),
            );
            Err(error)
        }
        Ok(Outcome {
            issued,
            expires_in_s,
            source,
            status,
        }) => {
            let expiry = match (expires_in_s, issued.expires_at_ms) {
                (Some(s), _) => format!("expires in {s} s"),
                (None, Some(_)) => "expiry given as a time".to_string(),
                (None, None) => "no expiry given".to_string(),
            };
            platform.log(
                Level::Info,
                &format!(
                    "{plugin}: {} got a token from {source} (HTTP {status}, {expiry})",
                    trigger.describe()
                ),
            );
            let hash = token_hash(&issued.value);
            let previous = LAST_TOKEN.with(|last| last.replace(Some(hash)));
            if matches!(trigger, Trigger::Refresh(_)) && previous == Some(hash) {
                platform.log(
                    Level::Warn,
                    &format!(
                        "{plugin}: the refresh returned the same token as last time ({source} may cache tokens until they near expiry)"
                    ),
                );
            }
            Ok(issued)
        }
    }
}
