//! Unit tests of the broker's pure parts, and of its limits against a real broker on a
//! temp socket spoken to with raw streams (slowloris, huge bodies, full slots); the
//! server and client are tested end to end in `tests/broker.rs` with real processes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::*;
use crate::source::{RefreshReason, TokenSource};
use crate::{SourceError, Token};

#[test]
fn only_the_same_user_is_allowed() {
    assert!(peer_allowed(1000, 1000));
    assert!(peer_allowed(0, 0));
    assert!(!peer_allowed(1000, 1001));
    assert!(!peer_allowed(1000, 0), "root gets no exception");
    assert!(!peer_allowed(0, 1000));
}

#[test]
fn provider_ids_survive_the_url_path() {
    for id in ["corp", "a b/c?d#e%f", "ünïcode", "-._~", ""] {
        let encoded = encode_segment(id);
        assert!(!encoded.contains(['/', ' ', '?', '#']), "{encoded}");
        assert_eq!(decode_segment(&encoded).as_deref(), Some(id));
    }
    for bad in ["%", "%4", "%zz", "%+1", "%ff"] {
        assert_eq!(decode_segment(bad), None, "{bad}");
    }
}

#[test]
fn each_config_gets_its_own_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    let run = dir.path().join("run");
    let socket = socket_path_in(&run, &a);
    assert_ne!(socket, socket_path_in(&run, &b));
    // Every spelling of one file (relative parts, symlinks) meets the same broker.
    std::fs::create_dir(dir.path().join("x")).unwrap();
    assert_eq!(
        socket,
        socket_path_in(&run, &dir.path().join("x/../a.toml"))
    );
    std::os::unix::fs::symlink(&a, dir.path().join("link.toml")).unwrap();
    assert_eq!(socket, socket_path_in(&run, &dir.path().join("link.toml")));
    let name = socket.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("broker-") && name.ends_with(".sock"),
        "{name}"
    );
    assert_eq!(name.len(), "broker-.sock".len() + 16);
}

#[test]
fn the_socket_dir_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("cache/tokenhost/run");
    prepare_private_dir(&run).unwrap();
    let mode = std::fs::metadata(&run).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = prepare_private_dir(&run).unwrap_err().to_string();
    assert!(err.contains("writable by others (mode 777)"), "{err}");
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(check_private_dir(&file).is_err());
}

#[test]
fn error_kinds_are_snake_case_on_the_wire() {
    let json = serde_json::to_string(&ErrorKind::UnknownProvider).unwrap();
    assert_eq!(json, "\"unknown_provider\"");
    let kind: ErrorKind = serde_json::from_str("\"bad_output\"").unwrap();
    assert_eq!((kind, kind.status()), (ErrorKind::BadOutput, 502));
    let kind: ErrorKind = serde_json::from_str("\"from_the_future\"").unwrap();
    assert_eq!(kind, ErrorKind::Other);
}

/// A source that answers only once its gate opens (to keep requests in flight).
struct Gated(tokio::sync::Semaphore);

#[async_trait]
impl TokenSource for Gated {
    async fn resolve(&self) -> Result<Token, SourceError> {
        let _open = self.0.acquire().await;
        Ok(Token::new("gated-token", None).unwrap())
    }

    async fn refresh(&self, _: RefreshReason) -> Result<Token, SourceError> {
        self.resolve().await
    }
}

/// A broker on a temp socket, serving provider `gated` until dropped.
struct Served {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    gate: Arc<Gated>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(limits: Limits) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::Config::parse("", &dir.path().join("config.toml")).unwrap();
    let gate = Arc::new(Gated(tokio::sync::Semaphore::new(0)));
    let manager = crate::AuthManager::builder()
        .provider("gated", None, gate.clone())
        .build();
    let socket = dir.path().join("run/broker.sock");
    let broker = Broker::bind(config, Arc::new(manager), &socket)
        .await
        .unwrap()
        .with_limits(limits);
    let task = tokio::spawn(broker.serve_until(std::future::pending()));
    Served {
        _dir: dir,
        socket,
        gate,
        task,
    }
}

/// A raw connection that has sent `text` (unless the broker closed it first).
async fn send(socket: &Path, text: &str) -> UnixStream {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    let _ = stream.write_all(text.as_bytes()).await;
    stream
}

/// What the broker sent until it closed the connection, or `None` if it is still open
/// after `within`.
async fn until_closed(stream: &mut UnixStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut received)).await {
        Err(_) => None,
        // A reset (the broker closed with our bytes unread) is a close too.
        Ok(_) => Some(String::from_utf8_lossy(&received).into_owned()),
    }
}

const HEALTH: &str = "GET /v1/health HTTP/1.1\r\nHost: broker\r\n\r\n";

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_connections_are_closed_after_the_header_timeout() {
    let broker = serve(limits()).await;
    let started = Instant::now();
    let mut silent = send(&broker.socket, "").await;
    // A head that never ends, one header line every 50 ms.
    let mut trickle = send(&broker.socket, "GET /v1/health HTTP/1.1\r\n").await;
    let (mut reader, mut writer) = trickle.split();
    let dripping = async {
        while writer.write_all(b"X-Slow: 1\r\n").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut dripped = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        tokio::join!(dripping, reader.read_to_end(&mut dripped))
    });
    assert!(closed.await.is_ok(), "the slowloris connection stayed open");
    let trickle_closed = started.elapsed();
    let silent_text = until_closed(&mut silent, Duration::from_secs(3)).await;
    assert!(silent_text.is_some(), "the silent connection stayed open");
    assert!(!String::from_utf8_lossy(&dripped).contains("200 OK"));
    assert!(
        trickle_closed >= Duration::from_millis(250) && trickle_closed < Duration::from_secs(2),
        "{trickle_closed:?}"
    );

    // Keep-alive: answered, then closed when no next request comes.
    let mut idle = send(&broker.socket, HEALTH).await;
    let text = until_closed(&mut idle, Duration::from_secs(3)).await;
    let text = text.expect("the idle keep-alive connection stayed open");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_refused_with_413_before_it_is_read() {
    let broker = serve(Limits::default()).await;
    for path in ["/v1/token/gated/unauthorized", "/v1/health"] {
        let started = Instant::now();
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: broker\r\nContent-Length: 1000000000\r\n\r\n");
        let mut stream = send(&broker.socket, &head).await;
        let text = until_closed(&mut stream, Duration::from_secs(2)).await;
        let text = text.unwrap_or_else(|| panic!("{path}: no answer to a 1 GB Content-Length"));
        assert!(text.starts_with("HTTP/1.1 413 "), "{path}: {text}");
        assert!(text.contains("larger than 8192 bytes"), "{path}: {text}");
        assert!(started.elapsed() < Duration::from_secs(1), "{path}");
    }
    // Chunked: cut off at the limit.
    let chunk = "x".repeat(9000);
    let request = format!(
        "POST /v1/token/gated/unauthorized HTTP/1.1\r\nHost: broker\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n",
        chunk.len()
    );
    let mut stream = send(&broker.socket, &request).await;
    let text = until_closed(&mut stream, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_is_408_after_the_deadline() {
    let broker = serve(limits()).await;
    let started = Instant::now();
    let head = "POST /v1/token/gated/unauthorized HTTP/1.1\r\nHost: broker\r\n\
                Content-Length: 80\r\n\r\n{\"fingerprint\"";
    let mut stream = send(&broker.socket, head).await;
    let text = until_closed(&mut stream, Duration::from_secs(3)).await;
    let text = text.expect("a body that never ends was waited for");
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("did not arrive within 300 ms"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_while_slow_connections_hold_every_slot() {
    // Timeouts far away: only the slot rule can make room.
    let broker = serve(Limits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..24 {
        slow.push(send(&broker.socket, "GET /v1/health HTTP/1.1\r\n").await);
        // Accepted in order, so the oldest is the one idle longest.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let mut client = BrokerClient::try_connect(&broker.socket)
        .await
        .unwrap()
        .with_request_timeout(Duration::from_secs(2));
    let health = client
        .health()
        .await
        .expect("health while the slots are held");
    assert_eq!(health.status, "ok");
    assert!(started.elapsed() < Duration::from_secs(1));
    // 25 connections for 8 slots: the 17 oldest were closed, the newest are open.
    let mut closed = Vec::new();
    for (index, stream) in slow.iter_mut().enumerate() {
        if until_closed(stream, Duration::from_millis(200))
            .await
            .is_some()
        {
            closed.push(index);
        }
    }
    assert_eq!(closed, (0..17).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_slot_is_serving_a_new_connection_is_closed_at_once() {
    let broker = serve(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let token = "GET /v1/token/gated HTTP/1.1\r\nHost: broker\r\n\r\n";
    let mut waiting = [
        send(&broker.socket, token).await,
        send(&broker.socket, token).await,
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = send(&broker.socket, HEALTH).await;
    let text = until_closed(&mut third, Duration::from_secs(1)).await;
    assert_eq!(text.as_deref(), Some(""), "closed without an answer");
    broker.gate.0.add_permits(1);
    for stream in &mut waiting {
        let mut answer = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    }
    // Idle again: a new connection takes an idle one's slot.
    let mut client = BrokerClient::try_connect(&broker.socket).await.unwrap();
    assert_eq!(client.health().await.unwrap().status, "ok");
}
