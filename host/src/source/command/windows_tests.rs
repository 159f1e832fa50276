//! Command source tests on Windows (run under Wine in CI): a program found on `PATH`
//! without a shell, and a timeout that kills the command's whole process tree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::CommandSource;
use crate::config::{CommandSpec, OutputFormat};
use crate::error::FailureKind;
use crate::source::TokenSource;

fn spec(program: &str, args: &[&str], timeout: Duration) -> CommandSpec {
    CommandSpec {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: std::env::temp_dir(),
        timeout,
        format: OutputFormat::Text,
    }
}

#[tokio::test]
async fn a_program_on_path_prints_the_token() {
    let source = CommandSource::new(
        Arc::from("win"),
        spec(
            "cmd.exe",
            &["/c", "echo tok-from-cmd"],
            Duration::from_secs(20),
        ),
    );
    let token = source.resolve().await.expect("cmd.exe runs");
    assert_eq!(token.expose(), "tok-from-cmd");
}

#[tokio::test]
async fn a_timeout_kills_the_process_tree_in_time() {
    // cmd.exe starts ping.exe, a grandchild that would run for about 30 s.
    let source = CommandSource::new(
        Arc::from("win"),
        spec(
            "cmd.exe",
            &["/c", "ping -n 30 127.0.0.1 >nul & echo late"],
            Duration::from_millis(1500),
        ),
    );
    let started = Instant::now();
    let err = source.resolve().await.expect_err("times out");
    assert_eq!(err.kind(), FailureKind::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the grandchild held the pipes: {:?}",
        started.elapsed()
    );
}
