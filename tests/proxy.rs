//! `tokenhost proxy` end to end: the real binary in a temporary home, a command source
//! that hands out `tok-1`, `tok-2`, ... (one per call), and a mock API on loopback
//! ([`mock`]) that accepts every token it has not revoked. Clients are reqwest here, and
//! the real OpenAI Python SDK and Codex CLI in [`sdk`].

mod access;
mod faults;
mod mock;
mod recovery;
mod sdk;
mod streaming;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support;

/// A config whose provider `corp` has `base_url` and `extra` provider keys, and a command
/// source that counts its runs in `dir/runs` and prints `tok-<n>`.
pub fn config(dir: &Path, base_url: &str, extra: &str) -> PathBuf {
    let runs = dir.join("runs");
    let script = format!(
        "echo run >> '{0}'; echo tok-$(wc -l < '{0}' | tr -d ' ')",
        runs.display()
    );
    support::write_config(
        dir,
        &format!(
            "[model_providers.corp]\nbase_url = {}\n{extra}\n[model_providers.corp.auth]\n\
             command = \"/bin/sh\"\nargs = [\"-c\", {}]\n",
            toml::Value::String(base_url.into()),
            toml::Value::String(script)
        ),
    )
}

/// How often the counting source ran.
pub fn source_runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs")).map_or(0, |t| t.lines().count())
}

/// A running `tokenhost proxy corp`; killed when dropped.
pub struct ProxyProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` (or `unix:PATH`).
    pub url: String,
    /// The local key (empty on a Unix socket).
    pub key: String,
    /// The key file (if TCP).
    pub key_file: Option<PathBuf>,
    stderr: Arc<Mutex<String>>,
}

impl ProxyProcess {
    /// Starts `tokenhost proxy corp --config <config> <extra>` in the home `home` and
    /// waits for its startup line.
    pub fn start(home: &Path, config: &Path, extra: &[&str]) -> ProxyProcess {
        Self::try_start(home, config, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start), or what it printed when it did not start.
    pub fn try_start(home: &Path, config: &Path, extra: &[&str]) -> Result<ProxyProcess, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
        support::isolate(&mut command, home);
        command
            .args(["proxy", "corp", "--config"])
            .arg(config)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("tokenhost: proxy for") {
                    let _ = tx.send(line.clone());
                }
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let started = Instant::now();
        let line = loop {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
                break line;
            }
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                let text = stderr.lock().unwrap().clone();
                return Err(format!("the proxy exited with {status}:\n{text}"));
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no startup line"
            );
        };
        let rest = line.split_once(" at ").unwrap().1;
        let (url, key_file) = match rest.split_once(" (local key in ") {
            Some((url, file)) => (
                url.to_string(),
                Some(PathBuf::from(&file[..file.len() - 1])),
            ),
            None => (rest.split(' ').next().unwrap().to_string(), None),
        };
        let key = key_file
            .as_ref()
            .map(|f| std::fs::read_to_string(f).unwrap().trim().to_string())
            .unwrap_or_default();
        Ok(ProxyProcess {
            child,
            url,
            key,
            key_file,
            stderr,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Its stdout (for `--print-env`): the first `lines` lines.
    pub fn stdout_lines(&mut self, lines: usize) -> Vec<String> {
        let out = self.child.stdout.as_mut().unwrap();
        let mut reader = BufReader::new(out);
        (0..lines)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                line.trim_end().to_string()
            })
            .collect()
    }

    /// How many file descriptors it has open.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// What its file descriptors are (for messages).
    pub fn fd_list(&self) -> String {
        let dir = format!("/proc/{}/fd", self.pid());
        let mut links: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|l| l.display().to_string())
            .collect();
        links.sort();
        links.join(" ")
    }

    /// Sends SIGTERM and waits (at most 20 s) for it to exit.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        // SAFETY: kill(2) on our own child; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        (status, self.stderr())
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test's world: a home, a mock API on its own runtime, a config at the mock.
pub struct World {
    pub dir: tempfile::TempDir,
    pub runtime: tokio::runtime::Runtime,
    pub api: mock::MockApi,
    pub config: PathBuf,
}

impl World {
    /// A mock API and a config for `corp` at `<mock>/v1` with `extra` provider keys.
    pub fn new(extra: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        // XDG_RUNTIME_DIR (as `support::isolate` sets it) exists, as on a desktop.
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let api = runtime.block_on(mock::MockApi::start());
        let config = config(dir.path(), &api.url("/v1"), extra);
        World {
            dir,
            runtime,
            api,
            config,
        }
    }

    /// Starts the proxy for this world's config.
    pub fn proxy(&self, extra: &[&str]) -> ProxyProcess {
        ProxyProcess::start(self.dir.path(), &self.config, extra)
    }

    /// How often the source ran.
    pub fn runs(&self) -> usize {
        source_runs(self.dir.path())
    }
}

/// A reqwest client for the tests (no proxy from the environment, no pool limits).
/// Sends `request`: the status and the JSON body (`null` when it is not JSON).
pub async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}
