//! [`BlockingClient`]: a connection to a broker without an async runtime.
//!
//! `tokenhost token` is run over and over by credential-command clients (Codex, kubectl):
//! its whole life is one broker round trip, so starting a runtime and an HTTP stack costs
//! more than the request. This client speaks the same protocol as
//! [`BrokerClient`](super::BrokerClient) (the same [`TokenCall`]s, the same checks of the
//! socket, the peer and the answer) on a blocking socket, with just enough HTTP/1.1 for
//! the broker's answers: a status line, headers, a `Content-Length` body.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::client::{MAX_RESPONSE, TokenCall, decode, token_of};
use super::protocol::TokenBody;
use super::{BrokerError, REQUEST_TIMEOUT, transport};
use crate::token::Token;

/// The largest answer head (status line and headers) accepted.
const MAX_HEAD: usize = 8 * 1024;

/// A blocking connection to a broker (Unix). Requests on one client are sequential.
pub struct BlockingClient {
    stream: BufReader<UnixStream>,
    timeout: Duration,
}

impl BlockingClient {
    /// Connects to the broker at `socket` with the checks of
    /// [`BrokerClient::try_connect`](super::BrokerClient::try_connect): a socket in a
    /// directory private to this user, served by a process of this user.
    /// [`BrokerError::NotRunning`] when there is no socket file or nobody listens.
    pub fn connect(socket: &Path) -> Result<BlockingClient, BrokerError> {
        let stream = transport::connect_blocking(socket)?;
        Ok(BlockingClient {
            stream: BufReader::new(stream),
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// Waits at most `timeout` for each answer (default [`REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// One token request for `provider`; the answer is checked as
    /// [`BrokerClient::send`](super::BrokerClient::send) checks it.
    pub fn send(&mut self, provider: &str, call: TokenCall) -> Result<Token, BrokerError> {
        let (method, path, body) = call.request(provider);
        let deadline = Instant::now() + self.timeout;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: tokenhost-broker\r\ncontent-type: \
             application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let waited = self.timeout;
        let transport = |what: &str, e: std::io::Error| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                BrokerError::Transport(format!("no answer within {waited:?}"))
            }
            _ => BrokerError::Transport(format!("{what}: {e}")),
        };
        let stream = self.stream.get_mut();
        stream
            .set_write_timeout(Some(self.timeout))
            .and_then(|()| stream.write_all(&[head.as_bytes(), &body].concat()))
            .map_err(|e| transport("the request failed", e))?;
        let (status, answer) = self
            .read_answer(deadline)
            .map_err(|e| transport("cannot read the answer", e))?;
        let body: TokenBody = decode(status, &answer, &path)?;
        token_of(body)
    }

    /// Reads one answer: its status and its body.
    fn read_answer(&mut self, deadline: Instant) -> std::io::Result<(u16, Vec<u8>)> {
        let mut status = None;
        let mut length = None;
        let mut head = 0;
        loop {
            let line = self.read_line(deadline, &mut head)?;
            if line.is_empty() {
                break;
            }
            match status {
                None => status = Some(parse_status(&line)?),
                Some(_) => {
                    if let Some((name, value)) = line.split_once(':') {
                        match name.trim().to_ascii_lowercase().as_str() {
                            "content-length" => length = Some(parse_length(value)?),
                            "transfer-encoding" => return Err(invalid("a chunked answer")),
                            _ => {}
                        }
                    }
                }
            }
        }
        let (Some(status), Some(length)) = (status, length) else {
            return Err(invalid("an answer without a status or a content-length"));
        };
        let mut body = vec![0; length];
        let mut read = 0;
        while read < length {
            self.wait_until(deadline)?;
            match self.stream.read(&mut body[read..])? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => read += n,
            }
        }
        Ok((status, body))
    }

    /// One line of the head, without its line end; `head` counts the head's bytes.
    fn read_line(&mut self, deadline: Instant, head: &mut usize) -> std::io::Result<String> {
        let mut line = Vec::new();
        while !line.ends_with(b"\n") {
            self.wait_until(deadline)?;
            let limit = (MAX_HEAD - *head) as u64;
            let read = (&mut self.stream)
                .take(limit)
                .read_until(b'\n', &mut line)?;
            *head += read;
            match read {
                0 if *head >= MAX_HEAD => return Err(invalid("an answer head over 8 KiB")),
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                _ => {}
            }
        }
        let text = String::from_utf8(line).map_err(|_| invalid("an answer head not in UTF-8"))?;
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Lets the next read wait until `deadline` at most (a read from what is buffered
    /// already does not wait, and needs no new timeout).
    fn wait_until(&self, deadline: Instant) -> std::io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        match self.stream.buffer().is_empty() {
            true => self.stream.get_ref().set_read_timeout(Some(left)),
            false => Ok(()),
        }
    }
}

/// The status code of an HTTP/1.1 status line.
fn parse_status(line: &str) -> std::io::Result<u16> {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some("HTTP/1.1" | "HTTP/1.0"), Some(Ok(code))) => Ok(code),
        _ => Err(invalid("an answer that is not HTTP/1.1")),
    }
}

/// A `Content-Length` within [`MAX_RESPONSE`].
fn parse_length(value: &str) -> std::io::Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(length) if length <= MAX_RESPONSE => Ok(length),
        Ok(_) => Err(invalid("an answer over 1 MiB")),
        Err(_) => Err(invalid("a malformed content-length")),
    }
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

#[cfg(test)]
#[path = "blocking_tests.rs"]
mod tests;
