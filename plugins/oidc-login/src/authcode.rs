//! The authorization code flow with PKCE (RFC 7636, S256) and a loopback redirect
//! (RFC 8252): the host binds 127.0.0.1, opens the browser (or prints the URL), and hands
//! back the redirect's query; the plugin checks `state` (and `iss`, RFC 9207), trades the
//! code with its verifier, and checks the ID token's `nonce`.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokenhost_plugin::form;
use tokenhost_plugin::redact::Redactor;
use tokenhost_plugin::secret::Secret;
use tokenhost_plugin::{Error, interaction};

use crate::oidc::{self, Endpoints, Tokens};
use crate::settings::Settings;

/// The S256 code challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The redirect's parameters, decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Signs the person in; the token response.
pub fn login(settings: &Settings, endpoints: &Endpoints) -> Result<Tokens, Error> {
    let authorize = endpoints.authorization.as_ref().ok_or_else(|| {
        Error::invalid_config("the provider's discovery document has no authorization_endpoint")
    })?;
    let verifier = oidc::random_b64(32)?;
    let state = oidc::random_b64(16)?;
    let nonce = oidc::random_b64(16)?;
    let redirect_uri =
        interaction::listen_redirect(settings.redirect_port, &settings.redirect_path)?;
    let challenge = challenge(&verifier);
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &settings.client_id),
        ("redirect_uri", &redirect_uri),
        ("scope", &settings.scopes),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    for (key, value) in [
        ("prompt", &settings.prompt),
        ("audience", &settings.audience),
        ("resource", &settings.resource),
    ] {
        if let Some(value) = value {
            params.push((key, value));
        }
    }
    let base = format!(
        "{}://{}{}",
        authorize.scheme.as_str(),
        authorize.authority,
        authorize.path_and_query
    );
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}{}", form::encode(&params));
    interaction::open_browser(&url)?;
    let query = interaction::await_redirect(settings.login_timeout_ms)?;
    let pairs = query_pairs(&query);
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if get("state") != Some(state.as_str()) {
        return Err(Error::denied(
            "the sign-in redirect's `state` does not match this login (a stale browser tab, or \
             a redirect this login did not start); refusing it: run tokenhost login again",
        ));
    }
    if let Some(iss) = get("iss")
        && iss.trim_end_matches('/') != settings.issuer
    {
        return Err(Error::denied(format!(
            "the sign-in redirect comes from issuer {iss:?}, not {:?}; refusing it",
            settings.issuer
        )));
    }
    if let Some(error) = get("error") {
        let description = get("error_description").unwrap_or("");
        return Err(Error::denied(format!(
            "the identity provider refused the sign-in: {error} {description}"
        )));
    }
    let code = get("code")
        .ok_or_else(|| Error::denied("the sign-in redirect carries no `code`"))?
        .to_string();
    let redactor = Redactor::new(&[Secret::new(code.clone()), Secret::new(verifier.clone())]);
    let tokens = oidc::token_request(
        settings,
        &endpoints.token,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
        ],
        redactor,
    )
    .map_err(oidc::Refused::into_error)?;
    check_nonce(settings, &tokens, &nonce)?;
    Ok(tokens)
}

/// With `openid` in scope, the ID token must carry this login's `nonce`.
fn check_nonce(settings: &Settings, tokens: &Tokens, nonce: &str) -> Result<(), Error> {
    if !settings.scopes.split(' ').any(|s| s == "openid") {
        return Ok(());
    }
    match tokens.id_token.as_deref().map(oidc::id_token_nonce) {
        Some(Some(found)) if found == nonce => Ok(()),
        Some(_) => Err(Error::denied(
            "the ID token's `nonce` does not match this login; refusing the tokens",
        )),
        None => Err(Error::denied(
            "the token endpoint sent no ID token although `openid` was requested",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_is_rfc_7636s_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn redirect_queries_are_decoded() {
        let pairs = query_pairs("code=a%2Fb&state=x+y&empty=&iss=http%3A%2F%2F127.0.0.1%3A1");
        assert_eq!(pairs[0], ("code".into(), "a/b".into()));
        assert_eq!(pairs[1], ("state".into(), "x y".into()));
        assert_eq!(pairs[2], ("empty".into(), "".into()));
        assert_eq!(pairs[3].1, "http://127.0.0.1:1");
        assert_eq!(query_pairs("x=%zz%4")[0].1, "%zz%4");
    }
}
