//! [`Registry`]: the OCI distribution protocol for one reference, through the
//! `oci-client` crate, with the limits tokenhost needs on top of it.
//!
//! - HTTPS always, plain HTTP only to a loopback registry ([`OciReference::scheme`]).
//! - A deadline on every request (connect, each read, and the whole exchange), so a
//!   registry that stops answering is a failure, never a hang.
//! - The layer is streamed to a file and counted: a download that passes the cap is
//!   stopped there, whatever the manifest declared; its digest is computed on the way.
//! - Layer descriptors are passed by digest alone: a manifest's `urls` (foreign download
//!   locations) are never followed.
//! - Failures are sorted into [`Failure::Unreachable`] (the registry is down: a cached
//!   copy may be used) and [`Failure::Refused`] (it answered no), with one-line reasons
//!   that quote no header: credentials are sent as headers and never appear in them.

use std::time::Duration;

use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use super::OciReference;

/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a registry may go without sending anything mid-response.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The deadline for resolving a manifest (its token exchange included).
const MANIFEST_DEADLINE: Duration = Duration::from_secs(60);
/// The deadline for downloading a plugin layer (64 MiB at ~120 KB/s).
const BLOB_DEADLINE: Duration = Duration::from_secs(600);

/// The manifest media types accepted (the OCI image manifest; what `oras push` writes).
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No answer: connection refused, DNS, TLS, a deadline, a 5xx.
    Unreachable(String),
    /// An answer that says no: not found, unauthorized, a malformed reply.
    Refused(String),
    /// The download passed the cap; this many bytes had arrived.
    TooLarge(u64),
    /// The download was complete but its digest is this, not the one asked for.
    Digest(String),
    /// Writing the download failed.
    Io(std::io::Error),
}

/// One registry and repository, with the credentials to use there.
///
/// No `Debug`: it holds the credentials.
pub(crate) struct Registry {
    client: Client,
    auth: RegistryAuth,
    registry: String,
    repository: String,
}

impl Registry {
    /// A client for `reference`'s registry, with `auth` (anonymous if `None`).
    pub(crate) fn new(
        reference: &OciReference,
        auth: Option<(String, String)>,
    ) -> Result<Registry, Failure> {
        let protocol = match reference.scheme() {
            "http" => oci_client::client::ClientProtocol::HttpsExcept(vec![
                reference.registry().to_string(),
            ]),
            _ => oci_client::client::ClientProtocol::Https,
        };
        let config = oci_client::client::ClientConfig {
            protocol,
            platform_resolver: None,
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            user_agent: concat!("tokenhost/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let client = Client::try_from(config).map_err(|e| Failure::Refused(one_line(&e)))?;
        Ok(Registry {
            client,
            auth: match auth {
                Some((user, password)) => RegistryAuth::Basic(user, password),
                None => RegistryAuth::Anonymous,
            },
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
        })
    }

    /// The manifest that `tag_or_digest` names, and its digest as computed from the
    /// bytes received (`sha256:<hex>`).
    pub(crate) async fn manifest(&self, tag_or_digest: &str) -> Result<(Vec<u8>, String), Failure> {
        let reference = self.reference(tag_or_digest);
        let pull = self
            .client
            .pull_manifest_raw(&reference, &self.auth, &[MANIFEST_MEDIA_TYPE]);
        let (body, _) = tokio::time::timeout(MANIFEST_DEADLINE, pull)
            .await
            .map_err(|_| Failure::Unreachable(deadline(MANIFEST_DEADLINE)))?
            .map_err(classify)?;
        let digest = super::store::sha256_digest(&body);
        Ok((body, digest))
    }

    /// Streams the blob with `digest` into `out`, stopping past `max` bytes; returns the
    /// digest of what arrived, which the caller compares with `digest`.
    pub(crate) async fn download(
        &self,
        digest: &str,
        max: u64,
        out: &mut tokio::fs::File,
    ) -> Result<(), Failure> {
        tokio::time::timeout(BLOB_DEADLINE, self.stream_into(digest, max, out))
            .await
            .map_err(|_| Failure::Unreachable(deadline(BLOB_DEADLINE)))?
    }

    async fn stream_into(
        &self,
        digest: &str,
        max: u64,
        out: &mut tokio::fs::File,
    ) -> Result<(), Failure> {
        let reference = self.reference(digest);
        // Authenticate as pull_manifest does (a no-op for a registry that needs none).
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &self.auth)
            .await;
        let response = self
            .client
            .pull_blob_stream(&reference, digest)
            .await
            .map_err(classify)?;
        if let Some(length) = response.content_length.filter(|length| *length > max) {
            return Err(Failure::TooLarge(length));
        }
        let mut stream = response.stream;
        let mut hasher = sha2::Sha256::new();
        let mut received: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                // oci-client's own check fails the stream at its end when the digest
                // differs: say which digest arrived rather than its message.
                Err(_) if received > 0 && actual(&hasher) != digest => {
                    return Err(Failure::Digest(actual(&hasher)));
                }
                Err(e) => return Err(Failure::Unreachable(one_line(&e))),
            };
            received += chunk.len() as u64;
            if received > max {
                return Err(Failure::TooLarge(received));
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(Failure::Io)?;
        }
        out.flush().await.map_err(Failure::Io)?;
        match actual(&hasher) {
            received if received == digest => Ok(()),
            received => Err(Failure::Digest(received)),
        }
    }

    fn reference(&self, tag_or_digest: &str) -> Reference {
        let (registry, repository) = (self.registry.clone(), self.repository.clone());
        match tag_or_digest.starts_with("sha256:") {
            true => Reference::with_digest(registry, repository, tag_or_digest.to_string()),
            false => Reference::with_tag(registry, repository, tag_or_digest.to_string()),
        }
    }
}

fn actual(hasher: &sha2::Sha256) -> String {
    format!("sha256:{}", hex::encode(hasher.clone().finalize()))
}

fn deadline(limit: Duration) -> String {
    format!("no complete answer within {} s", limit.as_secs())
}

/// Sorts an `oci-client` error into down (a cached copy may stand in) or refused.
fn classify(error: OciDistributionError) -> Failure {
    use OciDistributionError as E;
    match &error {
        E::RequestError(e) => match e.status() {
            Some(status) if !status.is_server_error() => Failure::Refused(one_line(&error)),
            _ => Failure::Unreachable(request_reason(e)),
        },
        E::ServerError { code, .. } if *code >= 500 => Failure::Unreachable(one_line(&error)),
        E::IoError(_) => Failure::Unreachable(one_line(&error)),
        _ => Failure::Refused(one_line(&error)),
    }
}

/// A transport failure in a few words: reqwest's message names the URL and nests the
/// cause (refused, timed out, certificate) a level or two down.
fn request_reason(error: &reqwest::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    one_line(&reason)
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    crate::text::one_line(&error.to_string(), 300)
}
