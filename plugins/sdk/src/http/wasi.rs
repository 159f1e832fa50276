//! [`send`] over wasi:http: the only code that touches `wasi:http/outgoing-handler`.

use super::{HttpError, MAX_RESPONSE_BYTES, Method, Request, Response};
use crate::url::Scheme;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, HeaderError, IncomingBody, IncomingResponse, Method as WasiMethod,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme as WasiScheme,
};
use wasip2::io::streams::StreamError;

/// `blocking-write-and-flush` takes at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per `blocking-read`.
const READ_CHUNK: u64 = 64 * 1024;

pub(super) fn send(request: &Request) -> Result<Response, HttpError> {
    let mut entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    if request.method == Method::Post || !request.body.is_empty() {
        entries.push((
            "content-length".to_string(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let headers = Fields::from_list(&entries).map_err(|e| {
        HttpError::InvalidRequest(match e {
            HeaderError::Forbidden => "a header is forbidden by the host".to_string(),
            HeaderError::InvalidSyntax => "a header name or value is invalid".to_string(),
            HeaderError::Immutable => "the headers are immutable".to_string(),
        })
    })?;
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
    };
    let scheme = match request.url.scheme {
        Scheme::Http => WasiScheme::Http,
        Scheme::Https => WasiScheme::Https,
    };
    outgoing
        .set_method(&method)
        .map_err(|()| HttpError::InvalidRequest("invalid method".to_string()))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| HttpError::InvalidRequest("invalid scheme".to_string()))?;
    outgoing
        .set_authority(Some(&request.url.authority))
        .map_err(|()| HttpError::InvalidRequest("invalid host".to_string()))?;
    outgoing
        .set_path_with_query(Some(&request.url.path_and_query))
        .map_err(|()| HttpError::InvalidRequest("invalid path".to_string()))?;
    let body = outgoing
        .body()
        .map_err(|()| HttpError::InvalidRequest("request body unavailable".to_string()))?;

    let options = RequestOptions::new();
    let timeout_ns = request.timeout_ms.saturating_mul(1_000_000);
    // A host may not support a timeout; then it keeps its own.
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));

    let future = outgoing_handler::handle(outgoing, Some(options)).map_err(from_code)?;

    // Write the body while the host sends; a failure here usually means the request
    // already failed, which the response future reports better.
    let written = write_body(&body, &request.body);
    let finished = OutgoingBody::finish(body, None);

    let response = {
        let pollable = future.subscribe();
        pollable.block();
        match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(from_code(code)),
            Some(Err(())) | None => {
                return Err(HttpError::Network("no response from the host".to_string()));
            }
        }
    };
    written?;
    finished.map_err(from_code)?;
    read_response(response)
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| HttpError::InvalidRequest("request body stream unavailable".to_string()))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(from_stream)?;
    }
    Ok(())
}

fn read_response(response: IncomingResponse) -> Result<Response, HttpError> {
    let status = response.status();
    let headers = response.headers().entries();
    let declared = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(HttpError::TooLarge);
    }
    let incoming = response
        .consume()
        .map_err(|()| HttpError::Network("response body unavailable".to_string()))?;
    let body = read_body(&incoming);
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body: body?,
    })
}

fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, HttpError> {
    let stream = incoming
        .stream()
        .map_err(|()| HttpError::Network("response body stream unavailable".to_string()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(e) => return Err(from_stream(e)),
        }
    }
}

fn from_stream(e: StreamError) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Network("the connection closed early".to_string()),
        StreamError::LastOperationFailed(err) => match wasip2::http::types::http_error_code(&err) {
            Some(code) => from_code(code),
            None => HttpError::Network(err.to_debug_string()),
        },
    }
}

/// A readable description of a wasi:http error code.
fn from_code(code: ErrorCode) -> HttpError {
    let net = |s: &str| HttpError::Network(s.to_string());
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied,
        ErrorCode::DestinationIpProhibited => HttpError::DestinationProhibited,
        ErrorCode::DnsTimeout => HttpError::Timeout("DNS lookup".to_string()),
        ErrorCode::ConnectionTimeout => HttpError::Timeout("connect".to_string()),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            HttpError::Timeout("waiting for the response".to_string())
        }
        ErrorCode::ConnectionWriteTimeout => HttpError::Timeout("sending the request".to_string()),
        ErrorCode::DnsError(p) => HttpError::Network(format!(
            "DNS lookup failed{}",
            p.rcode.map(|r| format!(" ({r})")).unwrap_or_default()
        )),
        ErrorCode::DestinationNotFound => net("destination not found"),
        ErrorCode::DestinationUnavailable => net("destination unavailable"),
        ErrorCode::DestinationIpUnroutable => net("destination address unroutable"),
        ErrorCode::ConnectionRefused => net("connection refused"),
        ErrorCode::ConnectionTerminated => net("connection terminated"),
        ErrorCode::ConnectionLimitReached => net("connection limit reached"),
        ErrorCode::TlsProtocolError => net("TLS protocol error"),
        ErrorCode::TlsCertificateError => net("TLS certificate error"),
        ErrorCode::TlsAlertReceived(p) => HttpError::Network(format!(
            "TLS alert received{}",
            p.alert_message
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
        ErrorCode::HttpResponseBodySize(_) => HttpError::TooLarge,
        ErrorCode::HttpResponseIncomplete => net("incomplete HTTP response"),
        ErrorCode::HttpProtocolError => net("HTTP protocol error"),
        ErrorCode::InternalError(Some(m)) => HttpError::Network(format!("host error: {m}")),
        ErrorCode::InternalError(None) => net("host error"),
        ErrorCode::ConfigurationError => net("the host's HTTP settings are unusable (a proxy?)"),
        other => HttpError::Network(format!("{other:?}")),
    }
}
