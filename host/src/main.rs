//! The `tokenhost` command: get a token, check a config, inspect a plugin, print the
//! config schema. Exit codes: 0 ok, 1 a token source failed or stdout could not be
//! written, 2 usage or config error, 141 stdout's reader went away (quietly, as if killed
//! by SIGPIPE; see `cli::output`).
//!
//! On Unix this is the lean front (`front`): it answers `tokenhost token` from a running
//! broker and hands every other command to the full command, `tokenhost-engine`, which
//! is installed beside it. On Windows, where a process cannot become another one, it is
//! the full command itself.

#[cfg(unix)]
mod front;

#[cfg(not(unix))]
mod cli;

use std::process::ExitCode;

#[cfg(unix)]
fn main() -> ExitCode {
    front::run()
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    cli::run()
}
