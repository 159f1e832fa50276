//! A client that runs `tokenhost token` as its credential command and asks again inside
//! its reuse window is saying the token was rejected. Here the client is a shell running
//! the command several times (`sh -c`: dash forks each command, so the shell is the
//! parent of every `tokenhost`), with stdin at /dev/null as Codex runs it. The source is
//! the static-token plugin: the same token on every resolve, a new one per refresh.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support;
use crate::support::broker::BrokerProcess;
use crate::support::cli::stderr;

struct Client {
    dir: tempfile::TempDir,
    config: PathBuf,
    broker: Option<BrokerProcess>,
}

impl Client {
    fn new() -> Client {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let plugin = support::toml_path(&support::plugin("static-token"));
        let config = support::write_config(
            dir.path(),
            &format!(
                "[model_providers.p.auth]\nplugin = {plugin}\nconfig = {{ token = \"SECRET\" }}\n"
            ),
        );
        Client {
            dir,
            config,
            broker: None,
        }
    }

    fn env(&self, command: &mut Command) {
        support::isolate(command, self.dir.path());
    }

    fn tokenhost(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
        self.env(&mut command);
        command
    }

    fn serve(&mut self) {
        let run = self.dir.path().join("run");
        self.broker = Some(BrokerProcess::start(self.tokenhost(), &run, &self.config));
    }

    /// One client program asking `times` times, with `extra` arguments: the tokens it got.
    fn run(&self, times: usize, extra: &str) -> Vec<String> {
        let ask = format!(
            "{} token p --config {} {extra}",
            env!("CARGO_BIN_EXE_tokenhost"),
            self.config.display()
        );
        let script = vec![ask; times].join(" && ");
        let mut shell = Command::new("/bin/sh");
        self.env(&mut shell);
        let out = shell
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn source_calls(&self) -> u64 {
        let run = self.dir.path().join("run");
        support::broker::source_calls(&run, &self.config).expect("a broker")
    }
}

#[test]
fn a_re_ask_is_a_retry_through_a_broker_and_new_programs_cost_nothing() {
    let mut client = Client::new();
    client.serve();
    assert_eq!(
        client.run(2, ""),
        ["SECRET", "SECRET-1"],
        "the re-ask is a retry"
    );
    assert_eq!(client.source_calls(), 2);
    // Twenty new programs, each asking once: the broker's token, no source call.
    for _ in 0..20 {
        assert_eq!(client.run(1, ""), ["SECRET-1"]);
    }
    assert_eq!(client.source_calls(), 2);
    // A program that asks five times: one retry refreshes, then it is quiet for its window.
    assert_eq!(
        client.run(5, ""),
        ["SECRET-1", "SECRET-2", "SECRET-2", "SECRET-2", "SECRET-2"]
    );
    assert_eq!(client.source_calls(), 3);
    // A client that does not reuse tokens says so: its re-asks are ordinary.
    assert_eq!(
        client.run(3, "--client-reuse-ms 0"),
        ["SECRET-2", "SECRET-2", "SECRET-2"]
    );
    // --refresh is an explicit ask, never read as a retry (and is not one).
    assert_eq!(client.run(1, "--refresh"), ["SECRET-3"]);
    assert_eq!(client.source_calls(), 4);
}

#[test]
fn a_re_ask_is_a_retry_without_a_broker_and_the_next_program_skips_the_token() {
    let client = Client::new();
    // Each run is a new process whose plugin starts again from "SECRET".
    assert_eq!(client.run(2, ""), ["SECRET", "SECRET-1"]);
    // The next program is told (the rejected-token record) and asks for a new one at once.
    assert_eq!(client.run(1, ""), ["SECRET-1"]);
    assert_eq!(
        client.run(2, "--client-reuse-ms 0"),
        ["SECRET-1", "SECRET-1"]
    );
    let state = std::fs::read_dir(client.dir.path().join("run/tokenhost"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    assert!(state.contains("sha256:"), "{state}");
    assert!(!state.contains("SECRET"), "fingerprints only: {state}");
}
