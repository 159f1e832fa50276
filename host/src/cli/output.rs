//! Every byte the commands print on stdout goes through here (`outln!` and [`bytes`]),
//! so a closed or full stdout is decided once, not at each call site.
//!
//! Rust ignores SIGPIPE, so a write to a pipe whose reader left fails with `EPIPE`, and
//! `println!` turns that into a panic (exit 101). We keep SIGPIPE ignored on purpose: the
//! process also writes to sockets (the broker, identity providers) and to command
//! sources' pipes, where a signal would kill it instead of reporting an error. Instead:
//! - the reader went away (`tokenhost token p | true`, `inspect | head -1`): stop at once,
//!   print nothing on stderr, exit [`BROKEN_PIPE`] (141, the status a shell reports for a
//!   tool killed by SIGPIPE, so `set -o pipefail` scripts see what they see for `cat`);
//! - any other write error (`> /dev/full`): exit 1 with `tokenhost: cannot write to
//!   stdout: <cause>`.
//!
//! Each write is flushed, so an error is seen by the command that caused it (and not
//! lost in the flush at exit).

use std::io::Write;

use super::Failure;

/// The exit status when stdout's reader went away: 128 + SIGPIPE (13), as a shell
/// reports a process killed by it; the same number on every platform.
pub const BROKEN_PIPE: u8 = 128 + 13;

/// `println!` for commands: formats a line onto stdout and flushes it; a write error is
/// the command's [`Failure`]. Use with `?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

/// Writes one formatted line to stdout and flushes it (what `outln!` calls).
pub fn line(text: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(text)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(failure)
}

/// Writes raw bytes to stdout and flushes them.
pub fn bytes(data: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)
        .and_then(|()| out.flush())
        .map_err(failure)
}

/// The failure for a stdout write error: quiet for a reader that left, exit 1 otherwise.
fn failure(error: std::io::Error) -> Failure {
    match error.kind() {
        std::io::ErrorKind::BrokenPipe => Failure {
            code: BROKEN_PIPE,
            message: String::new(),
        },
        _ => Failure {
            code: 1,
            message: format!("cannot write to stdout: {error}"),
        },
    }
}
