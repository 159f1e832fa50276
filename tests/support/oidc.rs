//! A real OpenID provider on 127.0.0.1: npm `oidc-provider` (pinned in tests/idp, installed
//! by scripts/install-idp), configured by tests/idp/server.mjs. For the tests that need a
//! server nobody here wrote: its client authentication, its replay detection, its errors.
//!
//! Keys for `private_key_jwt` clients are made per test with openssl; the server gets only
//! the public halves.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

/// How long the server may take to start (node loading oidc-provider: ~0.5 s here).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs scripts/install-idp once per test binary (it does nothing when its stamp says
/// tests/idp/node_modules is current).
fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let output = Command::new(super::root().join("scripts/install-idp"))
            .output()
            .map_err(|e| format!("cannot run scripts/install-idp: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/install-idp failed (node and npm are needed; .ci/run installs them):\n{}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A client of the provider (see tests/idp/server.mjs for the fields).
pub fn secret_client(id: &str, secret: &str) -> Value {
    json!({"client_id": id, "auth": "client_secret_basic", "client_secret": secret})
}

/// A `private_key_jwt` client whose jwks holds the public key in `public_key` (PEM).
pub fn key_client(id: &str, alg: &str, public_key: &Path, kid: Option<&str>) -> Value {
    let mut client = json!({"client_id": id, "auth": "private_key_jwt", "alg": alg,
        "public_key_file": public_key});
    if let Some(kid) = kid {
        client["kid"] = kid.into();
    }
    client
}

/// A running provider. Stops when dropped.
pub struct OidcProvider {
    child: Child,
    pub port: u16,
    stderr: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl OidcProvider {
    /// Starts a provider with `clients` whose token-exchange grant accepts the audiences
    /// `exchange_audiences`.
    pub fn start(clients: &[Value], exchange_audiences: &[&str]) -> OidcProvider {
        Self::start_with(json!({"clients": clients, "exchange_audiences": exchange_audiences}))
    }

    /// Starts a provider with the whole server config `text` (see tests/idp/server.mjs).
    pub fn start_with(text: Value) -> OidcProvider {
        ensure_installed();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(&config, text.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(super::root().join("tests/idp/server.mjs"))
            .arg(&config)
            // Closing stdin (also when the test process dies) stops the server.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node is needed for the oidc-provider tests (.ci/run installs it)");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening ") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(port)) => port,
            _ => {
                let _ = child.kill();
                panic!("oidc-provider did not start:\n{}", stderr.lock().unwrap());
            }
        };
        OidcProvider {
            child,
            port,
            stderr,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        self.url("/token")
    }

    /// The `allowed_hosts` entry for this server.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the server wrote to stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The client assertions the server accepted, in order: `{header, claims, jwt}`.
    pub fn assertions(&self) -> Vec<Value> {
        self.recorded("/test/assertions")
    }

    /// The parameters each token-exchange request carried, in order.
    pub fn exchanges(&self) -> Vec<Value> {
        self.recorded("/test/exchanges")
    }

    fn recorded(&self, path: &str) -> Vec<Value> {
        let (status, body) = self.request("GET", path, None, "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// A plain HTTP/1.1 request to the server (outside tokenhost): the status and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &str,
    ) -> (u16, String) {
        use base64::Engine as _;
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let auth = basic
            .map(|(id, secret)| {
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
                format!("authorization: Basic {pair}\r\n")
            })
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\n{auth}content-type: application/x-www-form-urlencoded\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{form}",
            self.authority(),
            form.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keys made with openssl in a temporary folder: an RSA 2048 and a P-256 key pair
/// (PKCS#8 PEM, the public halves apart), and a self-signed certificate over the RSA key.
pub struct Keys {
    pub dir: tempfile::TempDir,
    pub rsa: PathBuf,
    pub rsa_public: PathBuf,
    pub rsa_cert: PathBuf,
    pub ec: PathBuf,
    pub ec_public: PathBuf,
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is needed (.ci/run installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Default for Keys {
    fn default() -> Self {
        Keys::new()
    }
}

impl Keys {
    /// New keys.
    pub fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let (rsa, rsa_public, rsa_cert) = (path("rsa.pem"), path("rsa.pub"), path("rsa.crt"));
        let (ec, ec_public) = (path("ec.pem"), path("ec.pub"));
        let s = |p: &PathBuf| p.to_str().unwrap().to_string();
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            &s(&rsa),
        ]);
        openssl(&["pkey", "-in", &s(&rsa), "-pubout", "-out", &s(&rsa_public)]);
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            &s(&rsa),
            "-subj",
            "/CN=tokenhost-test",
            "-days",
            "2",
            "-out",
            &s(&rsa_cert),
        ]);
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &s(&ec),
        ]);
        openssl(&["pkey", "-in", &s(&ec), "-pubout", "-out", &s(&ec_public)]);
        Keys {
            dir,
            rsa,
            rsa_public,
            rsa_cert,
            ec,
            ec_public,
        }
    }

    /// The `x5t#S256` of the certificate, computed by openssl.
    pub fn rsa_cert_x5t(&self) -> String {
        let output = Command::new("sh")
            .arg("-c")
            .arg("openssl x509 -in \"$1\" -outform DER | openssl dgst -sha256 -binary | basenc --base64url | tr -d '='")
            .arg("sh")
            .arg(&self.rsa_cert)
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }
}

/// The base64 lines of a PEM file: what a leak of the key would show.
pub fn key_material(pem: &Path) -> Vec<String> {
    std::fs::read_to_string(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}
