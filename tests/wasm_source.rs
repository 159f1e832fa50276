//! The WebAssembly source with real plugins: loading, the contract, instance reuse and
//! the compiled-code cache.

use crate::support;
mod cache_trust;

use std::sync::Arc;
use std::time::Duration;

use tokenhost::config::PluginSpec;
use tokenhost::granter::Granted;
use tokenhost::source::wasm::cache::Origin;
use tokenhost::source::wasm::{CompiledCache, PluginLoadError, PluginRuntime, WasmSource};
use tokenhost::{AuthManager, FailureKind, RefreshReason, TokenSource};

fn spec(path: std::path::PathBuf, config: &[(&str, &str)]) -> Granted {
    Granted::unrestricted(PluginSpec {
        path,
        oci: None,
        timeout: Duration::from_millis(2_000),
        memory_limit_bytes: 64 << 20,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        grants: Default::default(),
        secrets: Default::default(),
    })
}

fn runtime() -> Arc<PluginRuntime> {
    PluginRuntime::new(CompiledCache::disabled()).unwrap()
}

#[tokio::test]
async fn static_token_resolves_and_refreshes_on_one_live_instance() {
    let runtime = runtime();
    let source = WasmSource::new(
        &runtime,
        "corp".into(),
        &spec(
            support::plugin("static-token"),
            &[("token", "tok"), ("ttl_ms", "60000")],
        ),
    )
    .unwrap();
    let token = source.resolve().await.unwrap();
    assert_eq!(token.expose(), "tok");
    let expires = token.expires_at_ms().expect("ttl_ms gives an expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        expires > now + 50_000 && expires <= now + 60_000,
        "{expires} vs {now}"
    );
    // The counter lives in the instance: the same instance serves every call.
    for n in 1..=3 {
        let token = source.refresh(RefreshReason::Expiring).await.unwrap();
        assert_eq!(token.expose(), format!("tok-{n}"));
    }
}

/// Providers of one runtime that run the same plugin share its compiled, linked code
/// (one compile here, where the cache is off), never its instance: each has its own
/// config and state. Once no provider holds it, it is linked anew.
#[tokio::test]
async fn providers_of_one_plugin_share_its_code_and_not_its_state() {
    let runtime = runtime();
    let path = support::plugin("static-token");
    let a = WasmSource::new(&runtime, "a".into(), &spec(path.clone(), &[("token", "A")])).unwrap();
    let b = WasmSource::new(&runtime, "b".into(), &spec(path.clone(), &[("token", "B")])).unwrap();
    assert_eq!(
        runtime.load(&path).unwrap().origin,
        Origin::Cache,
        "linked once"
    );
    assert_eq!(a.resolve().await.unwrap().expose(), "A");
    assert_eq!(b.resolve().await.unwrap().expose(), "B");
    assert_eq!(
        a.refresh(RefreshReason::Forced).await.unwrap().expose(),
        "A-1"
    );
    assert_eq!(
        a.refresh(RefreshReason::Forced).await.unwrap().expose(),
        "A-2"
    );
    assert_eq!(
        b.refresh(RefreshReason::Forced).await.unwrap().expose(),
        "B-1"
    );
    drop((a, b));
    assert_eq!(runtime.load(&path).unwrap().origin, Origin::Compiled);
}

#[tokio::test]
async fn missing_config_key_is_invalid_config() {
    let runtime = runtime();
    let source = WasmSource::new(
        &runtime,
        "corp".into(),
        &spec(support::plugin("static-token"), &[]),
    )
    .unwrap();
    let err = source.resolve().await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::InvalidConfig);
    assert!(
        err.to_string()
            .starts_with("provider \"corp\": invalid configuration:"),
        "{err}"
    );
    assert!(err.to_string().contains("token"), "{err}");
}

#[tokio::test]
async fn guest_errors_keep_their_kind() {
    let runtime = runtime();
    for (kind, expected) in [
        ("invalid-config", FailureKind::InvalidConfig),
        ("denied", FailureKind::Denied),
        ("unavailable", FailureKind::Unavailable),
    ] {
        let config = [
            ("mode", "error"),
            ("kind", kind),
            ("message", "the IdP said no"),
        ];
        let source = WasmSource::new(
            &runtime,
            "corp".into(),
            &spec(support::plugin("hostile"), &config),
        )
        .unwrap();
        let err = source.resolve().await.unwrap_err();
        assert_eq!(err.kind(), expected, "{err}");
        assert!(err.to_string().contains("the IdP said no"), "{err}");
    }
}

#[tokio::test]
async fn manager_drives_a_plugin_through_a_401() {
    let runtime = runtime();
    let source = WasmSource::new(
        &runtime,
        "corp".into(),
        &spec(support::plugin("static-token"), &[("token", "tok")]),
    )
    .unwrap();
    let manager = AuthManager::builder()
        .provider("corp", None, Arc::new(source))
        .build();
    let first = manager.auth("corp").await.unwrap();
    assert_eq!(first.expose(), "tok");
    assert_eq!(manager.auth("corp").await.unwrap().expose(), "tok");
    let mut recovery = manager.recovery("corp");
    assert_eq!(recovery.recover(&first).await.unwrap().expose(), "tok-1");
    assert_eq!(manager.auth("corp").await.unwrap().expose(), "tok-1");
    assert_eq!(manager.status("corp").unwrap().source_calls, 2);
}

fn load_error(path: &std::path::Path) -> String {
    let runtime = runtime();
    match WasmSource::new(&runtime, "corp".into(), &spec(path.to_path_buf(), &[])) {
        Ok(_) => panic!("{} should not load", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_plugin_files_each_have_their_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"this is not wasm at all").unwrap();
    let core = dir.path().join("core.wasm");
    // The smallest valid core module: magic and version 1, no sections.
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let truncated = dir.path().join("truncated.wasm");
    let real = std::fs::read(support::plugin("static-token")).unwrap();
    std::fs::write(&truncated, &real[..real.len() / 2]).unwrap();
    let fifo = dir.path().join("fifo.wasm");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path; the result is checked.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    // 65 MiB, sparse: larger than any plugin may be, without writing it.
    let huge = dir.path().join("huge.wasm");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();

    let cases = [
        // Reading these would never end (or never start): refused before reading.
        ("/dev/zero".into(), "is not a regular file (a device)"),
        (fifo, "is not a regular file (a FIFO)"),
        (
            dir.path().to_path_buf(),
            "is not a regular file (a directory)",
        ),
        (huge, "is larger than 64 MiB"),
        (dir.path().join("missing.wasm"), "cannot read plugin"),
        (garbage, "is not a WebAssembly file"),
        (core, "is a core WebAssembly module, not a component"),
        (truncated, "is not a valid component"),
        (
            support::plugin("wrong-world"),
            "does not export tokenhost:plugin/token-source@0.2.0 (or tokenhost:plugin/token-source@0.1.0); it exports: example:other/greeter@1.0.0",
        ),
        (
            support::plugin("future-contract"),
            "is built for tokenhost:plugin/token-source@9.0.0",
        ),
    ];
    for (path, expected) in cases {
        let message = load_error(&path);
        assert!(message.contains(expected), "{}: {message}", path.display());
        assert!(
            message.contains(&path.display().to_string()),
            "names the file: {message}"
        );
    }
}

#[test]
fn load_errors_are_typed() {
    let runtime = runtime();
    let err = runtime.load(&support::plugin("wrong-world")).err().unwrap();
    assert!(matches!(err, PluginLoadError::NotATokenSource { .. }));
    let err = runtime
        .load(&support::plugin("future-contract"))
        .err()
        .unwrap();
    assert!(matches!(err, PluginLoadError::ContractVersion { .. }));
    // The message names both versions and what to do.
    let shown = err.to_string();
    for part in [
        "future_contract.wasm",
        "tokenhost:plugin/token-source@9.0.0",
        "tokenhost:plugin/token-source@0.1.0",
        "rebuild the plugin",
    ] {
        assert!(shown.contains(part), "{part}: {shown}");
    }
}

#[test]
fn second_load_comes_from_the_compiled_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("compiled");
    let plugin = support::plugin("static-token");

    let first = PluginRuntime::new(CompiledCache::at(cache_dir.clone())).unwrap();
    assert_eq!(first.load(&plugin).unwrap().origin, Origin::Compiled);
    // A new runtime stands for a new process: same engine settings, same cache dir.
    let second = PluginRuntime::new(CompiledCache::at(cache_dir.clone())).unwrap();
    assert_eq!(second.load(&plugin).unwrap().origin, Origin::Cache);

    // Corrupt every entry: the next load recompiles (and repairs), never crashes.
    for entry in std::fs::read_dir(&cache_dir).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    let third = PluginRuntime::new(CompiledCache::at(cache_dir.clone())).unwrap();
    assert_eq!(third.load(&plugin).unwrap().origin, Origin::Compiled);
    let fourth = PluginRuntime::new(CompiledCache::at(cache_dir.clone())).unwrap();
    assert_eq!(fourth.load(&plugin).unwrap().origin, Origin::Cache);

    // A truncated entry and a foreign file under the entry's name: recompiled too.
    for content in [&b"tokenhost-cwasm1"[..], b"\x7fELF not ours"] {
        for entry in std::fs::read_dir(&cache_dir).unwrap() {
            std::fs::write(entry.unwrap().path(), content).unwrap();
        }
        let runtime = PluginRuntime::new(CompiledCache::at(cache_dir.clone())).unwrap();
        assert_eq!(runtime.load(&plugin).unwrap().origin, Origin::Compiled);
    }
}

#[test]
fn a_changed_plugin_is_a_different_cache_key() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("compiled");
    let copy = dir.path().join("plugin.wasm");
    std::fs::copy(support::plugin("static-token"), &copy).unwrap();
    let runtime = PluginRuntime::new(CompiledCache::at(cache_dir.clone())).unwrap();
    let first = runtime.load(&copy).unwrap();
    // Replace the file with another component: its own digest, compiled afresh.
    std::fs::copy(support::plugin("hostile"), &copy).unwrap();
    let second = runtime.load(&copy).unwrap();
    assert_ne!(first.sha256, second.sha256);
    assert_eq!(second.origin, Origin::Compiled);
}
