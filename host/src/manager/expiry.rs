//! When a token must be refreshed: the expiry (from the source or a JWT's `exp`), the
//! refresh margin, and the jitter that keeps a fleet from refreshing in step.
//!
//! Pure functions of their inputs, so the rules are tested as tables.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The largest refresh margin before expiry.
pub const MAX_MARGIN: Duration = Duration::from_secs(60);

/// How long before expiry a token stops being handed out without a refresh: 60 s or
/// 10 % of its remaining lifetime, whichever is smaller.
pub fn margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_MARGIN)
}

/// Extra random lead (0 to half the margin), so many hosts with the same token
/// lifetime do not all refresh at the same instant. `unit` is a random number in [0, 1).
pub fn jitter(margin: Duration, unit: f64) -> Duration {
    margin.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
}

/// When tokenhost would stop reusing a token handed out at `now_ms`: before `expires_at_ms`
/// by the refresh margin, and no later than `refresh_interval` from now. `None`: never
/// (no expiry and no interval), so a client may keep it for as long as it likes.
pub fn reuse_until_ms(
    now_ms: u64,
    expires_at_ms: Option<u64>,
    refresh_interval: Option<Duration>,
) -> Option<u64> {
    let by_expiry = expires_at_ms.map(|expires| {
        let left = Duration::from_millis(expires.saturating_sub(now_ms));
        expires.saturating_sub(margin(left).as_millis() as u64)
    });
    let by_interval = refresh_interval
        .filter(|i| !i.is_zero())
        .map(|i| now_ms.saturating_add(i.as_millis() as u64));
    match (by_expiry, by_interval) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The `exp` claim of a JWT, in milliseconds since the Unix epoch, if `token` looks like
/// one. Decoded for timing only: nothing here checks, or trusts, the signature.
pub fn jwt_expiry_ms(token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 8 * 1024 {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let exp = claims.get("exp")?;
    let seconds = exp
        .as_u64()
        .or_else(|| exp.as_f64().filter(|s| *s >= 0.0).map(|s| s as u64))?;
    seconds.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJub25lIn0.{}.sig",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn margin_table() {
        let s = Duration::from_secs;
        for (lifetime, expected) in [
            (s(3600), s(60)),
            (s(600), s(60)),
            (s(300), s(30)),
            (s(10), Duration::from_millis(1000)),
            (s(0), s(0)),
        ] {
            assert_eq!(margin(lifetime), expected, "lifetime {lifetime:?}");
        }
    }

    #[test]
    fn jitter_is_bounded() {
        let m = Duration::from_secs(60);
        assert_eq!(jitter(m, 0.0), Duration::ZERO);
        assert!(jitter(m, 0.999) < Duration::from_secs(30));
        assert_eq!(jitter(m, 7.0), Duration::from_secs(30));
    }

    #[test]
    fn jwt_table() {
        let cases: &[(String, Option<u64>)] = &[
            (jwt(r#"{"exp":1700000000}"#), Some(1_700_000_000_000)),
            (
                jwt(r#"{"exp":1700000000.5,"sub":"x"}"#),
                Some(1_700_000_000_000),
            ),
            (jwt(r#"{"sub":"x"}"#), None),
            (jwt(r#"{"exp":"soon"}"#), None),
            (jwt(r#"{"exp":-5}"#), None),
            (jwt("not json"), None),
            ("opaque-token".into(), None),
            ("a.b".into(), None),
            ("a.b.c.d".into(), None),
            ("a.!!!.c".into(), None),
        ];
        for (token, expected) in cases {
            assert_eq!(jwt_expiry_ms(token), *expected, "{token}");
        }
    }
}
