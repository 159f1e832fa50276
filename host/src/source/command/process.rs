//! Running one command: the child in its own process group, its output read under caps,
//! and no process of the group left behind on timeout, on an output error or when the
//! caller gives up (the future is dropped).
//!
//! Unix only: process groups and `kill(-pgid, SIGKILL)` are the mechanism.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::config::CommandSpec;
use crate::sys::ProcessTree;

/// The most standard output a command may print, in bytes.
pub(crate) const MAX_STDOUT: usize = 64 * 1024;
/// How much standard error is kept for error messages, in bytes (the rest is discarded).
pub(crate) const MAX_STDERR: usize = 1024;
/// How long output may still arrive after the child exited. Output that is not closed by
/// then is held by a process the command left behind, which is killed.
const GRACE: Duration = Duration::from_millis(100);
/// How long to wait for a child to be reaped after SIGKILL. Only a process stuck in the
/// kernel takes longer; tokio then reaps it in the background (`kill_on_drop`).
const REAP_WAIT: Duration = Duration::from_secs(1);
/// The read size. Stdout never holds more than [`MAX_STDOUT`] bytes.
const CHUNK: usize = 8 * 1024;

/// A command that ran to completion (any exit status).
#[derive(Debug)]
pub(crate) struct Finished {
    /// How the child ended.
    pub status: ExitStatus,
    /// Everything it printed on stdout (at most [`MAX_STDOUT`] bytes). Holds the token.
    pub stdout: Vec<u8>,
    /// The first [`MAX_STDERR`] bytes of stderr.
    pub stderr: Vec<u8>,
    /// Whether stderr was longer than what was kept.
    pub stderr_truncated: bool,
}

/// Why a command did not run to completion.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started.
    Spawn(io::Error),
    /// The deadline passed before the child exited; its group was killed.
    Timeout,
    /// More than [`MAX_STDOUT`] bytes on stdout; the group was killed.
    StdoutTooLarge,
    /// Reading the child's output or waiting for it failed.
    Io(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "cannot start it: {e}"),
            RunError::Timeout => f.write_str("it did not finish in time and was killed"),
            RunError::StdoutTooLarge => {
                write!(f, "it printed more than {} KiB", MAX_STDOUT / 1024)
            }
            RunError::Io(e) => write!(f, "cannot read its output: {e}"),
        }
    }
}

/// How the program is found, exactly like Codex: absolute as is, a path with a separator
/// against `cwd`, a bare name on `PATH` (left to the OS, which searches the parent's `PATH`).
pub(crate) fn resolve_program(program: &str, cwd: &Path) -> PathBuf {
    let path = Path::new(program);
    if path.is_absolute() || !program.chars().any(std::path::is_separator) {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// Runs `spec`'s command once, within `spec.timeout`: the file at `exec` if given (the
/// approved file; `argv[0]` is still the program as written), else the program resolved
/// as Codex would.
pub(crate) async fn run(spec: &CommandSpec, exec: Option<&Path>) -> Result<Finished, RunError> {
    run_inner(spec, exec, None).await
}

/// [`run`], with `input` written to the child's stdin (then closed) instead of
/// `/dev/null`: what a Docker credential helper reads.
#[cfg(feature = "wasm")]
pub(crate) async fn run_with_input(
    spec: &CommandSpec,
    exec: Option<&Path>,
    input: &[u8],
) -> Result<Finished, RunError> {
    run_inner(spec, exec, Some(input)).await
}

async fn run_inner(
    spec: &CommandSpec,
    exec: Option<&Path>,
    input: Option<&[u8]>,
) -> Result<Finished, RunError> {
    let mut command = match exec {
        Some(path) => {
            let mut command = Command::new(path);
            crate::sys::set_arg0(&mut command, &spec.program);
            command
        }
        None => Command::new(resolve_program(&spec.program, &spec.cwd)),
    };
    command
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(match input {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    ProcessTree::prepare(&mut command);
    let mut child = command.spawn().map_err(RunError::Spawn)?;
    // Declared after `child`, so dropped before it: the group is killed while the leader
    // is at worst an unreaped zombie, whose pid (the group id) nobody else can have.
    let mut group = TreeGuard(ProcessTree::of(&child));
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stdin = child.stdin.take();
    let feed = async move {
        if let (Some(mut stdin), Some(input)) = (stdin, input) {
            use tokio::io::AsyncWriteExt;
            // A child that exits without reading its input is not an error here.
            let _ = stdin.write_all(input).await;
        }
        Ok::<(), RunError>(())
    };

    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut err_len = 0usize;
    let outcome = {
        let reading = async {
            tokio::try_join!(
                feed,
                read_capped(stdout, &mut out),
                read_prefix(stderr, &mut err, &mut err_len),
            )
        };
        tokio::pin!(reading);
        let deadline = tokio::time::sleep(spec.timeout);
        tokio::pin!(deadline);
        tokio::select! {
            waited = child.wait() => match waited {
                Err(error) => Outcome::Failed { error: RunError::Io(error), reaped: false },
                // Exited: whatever it printed is in the pipes. Only a process it left
                // behind can keep them open past the grace period.
                Ok(status) => match tokio::time::timeout(GRACE, &mut reading).await {
                    Ok(Ok(_)) => Outcome::Exited { status, abandoned: false },
                    Ok(Err(error)) => Outcome::Failed { error, reaped: true },
                    Err(_) => Outcome::Exited { status, abandoned: true },
                },
            },
            read = &mut reading => match read {
                Err(error) => Outcome::Failed { error, reaped: false },
                Ok(_) => tokio::select! {
                    waited = child.wait() => match waited {
                        Ok(status) => Outcome::Exited { status, abandoned: false },
                        Err(error) => Outcome::Failed { error: RunError::Io(error), reaped: false },
                    },
                    () = &mut deadline => Outcome::Failed { error: RunError::Timeout, reaped: false },
                },
            },
            () = &mut deadline => Outcome::Failed { error: RunError::Timeout, reaped: false },
        }
    };

    match outcome {
        Outcome::Exited { status, abandoned } => {
            if abandoned {
                // Something left behind still holds the pipes, so the group still exists.
                group.kill();
            }
            group.disarm();
            Ok(Finished {
                status,
                stdout: out,
                stderr_truncated: err_len > err.len(),
                stderr: err,
            })
        }
        Outcome::Failed {
            error,
            reaped: true,
        } => {
            // Output errors after exit come from a process left behind, still in the group.
            group.kill();
            group.disarm();
            Err(error)
        }
        Outcome::Failed {
            error,
            reaped: false,
        } => {
            group.kill();
            if let Ok(Ok(_)) = tokio::time::timeout(REAP_WAIT, child.wait()).await {
                group.disarm();
            }
            Err(error)
        }
    }
}

/// Where a run ended up before cleanup.
enum Outcome {
    /// The child exited and was reaped; `abandoned`: its output was still open after the
    /// grace period.
    Exited { status: ExitStatus, abandoned: bool },
    /// The run failed; `reaped`: the child had already been waited for.
    Failed { error: RunError, reaped: bool },
}

/// Kills the child's process tree when dropped, unless disarmed after the child was
/// reaped (after that, a process group id may in principle be reused).
struct TreeGuard(ProcessTree);

impl TreeGuard {
    fn kill(&self) {
        self.0.kill();
    }

    fn disarm(&mut self) {
        self.0.forget();
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// Reads `reader` to the end into `buf`, failing as soon as it would exceed [`MAX_STDOUT`].
async fn read_capped<R: AsyncRead + Unpin>(
    mut reader: R,
    buf: &mut Vec<u8>,
) -> Result<(), RunError> {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut chunk).await.map_err(RunError::Io)?;
        if n == 0 {
            return Ok(());
        }
        if buf.len() + n > MAX_STDOUT {
            return Err(RunError::StdoutTooLarge);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads `reader` to the end, keeping the first [`MAX_STDERR`] bytes in `buf` and counting
/// all of them in `len`; the rest is discarded so the child never blocks on a full pipe.
async fn read_prefix<R: AsyncRead + Unpin>(
    mut reader: R,
    buf: &mut Vec<u8>,
    len: &mut usize,
) -> Result<(), RunError> {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut chunk).await.map_err(RunError::Io)?;
        if n == 0 {
            return Ok(());
        }
        *len += n;
        let room = MAX_STDERR.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..n.min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_resolution_table() {
        let cwd = Path::new("/work/dir");
        let cases = [
            ("/usr/bin/tok", "/usr/bin/tok"),
            ("./tok.sh", "/work/dir/./tok.sh"),
            ("bin/tok", "/work/dir/bin/tok"),
            ("../tok", "/work/dir/../tok"),
            ("tok", "tok"),
        ];
        for (program, expected) in cases {
            assert_eq!(
                resolve_program(program, cwd),
                PathBuf::from(expected),
                "{program}"
            );
        }
    }
}
