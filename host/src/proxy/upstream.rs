//! The HTTP client the proxy sends upstream with, set up once.
//!
//! reqwest over hyper's pooled client: keep-alive connections per host, HTTPS with
//! rustls and the system roots (which `SSL_CERT_FILE`/`SSL_CERT_DIR` override, as for the
//! rest of tokenhost), HTTP/2 when the server offers it by ALPN, `HTTPS_PROXY`,
//! `HTTP_PROXY` and `NO_PROXY` from the environment. Redirects are returned to the client
//! rather than followed, so the token goes only to the provider's `base_url`. No overall
//! timeout: a response may stream for as long as upstream sends; the wait for the
//! response head has its own deadline (see [`forward`](super::forward)).

use std::time::Duration;

/// How long connecting upstream may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The upstream client.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}
