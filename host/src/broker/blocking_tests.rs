//! [`BlockingClient`] against a real broker (the same answers as the async client), and
//! against a raw socket that answers what a broker never would: each is a typed error
//! within the deadline, never a panic or a hang, and never quotes the token.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::broker::{Broker, ErrorKind};
use crate::clients::ClientAsk;
use crate::source::counting::Counting;
use crate::sys::ProcessIdentity;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_gets_what_the_async_client_gets_from_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::Config::parse("", &dir.path().join("config.toml")).unwrap();
    let source = Arc::new(Counting::new("tok-"));
    let manager = crate::AuthManager::builder()
        .provider("corp", None, source.clone())
        .build();
    let socket = dir.path().join("run/broker.sock");
    let broker = Broker::bind(config, Arc::new(manager), &socket)
        .await
        .unwrap();
    let serving = tokio::spawn(broker.serve_until(std::future::pending()));
    let blocking_socket = socket.clone();
    let answers = tokio::task::spawn_blocking(move || {
        let mut client = BlockingClient::connect(&blocking_socket).unwrap();
        let first = client.send("corp", TokenCall::Token).unwrap();
        let ask = ClientAsk {
            caller: ProcessIdentity {
                pid: 4242,
                started: 1,
            },
            reuse_ms: Some(60_000),
        };
        // One connection serves several requests.
        let asked = client.send("corp", TokenCall::Ask(ask)).unwrap();
        let replaced = client
            .send("corp", TokenCall::Unauthorized(first.fingerprint()))
            .unwrap();
        let unknown = client.send("nope", TokenCall::Token).unwrap_err();
        (first, asked, replaced, unknown)
    })
    .await
    .unwrap();
    let (first, asked, replaced, unknown) = answers;
    assert_eq!(first.expose(), "tok-1");
    assert_eq!(asked.expose(), "tok-1");
    assert_eq!(replaced.expose(), "tok-2");
    assert!(
        matches!(
            unknown,
            BrokerError::Remote {
                kind: ErrorKind::UnknownProvider,
                status: 404,
                ..
            }
        ),
        "{unknown:?}"
    );
    let mut async_client = crate::broker::BrokerClient::try_connect(&socket)
        .await
        .unwrap();
    assert!(
        async_client
            .token("corp")
            .await
            .unwrap()
            .same_value(&replaced)
    );
    assert_eq!(source.calls(), 2);
    serving.abort();
}

/// A socket in a private directory whose server answers every request with `answer`
/// (after reading the request head), then keeps the connection open until `linger`.
fn raw_server(answer: &'static [u8], linger: Duration) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("broker.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = stream.write_all(answer);
        std::thread::sleep(linger);
    });
    (dir, socket)
}

fn failure(answer: &'static [u8]) -> String {
    let (_dir, socket) = raw_server(answer, Duration::from_secs(5));
    let mut client = BlockingClient::connect(&socket)
        .unwrap()
        .with_request_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let error = client.send("corp", TokenCall::Token).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "it waited too long"
    );
    assert!(!error.is_answer() || answer.starts_with(b"HTTP/1.1 502"));
    error.to_string()
}

#[test]
fn answers_that_are_not_the_protocol_are_typed_errors_within_the_deadline() {
    let cases: [(&[u8], &str); 9] = [
        (b"", "no answer within 300ms"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP/1.1"),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "chunked",
        ),
        (
            b"HTTP/1.1 200 OK\r\n\r\n{}",
            "without a status or a content-length",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2000000\r\n\r\n",
            "over 1 MiB",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"tok",
            "no answer within 300ms",
        ),
        (b"HTTP/1.1 200 OK\r\n", "no answer within 300ms"),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
            "not the protocol",
        ),
        (
            b"HTTP/1.1 500 Oops\r\ncontent-length: 4\r\n\r\nnope",
            "HTTP 500",
        ),
    ];
    for (answer, expected) in cases {
        let error = failure(answer);
        assert!(
            error.contains(expected),
            "{:?}: {error}",
            String::from_utf8_lossy(answer)
        );
    }
    let huge_head: &'static [u8] = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(9000))
        .into_bytes()
        .leak();
    assert!(failure(huge_head).contains("head over 8 KiB"));
    // A broker that hangs up without a word.
    let (_dir, socket) = raw_server(b"", Duration::ZERO);
    let error = BlockingClient::connect(&socket)
        .unwrap()
        .send("corp", TokenCall::Token)
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot read the answer"), "{error}");
}

#[test]
fn a_token_that_does_not_match_its_fingerprint_is_refused_without_being_quoted() {
    let body = r#"{"token":"secret-value-1","expires_at_ms":null,"fingerprint":"sha256:00000000"}"#;
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer: &'static [u8] = answer.into_bytes().leak();
    let error = failure(answer);
    assert!(error.contains("does not match its fingerprint"), "{error}");
    assert!(!error.contains("secret-value-1"), "{error}");
}

#[test]
fn a_source_failure_is_the_brokers_answer() {
    let answer = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 38\r\n\r\n{\"error\":\"it broke\",\"kind\":\"denied\"}  ";
    let (_dir, socket) = raw_server(answer, Duration::from_secs(1));
    let error = BlockingClient::connect(&socket)
        .unwrap()
        .send("corp", TokenCall::Token)
        .unwrap_err();
    assert!(
        matches!(&error, BrokerError::Remote { kind: ErrorKind::Denied, status: 502, message } if message == "it broke"),
        "{error:?}"
    );
}

#[test]
fn a_socket_that_is_missing_or_not_private_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let missing = BlockingClient::connect(&dir.path().join("none.sock"))
        .err()
        .unwrap();
    assert!(
        matches!(missing, BrokerError::NotRunning { .. }),
        "{missing:?}"
    );
    let (served, socket) = raw_server(b"", Duration::from_secs(1));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(served.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let open = BlockingClient::connect(&socket).err().unwrap();
    assert!(matches!(open, BrokerError::PrivateDir(_)), "{open:?}");
}
