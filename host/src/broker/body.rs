//! Reading a request's JSON body within the broker's [`Limits`], and the answers for a
//! body that will not do.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use super::limits::Limits;
use super::protocol::ErrorKind;

/// Why a request body was not read.
pub(super) enum BodyError {
    /// Malformed, or the connection broke: the message says which.
    Bad(String),
    /// Longer than [`Limits::max_request_body`].
    TooLarge,
    /// Not in within [`Limits::body_read_timeout`].
    TooSlow,
}

impl BodyError {
    /// The answer to a request whose body was not read.
    pub(super) fn reply(self, limits: Limits) -> Response<Full<Bytes>> {
        match self {
            BodyError::Bad(message) => super::server::error(ErrorKind::BadRequest, message),
            BodyError::TooLarge => too_large(limits),
            BodyError::TooSlow => {
                let message = format!(
                    "the request body did not arrive within {} ms",
                    limits.body_read_timeout.as_millis()
                );
                super::server::error_status(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorKind::BadRequest,
                    message,
                )
            }
        }
    }
}

/// Reads the request body as `T` (`shape` says what it should look like), within `limits`.
pub(super) async fn read_json<T: DeserializeOwned>(
    request: Request<Incoming>,
    limits: Limits,
    shape: &str,
) -> Result<T, BodyError> {
    let read = Limited::new(request.into_body(), limits.max_request_body).collect();
    let body = match tokio::time::timeout(limits.body_read_timeout, read).await {
        Err(_) => return Err(BodyError::TooSlow),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(BodyError::TooLarge);
        }
        Ok(Err(e)) => {
            return Err(BodyError::Bad(format!("cannot read the request body: {e}")));
        }
        Ok(Ok(body)) => body.to_bytes(),
    };
    serde_json::from_slice(&body)
        .map_err(|e| BodyError::Bad(format!("the body must be {shape}: {e}")))
}

/// 413: the body is over [`Limits::max_request_body`]. hyper closes the connection after
/// answering, as the body was not read.
pub(super) fn too_large(limits: Limits) -> Response<Full<Bytes>> {
    let message = format!(
        "the request body is larger than {} bytes",
        limits.max_request_body
    );
    super::server::error_status(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::BadRequest,
        message,
    )
}
