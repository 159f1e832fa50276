//! A real OCI registry on loopback: Debian's `docker-registry` (the CNCF distribution
//! registry), started per test with its own storage, and a small pusher that speaks the
//! distribution API to it (blob upload, then manifest PUT), as `oras push` would.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

/// Where Debian installs the registry.
const BINARY: &str = "/usr/bin/docker-registry";

/// The wasm artifact layout tokenhost pulls.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The plugin layer's media type.
pub const WASM_LAYER: &str = "application/wasm";
/// The signature layer's media type (a wasmsign2 detached signature file).
pub const SIGNATURE_LAYER: &str = "application/vnd.tokenhost.wasmsign2.signature";

/// A running registry; stopped when dropped.
pub struct Registry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    /// The user and password it demands (htpasswd), if any; the pusher sends them.
    login: Option<(String, String)>,
}

impl Registry {
    /// Starts a registry on a free loopback port, or `None` (saying why) if the
    /// `docker-registry` package is not installed.
    pub fn start() -> Option<Registry> {
        if !Path::new(BINARY).is_file() {
            eprintln!("SKIPPED: {BINARY} is not installed (apt-get install docker-registry)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut registry = Registry {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            port,
            login: None,
        };
        registry.resume();
        Some(registry)
    }

    /// [`start`](Self::start), with the registry demanding `user` and `password` (HTTP
    /// basic, from an htpasswd file made by Apache's `htpasswd`); `None` (saying why) if
    /// `htpasswd` (apache2-utils) is missing.
    pub fn start_with_login(user: &str, password: &str) -> Option<Registry> {
        let made = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output();
        let Ok(made) = made.map_err(|e| eprintln!("SKIPPED: htpasswd (apache2-utils): {e}")) else {
            return None;
        };
        assert!(made.status.success(), "htpasswd failed");
        let mut registry = Registry::start()?;
        std::fs::write(registry.dir.path().join("htpasswd"), &made.stdout).unwrap();
        registry.login = Some((user.to_string(), password.to_string()));
        registry.resume();
        Some(registry)
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `oci://127.0.0.1:<port>/<rest>`.
    pub fn oci(&self, rest: &str) -> String {
        format!("oci://{}/{rest}", self.host())
    }

    /// Stops the registry (its storage stays, for [`resume`](Self::resume)).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again on the same port and storage, and waits until it
    /// answers.
    pub fn resume(&mut self) {
        self.stop();
        let config = self.dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{}\n{}",
                self.storage().display(),
                self.port,
                match self.login {
                    Some(_) => format!(
                        "auth:\n  htpasswd:\n    realm: tokenhost-test\n    path: {}\n",
                        self.dir.path().join("htpasswd").display()
                    ),
                    None => String::new(),
                }
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(BINARY)
            .args(["serve", config.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // 401: up, and asking for the login.
            if matches!(
                http::get_status(&format!("http://{}/v2/", self.host())),
                Ok(200 | 401)
            ) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the registry did not start: {}", self.log());
    }

    /// The registry's storage directory.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The file where the registry keeps the blob with `digest`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// How many requests for manifests of `repository` the registry has answered (its
    /// access log), after a moment for the last line to be written.
    pub fn manifest_requests(&self, repository: &str) -> usize {
        std::thread::sleep(Duration::from_millis(200));
        let needle = format!("/v2/{repository}/manifests/");
        self.log()
            .lines()
            .filter(|line| line.contains("\"GET ") || line.contains("\"HEAD "))
            .filter(|line| line.contains(&needle))
            .count()
    }

    /// Uploads `bytes` as a blob of `repository` (POST, then a monolithic PUT) and
    /// returns its digest.
    pub fn push_blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let base = format!("http://{}", self.host());
        let client = http::Client(self.login.clone());
        let started = client.post(format!("{base}/v2/{repository}/blobs/uploads/"));
        let location = match started {
            (202, Some(location)) => location,
            other => panic!("blob upload start: {other:?}"),
        };
        let location = match location.starts_with('/') {
            true => format!("{base}{location}"),
            false => location,
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={digest}");
        let (status, _) = client.put(url, "application/octet-stream", bytes.to_vec());
        assert_eq!(status, 201, "blob PUT");
        digest
    }

    /// PUTs `manifest` as `repository:reference` and returns its digest.
    pub fn put_manifest(&self, repository: &str, reference: &str, manifest: &[u8]) -> String {
        let url = format!(
            "http://{}/v2/{repository}/manifests/{reference}",
            self.host()
        );
        let (status, _) = http::Client(self.login.clone()).put(
            url,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_vec(),
        );
        assert_eq!(status, 201, "manifest PUT: {}", self.log());
        sha256(manifest)
    }

    /// Pushes `wasm` as a plugin artifact (the CNCF wasm layout) tagged `tag`; returns
    /// the manifest's and the layer's digests.
    pub fn push_plugin(&self, repository: &str, tag: &str, wasm: &[u8]) -> (String, String) {
        self.push_artifact(repository, tag, WASM_CONFIG, WASM_LAYER, wasm, None)
    }

    /// Pushes an artifact with these media types; `declared_size` overrides the layer
    /// size written in the manifest.
    pub fn push_artifact(
        &self,
        repository: &str,
        tag: &str,
        config_type: &str,
        layer_type: &str,
        layer: &[u8],
        declared_size: Option<u64>,
    ) -> (String, String) {
        let config = b"{}";
        let config_digest = self.push_blob(repository, config);
        let layer_digest = self.push_blob(repository, layer);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
            "layers": [{
                "mediaType": layer_type,
                "digest": layer_digest,
                "size": declared_size.unwrap_or(layer.len() as u64),
            }],
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let digest = self.put_manifest(repository, tag, &manifest);
        (digest, layer_digest)
    }
}

impl Registry {
    /// Pushes a wasm artifact with these layers (media type, bytes), in this order:
    /// the manifest's digest and each layer's.
    pub fn push_layers(
        &self,
        repository: &str,
        tag: &str,
        layers: &[(&str, &[u8])],
    ) -> (String, Vec<String>) {
        let config = b"{}";
        let config_digest = self.push_blob(repository, config);
        let mut digests = Vec::new();
        let mut descriptors = Vec::new();
        for (media_type, bytes) in layers {
            let digest = self.push_blob(repository, bytes);
            descriptors.push(serde_json::json!({
                "mediaType": media_type, "digest": digest, "size": bytes.len(),
            }));
            digests.push(digest);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": WASM_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": descriptors,
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        (self.put_manifest(repository, tag, &manifest), digests)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Blocking HTTP for the fixture, on a runtime of its own (reqwest here is async only).
mod http {
    use std::future::Future;

    fn block<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// The status of a GET, if the server answered.
    pub fn get_status(url: &str) -> Result<u16, ()> {
        block(async {
            let client = ::reqwest::Client::new();
            client
                .get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|_| ())
        })
    }

    /// The two calls the pusher needs, with the registry's login if it has one.
    pub struct Client(pub Option<(String, String)>);

    impl Client {
        fn with_login(&self, request: ::reqwest::RequestBuilder) -> ::reqwest::RequestBuilder {
            match &self.0 {
                Some((user, password)) => request.basic_auth(user, Some(password)),
                None => request,
            }
        }
    }

    impl Client {
        /// POST with no body: the status and the Location header.
        pub fn post(&self, url: String) -> (u16, Option<String>) {
            block(async {
                let r = self
                    .with_login(::reqwest::Client::new().post(url))
                    .send()
                    .await
                    .unwrap();
                let location = r
                    .headers()
                    .get("location")
                    .map(|v| v.to_str().unwrap().to_string());
                (r.status().as_u16(), location)
            })
        }

        /// PUT `body` as `content_type`: the status and the response body.
        pub fn put(&self, url: String, content_type: &str, body: Vec<u8>) -> (u16, String) {
            block(async {
                let r = self
                    .with_login(::reqwest::Client::new().put(url))
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.text().await.unwrap_or_default())
            })
        }
    }
}
