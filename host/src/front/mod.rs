//! The lean front of `tokenhost` (Unix): the one path that credential-command clients
//! run over and over, `tokenhost token <provider>` answered by a running broker, without
//! loading the rest of tokenhost; everything else is handed to the full command.
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
//!   `--client-reuse-ms` and `--format`/`--json` ([`args`]); no `-v`, no `RUST_LOG`;
//!   for kubectl's format, a `$KUBERNETES_EXEC_INFO` the full command accepts;
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

mod args;
mod output;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use tokenhost::broker::{BlockingClient, socket_path};
use tokenhost::clients::{self, Brokered, ClientAsk, CommandAsk, RejectedTokens};
use tokenhost::policy::Policy;

use output::Format;

/// The full command, installed beside this one.
pub const ENGINE: &str = "tokenhost-engine";

/// Runs `tokenhost`: the broker path here, anything else in the full command.
pub fn run() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    match lean_token(&args) {
        Some(Lean::Done(code)) => code,
        Some(Lean::InProcess) => exec_engine(&args, true),
        None => exec_engine(&args, false),
    }
}

/// How far the front got.
enum Lean {
    /// It answered: the exit code.
    Done(ExitCode),
    /// A request reached the broker without settling: the full command resolves
    /// in-process.
    InProcess,
}

/// `tokenhost token` through a broker, or `None` to hand over before asking anything.
fn lean_token(args: &[OsString]) -> Option<Lean> {
    let lean = args::parse(args)?;
    if !Policy::none_in_environment() || std::env::var_os("RUST_LOG").is_some() {
        return None;
    }
    let format = match (&lean.format, lean.json) {
        (Some(name), _) => Format::named(name)?,
        (None, true) => Format::Json,
        (None, false) => Format::Text,
    };
    // A request kubectl cannot take is the full command's error.
    let version = output::api_version(format).ok()?;
    // The broker first: without one (the common reason to hand over) the config is not
    // read twice. Connecting sends nothing; no request goes out before the config loads
    // and names the provider, as in the full command.
    let path = lean.config.unwrap_or_else(tokenhost::config::default_path);
    let socket = socket_path(&path);
    let mut client = BlockingClient::connect(&socket).ok()?;
    let config = tokenhost::load_config(Some(&path)).ok()?;
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
            // The full command's default log level shows warnings: this is one, in the
            // same form as its log lines.
            let _ = writeln!(std::io::stderr(), "{}  WARN {note}", log_time());
            Lean::InProcess
        }
    })
}

/// Now as the full command's log lines show it (UTC, microseconds).
fn log_time() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(&format).unwrap_or_default()
}

/// Prints what `tokenhost token` prints: one line, flushed. A reader that went away is a
/// quiet exit 141, as for the full command.
fn print_line(line: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(line.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
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
