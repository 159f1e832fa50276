//! `tokenhost-engine`: the full `tokenhost` command (every subcommand, plugins, the
//! broker, the proxy). On Unix, `tokenhost` (the lean front, see `main.rs`) becomes this
//! program for everything it does not answer itself; it may also be run directly, and
//! behaves as `tokenhost` does. Exit codes are `tokenhost`'s.

#[path = "cli/mod.rs"]
mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
