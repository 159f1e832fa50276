//! Human sign-in (contract 0.2, `tokenhost login`, the `oidc-login` plugin) against a
//! real OpenID provider nobody here wrote: npm `oidc-provider` on loopback, with a public
//! native client. The test plays the browser ([`browser`]): it reads the URL that
//! `tokenhost login --no-browser` prints, completes the provider's login and consent
//! forms over HTTP and follows the redirect to tokenhost's loopback listener.

mod browser;
mod device;
mod flows;
mod keyring;
mod policy;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support;
use crate::support::cli::{Env, stderr, stdout};
use crate::support::oidc::OidcProvider;

/// The public client the provider knows.
const CLIENT: &str = "cli";

/// A provider with the login client, access tokens living `ttl` seconds.
fn provider(ttl: Option<u64>) -> OidcProvider {
    let mut config = json!({"clients": [], "exchange_audiences": [], "login_clients": [CLIENT]});
    if let Some(ttl) = ttl {
        config["access_token_ttl"] = ttl.into();
    }
    OidcProvider::start_with(config)
}

/// A config with provider "corp" on the oidc-login plugin against `idp`, with the
/// `secret_store` given (`None`: the keyring) and extra plugin config lines.
fn config(env: &Env, idp: &OidcProvider, store: Option<&str>, extra: &str) -> PathBuf {
    let store = store
        .map(|s| format!("secret_store = \"{s}\"\n"))
        .unwrap_or_default();
    env.config(&format!(
        r#"
[model_providers.corp]
name = "corp"

[model_providers.corp.auth]
plugin = {plugin}
allowed_hosts = ["{authority}"]
timeout_ms = 15000
{store}
[model_providers.corp.auth.config]
issuer = "{issuer}"
client_id = "{CLIENT}"
prompt = "consent"
login_timeout_ms = 60000
http_timeout_ms = 10000
{extra}
"#,
        plugin = support::toml_path(&support::plugin("oidc-login")),
        authority = idp.authority(),
        issuer = idp.url(""),
    ))
}

/// A running `tokenhost login`, its stderr lines arriving on a channel.
struct Login {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Login {
    fn start(env: &Env, config: &std::path::Path, extra_env: &[(&str, &str)]) -> Login {
        let mut command = env.command(&[
            "login",
            "corp",
            "--no-browser",
            "-c",
            config.to_str().unwrap(),
        ]);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Login {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stderr line that starts with `prefix`.
    fn line_starting(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no stderr line starting with {prefix:?}; saw:\n{}",
            self.seen.join("\n")
        );
    }

    /// Waits for the process; its exit status and all of stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "tokenhost login did not end; stderr:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }
}

/// Signs in through the browser; the login's stderr.
fn sign_in(
    env: &Env,
    idp: &OidcProvider,
    config: &std::path::Path,
    extra_env: &[(&str, &str)],
) -> String {
    let mut login = Login::start(env, config, extra_env);
    let url = login.line_starting(&idp.url("/auth?"));
    let mut browser = browser::Browser::default();
    let redirect = browser.sign_in(&url, "alice");
    let page = browser.request("GET", &redirect, "");
    assert!(
        page.body.contains("You can close this tab"),
        "{}",
        page.body
    );
    let (status, text) = login.finish();
    assert!(
        status.success(),
        "tokenhost login failed:\n{text}\n{}",
        idp.stderr()
    );
    text
}

/// `tokenhost token corp` with stdin at /dev/null (as Codex runs it).
fn token(env: &Env, config: &std::path::Path, extra_env: &[(&str, &str)]) -> Output {
    let mut command = env.command(&[
        "token",
        "corp",
        "--no-broker",
        "-c",
        config.to_str().unwrap(),
    ]);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    command.stdin(Stdio::null()).output().unwrap()
}

/// The provider's userinfo for `access_token`: (status, body).
fn userinfo(idp: &OidcProvider, access_token: &str) -> (u16, String) {
    let mut browser = browser::Browser::default();
    let page = browser.request_bearer(&idp.url("/me"), access_token);
    (page.status, page.body)
}

/// The file store's entry for "corp".
fn stored(env: &Env) -> serde_json::Value {
    let dir = env.path().join("data/tokenhost/secrets");
    let file = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a secrets file");
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

fn output_text(output: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", stdout(output), stderr(output))
}
