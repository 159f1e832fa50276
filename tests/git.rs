//! git with `tokenhost git-credential` as its credential helper, against git's own
//! `git http-backend` on loopback behind a server that rejects the first token it sees:
//! the first clone fails (git runs `erase`), the next one succeeds with a new token, with a
//! broker and without; normal clones make no extra source calls, and through a broker
//! git's `get` is answered by the lean front alone.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use crate::support;
use crate::support::broker::BrokerProcess;
use crate::support::git_http::{self, Tokens};
use crate::support::idp::Server;

struct GitEnv {
    dir: tempfile::TempDir,
    config: PathBuf,
    server: Server,
    tokens: Arc<Mutex<Tokens>>,
    _runtime: tokio::runtime::Runtime,
    broker: Option<BrokerProcess>,
}

impl GitEnv {
    /// A repository served on loopback and a config whose provider `p` is `auth`.
    fn new(auth: &str) -> GitEnv {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let repos = git_http::make_repo(dir.path());
        let config =
            support::write_config(dir.path(), &format!("[model_providers.p.auth]\n{auth}"));
        // The server runs on its own runtime: the test blocks on git.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (server, tokens) = runtime.block_on(git_http::serve(repos));
        GitEnv {
            dir,
            config,
            server,
            tokens,
            _runtime: runtime,
            broker: None,
        }
    }

    fn static_token() -> GitEnv {
        let plugin = support::toml_path(&support::plugin("static-token"));
        GitEnv::new(&format!(
            "plugin = {plugin}\nconfig = {{ token = \"SECRET\" }}\n"
        ))
    }

    fn tokenhost(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
        self.env(&mut command);
        command
    }

    fn env(&self, command: &mut Command) {
        support::isolate(command, self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0");
    }

    /// `git clone` with tokenhost as the only credential helper, as the README says.
    fn clone(&self, name: &str) -> Output {
        self.clone_with(std::path::Path::new(env!("CARGO_BIN_EXE_tokenhost")), name)
    }

    /// `git clone` with `tokenhost` (the program at that path) as the helper.
    fn clone_with(&self, tokenhost: &std::path::Path, name: &str) -> Output {
        let helper = format!(
            "!{} git-credential --provider p --config {}",
            tokenhost.display(),
            self.config.display()
        );
        let mut command = Command::new("git");
        self.env(&mut command);
        command
            .args(["-c", "credential.helper=", "-c"])
            .arg(format!("credential.helper={helper}"))
            .args(["clone", "-q", &self.server.url("/repo.git")])
            .arg(self.dir.path().join(name))
            .output()
            .unwrap()
    }

    fn cloned(&self, name: &str) -> bool {
        std::fs::read_to_string(self.dir.path().join(name).join("README"))
            .is_ok_and(|text| text == "hello from the test repository\n")
    }

    fn serve(&mut self) {
        let run = self.dir.path().join("run");
        self.broker = Some(BrokerProcess::start(self.tokenhost(), &run, &self.config));
    }

    /// The broker's count of source calls for `p`.
    fn source_calls(&self) -> Option<u64> {
        support::broker::source_calls(&self.dir.path().join("run"), &self.config)
    }

    fn helper(&self, args: &[&str], input: &str) -> Output {
        let mut command = self.tokenhost();
        command
            .args([
                "git-credential",
                "--provider",
                "p",
                "-c",
                self.config.to_str().unwrap(),
            ])
            .args(args);
        support::output_with_stdin(&mut command, input.as_bytes())
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Without a broker: the rejected-token record carries git's `erase` to the next process,
/// whose source (which returns the same token on every resolve) is asked for a new one.
#[test]
fn a_rejected_token_is_replaced_on_the_next_clone_without_a_broker() {
    let env = GitEnv::static_token();
    let first = env.clone("first");
    assert!(!first.status.success());
    assert!(!env.cloned("first"));
    assert_eq!(
        env.tokens.lock().unwrap().rejected.as_deref(),
        Some("SECRET")
    );
    assert!(
        !text(&first.stderr).contains("SECRET"),
        "{}",
        text(&first.stderr)
    );

    let second = env.clone("second");
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(env.cloned("second"));
    assert_eq!(env.tokens.lock().unwrap().accepted, ["SECRET-1"]);
    let record = std::fs::read_dir(env.dir.path().join("run/tokenhost"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        !record.contains("SECRET"),
        "the record holds fingerprints only: {record}"
    );
}

/// With a broker: `erase` moves the broker's cache on at once (one refresh), the next
/// clone gets the new token, and later clones make no source calls at all.
#[test]
fn a_rejected_token_is_replaced_through_the_broker_and_normal_clones_cost_nothing() {
    let mut env = GitEnv::static_token();
    env.serve();
    assert!(!env.clone("first").status.success());
    assert_eq!(
        env.source_calls(),
        Some(2),
        "resolve, then one refresh after erase"
    );
    for name in ["second", "third", "fourth", "fifth"] {
        let out = env.clone(name);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(env.cloned(name));
    }
    assert_eq!(env.source_calls(), Some(2));
    // git's `get` through a broker needs only the lean front (installed alone, it could
    // hand nothing over).
    let front = support::lone_front(env.dir.path());
    let out = env.clone_with(&front, "sixth");
    assert!(out.status.success(), "lone front: {}", text(&out.stderr));
    assert!(env.cloned("sixth"));
    assert_eq!(env.source_calls(), Some(2));
    assert_eq!(env.tokens.lock().unwrap().accepted, ["SECRET-1"]);
    // An erase of a token the broker never handed out costs nothing.
    let out = env.helper(&["erase"], "protocol=http\nhost=h\npassword=not-ours\n\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(env.source_calls(), Some(2));
}

#[test]
fn git_credential_refuses_injected_input_and_answers_both_auth_types() {
    let env = GitEnv::new(
        "command = \"/bin/sh\"\nargs = [\"-c\", \"echo run >> runs; echo tok-$(wc -l < runs | tr -d ' ')\"]\n",
    );
    let runs = || {
        std::fs::read_to_string(env.config.parent().unwrap().join("runs"))
            .map_or(0, |t| t.lines().count())
    };
    for (input, reason) in [
        (
            "protocol=https\nhost=example.com\r\n\n",
            "carriage return or NUL",
        ),
        (
            "protocol=https\nhost=example.com\0evil\n\n",
            "carriage return or NUL",
        ),
        (
            "protocol=https\nhost=example.com\nno-equals-sign\n\n",
            "is not key=value",
        ),
        ("host=example.com\n\n", "no `protocol` attribute"),
        ("protocol=https\n\n", "no `host` attribute"),
    ] {
        let out = env.helper(&["get"], input);
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        assert_eq!(text(&out.stdout), "", "{input:?}");
        assert!(
            text(&out.stderr).contains(reason),
            "{input:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("evil"));
    }
    assert_eq!(runs(), 0, "nothing ran for refused input");

    let out = env.helper(&["get"], "protocol=https\nhost=example.com\n\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "username=x-access-token\npassword=tok-1\n"
    );
    let new_git = "capability[]=authtype\nprotocol=https\nhost=example.com\n\n";
    let out = env.helper(&["--authtype", "bearer", "get"], new_git);
    assert_eq!(
        text(&out.stdout),
        "capability[]=authtype\nauthtype=Bearer\ncredential=tok-2\nephemeral=1\n"
    );
    let out = env.helper(&["--username", "oauth2", "get"], new_git);
    assert_eq!(text(&out.stdout), "username=oauth2\npassword=tok-3\n");
    // store has nothing to do; an unknown operation is ignored, as git asks.
    for op in ["store", "frobnicate"] {
        let out = env.helper(
            &[op],
            "protocol=https\nhost=example.com\npassword=tok-3\n\n",
        );
        assert!(out.status.success(), "{op}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "");
    }
    assert_eq!(runs(), 3);
}
