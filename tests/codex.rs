//! The real Codex CLI (npm `@openai/codex`, pinned in tests/clients/codex and installed by
//! `scripts/install-clients`) with tokenhost as its provider's auth command, configured
//! as the README says, against a loopback mock of the Responses API
//! ([`support::responses_api`]). `codex exec` must finish its turn even when the API has
//! revoked the first token it sees: Codex re-runs its auth command once after a 401 and
//! retries once, and that re-run must get a new token, with a broker and without; normal
//! runs make no extra source calls.
//!
//! Skipped (with the reason printed) only where npm could not install Codex.

mod contract;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support;
use crate::support::broker::BrokerProcess;
use crate::support::clients::{self, Finished};
use crate::support::responses_api::{ASSISTANT_TEXT, Mode, ResponsesApi};

/// Longer than any run should take (about 1 s when it works, 7-9 s when Codex gives up
/// after its retries): a run that hangs is killed, never waited for.
const DEADLINE: Duration = Duration::from_secs(60);

/// A command source for provider `corp` that counts its runs in `runs` (beside the
/// config) and prints `tok-<n>`: a new token on every call.
fn counting_source(dir: &Path) -> String {
    let runs = dir.join("runs");
    let script = format!(
        "echo run >> '{0}'; echo tok-$(wc -l < '{0}' | tr -d ' ')",
        runs.display()
    );
    format!(
        "command = \"/bin/sh\"\nargs = [\"-c\", {}]\n",
        toml::Value::String(script)
    )
}

/// The `static-token` plugin: `SECRET` on every resolve (in every process), `SECRET-1`,
/// `SECRET-2`, ... on refresh: a source that hands a fresh process the rejected token
/// again, so only a refresh recovers.
fn static_token_source() -> String {
    let plugin = support::toml_path(&support::plugin("static-token"));
    format!("plugin = {plugin}\nconfig = {{ token = \"SECRET\" }}\n")
}

struct CodexEnv {
    dir: tempfile::TempDir,
    codex: PathBuf,
    config: PathBuf,
    api: ResponsesApi,
    _runtime: tokio::runtime::Runtime,
    broker: Option<BrokerProcess>,
}

impl CodexEnv {
    /// A mock API in `mode`, a tokenhost config whose provider `corp` has the auth made
    /// by `source` from the test directory, and a `CODEX_HOME` whose provider `corp`
    /// runs `tokenhost token corp --config <file>` followed by `extra_args`. `None`
    /// (after printing why) where Codex is not installed.
    fn new(mode: Mode, source: impl FnOnce(&Path) -> String, extra_args: &[&str]) -> Option<Self> {
        Self::with_auth(mode, source, |config| {
            let mut args = vec!["token", "corp", "--config", config.to_str().unwrap()];
            args.extend_from_slice(extra_args);
            let command = env!("CARGO_BIN_EXE_tokenhost").to_string();
            (command, args.into_iter().map(String::from).collect())
        })
    }

    /// [`CodexEnv::new`] with Codex's auth command and args made by `auth` from the path
    /// of the tokenhost config.
    fn with_auth(
        mode: Mode,
        source: impl FnOnce(&Path) -> String,
        auth: impl FnOnce(&Path) -> (String, Vec<String>),
    ) -> Option<Self> {
        let codex = match clients::codex() {
            Ok(codex) => codex,
            Err(reason) => {
                eprintln!("skipped: {reason}");
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(dir.path().join("codex-home")).unwrap();
        std::fs::create_dir(&work).unwrap();
        let config = support::write_config(
            dir.path(),
            &format!("[model_providers.corp.auth]\n{}", source(dir.path())),
        );
        // The API runs on its own runtime: the test blocks on Codex.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let api = runtime.block_on(ResponsesApi::start(mode));
        let (command, args) = auth(&config);
        std::fs::write(
            dir.path().join("codex-home/config.toml"),
            codex_config(&api.base_url(), &command, &args, &work),
        )
        .unwrap();
        Some(CodexEnv {
            dir,
            codex,
            config,
            api,
            _runtime: runtime,
            broker: None,
        })
    }

    /// The environment of every process here (Codex passes its own to the auth command).
    fn env(&self, command: &mut Command) {
        let home = self.dir.path();
        for name in ["OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_API_KEY"] {
            command.env_remove(name);
        }
        support::isolate(command, home).env("CODEX_HOME", home.join("codex-home"));
    }

    /// Starts `tokenhost serve` for the config.
    fn serve(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
        self.env(&mut command);
        let run = self.dir.path().join("run");
        self.broker = Some(BrokerProcess::start(command, &run, &self.config));
    }

    /// `codex exec --skip-git-repo-check "say hi" </dev/null`, killed after
    /// [`DEADLINE`].
    fn exec(&self) -> Finished {
        let mut command = Command::new(&self.codex);
        self.env(&mut command);
        command
            .args(["exec", "--skip-git-repo-check", "say hi"])
            .current_dir(self.dir.path().join("work"));
        clients::run_with_deadline(command, DEADLINE)
    }

    /// How often the counting source ran.
    fn runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("runs")).map_or(0, |t| t.lines().count())
    }

    /// What a failing assertion should show: Codex's output and what the API saw.
    fn report(&self, run: &Finished) -> String {
        format!(
            "codex {} after {:?}; source runs: {}; API requests: {:?}\nstdout:\n{}\nstderr:\n{}",
            run.status,
            run.elapsed,
            self.runs(),
            self.api.requests(),
            run.stdout,
            tail(&run.stderr, 40)
        )
    }
}

/// A `CODEX_HOME/config.toml` whose provider `corp` at `base_url` runs `command` with
/// `args` as its auth command (Codex's schema wants an absolute `cwd`).
fn codex_config(base_url: &str, command: &str, args: &[String], cwd: &Path) -> String {
    let string = |s: &str| toml::Value::String(s.to_string()).to_string();
    let args: Vec<String> = args.iter().map(|a| string(a)).collect();
    format!(
        "model_provider = \"corp\"\nmodel = \"mock-model\"\n\n[model_providers.corp]\n\
         name = \"corp\"\nbase_url = {}\nwire_api = \"responses\"\n\n\
         [model_providers.corp.auth]\ncommand = {}\nargs = [{}]\ncwd = {}\n",
        string(base_url),
        string(command),
        args.join(", "),
        support::toml_path(cwd),
    )
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Checks that Codex got to the API, was refused the first token and sent a second one;
/// then that the turn finished.
fn assert_recovered(env: &CodexEnv, run: &Finished, first: &str, second: &str) {
    let report = env.report(run);
    assert_eq!(env.api.revoked().as_deref(), Some(first), "{report}");
    let tokens = env.api.response_tokens();
    assert_eq!(tokens.first().map(String::as_str), Some(first), "{report}");
    assert!(
        tokens.iter().any(|t| t != first),
        "Codex re-ran tokenhost after the 401 but got the revoked token again: {report}"
    );
    assert_eq!(tokens, [first, second], "{report}");
    assert!(run.status.success(), "{report}");
    assert!(run.stdout.contains(ASSISTANT_TEXT), "{report}");
}

/// With a broker: Codex's re-run after the 401 (same Codex process, well inside its
/// reuse window) tells the broker that `tok-1` was rejected; it refreshes once and Codex
/// retries with `tok-2` within the same run.
/// Codex runs `tokenhost` installed alone (no `tokenhost-engine` beside it): both asks,
/// the first and the re-run after the 401, are answered by the lean front itself.
#[test]
fn codex_recovers_from_a_revoked_token_within_one_run_through_a_broker() {
    let front_alone = |config: &Path| {
        let front = support::lone_front(config.parent().unwrap());
        let args = ["token", "corp", "--config", config.to_str().unwrap()];
        (front.display().to_string(), args.map(String::from).to_vec())
    };
    let Some(mut env) = CodexEnv::with_auth(Mode::RevokeFirst, counting_source, front_alone) else {
        return;
    };
    env.serve();
    let run = env.exec();
    assert_recovered(&env, &run, "tok-1", "tok-2");
    assert_eq!(
        env.runs(),
        2,
        "resolve, then one refresh: {}",
        env.report(&run)
    );
}

/// Without a broker (none running, the README's snippet as it is), from a source that
/// gives every fresh process the same token: the re-run must ask for a refresh.
#[test]
fn codex_recovers_from_a_revoked_token_within_one_run_without_a_broker() {
    let Some(env) = CodexEnv::new(Mode::RevokeFirst, |_| static_token_source(), &[]) else {
        return;
    };
    let run = env.exec();
    assert_recovered(&env, &run, "SECRET", "SECRET-1");
}

/// `--no-broker`, a source with a new token on every call: recovering costs no source
/// call beyond the re-run itself.
#[test]
fn codex_with_no_broker_and_a_counting_source_recovers_with_two_source_calls() {
    let Some(env) = CodexEnv::new(Mode::RevokeFirst, counting_source, &["--no-broker"]) else {
        return;
    };
    let run = env.exec();
    assert_recovered(&env, &run, "tok-1", "tok-2");
    assert_eq!(env.runs(), 2, "{}", env.report(&run));
}

/// A normal flow costs nothing extra: each Codex run is a new process (a new parent of
/// `tokenhost token`), asks once, and the broker answers from its cache.
#[test]
fn twenty_codex_runs_through_a_broker_make_one_source_call() {
    let Some(mut env) = CodexEnv::new(Mode::AcceptAll, counting_source, &[]) else {
        return;
    };
    env.serve();
    let mut times = Vec::new();
    for i in 0..20 {
        let run = env.exec();
        assert!(run.status.success(), "run {i}: {}", env.report(&run));
        assert!(
            run.stdout.contains(ASSISTANT_TEXT),
            "run {i}: {}",
            env.report(&run)
        );
        times.push(run.elapsed);
    }
    times.sort();
    eprintln!("20 codex runs: median {:?}, max {:?}", times[10], times[19]);
    assert_eq!(env.runs(), 1, "one source call for twenty Codex runs");
    let per_token = env.api.per_token();
    assert_eq!(per_token.keys().collect::<Vec<_>>(), ["tok-1"]);
    assert!(per_token["tok-1"] >= 20, "{per_token:?}");
}
