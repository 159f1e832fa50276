//! Plugins in JavaScript and Python (12-18 MB components embedding an interpreter),
//! measured against baselines in the same run: loading from the compiled cache against
//! compiling, and a refresh on a live instance against the same refresh by the Rust
//! `static-token` plugin.
//!
//! Needs `scripts/build-plugins` and `scripts/build-foreign-plugins`. A foreign plugin
//! takes seconds to compile, so the `compile` baselines run only under `cargo bench`
//! (`--bench`), not when `cargo test --all-targets` runs this file once in test mode.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokenhost::config::PluginSpec;
use tokenhost::granter::Granted;
use tokenhost::source::wasm::cache::Origin;
use tokenhost::source::wasm::{CompiledCache, PluginRuntime, WasmSource};
use tokenhost::{RefreshReason, TokenSource};

/// The JS and Python artifacts, or `None` (with a note) when they were not built.
fn foreign_plugins() -> Option<[(&'static str, PathBuf); 2]> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/foreign");
    let plugins = [
        ("js", dir.join("js-static-token.wasm")),
        ("py", dir.join("py-static-token.wasm")),
    ];
    if plugins.iter().all(|(_, path)| path.exists()) {
        Some(plugins)
    } else {
        eprintln!("foreign plugins not built: run scripts/build-foreign-plugins; skipped");
        None
    }
}

/// A compiled cache next to the artifacts, shared by both benchmarks and kept between
/// runs: each plugin is compiled once, not once per benchmark (seconds each).
fn cached_runtime() -> std::sync::Arc<PluginRuntime> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/foreign/compiled");
    PluginRuntime::new(CompiledCache::at(dir)).unwrap()
}

fn spec(path: PathBuf) -> Granted {
    Granted::unrestricted(PluginSpec {
        path,
        oci: None,
        timeout: Duration::from_secs(10),
        memory_limit_bytes: 256 << 20,
        config: vec![("token".into(), "tok".into())],
        grants: Default::default(),
        secrets: Default::default(),
    })
}

fn load(c: &mut Criterion) {
    let Some(plugins) = foreign_plugins() else {
        return;
    };
    let benching = std::env::args().any(|a| a == "--bench");
    let cached = cached_runtime();
    let uncached = PluginRuntime::new(CompiledCache::disabled()).unwrap();
    let mut group = c.benchmark_group("foreign_load");
    group.sample_size(10);
    for (lang, path) in &plugins {
        cached.load(path).unwrap();
        group.bench_function(format!("{lang}_from_compiled_cache"), |b| {
            b.iter(|| assert_eq!(cached.load(path).unwrap().origin, Origin::Cache))
        });
        if benching {
            group.bench_function(format!("{lang}_compile"), |b| {
                b.iter(|| assert_eq!(uncached.load(path).unwrap().origin, Origin::Compiled))
            });
        }
    }
    group.finish();
}

fn refresh(c: &mut Criterion) {
    let Some([js, py]) = foreign_plugins() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plugins = cached_runtime();
    let sources = [
        ("rust", support::plugin("static-token")),
        ("js", js.1),
        ("py", py.1),
    ]
    .map(|(lang, path)| {
        let source = WasmSource::new(&plugins, "bench".into(), &spec(path)).unwrap();
        runtime.block_on(source.resolve()).unwrap();
        (lang, source)
    });
    let mut group = c.benchmark_group("foreign_refresh_warm");
    for (lang, source) in &sources {
        group.bench_function(*lang, |b| {
            b.to_async(&runtime)
                .iter(|| async { source.refresh(RefreshReason::Expiring).await.unwrap() })
        });
    }
    group.finish();
}

criterion_group!(benches, load, refresh);
criterion_main!(benches);
