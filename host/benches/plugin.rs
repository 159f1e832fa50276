//! What a token costs from each kind of source, measured in the same run:
//! a warm plugin `refresh` against spawning a one-line shell command, and loading a
//! plugin from the compiled cache against compiling it.

#[path = "../../tests/support/idp.rs"]
mod idp;
mod support;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tokenhost::config::{CommandSpec, OutputFormat, PluginSpec};
use tokenhost::source::command::CommandSource;
use tokenhost::source::wasm::cache::Origin;
use tokenhost::source::wasm::{CompiledCache, PluginRuntime, WasmSource};
use tokenhost::{RefreshReason, TokenSource};

fn token_sources(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plugin_runtime = PluginRuntime::new(CompiledCache::disabled()).unwrap();
    let spec = PluginSpec {
        path: support::plugin("static-token"),
        oci: None,
        timeout: Duration::from_secs(5),
        memory_limit_bytes: 64 << 20,
        config: vec![("token".into(), "tok".into())],
        grants: Default::default(),
        secrets: Default::default(),
    };
    let spec = tokenhost::granter::Granted::unrestricted(spec);
    let wasm = WasmSource::new(&plugin_runtime, "bench".into(), &spec).unwrap();
    runtime.block_on(wasm.resolve()).unwrap();
    let command = CommandSource::new(
        Arc::from("bench"),
        CommandSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "echo tok".into()],
            cwd: std::env::temp_dir(),
            timeout: Duration::from_secs(5),
            format: OutputFormat::Text,
        },
    );

    let mut group = c.benchmark_group("token_source");
    group.bench_function("plugin_refresh_warm", |b| {
        b.to_async(&runtime)
            .iter(|| async { wasm.refresh(RefreshReason::Expiring).await.unwrap() })
    });
    group.bench_function("command_spawn_sh_echo", |b| {
        b.to_async(&runtime)
            .iter(|| async { command.resolve().await.unwrap() })
    });
    group.finish();
}

fn plugin_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = support::plugin("static-token");
    let cached = PluginRuntime::new(CompiledCache::at(dir.path().join("compiled"))).unwrap();
    cached.load(&path).unwrap();
    let uncached = PluginRuntime::new(CompiledCache::disabled()).unwrap();

    let mut group = c.benchmark_group("plugin_load");
    group.bench_function("from_compiled_cache", |b| {
        b.iter(|| assert_eq!(cached.load(&path).unwrap().origin, Origin::Cache))
    });
    group.sample_size(20);
    group.bench_function("compile", |b| {
        b.iter(|| assert_eq!(uncached.load(&path).unwrap().origin, Origin::Compiled))
    });
    group.finish();
}

/// A refresh through the `oauth2` plugin against a loopback identity provider, against
/// the same token request made by `curl` run as a command source.
fn oauth2_vs_curl(c: &mut Criterion) {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server_runtime.block_on(idp::Server::start(|_, _| {
        idp::Reply::token("bench-token", 3600)
    }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plugin_runtime = PluginRuntime::new(CompiledCache::disabled()).unwrap();
    let spec = PluginSpec {
        path: support::plugin("oauth2"),
        oci: None,
        timeout: Duration::from_secs(5),
        memory_limit_bytes: 64 << 20,
        config: vec![
            ("token_url".into(), server.url("/token")),
            ("client_id".into(), "bench".into()),
            ("client_secret".into(), "secret".into()),
            ("allow_secret_in_config".into(), "true".into()),
        ],
        grants: tokenhost::grants::Grants {
            hosts: tokenhost::grants::grant_hosts(&[server.authority()]).unwrap(),
            ..Default::default()
        },
        secrets: Default::default(),
    };
    let spec = tokenhost::granter::Granted::unrestricted(spec);
    let wasm = WasmSource::new(&plugin_runtime, "bench".into(), &spec).unwrap();
    runtime.block_on(wasm.resolve()).unwrap();
    let curl = CommandSource::new(
        Arc::from("bench"),
        CommandSpec {
            program: "curl".into(),
            args: vec![
                "-sS".into(),
                "-u".into(),
                "bench:secret".into(),
                "-d".into(),
                "grant_type=client_credentials".into(),
                server.url("/token"),
            ],
            cwd: std::env::temp_dir(),
            timeout: Duration::from_secs(5),
            format: OutputFormat::Text,
        },
    );
    let mut group = c.benchmark_group("oauth2_loopback");
    group.bench_function("plugin_refresh", |b| {
        b.to_async(&runtime)
            .iter(|| async { wasm.refresh(RefreshReason::Expiring).await.unwrap() })
    });
    // The baseline needs curl; a machine without it still runs the plugin side.
    if tokenhost::source::command::locate("curl", &std::env::temp_dir()).is_ok() {
        group.bench_function("curl_command", |b| {
            b.to_async(&runtime)
                .iter(|| async { curl.resolve().await.unwrap() })
        });
    } else {
        eprintln!("curl is not on PATH: skipping the curl baseline");
    }
    group.finish();
    drop(server_runtime);
}

criterion_group!(benches, token_sources, plugin_load, oauth2_vs_curl);
criterion_main!(benches);
