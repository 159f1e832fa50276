//! kubectl's exec credential plugins: `tokenhost token <id> --format exec-credential`
//! prints a `client.authentication.k8s.io` ExecCredential.
//!
//! client-go runs the plugin once per process and caches the credential until
//! `status.expirationTimestamp`, so the timestamp we print is when tokenhost itself would
//! stop reusing the token (before its expiry by the refresh margin, or after the
//! provider's `refresh_interval_ms`), not the expiry: kubectl then asks again in time.
//! The `apiVersion` is the one kubectl asks for in `KUBERNETES_EXEC_INFO` (`v1` or
//! `v1beta1`), else `v1`.

pub use crate::manager::expiry::reuse_until_ms;

/// The apiVersions kubectl may ask for that we can answer.
pub const API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// Why the ExecCredential cannot be printed. Never quotes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecCredentialError {
    /// `KUBERNETES_EXEC_INFO` is not JSON with a string `apiVersion`.
    #[error("KUBERNETES_EXEC_INFO is not an ExecCredential with an apiVersion")]
    BadExecInfo,
    /// kubectl asked for an apiVersion we do not speak.
    #[error(
        "kubectl asked for apiVersion {0}; tokenhost speaks client.authentication.k8s.io/v1 \
         and v1beta1 (set apiVersion in the kubeconfig's exec section)"
    )]
    UnsupportedVersion(String),
}

/// The apiVersion to answer, from `KUBERNETES_EXEC_INFO` (if kubectl set it).
pub fn api_version(exec_info: Option<&str>) -> Result<&'static str, ExecCredentialError> {
    let Some(info) = exec_info.filter(|s| !s.trim().is_empty()) else {
        return Ok(API_VERSIONS[0]);
    };
    let value: serde_json::Value =
        serde_json::from_str(info).map_err(|_| ExecCredentialError::BadExecInfo)?;
    let asked = value
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .ok_or(ExecCredentialError::BadExecInfo)?;
    API_VERSIONS
        .into_iter()
        .find(|v| *v == asked)
        .ok_or_else(|| ExecCredentialError::UnsupportedVersion(crate::text::escaped(asked)))
}

/// The ExecCredential JSON for `token`, reusable until `reuse_until_ms`.
pub fn exec_credential(api_version: &str, token: &str, reuse_until_ms: Option<u64>) -> String {
    let mut status = serde_json::json!({ "token": token });
    if let Some(ms) = reuse_until_ms
        && let Some(when) = rfc3339(ms)
    {
        status["expirationTimestamp"] = serde_json::Value::String(when);
    }
    serde_json::json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": status,
    })
    .to_string()
}

fn rfc3339(ms: u64) -> Option<String> {
    let seconds = i64::try_from(ms / 1000).ok()?;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_version_is_what_kubectl_asks_for() {
        assert_eq!(api_version(None).unwrap(), API_VERSIONS[0]);
        assert_eq!(api_version(Some("")).unwrap(), API_VERSIONS[0]);
        let beta = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#;
        assert_eq!(api_version(Some(beta)).unwrap(), API_VERSIONS[1]);
        assert_eq!(
            api_version(Some("not json")).unwrap_err(),
            ExecCredentialError::BadExecInfo
        );
        assert_eq!(
            api_version(Some("{}")).unwrap_err(),
            ExecCredentialError::BadExecInfo
        );
        let alpha = r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1\u001b[2J"}"#;
        let err = api_version(Some(alpha)).unwrap_err().to_string();
        assert!(err.contains("v1alpha1\\u{1b}[2J"), "escaped: {err}");
    }

    #[test]
    fn reuse_ends_before_expiry_or_after_the_interval() {
        use std::time::Duration;
        let now = 1_000_000_000;
        let hour = Duration::from_secs(3600);
        // An hour left: the margin is 60 s.
        assert_eq!(
            reuse_until_ms(now, Some(now + 3_600_000), None),
            Some(now + 3_540_000)
        );
        // Ten minutes left, a five-minute interval: the interval ends first.
        assert_eq!(
            reuse_until_ms(now, Some(now + 600_000), Some(Duration::from_secs(300))),
            Some(now + 300_000)
        );
        assert_eq!(reuse_until_ms(now, None, Some(hour)), Some(now + 3_600_000));
        assert_eq!(reuse_until_ms(now, None, Some(Duration::ZERO)), None);
        assert_eq!(reuse_until_ms(now, None, None), None);
    }

    #[test]
    fn prints_an_exec_credential() {
        let text = exec_credential(API_VERSIONS[0], "tok", Some(1_767_225_600_500));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["kind"], "ExecCredential");
        assert_eq!(value["apiVersion"], API_VERSIONS[0]);
        assert_eq!(value["status"]["token"], "tok");
        assert_eq!(
            value["status"]["expirationTimestamp"],
            "2026-01-01T00:00:00Z"
        );
        let forever: serde_json::Value =
            serde_json::from_str(&exec_credential(API_VERSIONS[1], "tok", None)).unwrap();
        assert!(forever["status"].get("expirationTimestamp").is_none());
    }
}
