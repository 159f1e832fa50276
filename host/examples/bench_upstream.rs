//! A tiny loopback API for `scripts/bench-proxy`: HTTP/1.1 keep-alive on 127.0.0.1, a
//! small JSON body for every request, nothing else. It exists so that the benchmark
//! measures the proxy hop and not an upstream's own work.
//!
//! Usage: `bench_upstream [PORT]` (0 or nothing: a free port); prints
//! `listening on 127.0.0.1:PORT` on stdout, then serves until killed.

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const BODY: &[u8] = br#"{"object":"list","data":[{"id":"bench-model","object":"model"}]}"#;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // One thread: the upstream should take as little of the machine as it can.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_request| async {
                    let response = hyper::Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(BODY)));
                    Ok::<_, Infallible>(response.unwrap_or_default())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
