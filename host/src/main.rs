//! The `tokenhost` command: get a token, check a config, inspect a plugin, print the
//! config schema. Exit codes: 0 ok, 1 a token source failed or stdout could not be
//! written, 2 usage or config error, 141 stdout's reader went away (quietly, as if killed
//! by SIGPIPE; see `cli::output`).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
