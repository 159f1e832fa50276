//! TLS test fixtures: certificates made with openssl, and a CONNECT proxy on loopback.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A private CA: its certificate (what `SSL_CERT_FILE` names to trust it) and key.
pub struct TestCa {
    /// The CA's certificate, PEM.
    pub cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A new CA in `dir` (P-256, valid for a day), made with openssl.
    pub fn new(dir: &Path) -> TestCa {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend(["-days", "1", "-subj", "/CN=tokenhost test CA"]);
        args.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&args, dir);
        TestCa {
            cert: dir.join("ca.pem"),
            key: dir.join("ca.key"),
            dir: dir.to_path_buf(),
        }
    }

    /// A server certificate for `san` (`IP:127.0.0.1`, `DNS:idp.example.test`) signed
    /// by this CA, and its key: `<name>.pem`, `<name>.key`.
    pub fn issue(&self, name: &str, san: &str) -> (PathBuf, PathBuf) {
        let (cert, key, csr, ext) = (
            format!("{name}.pem"),
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.ext"),
        );
        let mut args = vec!["req", "-new", "-newkey", "ec"];
        args.extend(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]);
        args.extend([
            "-subj",
            "/CN=tokenhost test server",
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        openssl(&args, &self.dir);
        std::fs::write(
            self.dir.join(&ext),
            format!("basicConstraints=critical,CA:FALSE\nsubjectAltName={san}\n"),
        )
        .unwrap();
        let (ca, ca_key) = (
            self.cert.display().to_string(),
            self.key.display().to_string(),
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
            &self.dir,
        );
        (self.dir.join(cert), self.dir.join(key))
    }
}

/// An HTTP proxy on 127.0.0.1 that answers `CONNECT` by tunnelling to `upstream`,
/// whatever host was asked for, and records each request line.
pub struct ConnectProxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    /// Starts the proxy on the current tokio runtime.
    pub async fn start(upstream: SocketAddr) -> ConnectProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                        if client.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or("").to_string();
                    recorded.lock().unwrap().push(line.clone());
                    if !line.starts_with("CONNECT ") {
                        let _ = client
                            .write_all(
                                b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n",
                            )
                            .await;
                        return;
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    if client
                        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                        .await
                        .is_ok()
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        ConnectProxy { addr, seen }
    }

    /// The request lines received so far (`CONNECT host:port HTTP/1.1`).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
