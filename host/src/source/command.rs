//! The built-in command source: runs a program and reads a bearer token from its output.
//!
//! It exists because most people already have a command that prints a token (`gcloud auth
//! print-access-token`, `az account get-access-token --query accessToken -o tsv`, a
//! kubectl exec plugin, a script around a password manager). It keeps the contract of
//! OpenAI Codex's `[model_providers.<id>.auth]` command, so such configurations work
//! unchanged: `command` is run without a shell (absolute as is, a path with a separator
//! against `cwd`, a bare name on `PATH`), `args` are passed as they are, and stdout,
//! trimmed, is the token. On top of that it:
//!
//! - reads JSON (`{"token", "expires_at"}`) and kubectl ExecCredential output, so the
//!   manager learns the token's expiry;
//! - runs the child in its own process group and kills the whole group on timeout or
//!   when the caller gives up, so no grandchild survives;
//! - does not hang on a command that exits but leaves a background process holding its
//!   output open, and bounds the output it buffers (64 KiB of stdout, 1 KiB of stderr);
//! - never puts stdout (the token) in an error or a log line; errors quote at most the
//!   program as written (not its arguments, which may hold secrets) and capped stderr.
//!
//! Unix only (process groups).

mod locate;
mod output;
pub(crate) mod process;

#[cfg(all(test, unix))]
mod format_tests;
#[cfg(test)]
mod output_tests;
#[cfg(all(test, unix))]
mod tests;
#[cfg(all(test, windows))]
mod windows_tests;

use std::fmt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tracing::debug;

pub use self::locate::locate;
use self::process::{Finished, MAX_STDERR, MAX_STDOUT, RunError};
use crate::config::CommandSpec;
use crate::error::{FailureKind, SourceError};
use crate::source::{RefreshReason, TokenSource};
use crate::token::{InvalidToken, Token};

/// A token source that runs a command (see the [module documentation](self)).
///
/// Every [`resolve`](TokenSource::resolve) and [`refresh`](TokenSource::refresh) runs the
/// command once; the manager caches and deduplicates.
#[derive(Clone)]
pub struct CommandSource {
    provider: Arc<str>,
    spec: CommandSpec,
    checked: Option<Arc<CheckedProgram>>,
}

/// The exact file a policy or pin approved, and what is re-checked before every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProgram {
    /// The canonical path (symlinks followed) that was checked: the file that runs, so a
    /// symlink re-pointed later changes nothing. `argv[0]` stays the program as written.
    pub path: std::path::PathBuf,
    /// The digest the file had when it was approved, if a policy entry or the user's pin
    /// names one: the file is hashed again before each run and refused if it changed.
    pub sha256: Option<[u8; 32]>,
}

impl CommandSource {
    /// A source for `provider` that runs the command `spec` describes, as Codex would.
    pub fn new(provider: Arc<str>, spec: CommandSpec) -> Self {
        CommandSource {
            provider,
            spec,
            checked: None,
        }
    }

    /// A source that runs exactly the file a policy or pin approved (see
    /// [`CheckedProgram`]).
    pub fn checked(provider: Arc<str>, spec: CommandSpec, checked: CheckedProgram) -> Self {
        CommandSource {
            provider,
            spec,
            checked: Some(Arc::new(checked)),
        }
    }

    /// Re-verifies an approved file's digest; the error refuses the run.
    fn verify(&self) -> Result<(), SourceError> {
        let Some(CheckedProgram {
            path,
            sha256: Some(approved),
        }) = self.checked.as_deref()
        else {
            return Ok(());
        };
        let program = &self.spec.program;
        let actual = crate::digest::sha256_file(path).map_err(|e| {
            self.error(
                FailureKind::Denied,
                format!(
                    "command `{program}`: cannot read {} to re-check its approved sha256: {e}",
                    path.display()
                ),
            )
        })?;
        if actual != *approved {
            return Err(self.error(
                FailureKind::Denied,
                format!(
                    "command `{program}`: {} changed since it was approved (sha256 is now {}, \
                     approved {}); not running it",
                    path.display(),
                    hex::encode(actual),
                    hex::encode(approved)
                ),
            ));
        }
        Ok(())
    }

    /// Runs the command once and turns its output into a token.
    async fn run(&self) -> Result<Token, SourceError> {
        let started = Instant::now();
        debug!(
            provider = %self.provider,
            command = %self.spec.program,
            args = self.spec.args.len(),
            cwd = %self.spec.cwd.display(),
            timeout_ms = self.spec.timeout.as_millis(),
            format = ?self.spec.format,
            "running token command"
        );
        self.verify()?;
        let exec = self.checked.as_deref().map(|c| c.path.as_path());
        let result = process::run(&self.spec, exec).await;
        let elapsed_ms = started.elapsed().as_millis();
        let result = match result {
            Ok(finished) => {
                debug!(
                    provider = %self.provider,
                    command = %self.spec.program,
                    elapsed_ms,
                    status = %finished.status,
                    stdout_bytes = finished.stdout.len(),
                    "token command finished"
                );
                self.token_from(finished)
            }
            Err(error) => Err(self.run_error(error)),
        };
        match &result {
            Ok(token) => debug!(
                provider = %self.provider,
                fingerprint = %token.fingerprint(),
                expires_at_ms = ?token.expires_at_ms(),
                "token command gave a token"
            ),
            Err(error) => debug!(
                provider = %self.provider,
                elapsed_ms,
                kind = ?error.kind(),
                "token command failed: {}",
                error.message()
            ),
        }
        result
    }

    fn token_from(&self, finished: Finished) -> Result<Token, SourceError> {
        let program = &self.spec.program;
        if !finished.status.success() {
            let stderr = stderr_summary(&finished.stderr, finished.stderr_truncated);
            return Err(self.error(
                FailureKind::Crashed,
                format!(
                    "command `{program}` {}{stderr}",
                    describe_status(finished.status)
                ),
            ));
        }
        let stdout = String::from_utf8(finished.stdout).map_err(|error| {
            self.error(
                FailureKind::BadOutput,
                format!(
                    "command `{program}` printed output that is not UTF-8 (invalid byte at offset {})",
                    error.utf8_error().valid_up_to()
                ),
            )
        })?;
        let (value, expires_at_ms) =
            output::parse_output(self.spec.format, &stdout).map_err(|error| {
                self.error(
                    FailureKind::BadOutput,
                    format!("command `{program}` printed {error}"),
                )
            })?;
        Token::new(value, expires_at_ms).map_err(|error| {
            let message = match error {
                InvalidToken::Empty => format!("command `{program}` printed an empty token"),
                other => format!("command `{program}` printed an invalid token: {other}"),
            };
            self.error(FailureKind::BadOutput, message)
        })
    }

    fn run_error(&self, error: RunError) -> SourceError {
        let program = &self.spec.program;
        match error {
            RunError::Spawn(error) => {
                let cwd = &self.spec.cwd;
                let message = if error.kind() == std::io::ErrorKind::NotFound && !cwd.is_dir() {
                    format!("could not start command `{program}`: working directory {} does not exist", cwd.display())
                } else {
                    format!("could not start command `{program}`: {error}")
                };
                self.error(FailureKind::Crashed, message)
            }
            RunError::Timeout => self.error(
                FailureKind::Timeout,
                format!(
                    "command `{program}` did not finish within {} ms",
                    self.spec.timeout.as_millis()
                ),
            ),
            RunError::StdoutTooLarge => self.error(
                FailureKind::BadOutput,
                format!("command `{program}` printed more than {MAX_STDOUT} bytes on stdout (the limit for a token command)"),
            ),
            RunError::Io(error) => self.error(
                FailureKind::Crashed,
                format!("could not read the output of command `{program}`: {error}"),
            ),
        }
    }

    fn error(&self, kind: FailureKind, message: String) -> SourceError {
        SourceError::new(self.provider.clone(), kind, message)
    }
}

/// Shows the program but not the arguments, which may hold secrets.
impl fmt::Debug for CommandSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandSource")
            .field("provider", &self.provider)
            .field("program", &self.spec.program)
            .field("args", &format_args!("[{} hidden]", self.spec.args.len()))
            .field("cwd", &self.spec.cwd)
            .field("timeout", &self.spec.timeout)
            .field("format", &self.spec.format)
            .field("checked", &self.checked)
            .finish()
    }
}

#[async_trait]
impl TokenSource for CommandSource {
    async fn resolve(&self) -> Result<Token, SourceError> {
        self.run().await
    }

    /// Runs the command again; the reason makes no difference to a command.
    async fn refresh(&self, _reason: RefreshReason) -> Result<Token, SourceError> {
        self.run().await
    }
}

/// "exited with status 3", "was killed by signal 9 (SIGKILL)".
fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    crate::sys::describe_signal(status).unwrap_or_else(|| format!("ended abnormally ({status})"))
}

/// `": <stderr on one line>"`, or a note that there was none. Lines are joined with "; "
/// and control characters blanked, so the error stays one line and cannot drive a terminal.
fn stderr_summary(stderr: &[u8], truncated: bool) -> String {
    // Drop a character the cap cut in half rather than show a replacement character.
    let stderr = match std::str::from_utf8(stderr) {
        Err(error) if truncated && error.error_len().is_none() => &stderr[..error.valid_up_to()],
        _ => stderr,
    };
    let text = String::from_utf8_lossy(stderr);
    let mut summary = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace(char::is_control, " ");
    if summary.is_empty() {
        return if truncated {
            format!(" (stderr: over {MAX_STDERR} bytes of white space)")
        } else {
            " (nothing on stderr)".to_owned()
        };
    }
    if truncated {
        summary.push_str(&format!(" … (stderr cut at {MAX_STDERR} bytes)"));
    }
    format!(": {summary}")
}
