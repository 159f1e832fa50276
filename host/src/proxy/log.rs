//! The one log line per request: method, path, status, time to the response head and the
//! token's fingerprint.
//!
//! A query may carry a key (`?key=...`, `?sig=...`), so only the names of its parameters
//! are shown; a token or the local key never is. When info is off for this target the
//! line costs one check and nothing is formatted.

use std::fmt;
use std::time::Duration;

use http::Method;

use crate::token::Fingerprint;

/// The target of the request lines, for `RUST_LOG` filters.
pub(super) const TARGET: &str = "tokenhost::proxy";

/// Logs one answered request. `token` is the one upstream answered to, if any got there.
pub(crate) fn request(
    method: &Method,
    path: &str,
    query: Option<&str>,
    status: u16,
    elapsed: Duration,
    token: Option<Fingerprint>,
) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let shown = Shown { path, query };
    let micros = elapsed.as_micros();
    match token {
        Some(token) => tracing::info!(
            target: TARGET,
            "{method} {shown} {status} {}.{:03} ms token {token}",
            micros / 1000,
            micros % 1000
        ),
        None => tracing::info!(
            target: TARGET,
            "{method} {shown} {status} {}.{:03} ms",
            micros / 1000,
            micros % 1000
        ),
    }
}

/// A path with its query reduced to parameter names: `/v1/m?api-version=…&key=…`.
pub(crate) struct Shown<'a> {
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path)?;
        let Some(query) = self.query.filter(|q| !q.is_empty()) else {
            return Ok(());
        };
        for (i, pair) in query.split('&').enumerate() {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{name}=…")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_never_shown() {
        let cases = [
            ("/v1/m", None, "/v1/m"),
            ("/v1/m", Some(""), "/v1/m"),
            ("/v1/m", Some("key=s3cr3t"), "/v1/m?key=…"),
            ("/m", Some("a=1&sig=abc&flag"), "/m?a=…&sig=…&flag=…"),
        ];
        for (path, query, expected) in cases {
            assert_eq!(Shown { path, query }.to_string(), expected);
        }
    }
}
