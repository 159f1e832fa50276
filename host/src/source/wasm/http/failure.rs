//! Why a plugin's request got no response, told apart: a certificate the host does not
//! trust, a name that does not resolve, a refused port, a timeout, a proxy, a server that
//! does not speak TLS.
//!
//! Each failure has two faces. The wasi:http `ErrorCode` the plugin sees carries the
//! class (`TlsCertificateError`, `DnsError` with the resolver's reason,
//! `ConnectionRefused`, ...; wasi:http has no proxy code, so a proxy failure is an
//! `InternalError` whose short text names the proxy's variable, never its address). The
//! host's own description (the `detail`) names the target's authority and the cause,
//! with a hint where one helps (`SSL_CERT_FILE` for an untrusted certificate); it goes to
//! the host's log and onto the plugin's final error (see `super::activity`). Neither ever
//! holds a URL's query or a proxy's credentials.

use std::error::Error as StdError;
use std::io;

use rustls::{AlertDescription, CertificateError};
use wasmtime_wasi_http::Error as HttpError;

use super::proxy::Proxy;

/// The hint for a certificate that no trusted CA signed.
pub const CA_HINT: &str = "if a private or corporate CA signs it, point SSL_CERT_FILE at a PEM \
                           bundle that includes that CA (or SSL_CERT_DIR at a directory of them) \
                           in tokenhost's environment";

/// A request's failure: what the plugin is told and what the host says.
#[derive(Debug)]
pub struct Failure {
    /// The code handed to the plugin.
    pub code: HttpError,
    /// One line for people: the authority (or proxy) and the cause.
    pub detail: String,
}

/// Where a failed request was going.
pub struct Target<'a> {
    /// The request's scheme.
    pub scheme: &'a str,
    /// The request's host, as in its URI.
    pub host: &'a str,
    /// `host:port` (the port only if the URI has one).
    pub authority: &'a str,
    /// The proxy it went through, if any.
    pub proxy: Option<&'a Proxy>,
}

/// Classifies a failed `reqwest` request to `target`.
pub fn classify(error: reqwest::Error, target: &Target<'_>) -> Failure {
    // Its URL may carry a query: never part of a message.
    let error = error.without_url();
    classify_chain(
        &error,
        error.is_connect(),
        error.is_timeout(),
        error.is_redirect(),
        error.is_body() || error.is_decode(),
        target,
    )
}

/// The classification, on an error chain and the flags `reqwest` gives (`connect`: the
/// failure happened before a connection was ready; `timeout`; `redirect`; `body`: the
/// response broke off while its body was read).
pub fn classify_chain(
    error: &(dyn StdError + 'static),
    connect: bool,
    timeout: bool,
    redirect: bool,
    body: bool,
    target: &Target<'_>,
) -> Failure {
    let authority = target.authority;
    let chain = Chain::of(error);
    if let Some(tls) = chain.rustls() {
        return tls_failure(tls, target);
    }
    if let Some(proxy) = target.proxy
        && (connect || chain.text().contains("tunnel error"))
    {
        return proxy_failure(proxy, &chain, timeout, target);
    }
    if redirect {
        return failure(
            HttpError::LoopDetected,
            format!("{authority}: redirects did not end ({})", chain.text()),
        );
    }
    if let Some(reason) = chain.dns() {
        return failure(
            HttpError::DnsError {
                rcode: Some(reason.clone()),
                info_code: None,
            },
            format!("cannot resolve {}: {reason}", target.host),
        );
    }
    if timeout && connect {
        return failure(
            HttpError::ConnectionTimeout,
            format!("connecting to {authority} timed out"),
        );
    }
    if timeout {
        // reqwest's per-request timeout does not say which phase it cut short.
        return failure(
            HttpError::HttpResponseTimeout,
            format!("no complete answer from {authority} within the request's timeout"),
        );
    }
    if let Some(io) = chain.io_kind() {
        let by_kind = match io {
            io::ErrorKind::ConnectionRefused => Some((
                HttpError::ConnectionRefused,
                format!("{authority} refused the connection (nothing listens on that port?)"),
            )),
            io::ErrorKind::TimedOut => Some((
                HttpError::ConnectionTimeout,
                format!("connecting to {authority} timed out"),
            )),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Some((
                HttpError::ConnectionTerminated,
                format!("{authority} reset the connection"),
            )),
            io::ErrorKind::UnexpectedEof if connect && target.scheme == "https" => Some((
                HttpError::TlsProtocolError,
                format!(
                    "{authority} closed the connection during the TLS handshake (is it a \
                     plain http:// port?)"
                ),
            )),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => Some((
                HttpError::DestinationUnavailable,
                format!("{authority} is unreachable ({})", chain.text()),
            )),
            io::ErrorKind::AddrNotAvailable => Some((
                HttpError::DestinationIpUnroutable,
                format!("{authority}: address not available ({})", chain.text()),
            )),
            _ => None,
        };
        if let Some((code, detail)) = by_kind {
            return failure(code, detail);
        }
    }
    if body {
        return failure(
            HttpError::HttpResponseIncomplete,
            format!("the response from {authority} broke off ({})", chain.text()),
        );
    }
    if connect {
        return failure(
            HttpError::DestinationUnavailable,
            format!("cannot connect to {authority}: {}", chain.text()),
        );
    }
    let text = chain.text();
    failure(
        HttpError::InternalError(Some(text.clone())),
        format!("request to {authority} failed: {text}"),
    )
}

fn failure(code: HttpError, detail: String) -> Failure {
    Failure { code, detail }
}

fn tls_failure(error: &rustls::Error, target: &Target<'_>) -> Failure {
    let authority = target.authority;
    let through = target
        .proxy
        .map(|p| format!(" (through proxy {} from {})", p.shown, p.var))
        .unwrap_or_default();
    match error {
        rustls::Error::InvalidCertificate(problem) => {
            let (what, hint) = certificate_problem(problem, target.host);
            let hint = hint.map(|h| format!("; {h}")).unwrap_or_default();
            failure(
                HttpError::TlsCertificateError,
                format!("the TLS certificate of {authority}{through} {what}{hint}"),
            )
        }
        rustls::Error::NoCertificatesPresented => failure(
            HttpError::TlsCertificateError,
            format!("{authority}{through} presented no TLS certificate"),
        ),
        rustls::Error::AlertReceived(alert) => {
            let hint = match alert {
                AlertDescription::CertificateRequired | AlertDescription::BadCertificate => {
                    " (it may want a client certificate)"
                }
                AlertDescription::ProtocolVersion | AlertDescription::HandshakeFailure => {
                    " (no TLS version or cipher suite in common)"
                }
                _ => "",
            };
            failure(
                HttpError::TlsAlertReceived {
                    alert_id: Some(u8::from(*alert)),
                    alert_message: Some(format!("{alert:?}")),
                },
                format!("{authority}{through} ended the TLS handshake with alert {alert:?}{hint}"),
            )
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => failure(
            HttpError::TlsProtocolError,
            format!(
                "{authority}{through} did not answer in TLS ({error}): is it a plain http:// port?"
            ),
        ),
        rustls::Error::PeerIncompatible(_) => failure(
            HttpError::TlsProtocolError,
            format!(
                "{authority}{through} has no TLS version or cipher suite in common with tokenhost ({error})"
            ),
        ),
        other => failure(
            HttpError::TlsProtocolError,
            format!("TLS with {authority}{through} failed: {other}"),
        ),
    }
}

/// What is wrong with a certificate, and a hint when one helps.
fn certificate_problem(problem: &CertificateError, host: &str) -> (String, Option<String>) {
    match problem {
        CertificateError::UnknownIssuer => (
            "is not trusted: it is self-signed or signed by a CA that is not in the trust store"
                .into(),
            Some(CA_HINT.into()),
        ),
        CertificateError::BadSignature => (
            "has a signature that does not verify".into(),
            Some(CA_HINT.into()),
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            ("has expired".into(), None)
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            "is not valid yet".into(),
            Some("check this machine's clock".into()),
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
            format!("is not valid for the name {host}"),
            Some("the URL must use a name the certificate lists".into()),
        ),
        CertificateError::Revoked => ("is revoked".into(), None),
        CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => (
            "is a CA certificate, which cannot identify a server".into(),
            Some("the server must present a certificate issued by that CA".into()),
        ),
        other => (format!("is not acceptable ({other})"), None),
    }
}

fn proxy_failure(proxy: &Proxy, chain: &Chain<'_>, timeout: bool, target: &Target<'_>) -> Failure {
    let text = chain.text();
    let (guest, detail) = if text.contains("proxy authorization required") {
        (
            format!(
                "the HTTP proxy ({}) asks for credentials (HTTP 407)",
                proxy.var
            ),
            format!(
                "proxy {} (from {}) asks for credentials (HTTP 407): put them in the proxy URL \
                 (http://user:password@host:port)",
                proxy.shown, proxy.var
            ),
        )
    } else if text.contains("tunnel error")
        && !text.contains("failed to create underlying connection")
    {
        (
            format!("the HTTP proxy ({}) refused to open a tunnel", proxy.var),
            format!(
                "proxy {} (from {}) refused to open a tunnel to {} ({text})",
                proxy.shown, proxy.var, target.authority
            ),
        )
    } else {
        let reason = match (chain.dns(), chain.io_kind()) {
            (Some(dns), _) => format!("its name does not resolve ({dns})"),
            (None, Some(io::ErrorKind::ConnectionRefused)) => "connection refused".to_string(),
            (None, Some(io::ErrorKind::TimedOut)) => "connecting timed out".to_string(),
            _ if timeout => "no answer in time".to_string(),
            _ => text.clone(),
        };
        (
            format!("cannot reach the HTTP proxy ({}): {reason}", proxy.var),
            format!(
                "cannot reach proxy {} (from {}) for {}: {reason}; check {} or add the host to NO_PROXY",
                proxy.shown, proxy.var, target.authority, proxy.var
            ),
        )
    };
    failure(HttpError::InternalError(Some(guest)), detail)
}

/// An error and its causes, including the errors wrapped inside `io::Error`s (whose
/// `source()` skips the wrapped error itself).
struct Chain<'a> {
    links: Vec<&'a (dyn StdError + 'static)>,
}

impl<'a> Chain<'a> {
    fn of(error: &'a (dyn StdError + 'static)) -> Self {
        let mut links = Vec::new();
        let mut next = Some(error);
        while let Some(link) = next {
            links.push(link);
            if links.len() > 16 {
                break;
            }
            next = match link.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => link.source(),
            };
        }
        Chain { links }
    }

    fn rustls(&self) -> Option<&'a rustls::Error> {
        self.links
            .iter()
            .find_map(|e| e.downcast_ref::<rustls::Error>())
    }

    fn io_kind(&self) -> Option<io::ErrorKind> {
        self.links
            .iter()
            .rev()
            .find_map(|e| e.downcast_ref::<io::Error>())
            .map(io::Error::kind)
    }

    /// The resolver's reason, if name resolution failed (hyper-util marks it "dns error").
    fn dns(&self) -> Option<String> {
        let at = self
            .links
            .iter()
            .position(|e| e.to_string() == "dns error")?;
        let reason = self.links[at + 1..]
            .last()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "name resolution failed".into());
        let reason = reason
            .strip_prefix("failed to lookup address information: ")
            .unwrap_or(&reason)
            .to_string();
        Some(reason)
    }

    /// Every link's own text, joined: `error sending request: client error (Connect): ...`.
    fn text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for link in &self.links {
            let text = link.to_string();
            // A wrapper often repeats its cause's text; keep each text once.
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
        }
        parts.join(": ")
    }
}
