//! Whole processes, as a Codex-style `auth.command = "tokenhost"` would run them:
//! `tokenhost token` answered by a warm broker, against the same command resolving the
//! plugin in-process in a cold process (compiled plugin cached on disk), and against a
//! command source, all in the same run. The baselines, in the same run too: spawning
//! `/bin/echo` (the floor for any credential command) and `tokenhost --version` (the
//! cost of starting this binary at all).
//!
//! `TOKENHOST_BENCH_BEFORE=/path/to/an/older/tokenhost` adds that binary's `--version` and
//! warm-broker `token` (against the same broker) to the same run, for before/after ratios.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tokenhost(dir: &Path, args: &[&str]) -> Command {
    tokenhost_at(Path::new(env!("CARGO_BIN_EXE_tokenhost")), dir, args)
}

fn tokenhost_at(binary: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env_remove("TOKENHOST_POLICY")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

fn run(dir: &Path, args: &[&str]) {
    run_at(Path::new(env!("CARGO_BIN_EXE_tokenhost")), dir, args)
}

/// Runs `args`. A `token` says `--client-reuse-ms 0`: the bench is one program asking
/// again and again, and its re-asks must not be read as retries after a 401 (which would
/// measure rejection recovery, two source calls, instead of a token).
fn run_at(binary: &Path, dir: &Path, args: &[&str]) {
    let mut args = args.to_vec();
    if args.first() == Some(&"token") {
        args.extend(["--client-reuse-ms", "0"]);
    }
    let out = tokenhost_at(binary, dir, &args).output().unwrap();
    assert!(out.status.success(), "tokenhost {args:?} failed");
    assert!(!out.stdout.is_empty());
}

fn processes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    let plugin = support::plugin("static-token");
    let config: PathBuf = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[model_providers.plugin.auth]\nplugin = \"{}\"\nconfig = {{ token = \"bench\" }}\n\
             [model_providers.cmd.auth]\ncommand = \"/bin/echo\"\nargs = [\"bench\"]\n",
            plugin.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    // Warm the compiled-plugin cache so "cold process" means a new process, not a compile.
    run(
        dir.path(),
        &["token", "plugin", "--no-broker", "-c", &config],
    );

    let mut group = c.benchmark_group("tokenhost_token_process");
    group.sample_size(30);
    group.bench_function("baseline_bin_echo", |b| {
        b.iter(|| {
            let out = Command::new("/bin/echo").arg("bench").output().unwrap();
            assert!(out.status.success());
        })
    });
    group.bench_function("baseline_tokenhost_version", |b| {
        b.iter(|| run(dir.path(), &["--version"]))
    });
    group.bench_function("in_process_plugin_cold_process", |b| {
        b.iter(|| {
            run(
                dir.path(),
                &["token", "plugin", "--no-broker", "-c", &config],
            )
        })
    });
    group.bench_function("in_process_command_source", |b| {
        b.iter(|| run(dir.path(), &["token", "cmd", "--no-broker", "-c", &config]))
    });

    let broker = Broker(
        tokenhost(dir.path(), &["serve", "-c", &config])
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::fs::read_dir(dir.path().join("run/tokenhost"))
        .map(|d| {
            !d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "sock"))
        })
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the broker did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run(dir.path(), &["token", "plugin", "-c", &config]);
    group.bench_function("warm_broker", |b| {
        b.iter(|| run(dir.path(), &["token", "plugin", "-c", &config]))
    });
    if let Some(before) = std::env::var_os("TOKENHOST_BENCH_BEFORE").map(PathBuf::from) {
        group.bench_function("before_tokenhost_version", |b| {
            b.iter(|| run_at(&before, dir.path(), &["--version"]))
        });
        group.bench_function("before_warm_broker", |b| {
            b.iter(|| run_at(&before, dir.path(), &["token", "plugin", "-c", &config]))
        });
    }
    group.finish();
    drop(broker);
}

criterion_group!(benches, processes);
criterion_main!(benches);
