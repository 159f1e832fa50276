//! Real clients installed by `scripts/install-clients` (pinned, from their registries),
//! and running one with a deadline.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The pinned Codex CLI (`node_modules/.bin/codex`, the npm package's own launcher), or
/// `Err(reason)` where `scripts/install-clients` could not install it because npm or its
/// registry cannot be reached (the only reason to skip). Runs the script once per test
/// binary; it does nothing when the install is up to date. Panics on any other failure.
pub fn codex() -> Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED.get_or_init(install_codex).clone()
}

/// The Python of the venv that holds the pinned OpenAI SDK
/// (`target/clients/openai-python`), or `Err(reason)` where `scripts/install-clients`
/// could not install it (no python3 venv, or PyPI unreachable).
pub fn openai_python() -> Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            // One run of the script installs every client; codex() runs it once.
            let _ = codex();
            let root = super::root();
            let python = root.join("target/clients/openai-python/bin/python");
            if python.exists() {
                return Ok(python);
            }
            let reason = root.join("target/clients/openai-python.unavailable");
            Err(std::fs::read_to_string(&reason)
                .unwrap_or_else(|_| panic!("no {} and no {}", python.display(), reason.display()))
                .trim()
                .to_string())
        })
        .clone()
}

fn install_codex() -> Result<PathBuf, String> {
    let root = super::root();
    let output = Command::new(root.join("scripts/install-clients"))
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run scripts/install-clients");
    assert!(
        output.status.success(),
        "scripts/install-clients failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
    let bin = root.join("target/clients/codex/node_modules/.bin/codex");
    if bin.exists() {
        return Ok(bin);
    }
    let reason = std::fs::read_to_string(root.join("target/clients/codex.unavailable"))
        .unwrap_or_else(|_| {
            panic!(
                "scripts/install-clients succeeded but left no {} and no reason",
                bin.display()
            )
        });
    Err(reason.trim().to_string())
}

/// What a client run left.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `command` with stdin at /dev/null in a process group of its own, collecting its
/// output; after `deadline` kills the whole group and panics with what it printed. The
/// group is killed after a normal exit too, so nothing it started outlives it.
pub fn run_with_deadline(mut command: Command, deadline: Duration) -> Finished {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let pgid = child.id() as libc::pid_t;
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    // SAFETY: kill(2) on our own child's process group; no memory is involved.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let status = status.unwrap_or_else(|| child.wait().unwrap());
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        elapsed <= deadline,
        "{command:?} still running after {deadline:?}; killed.\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    Finished {
        status,
        stdout,
        stderr,
        elapsed,
    }
}
