//! Shared by the end-to-end tests: building the real plugins once, and small helpers.
#![allow(dead_code)]

pub mod broker;
pub mod cli;
pub mod clients;
pub mod git_http;
pub mod idp;
pub mod keyring;
pub mod log;
pub mod oidc;
pub mod registry;
pub mod responses_api;
pub mod signer;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The path of a built plugin (`name` as its crate name, e.g. "static-token"). Builds
/// the plugins once per test binary.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build_plugins)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "no plugin {}", path.display());
    path
}

/// Runs scripts/build-plugins: the plugins workspace and the template (its own
/// workspace). Cargo makes concurrent builds from several test binaries wait.
fn build_plugins() -> Result<PathBuf, String> {
    let output = Command::new(root().join("scripts/build-plugins"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run scripts/build-plugins: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the plugins failed (run scripts/build-plugins; is the wasm32-wasip2 \
             target installed?):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(root().join("plugins/target/wasm32-wasip2/release"))
}

/// Writes `text` as a config file in `dir` and returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Gives a `tokenhost` process (or a client that runs one) a home of its own under `home`:
/// `HOME`, the XDG runtime, cache and config directories, and none of the developer's
/// tokenhost settings or log filter.
pub fn isolate<'c>(command: &'c mut Command, home: &Path) -> &'c mut Command {
    command
        .env_remove("TOKENHOST_CONFIG")
        .env_remove("TOKENHOST_POLICY")
        .env_remove("RUST_LOG")
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("xdg"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
}

/// A TOML string literal for `path`.
pub fn toml_path(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

/// One plugin runtime (and compiled cache) per test binary.
pub fn runtime() -> std::sync::Arc<tokenhost::source::wasm::PluginRuntime> {
    use std::sync::Arc;
    use tokenhost::source::wasm::{CompiledCache, PluginRuntime};
    static RUNTIME: std::sync::OnceLock<(Arc<PluginRuntime>, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    let (runtime, _) = RUNTIME.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        (
            PluginRuntime::new(CompiledCache::at(dir.path().join("c"))).unwrap(),
            dir,
        )
    });
    runtime.clone()
}

/// A source for provider "idp" running `plugin` with `config`, granted `hosts` on top
/// of `grants`.
pub fn source(
    plugin: &str,
    hosts: &[String],
    grants: tokenhost::grants::Grants,
    config: &[(&str, String)],
    timeout_ms: u64,
) -> tokenhost::source::wasm::WasmSource {
    use std::time::Duration;
    use tokenhost::grants::{Grants, grant_hosts};
    let spec = tokenhost::config::PluginSpec {
        path: self::plugin(plugin),
        oci: None,
        timeout: Duration::from_millis(timeout_ms),
        memory_limit_bytes: 64 << 20,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        grants: Grants {
            hosts: grant_hosts(hosts).unwrap(),
            ..grants
        },
        secrets: Default::default(),
    };
    let granted = tokenhost::granter::Granted::unrestricted(spec);
    tokenhost::source::wasm::WasmSource::new(&runtime(), "idp".into(), &granted).unwrap()
}

/// Runs `command` to completion with `input` on its stdin (then closed), capturing its
/// stdout and stderr: how git runs a credential helper, and `docker login` a Docker one.
/// A program may exit without reading its input (as git allows): the test then judges
/// what it printed, not the broken pipe.
pub fn output_with_stdin(command: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    child.wait_with_output().unwrap()
}

/// `tokenhost` (the lean front) alone in `<dir>/lone/`, with no `tokenhost-engine` beside
/// it (a hard link, or a copy across file systems): whatever it does not answer by itself
/// fails with exit 2 naming the missing engine, so a test that passes through it shows
/// that the front answered.
pub fn lone_front(dir: &Path) -> PathBuf {
    let lone = dir.join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    let front = lone.join("tokenhost");
    if !front.exists() && std::fs::hard_link(env!("CARGO_BIN_EXE_tokenhost"), &front).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_tokenhost"), &front).unwrap();
    }
    front
}
