//! The contract is language-neutral: the `static-token` behaviour written in JavaScript
//! (componentize-js, StarlingMonkey) and in Python (componentize-py), loaded by the real
//! host. The plugins are built by `scripts/build-foreign-plugins` (pinned tools from npm
//! and PyPI; it does nothing when its stamps say the artifacts are current).
//!
//! These components are 12-18 MB interpreters: compiling one takes seconds, so each is
//! compiled once per test binary into a cache in a temporary folder, and every other
//! load comes from that cache (which is itself under test here).

use crate::support;
use crate::support::log::CapturedLog;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokenhost::config::PluginSpec;
use tokenhost::granter::Granted;
use tokenhost::source::wasm::cache::Origin;
use tokenhost::source::wasm::inspect::inspect;
use tokenhost::source::wasm::{CompiledCache, PluginRuntime, WasmSource};
use tokenhost::{FailureKind, RefreshReason, TokenSource};

/// Big interpreters: a generous deadline and memory cap (see `measure_limits`).
const TIMEOUT: Duration = Duration::from_secs(10);
const MEMORY_LIMIT: u64 = 256 << 20;

/// A guest language, by its artifact's name.
#[derive(Clone, Copy, Debug)]
enum Lang {
    Js,
    Py,
}

const LANGS: [Lang; 2] = [Lang::Js, Lang::Py];

impl Lang {
    fn artifact(self) -> &'static str {
        match self {
            Lang::Js => "js-static-token",
            Lang::Py => "py-static-token",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The path of a foreign plugin artifact. Runs `scripts/build-foreign-plugins` once per
/// test binary; the script rebuilds only what is missing or stale (by its stamps).
fn foreign_plugin(lang: Lang) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(build_foreign_plugins)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(format!("{}.wasm", lang.artifact()));
    assert!(path.exists(), "no plugin {}", path.display());
    path
}

fn build_foreign_plugins() -> Result<PathBuf, String> {
    let root = support::root();
    let output = Command::new(root.join("scripts/build-foreign-plugins"))
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run scripts/build-foreign-plugins: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/build-foreign-plugins failed (it needs node, npm, python3 and the npm \
             and PyPI registries):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
    Ok(root.join("plugins/target/foreign"))
}

/// The cache folder shared by this test binary's runtime.
fn cache_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// One runtime per test binary, with an enabled compiled cache in a temporary folder.
fn runtime() -> Arc<PluginRuntime> {
    static RUNTIME: OnceLock<Arc<PluginRuntime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| PluginRuntime::new(CompiledCache::at(cache_dir().join("c"))).unwrap())
        .clone()
}

/// The first load of `lang`'s plugin in this test binary: compiles it into the cache,
/// once (concurrent callers wait), and says where it came from.
fn first_load(lang: Lang) -> Origin {
    static FIRST: [OnceLock<Origin>; 2] = [OnceLock::new(), OnceLock::new()];
    *FIRST[lang.index()].get_or_init(|| runtime().load(&foreign_plugin(lang)).unwrap().origin)
}

fn spec(lang: Lang, config: &[(&str, &str)]) -> Granted {
    Granted::unrestricted(PluginSpec {
        path: foreign_plugin(lang),
        oci: None,
        timeout: TIMEOUT,
        memory_limit_bytes: MEMORY_LIMIT,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        grants: Default::default(),
        secrets: Default::default(),
    })
}

/// A source for provider `provider` running `lang`'s plugin (compiled once, then cached).
fn source(lang: Lang, provider: &str, config: &[(&str, &str)]) -> WasmSource {
    first_load(lang);
    WasmSource::new(&runtime(), provider.into(), &spec(lang, config)).unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn resolve_and_refresh_on_one_live_instance() {
    for lang in LANGS {
        let secret = format!("s3cret-{}-value", lang.artifact());
        let source = source(lang, "corp", &[("token", &secret)]);
        let log = CapturedLog::default();
        let guard = log.start();

        let token = source.resolve().await.unwrap();
        assert_eq!(token.expose(), secret, "{lang:?}");
        assert_eq!(
            token.expires_at_ms(),
            None,
            "{lang:?}: no ttl_ms, no expiry"
        );
        // The counter lives in the instance: the same instance serves every call.
        for (n, reason) in [
            (1, RefreshReason::Unauthorized),
            (2, RefreshReason::Expiring),
            (3, RefreshReason::Forced),
        ] {
            let token = source.refresh(reason).await.unwrap();
            assert_eq!(token.expose(), format!("{secret}-{n}"), "{lang:?}");
        }
        drop(guard);

        let text = log.text();
        let artifact = lang.artifact();
        for line in [
            format!("plugin: {artifact}: resolve"),
            format!("plugin: {artifact}: refresh #1 (reason: unauthorized)"),
            format!("plugin: {artifact}: refresh #2 (reason: expiring)"),
            format!("plugin: {artifact}: refresh #3 (reason: forced)"),
        ] {
            assert!(text.contains(&line), "{lang:?}: no {line:?} in:\n{text}");
        }
        assert!(text.contains("corp"), "{lang:?}: tagged with the provider");
        assert!(
            !text.contains("s3cret"),
            "{lang:?}: the token leaked:\n{text}"
        );
    }
}

#[tokio::test]
async fn ttl_ms_sets_the_expiry() {
    for lang in LANGS {
        let source = source(lang, "corp", &[("token", "tok"), ("ttl_ms", "60000")]);
        let before = now_ms();
        let token = source.resolve().await.unwrap();
        let after = now_ms();
        let expires = token.expires_at_ms().expect("ttl_ms gives an expiry");
        assert!(
            (before + 60_000..=after + 60_000).contains(&expires),
            "{lang:?}: {expires} not in {before}+60000..={after}+60000"
        );
        let refreshed = source.refresh(RefreshReason::Expiring).await.unwrap();
        assert_eq!(refreshed.expose(), "tok-1", "{lang:?}");
        assert!(refreshed.expires_at_ms().unwrap() >= expires, "{lang:?}");
    }
}

#[tokio::test]
async fn missing_token_is_invalid_config() {
    for lang in LANGS {
        let source = source(lang, "corp", &[("ttl_ms", "1000")]);
        for err in [
            source.resolve().await.unwrap_err(),
            source.refresh(RefreshReason::Forced).await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), FailureKind::InvalidConfig, "{lang:?}: {err}");
            assert_eq!(err.provider(), "corp");
            assert_eq!(
                err.to_string(),
                "provider \"corp\": invalid configuration: missing required config key `token`",
                "{lang:?}"
            );
        }
    }
}

#[tokio::test]
async fn bad_ttl_ms_is_invalid_config() {
    for lang in LANGS {
        for bad in ["-5", "soon", "1.5", "", "18446744073709551616"] {
            let source = source(lang, "corp", &[("token", "tok"), ("ttl_ms", bad)]);
            let err = source.resolve().await.unwrap_err();
            assert_eq!(err.kind(), FailureKind::InvalidConfig, "{lang:?} {bad:?}");
            assert!(
                err.message().contains("`ttl_ms`"),
                "{lang:?} {bad:?}: {err}"
            );
        }
        // What Rust's u64 parser accepts after trim(), the guests accept too.
        for (good, ttl) in [(" 1000 ", 1000), ("+1000", 1000), ("0", 0)] {
            let source = source(lang, "corp", &[("token", "tok"), ("ttl_ms", good)]);
            let before = now_ms();
            let expires = source.resolve().await.unwrap().expires_at_ms().unwrap();
            assert!(
                (before + ttl..=now_ms() + ttl).contains(&expires),
                "{lang:?} {good:?}"
            );
        }
    }
}

#[test]
fn second_load_comes_from_the_compiled_cache() {
    for lang in LANGS {
        let origin = first_load(lang);
        assert_eq!(origin, Origin::Compiled, "{lang:?}: a fresh cache compiles");
        // A new runtime stands for a new process: same engine settings, same cache dir.
        // (How much faster the cached load is: `cargo bench --bench plugin`.)
        let second = PluginRuntime::new(CompiledCache::at(cache_dir().join("c"))).unwrap();
        let loaded = second.load(&foreign_plugin(lang)).unwrap();
        assert_eq!(loaded.origin, Origin::Cache, "{lang:?}");
    }
}

#[test]
fn inspect_reports_the_contract_version() {
    for lang in LANGS {
        first_load(lang);
        let info = inspect(&runtime(), &foreign_plugin(lang)).unwrap();
        assert_eq!(
            info.contract.as_deref(),
            Some("tokenhost:plugin@0.1.0"),
            "{lang:?}"
        );
        assert!(
            info.exports
                .iter()
                .any(|e| e == "tokenhost:plugin/token-source@0.1.0"),
            "{lang:?}: {:?}",
            info.exports
        );
        assert!(
            info.imports
                .iter()
                .any(|i| i == "tokenhost:plugin/host@0.1.0"),
            "{lang:?}: {:?}",
            info.imports
        );
    }
}
