//! The lean front of `tokenhost` (Unix): the paths that credential-command clients run
//! over and over, `tokenhost token <provider>` (Codex, kubectl) and `tokenhost
//! git-credential ... get` (git) answered by a running broker, without loading the rest
//! of tokenhost; everything else is handed to the full command.
//!
//! Why a separate program: most of the start-up cost of the full binary is the binary
//! itself. It carries wasmtime, Cranelift, an HTTP stack and a TLS stack, and as a
//! position-independent executable its ~1 MB of relocated pointer tables are written
//! (one copy-on-write page fault each) before `main` runs, which alone makes
//! `tokenhost --version` twice the cost of spawning `/bin/echo`. The front links only
//! what this path uses (config, paths, the blocking broker client, the client records),
//! and stays a position-independent executable: giving up address randomisation for a
//! millisecond is not a trade a credential tool makes.
//!
//! The front answers only when nothing could make the full command answer otherwise:
//! - the command line is exactly `token <provider>` with at most `-c`/`--config`,
//!   `--client-reuse-ms` and `--format`/`--json`, or `git-credential --provider <id>
//!   get` with at most `-c`/`--config`, `--username` and `--authtype` ([`args`]); no
//!   `-v`, no `RUST_LOG`; for kubectl's format, a `$KUBERNETES_EXEC_INFO` the full
//!   command accepts;
//! - no policy applies: no system policy file (not even a dangling link), no
//!   `$TOKENHOST_POLICY`, no `--policy` (a policy is checked by the full command, against
//!   this process's own policy, before any broker is asked);
//! - the config loads and names the provider (otherwise the full command's error);
//! - a broker of this user serves the config, and its answer is final (a token, or a
//!   source failure): see [`from_broker`](tokenhost::clients::from_broker), which the full
//!   command uses too.
//!
//! In every other case the process becomes the full command (`exec`, so the pid, the
//! parent and stdin are the same ones a client started): before any request, with the
//! same arguments; after a request that reached the broker but did not settle, with
//! `--no-broker` added, so the in-process call is not read by the broker as a retry.
//! git's request, read by then, becomes the full command's stdin again (an anonymous
//! file, read from its start: [`tokenhost::sys::stdin_from`]).

mod args;
mod output;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use tokenhost::broker::{BlockingClient, socket_path};
use tokenhost::clients::{self, Brokered, ClientAsk, CommandAsk, RejectedTokens, git};
use tokenhost::policy::Policy;

use output::Format;

/// The full command, installed beside this one.
pub const ENGINE: &str = "tokenhost-engine";

/// Runs `tokenhost`: the broker path here, anything else in the full command.
pub fn run() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let lean = match (args::parse(&args), args::parse_git(&args)) {
        (Some(token), _) => lean_token(token),
        (None, Some(git)) => lean_git(git),
        (None, None) => None,
    };
    match lean {
        Some(Lean::Done(code)) => code,
        Some(Lean::InProcess { input: None }) => exec_engine(&args, true),
        Some(Lean::InProcess { input: Some(input) }) => {
            // The full command reads the same input from its start.
            match tokenhost::sys::stdin_from(&input) {
                Ok(()) => exec_engine(&args, true),
                Err(e) => fail(1, &format!("cannot hand the input on to {ENGINE}: {e}")),
            }
        }
        None => exec_engine(&args, false),
    }
}

/// How far the front got.
enum Lean {
    /// It answered: the exit code.
    Done(ExitCode),
    /// A request reached the broker without settling: the full command resolves
    /// in-process, given `input` as its stdin if the front read it.
    InProcess { input: Option<Vec<u8>> },
}

/// Whether nothing in the environment could make the full command answer otherwise: no
/// policy applies and no `RUST_LOG` asks for other logging.
fn plain_environment() -> bool {
    Policy::none_in_environment() && std::env::var_os("RUST_LOG").is_none()
}

/// The broker serving the config at `path` (the default one if `None`), connected, and
/// the config, which names `provider`; `None` to hand over. The broker first: without
/// one (the common reason to hand over) the config is not read twice. Connecting sends
/// nothing; no request goes out before the config loads and names the provider, as in
/// the full command.
fn reach_broker(
    path: Option<PathBuf>,
    provider: &str,
) -> Option<(PathBuf, BlockingClient, tokenhost::config::Config)> {
    let path = path.unwrap_or_else(tokenhost::config::default_path);
    let socket = socket_path(&path);
    let client = BlockingClient::connect(&socket).ok()?;
    let config = tokenhost::load_config(Some(&path)).ok()?;
    config.provider(provider)?;
    Some((socket, client, config))
}

/// `tokenhost token` through a broker, or `None` to hand over before asking anything.
fn lean_token(lean: args::LeanToken) -> Option<Lean> {
    if !plain_environment() {
        return None;
    }
    let format = match (&lean.format, lean.json) {
        (Some(name), _) => Format::named(name)?,
        (None, true) => Format::Json,
        (None, false) => Format::Text,
    };
    // A request kubectl cannot take is the full command's error.
    let version = output::api_version(format).ok()?;
    let (socket, mut client, config) = reach_broker(lean.config, &lean.provider)?;
    let interval = config.provider(&lean.provider)?.refresh_interval;
    let ask = CommandAsk {
        client: ClientAsk::of_parent(
            lean.client_reuse_ms,
            format == Format::ExecCredential,
            false,
        ),
        refresh: false,
    };
    let rejected = RejectedTokens::for_config(config.path());
    let answer = clients::from_broker(&socket, &lean.provider, ask, &rejected, |call| {
        client.send(&lean.provider, call)
    });
    Some(match answer {
        Brokered::Token(token) => Lean::Done(print_line(&output::render(
            format, &token, version, interval,
        ))),
        Brokered::Failed(message) => Lean::Done(fail(1, &message)),
        Brokered::InProcess { note, .. } => {
            warn(&note);
            Lean::InProcess { input: None }
        }
    })
}

/// `tokenhost git-credential ... get` through a broker, or `None` to hand over before
/// reading git's request. git's request is read (and refused, as the full command
/// refuses it) before the broker is asked; if the full command must answer after all,
/// it is handed on as its stdin.
fn lean_git(lean: args::LeanGit) -> Option<Lean> {
    if !plain_environment() {
        return None;
    }
    let (socket, mut client, config) = reach_broker(lean.config, &lean.provider)?;
    let (request, input) = match git::read_request(std::io::stdin()) {
        Ok(read) => read,
        Err(message) => return Some(Lean::Done(fail(2, &message))),
    };
    // git says when a token was rejected (`erase`): no re-ask to infer, as in the full
    // command.
    let ask = CommandAsk {
        client: None,
        refresh: false,
    };
    let rejected = RejectedTokens::for_config(config.path());
    let answer = clients::from_broker(&socket, &lean.provider, ask, &rejected, |call| {
        client.send(&lean.provider, call)
    });
    Some(match answer {
        Brokered::Token(token) => {
            let username = lean.username.as_deref().unwrap_or(git::DEFAULT_USERNAME);
            let authtype = lean.authtype.unwrap_or_default();
            match git::answer(
                &request,
                authtype,
                username,
                token.expose(),
                token.expires_at_ms(),
            ) {
                Ok(answer) => Lean::Done(print(answer.as_bytes())),
                Err(e) => Lean::Done(fail(2, &format!("git-credential: {e}"))),
            }
        }
        Brokered::Failed(message) => Lean::Done(fail(1, &message)),
        Brokered::InProcess { note, .. } => {
            warn(&note);
            Lean::InProcess {
                input: Some(input.into_bytes()),
            }
        }
    })
}

/// A warning on stderr: the full command's default log level shows warnings, and this
/// is one in the same form as its log lines.
fn warn(note: &str) {
    let _ = writeln!(std::io::stderr(), "{}  WARN {note}", log_time());
}

/// Now as the full command's log lines show it (UTC, microseconds).
fn log_time() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(&format).unwrap_or_default()
}

/// Prints what `tokenhost token` prints: one line, flushed.
fn print_line(line: &str) -> ExitCode {
    print(format!("{line}\n").as_bytes())
}

/// Prints `bytes` and flushes them. A reader that went away is a quiet exit 141, as for
/// the full command.
fn print(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let written = out.write_all(bytes).and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(128 + 13),
        Err(e) => fail(1, &format!("cannot write to stdout: {e}")),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "tokenhost: {message}");
    ExitCode::from(code)
}

/// Becomes the full command with the same arguments (`--no-broker` added when asked),
/// or fails with exit 2 naming the file it could not run.
fn exec_engine(args: &[OsString], no_broker: bool) -> ExitCode {
    let engine = engine_path();
    let mut command = std::process::Command::new(&engine);
    command.arg0("tokenhost").args(args.iter().skip(1));
    if no_broker {
        command.arg("--no-broker");
    }
    let error = command.exec();
    fail(
        2,
        &format!(
            "cannot run {} ({error}): tokenhost needs it installed beside itself",
            engine.display()
        ),
    )
}

/// The full command's file: beside this program's own (the file the kernel ran, links
/// resolved: Linux's `/proc/self/exe` is resolved already, macOS gives the path that was
/// run, which may be a link), never looked up in `PATH`.
fn engine_path() -> PathBuf {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    exe.with_file_name(ENGINE)
}
