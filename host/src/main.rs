//! The `tokenhost` command: get a token, check a config, inspect a plugin, print the
//! config schema. Exit codes: 0 ok, 1 a token source failed, 2 usage or config error.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
