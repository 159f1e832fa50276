//! The token broker end to end: `tokenhost serve` and `tokenhost token` as real
//! processes on a real Unix socket. Command sources append a line to a counter file on
//! each run, so source calls are counted from outside.

use crate::support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokenhost::broker::{BrokerClient, socket_path_in};

/// A temporary home, runtime dir and cache dir; kills every child it spawned on drop.
struct Env {
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        std::fs::set_permissions(dir.path().join("run"), mode(0o700)).unwrap();
        Env {
            dir,
            children: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
        support::isolate(&mut command, self.path()).args(args);
        command
    }

    /// A config whose providers are counting commands: `(id, token prefix)`.
    fn config(&self, providers: &[(&str, &str)]) -> PathBuf {
        let mut text = String::new();
        for (id, prefix) in providers {
            text += &format!(
                "[model_providers.{id}.auth]\ncommand = \"/bin/sh\"\nargs = [\"-c\", \
                 \"echo run >> {id}.count; echo {prefix}-$(wc -l < {id}.count | tr -d ' ')\"]\n"
            );
        }
        support::write_config(self.path(), &text)
    }

    /// How many times provider `id`'s command ran.
    fn count(&self, id: &str) -> usize {
        std::fs::read_to_string(self.path().join(format!("{id}.count")))
            .map_or(0, |text| text.lines().count())
    }

    fn socket(&self, config: &Path) -> PathBuf {
        socket_path_in(&self.path().join("run/tokenhost"), config)
    }

    /// Starts `tokenhost serve` (stderr to `serve.log`) and waits until it answers.
    fn serve(&mut self, config: &Path) -> (u32, PathBuf) {
        let log = std::fs::File::create(self.path().join("serve.log")).unwrap();
        let child = self
            .command(&["serve", "-v", "-c", config.to_str().unwrap()])
            .stderr(log)
            .spawn()
            .unwrap();
        let pid = child.id();
        self.children.push(child);
        let socket = self.socket(config);
        wait_until(
            || http(&socket, "GET", "/v1/health", "").is_some(),
            || self.log(),
        );
        (pid, socket)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("serve.log")).unwrap_or_default()
    }

    /// `tokenhost token`, run by the test process. As one program asking again and again,
    /// it says it does not reuse tokens, or its re-asks would be read as retries.
    fn token(&self, args: &[&str], config: &Path) -> Output {
        let mut all = vec!["token", "--client-reuse-ms", "0"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-c", config.to_str().unwrap()]);
        self.command(&all).output().unwrap()
    }
}

fn mode(mode: u32) -> std::fs::Permissions {
    std::fs::Permissions::from_mode(mode)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn wait_until(mut done: impl FnMut() -> bool, explain: impl Fn() -> String) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out; log:\n{}",
            explain()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// One request in plain HTTP/1.1, as a client in any language would send it: the status
/// and the JSON body, or `None` if nobody answers.
fn http(socket: &Path, method: &str, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let mut stream = UnixStream::connect(socket).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: broker\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).ok()?))
}

#[test]
fn fifty_clients_share_one_source_call() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let (pid, socket) = env.serve(&config);
    assert!(
        env.log().contains(&format!(
            "tokenhost: serving {} at {}",
            config.display(),
            socket.display()
        )),
        "{}",
        env.log()
    );
    let (status, health) = http(&socket, "GET", "/v1/health", "").unwrap();
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["config"], config.to_str().unwrap());
    assert_eq!(health["pid"], pid);

    let clients: Vec<Child> = (0..50)
        .map(|_| {
            env.command(&["token", "a", "--client-reuse-ms", "0", "-c"])
                .arg(&config)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for client in clients {
        let out = client.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), "tok-1\n", "{}", stderr(&out));
    }
    assert_eq!(env.count("a"), 1);
}

#[test]
fn the_socket_is_0600_in_a_private_dir() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let (_, socket) = env.serve(&config);
    assert_eq!(socket.parent().unwrap(), env.path().join("run/tokenhost"));
    assert_eq!(mode_of(&socket), 0o600);
    assert_eq!(mode_of(socket.parent().unwrap()), 0o700);

    // Without $XDG_RUNTIME_DIR: a 0700 dir under the cache dir.
    let other = tempfile::tempdir().unwrap();
    let config = support::write_config(other.path(), "");
    let log = std::fs::File::create(env.path().join("serve2.log")).unwrap();
    let child = env
        .command(&["serve", "-c", config.to_str().unwrap()])
        .env_remove("XDG_RUNTIME_DIR")
        .stderr(log)
        .spawn()
        .unwrap();
    env.children.push(child);
    let socket = socket_path_in(&env.path().join("cache/tokenhost/run"), &config);
    wait_until(
        || socket.exists(),
        || std::fs::read_to_string(env.path().join("serve2.log")).unwrap(),
    );
    assert_eq!(mode_of(&socket), 0o600);
    assert_eq!(mode_of(socket.parent().unwrap()), 0o700);
}

#[test]
fn a_second_broker_for_the_same_config_is_refused() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let (_, socket) = env.serve(&config);
    let out = env
        .command(&["serve", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "tokenhost: a broker is already serving {} at {}\n",
            config.display(),
            socket.display()
        )
    );
    let out = env.token(&["a"], &config);
    assert_eq!(stdout(&out), "tok-1\n", "{}", stderr(&out));
}

#[test]
fn a_stale_socket_is_replaced() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let socket = env.socket(&config);
    std::fs::create_dir(socket.parent().unwrap()).unwrap();
    std::fs::set_permissions(socket.parent().unwrap(), mode(0o700)).unwrap();
    // A plain file where the socket goes.
    std::fs::write(&socket, "").unwrap();
    let (pid, _) = env.serve(&config);
    assert_eq!(env.token(&["a"], &config).status.code(), Some(0));
    signal(pid, "TERM");
    env.children.pop().unwrap().wait().unwrap();
    assert!(!socket.exists());

    // A socket nobody listens on (a broker that died).
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    env.serve(&config);
    for _ in 0..2 {
        let out = env.token(&["a"], &config);
        assert_eq!(stdout(&out), "tok-2\n", "{}", stderr(&out));
    }
    assert_eq!(env.count("a"), 2, "the second broker served both");
}

#[test]
fn sigterm_removes_the_socket() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let (pid, socket) = env.serve(&config);
    signal(pid, "TERM");
    let status = env.children.pop().unwrap().wait().unwrap();
    assert!(status.success(), "{status:?}: {}", env.log());
    assert!(!socket.exists());
}

#[test]
fn sighup_keeps_unchanged_tokens_and_renews_changed_ones() {
    let mut env = Env::new();
    let config = env.config(&[("same", "s"), ("changed", "old")]);
    let (pid, socket) = env.serve(&config);
    for (id, token) in [("same", "s-1"), ("changed", "old-1")] {
        assert_eq!(stdout(&env.token(&[id], &config)), format!("{token}\n"));
    }
    env.config(&[("same", "s"), ("changed", "new"), ("added", "add")]);
    signal(pid, "HUP");
    let generation =
        |socket: &Path| http(socket, "GET", "/v1/health", "").unwrap().1["generation"].clone();
    wait_until(|| generation(&socket) == 1, || env.log());
    for (id, token) in [("same", "s-1"), ("changed", "new-2"), ("added", "add-1")] {
        let out = env.token(&[id], &config);
        assert_eq!(stdout(&out), format!("{token}\n"), "{}", stderr(&out));
    }
    assert_eq!((env.count("same"), env.count("changed")), (1, 2));

    // A broken config is not loaded: the broker keeps serving the previous one.
    std::fs::write(&config, "[model_providers.same.auth\n").unwrap();
    signal(pid, "HUP");
    wait_until(
        || {
            env.log()
                .contains("still serving the previous configuration")
        },
        || env.log(),
    );
    assert_eq!(generation(&socket), 1);
    let out = env.token(&["changed", "--no-broker"], &config);
    assert_eq!(out.status.code(), Some(2), "the file itself is broken");
    let (status, token) = http(&socket, "GET", "/v1/token/changed", "").unwrap();
    assert_eq!((status, token["token"].as_str()), (200, Some("new-2")));
}

#[test]
fn a_killed_broker_falls_back_in_process() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let (pid, socket) = env.serve(&config);
    assert_eq!(stdout(&env.token(&["a"], &config)), "tok-1\n");
    signal(pid, "KILL");
    env.children.pop().unwrap().wait().unwrap();
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");
    let out = env.token(&["a", "-v"], &config);
    assert_eq!(stdout(&out), "tok-2\n", "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("no broker at {}", socket.display()))
            && err.contains("resolving in-process"),
        "{err}"
    );
    assert_eq!(env.count("a"), 2);
}

#[test]
fn a_broker_that_hangs_up_mid_request_means_a_warning_and_an_in_process_call() {
    let env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let socket = env.socket(&config);
    std::fs::create_dir(socket.parent().unwrap()).unwrap();
    std::fs::set_permissions(socket.parent().unwrap(), mode(0o700)).unwrap();
    let listener = UnixListener::bind(&socket).unwrap();
    let rude = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut byte = [0u8; 1];
        let _ = stream.read(&mut byte); // the request has started; now hang up
    });
    let out = env.token(&["a"], &config);
    rude.join().unwrap();
    assert_eq!(stdout(&out), "tok-1\n", "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("broker at {} did not answer (", socket.display()))
            && err.contains("); resolving in-process")
            && err.contains("WARN"),
        "{err}"
    );
}

#[test]
fn no_broker_never_touches_the_broker() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let (_, socket) = env.serve(&config);
    assert_eq!(stdout(&env.token(&["a"], &config)), "tok-1\n");
    assert_eq!(
        stdout(&env.token(&["a", "--no-broker"], &config)),
        "tok-2\n"
    );
    assert_eq!(
        stdout(&env.token(&["a", "--no-broker"], &config)),
        "tok-3\n"
    );
    assert_eq!(env.count("a"), 3);
    let (_, body) = http(&socket, "GET", "/v1/providers", "").unwrap();
    assert_eq!(body["providers"][0]["source_calls"], 1, "{body}");
    // --refresh goes through the broker and renews its cache for everyone.
    assert_eq!(stdout(&env.token(&["a", "--refresh"], &config)), "tok-4\n");
    assert_eq!(stdout(&env.token(&["a"], &config)), "tok-4\n");
    assert_eq!(env.count("a"), 4);
}

#[test]
fn unauthorized_by_fingerprint_renews_the_token() {
    let mut env = Env::new();
    let plugin = support::toml_path(&support::plugin("static-token"));
    let config = support::write_config(
        env.path(),
        &format!(
            "[model_providers.p.auth]\nplugin = {plugin}\nconfig = {{ token = \"SECRET\" }}\n"
        ),
    );
    let (_, socket) = env.serve(&config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = BrokerClient::connect(&socket).await.expect("a broker");
        let first = client.token("p").await.unwrap();
        assert_eq!(first.expose(), "SECRET");
        let second = client.unauthorized("p", first.fingerprint()).await.unwrap();
        assert_eq!(second.expose(), "SECRET-1");
        // A late report of the same rejected token gets the new one without a call.
        let again = client.unauthorized("p", first.fingerprint()).await.unwrap();
        assert_eq!(again.expose(), "SECRET-1");
        let providers = client.providers().await.unwrap();
        assert_eq!(providers[0].source_calls, 2);
        assert_eq!(
            providers[0].fingerprint,
            Some(second.fingerprint().to_string())
        );
        let err = client.token("nope").await.unwrap_err().to_string();
        assert!(err.contains("unknown provider \"nope\""), "{err}");
    });
    let (_, providers) = http(&socket, "GET", "/v1/providers", "").unwrap();
    assert!(!providers.to_string().contains("SECRET"), "{providers}");
    let bad = r#"{"fingerprint": "SECRET"}"#;
    let (status, body) = http(&socket, "POST", "/v1/token/p/unauthorized", bad).unwrap();
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (status, body) = http(&socket, "GET", "/v1/token/nope", "").unwrap();
    assert_eq!(
        (status, body["kind"].as_str()),
        (404, Some("unknown_provider"))
    );
}
/// A source with no other token to give (a static one) is asked once after a report,
/// not in every process for a day: when it answers with the rejected token again, the
/// report is forgotten. Without a broker and through one.
#[test]
fn a_rejected_token_the_source_gives_again_costs_one_more_call_not_one_per_process() {
    for brokered in [false, true] {
        let mut env = Env::new();
        let config = support::write_config(
            env.path(),
            "[model_providers.s.auth]\ncommand = \"/bin/sh\"\n\
             args = [\"-c\", \"echo run >> s.count; echo fixed\"]\n",
        );
        let c = config.to_str().unwrap();
        if brokered {
            env.serve(&config);
        }
        let erase = support::output_with_stdin(
            &mut env.command(&["git-credential", "--provider", "s", "-c", c, "erase"]),
            b"protocol=https\nhost=h\npassword=fixed\n\n",
        );
        assert!(erase.status.success(), "{}", stderr(&erase));
        let mut asks = vec!["s"];
        if !brokered {
            asks.push("--no-broker");
        }
        let first = env.token(&asks, &config);
        assert_eq!(stdout(&first), "fixed\n", "{}", stderr(&first));
        assert_eq!(
            env.count("s"),
            2,
            "brokered {brokered}: the first call, then one more"
        );
        for _ in 0..3 {
            assert_eq!(stdout(&env.token(&asks, &config)), "fixed\n");
        }
        let expected = if brokered { 2 } else { 5 };
        assert_eq!(
            env.count("s"),
            expected,
            "brokered {brokered}: no more retries"
        );
    }
}

mod front;
mod sandbox;
