//! Command source tests with real child processes (small shell scripts in a temporary
//! directory): program resolution, exit statuses, stderr, timeouts, cancellation and
//! left-behind processes. Also the helpers `format_tests.rs` shares. Output parsing has
//! process-free table tests in `output_tests.rs`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::CommandSource;
use crate::config::{CommandSpec, OutputFormat};
use crate::error::{FailureKind, SourceError};
use crate::source::{RefreshReason, TokenSource};
use crate::token::Token;

/// A value that must never appear in an error.
pub(super) const SECRET: &str = "s3cr3t-0123456789-abcdef";

/// Writes an executable `#!/bin/sh` script at `dir/name`.
///
/// The file is written by a `cp` child, never through a descriptor of this process: a
/// process forked by a parallel test could inherit such a descriptor, and executing a
/// file still open for writing fails with ETXTBSY ("Text file busy").
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let draft = tempfile::NamedTempFile::new_in(dir).unwrap();
    fs::write(draft.path(), format!("#!/bin/sh\n{body}\n")).unwrap();
    let copied = std::process::Command::new("cp")
        .arg(draft.path())
        .arg(&path)
        .status()
        .unwrap();
    assert!(copied.success());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A text-format command spec with a 5 s timeout.
pub(super) fn spec(program: &str, cwd: &Path) -> CommandSpec {
    CommandSpec {
        program: program.to_owned(),
        args: Vec::new(),
        cwd: cwd.to_path_buf(),
        timeout: Duration::from_secs(5),
        format: OutputFormat::Text,
    }
}

/// A source for the provider `test-provider`.
pub(super) fn source(spec: CommandSpec) -> CommandSource {
    CommandSource::new(Arc::from("test-provider"), spec)
}

/// Runs a script with `body` in `format`. Returns the directory (keep it alive), the
/// program as configured, and the result.
pub(super) async fn run_script(
    body: &str,
    format: OutputFormat,
) -> (TempDir, String, Result<Token, SourceError>) {
    let dir = TempDir::new().unwrap();
    let program = script(dir.path(), "tok.sh", body)
        .to_str()
        .unwrap()
        .to_owned();
    let result = source(CommandSpec {
        format,
        ..spec(&program, dir.path())
    })
    .resolve()
    .await;
    (dir, program, result)
}

/// The error of a run that must fail with `kind`.
pub(super) fn expect_error(result: Result<Token, SourceError>, kind: FailureKind) -> SourceError {
    let error = result.expect_err("the command should have failed");
    assert_eq!(error.kind(), kind, "{error}");
    assert_eq!(error.provider(), "test-provider");
    error
}

/// Polls `path` until it holds a pid (a script writes it).
async fn read_pid(path: &Path) -> i32 {
    for _ in 0..500 {
        if let Some(pid) = fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no pid in {}", path.display());
}

/// Whether `pid` has ended: no such process, or a zombie. Killed grandchildren are
/// reparented to init, and the init of some containers never reaps them.
fn has_ended(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    if unsafe { libc::kill(pid, 0) } == -1 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        // Gone in between, unless there is no /proc to tell a zombie by.
        Err(_) => Path::new("/proc/self").exists(),
    }
}

/// Waits (a short while) for `pid` to end: SIGKILL is delivered asynchronously.
async fn wait_ended(pid: i32) -> bool {
    for _ in 0..200 {
        if has_ended(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn text_output_is_trimmed() {
    let (_dir, _, result) = run_script(r"printf '  tok-123 \n\n'", OutputFormat::Text).await;
    let token = result.unwrap();
    assert_eq!(token.expose(), "tok-123");
    assert_eq!(token.expires_at_ms(), None);
}

#[tokio::test]
async fn bare_name_is_looked_up_on_path_and_args_pass_without_a_shell() {
    let dir = TempDir::new().unwrap();
    let args = vec![
        "hello token".to_owned(),
        "$HOME".to_owned(),
        ";".to_owned(),
        "exit 1".to_owned(),
    ];
    let token = source(CommandSpec {
        args,
        ..spec("echo", dir.path())
    })
    .resolve()
    .await
    .unwrap();
    assert_eq!(token.expose(), "hello token $HOME ; exit 1");
}

#[tokio::test]
async fn bare_name_is_not_looked_up_in_cwd() {
    let dir = TempDir::new().unwrap();
    script(dir.path(), "tokenhost-test-only-in-cwd", "echo tok");
    let result = source(spec("tokenhost-test-only-in-cwd", dir.path()))
        .resolve()
        .await;
    let error = expect_error(result, FailureKind::Crashed);
    assert!(
        error
            .message()
            .starts_with("could not start command `tokenhost-test-only-in-cwd`: "),
        "{error}"
    );
}

#[tokio::test]
async fn relative_path_is_resolved_against_cwd_not_the_process_directory() {
    let dir = TempDir::new().unwrap();
    script(dir.path(), "bin/tok.sh", r#"basename "$(pwd)""#);
    // The test process runs elsewhere: only resolution against `cwd` can find the script.
    assert!(!Path::new("bin/tok.sh").exists());
    assert_ne!(std::env::current_dir().unwrap(), dir.path());
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    for program in ["bin/tok.sh", "./bin/tok.sh"] {
        let token = source(spec(program, dir.path())).resolve().await.unwrap();
        assert_eq!(token.expose(), name, "{program}");
    }
}

#[tokio::test]
async fn non_zero_exit_reports_status_and_stderr() {
    let body = "echo 'bad credentials' >&2\necho '  run login first' >&2\nexit 3";
    let (_dir, program, result) = run_script(body, OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::Crashed);
    let expected =
        format!("command `{program}` exited with status 3: bad credentials; run login first");
    assert_eq!(error.message(), expected);

    let (_dir, program, result) = run_script("exit 1", OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::Crashed);
    assert_eq!(
        error.message(),
        format!("command `{program}` exited with status 1 (nothing on stderr)")
    );
}

#[tokio::test]
async fn stderr_is_capped_at_1_kib_and_drained() {
    let body = "head -c 10240 /dev/zero | tr '\\0' e >&2\nexit 1";
    let (_dir, program, result) = run_script(body, OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::Crashed);
    let prefix = format!(
        "command `{program}` exited with status 1: {}",
        "e".repeat(1024)
    );
    assert!(error.message().starts_with(&prefix), "{error}");
    assert!(
        error.message().ends_with("(stderr cut at 1024 bytes)"),
        "{error}"
    );
    assert!(error.message().len() < prefix.len() + 64, "{error}");

    // Far more stderr than a pipe holds: the child must not block on it.
    let body = "head -c 1000000 /dev/zero | tr '\\0' e >&2\necho tok";
    let (_dir, _, result) = run_script(body, OutputFormat::Text).await;
    assert_eq!(result.unwrap().expose(), "tok");
}

#[tokio::test]
async fn death_by_signal_names_the_signal() {
    let (_dir, program, result) = run_script("kill -TERM $$", OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::Crashed);
    assert!(
        error.message().starts_with(&format!(
            "command `{program}` was killed by signal 15 (SIGTERM)"
        )),
        "{error}"
    );
}

#[tokio::test]
async fn missing_program_or_cwd_fails_to_start() {
    let dir = TempDir::new().unwrap();
    let program = dir.path().join("missing").to_str().unwrap().to_owned();
    let error = expect_error(
        source(spec(&program, dir.path())).resolve().await,
        FailureKind::Crashed,
    );
    let expected =
        format!("could not start command `{program}`: No such file or directory (os error 2)");
    assert_eq!(error.message(), expected);

    let cwd = dir.path().join("gone");
    let error = expect_error(
        source(spec("echo", &cwd)).resolve().await,
        FailureKind::Crashed,
    );
    let expected = format!(
        "could not start command `echo`: working directory {} does not exist",
        cwd.display()
    );
    assert_eq!(error.message(), expected);
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = TempDir::new().unwrap();
    let program = script(
        dir.path(),
        "slow.sh",
        "sleep 30 & echo $! > grandchild.pid\nsleep 30",
    );
    let program = program.to_str().unwrap();
    let slow = source(CommandSpec {
        timeout: Duration::from_millis(300),
        ..spec(program, dir.path())
    });
    let started = Instant::now();
    let error = expect_error(slow.resolve().await, FailureKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        error.message(),
        format!("command `{program}` did not finish within 300 ms")
    );
    let grandchild = read_pid(&dir.path().join("grandchild.pid")).await;
    assert!(
        wait_ended(grandchild).await,
        "grandchild {grandchild} survived"
    );
}

#[tokio::test]
async fn cancelling_the_call_kills_the_whole_process_group() {
    let dir = TempDir::new().unwrap();
    let body = "echo $$ > leader.pid\nsleep 30 & echo $! > grandchild.pid\nsleep 30";
    let program = script(dir.path(), "slow.sh", body);
    let slow = source(spec(program.to_str().unwrap(), dir.path()));
    let grandchild_file = dir.path().join("grandchild.pid");
    tokio::select! {
        result = slow.resolve() => panic!("finished: {result:?}"),
        _ = read_pid(&grandchild_file) => {} // Drops the resolve future.
    }
    for file in ["leader.pid", "grandchild.pid"] {
        let pid = read_pid(&dir.path().join(file)).await;
        assert!(wait_ended(pid).await, "{file}: {pid} survived");
    }
}

#[tokio::test]
async fn background_process_holding_stdout_does_not_delay_the_token() {
    let body = "sleep 30 & echo $! > holder.pid\necho tok-quick";
    let started = Instant::now();
    let (dir, _, result) = run_script(body, OutputFormat::Text).await;
    assert_eq!(result.unwrap().expose(), "tok-quick");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let holder = read_pid(&dir.path().join("holder.pid")).await;
    assert!(wait_ended(holder).await, "leftover {holder} survived");
}

#[tokio::test]
async fn oversized_stdout_is_refused_while_reading() {
    // Endless output: only a limit enforced while reading ends this before the timeout.
    let started = Instant::now();
    let (_dir, program, result) =
        run_script(&format!("exec yes {SECRET}"), OutputFormat::Text).await;
    let error = expect_error(result, FailureKind::BadOutput);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let expected = format!("command `{program}` printed more than 65536 bytes on stdout");
    assert!(error.message().starts_with(&expected), "{error}");
    assert!(!format!("{error} {error:?}").contains(SECRET));
}

#[tokio::test]
async fn refresh_runs_the_command_again() {
    let body = "n=$(cat count 2>/dev/null || echo 0)\nn=$((n + 1))\necho $n > count\necho tok-$n";
    let dir = TempDir::new().unwrap();
    let program = script(dir.path(), "counter.sh", body);
    let counter = source(spec(program.to_str().unwrap(), dir.path()));
    assert_eq!(counter.resolve().await.unwrap().expose(), "tok-1");
    assert_eq!(
        counter
            .refresh(RefreshReason::Unauthorized)
            .await
            .unwrap()
            .expose(),
        "tok-2"
    );
    assert_eq!(
        counter
            .refresh(RefreshReason::Forced)
            .await
            .unwrap()
            .expose(),
        "tok-3"
    );
}
