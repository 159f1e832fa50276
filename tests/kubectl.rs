//! kubectl (the real one, client-go inside) with `tokenhost token --format
//! exec-credential` as its exec credential plugin, against an HTTPS API on loopback:
//! kubectl sends credentials only over TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::support;
use crate::support::broker::BrokerProcess;
use crate::support::cli::{stderr, stdout};
use crate::support::idp::{Reply, Server};

/// The versioned kubectl: `/usr/bin/kubectl` here is a dispatcher that makes a call of
/// its own with the plugin's token first, which would throw the counts off.
fn kubectl_binary() -> Option<PathBuf> {
    let dispatcher = which("kubectl")?;
    let real = std::fs::canonicalize(&dispatcher).ok()?;
    let dir = real.parent()?;
    let versioned = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kubectl.1."))
        })
        .max();
    Some(versioned.unwrap_or(dispatcher))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A self-signed certificate for 127.0.0.1 (and its key), made with openssl.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A command source that counts its runs in `runs` (beside the config) and prints
/// `tok-<n>`: a new token on every call.
const COUNTING_SOURCE: &str = "command = \"/bin/sh\"\nargs = [\"-c\", \"echo run >> runs; echo tok-$(wc -l < runs | tr -d ' ')\"]\n";

struct Kube {
    env: support::cli::Env,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    config: PathBuf,
    server: Server,
    _runtime: tokio::runtime::Runtime,
    broker: Option<BrokerProcess>,
}

impl Kube {
    /// An API that accepts any bearer token, and a kubeconfig whose user runs tokenhost
    /// for provider `p` (a counting command) with `api_version`.
    fn new(api_version: &str) -> Option<Kube> {
        Kube::with(api_version, COUNTING_SOURCE, false)
    }

    /// An API that accepts any bearer token but, with `revoke_first`, the first one it
    /// sees (401 forever, as for a revoked token), and a kubeconfig whose user runs
    /// tokenhost for provider `p` with the auth `source` and `api_version`.
    fn with(api_version: &str, source: &str, revoke_first: bool) -> Option<Kube> {
        Kube::with_front(api_version, source, revoke_first, false)
    }

    /// [`Kube::with`]; `front_alone`: kubectl runs `tokenhost` installed alone (no
    /// `tokenhost-engine` beside it), so only what the lean front answers works.
    fn with_front(
        api_version: &str,
        source: &str,
        revoke_first: bool,
        front_alone: bool,
    ) -> Option<Kube> {
        let Some(kubectl) = kubectl_binary() else {
            eprintln!("skipped: kubectl is not installed");
            return None;
        };
        let env = support::cli::Env::new();
        std::fs::create_dir(env.path().join("run")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            env.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let (cert, key) = certificate(env.path());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let revoked: Mutex<Option<String>> = Mutex::default();
        let server = runtime.block_on(Server::start_tls(&cert, &key, move |seen, _| {
            let token = seen.headers.get("authorization").and_then(|a| a.strip_prefix("Bearer "));
            let mut revoked = revoked.lock().unwrap();
            if revoke_first && revoked.is_none() {
                *revoked = token.map(str::to_string);
            }
            match token {
                Some(token) if revoked.as_deref() != Some(token) => Reply::json(
                    200,
                    serde_json::json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
                ),
                _ => Reply::json(
                    401,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
                ),
            }
        }));
        let config = env.config(&format!("[model_providers.p.auth]\n{source}"));
        let kubeconfig = env.path().join("kubeconfig");
        let bin = match front_alone {
            true => support::lone_front(env.path()),
            false => PathBuf::from(env!("CARGO_BIN_EXE_tokenhost")),
        };
        let bin = bin.display();
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    \
                 certificate-authority: {}\nusers:\n- name: u\n  user:\n    exec:\n      \
                 apiVersion: {api_version}\n      command: {bin}\n      args: [token, p, --format, \
                 exec-credential, --config, {}]\n      interactiveMode: Never\ncontexts:\n- name: x\n  \
                 context: {{cluster: c, user: u}}\ncurrent-context: x\n",
                server.https_url(""),
                cert.display(),
                config.display()
            ),
        )
        .unwrap();
        Some(Kube {
            env,
            kubectl,
            kubeconfig,
            config,
            server,
            _runtime: runtime,
            broker: None,
        })
    }

    fn runs(&self) -> usize {
        std::fs::read_to_string(self.env.path().join("runs")).map_or(0, |t| t.lines().count())
    }

    fn get_api(&self) -> Output {
        self.tokenhost_env(Command::new(&self.kubectl))
            .args(["get", "--raw", "/api", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .output()
            .unwrap()
    }

    /// The bearer token of every request the API saw, in order.
    fn tokens(&self) -> Vec<String> {
        self.server
            .seen()
            .iter()
            .map(|s| {
                let auth = s.headers.get("authorization").map_or("", String::as_str);
                auth.strip_prefix("Bearer ").unwrap_or("-").to_string()
            })
            .collect()
    }

    /// What a failing assertion should show.
    fn report(&self, out: &Output) -> String {
        format!(
            "kubectl {}; source runs: {}; tokens the API saw: {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            self.runs(),
            self.tokens(),
            stdout(out),
            stderr(out)
        )
    }

    fn tokenhost_env(&self, mut command: Command) -> Command {
        command
            .env_remove("TOKENHOST_CONFIG")
            .env_remove("TOKENHOST_POLICY")
            .env_remove("KUBECONFIG")
            .env("HOME", self.env.path())
            .env("XDG_RUNTIME_DIR", self.env.path().join("run"))
            .env("XDG_CACHE_HOME", self.env.path().join("cache"));
        command
    }

    fn serve(&mut self) {
        let command = self.tokenhost_env(Command::new(env!("CARGO_BIN_EXE_tokenhost")));
        let run = self.env.path().join("run");
        self.broker = Some(BrokerProcess::start(command, &run, &self.config));
    }
}

#[test]
fn kubectl_uses_the_exec_credential_and_a_broker_serves_ten_runs_with_one_source_call() {
    let Some(mut kube) = Kube::new("client.authentication.k8s.io/v1") else {
        return;
    };
    let out = kube.get_api();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("APIVersions"), "{}", stdout(&out));
    let seen = kube.server.seen();
    assert_eq!(seen.len(), 1, "the versioned kubectl makes one request");
    assert_eq!(seen[0].headers["authorization"], "Bearer tok-1");
    assert_eq!(kube.runs(), 1);

    kube.serve();
    for _ in 0..10 {
        let out = kube.get_api();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(kube.runs(), 2, "one source call for ten kubectl runs");
}

/// The API revokes the first token. client-go, on the 401, runs tokenhost again in the
/// same kubectl process (its cached credential is the one that failed) but does not
/// replay the request: the first `kubectl get` fails. That re-run, well inside the
/// reuse window, tells the broker the token was rejected; it refreshes once, and the
/// next kubectl run gets the new token.
///
/// kubectl runs `tokenhost` installed alone: every ExecCredential, the re-run included,
/// comes from the lean front.
#[test]
fn kubectl_recovers_from_a_revoked_token_on_its_next_run_through_a_broker() {
    let Some(mut kube) = Kube::with_front(
        "client.authentication.k8s.io/v1",
        COUNTING_SOURCE,
        true,
        true,
    ) else {
        return;
    };
    kube.serve();
    let first = kube.get_api();
    assert!(!first.status.success(), "{}", kube.report(&first));
    assert!(
        stderr(&first).contains("You must be logged in to the server (Unauthorized)"),
        "{}",
        kube.report(&first)
    );
    assert_eq!(
        kube.tokens(),
        ["tok-1"],
        "no replay: {}",
        kube.report(&first)
    );

    let second = kube.get_api();
    assert!(second.status.success(), "{}", kube.report(&second));
    assert!(stdout(&second).contains("APIVersions"));
    assert_eq!(
        kube.tokens(),
        ["tok-1", "tok-2"],
        "{}",
        kube.report(&second)
    );
    assert_eq!(
        kube.runs(),
        2,
        "resolve, then one refresh: {}",
        kube.report(&second)
    );
    // Later runs are normal runs: the broker's token, no source call.
    for _ in 0..3 {
        let out = kube.get_api();
        assert!(out.status.success(), "{}", kube.report(&out));
    }
    assert_eq!(kube.runs(), 2);
}

/// The same without a broker, from a source that gives every fresh process the same
/// token (`SECRET` on resolve, `SECRET-<n>` on refresh): client-go's re-run in the first
/// kubectl process must be taken as a rejection, and the next kubectl run (a new process
/// that resolves `SECRET` again) must not hand it out.
#[test]
fn kubectl_recovers_from_a_revoked_token_on_its_next_run_without_a_broker() {
    let plugin = support::toml_path(&support::plugin("static-token"));
    let source = format!("plugin = {plugin}\nconfig = {{ token = \"SECRET\" }}\n");
    let Some(kube) = Kube::with("client.authentication.k8s.io/v1", &source, true) else {
        return;
    };
    let first = kube.get_api();
    assert!(!first.status.success(), "{}", kube.report(&first));
    assert_eq!(kube.tokens(), ["SECRET"], "{}", kube.report(&first));
    let second = kube.get_api();
    assert!(second.status.success(), "{}", kube.report(&second));
    assert_eq!(
        kube.tokens(),
        ["SECRET", "SECRET-1"],
        "{}",
        kube.report(&second)
    );
    assert!(!stderr(&second).contains("SECRET"));
}

#[test]
fn kubectl_v1beta1_gets_a_v1beta1_credential() {
    let Some(kube) = Kube::new("client.authentication.k8s.io/v1beta1") else {
        return;
    };
    let out = kube.get_api();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(kube.runs(), 1);
}

#[test]
fn exec_credential_output_and_its_errors() {
    let env = support::cli::Env::new();
    let config = env.config(
        "[model_providers.p.auth]\ncommand = \"/bin/echo\"\nargs = [\"tok\"]\nrefresh_interval_ms = 60000\n",
    );
    let c = config.to_str().unwrap();
    let args = [
        "token",
        "p",
        "--format",
        "exec-credential",
        "--no-broker",
        "-c",
        c,
    ];
    let out = env.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(value["kind"], "ExecCredential");
    assert_eq!(value["status"]["token"], "tok");
    let until = time::OffsetDateTime::parse(
        value["status"]["expirationTimestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = until - time::OffsetDateTime::now_utc();
    assert!(
        left.whole_seconds() > 50 && left.whole_seconds() <= 60,
        "{left}"
    );

    let out = env
        .command(&args)
        .env(
            "KUBERNETES_EXEC_INFO",
            r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#,
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("tokenhost speaks client.authentication.k8s.io/v1"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["token", "p", "--json", "--format", "text", "-c", c]);
    assert_eq!(out.status.code(), Some(2), "--json and --format conflict");
}
