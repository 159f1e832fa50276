//! The memory of many live plugin instances in one process (issue #17, goal 5):
//! `cargo run --release --example rss_providers -- [N] [plugin.wasm]`.
//!
//! Builds N providers that all run `plugin` (default: the Rust `static-token` plugin),
//! as a broker does (one [`tokenhost::Tokenhost`], the compiled cache warm), gets a
//! token from each so that each keeps a live instance, and prints the resident memory
//! (`VmRSS`, and the peak `VmHWM`, from `/proc/self/status`) before, after loading and
//! after the N instances are live, with the cost per live instance. Linux only.

use std::path::PathBuf;

use tokenhost::source::wasm::CompiledCache;

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .first()
        .map_or(100, |n| n.parse().expect("N: a number"));
    let plugin = args.get(1).map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../plugins/target/wasm32-wasip2/release/static_token.wasm")
        },
        PathBuf::from,
    );
    let plugin = plugin
        .canonicalize()
        .expect("the plugin file (run scripts/build-plugins)");
    let dir = tempfile::tempdir().unwrap();
    let cache = std::env::var_os("RSS_PROVIDERS_CACHE")
        .map_or_else(|| dir.path().join("compiled"), PathBuf::from);
    let mut config = String::new();
    for i in 0..n {
        config.push_str(&format!(
            "[model_providers.p{i}.auth]\nplugin = {:?}\nconfig = {{ token = \"token-{i}\" }}\n",
            plugin.display().to_string()
        ));
    }
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    // Warm the compiled cache first, in a tokenhost of its own, as a broker that starts
    // after `tokenhost precompile` or an earlier run would find it.
    let warm = tokenhost::Tokenhost::builder()
        .config(&config_path)
        .only(["p0"])
        .compiled_cache(CompiledCache::at(cache.clone()))
        .build()
        .unwrap();
    drop(warm);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (start, _) = rss_kib();
    let tokenhost = tokenhost::Tokenhost::builder()
        .config(config_path)
        .compiled_cache(CompiledCache::at(cache))
        .build()
        .unwrap();
    assert!(
        tokenhost.failures().is_empty(),
        "{:?}",
        tokenhost.failures().len()
    );
    let (loaded, _) = rss_kib();
    runtime.block_on(async {
        for i in 0..n {
            let token = tokenhost.manager().auth(&format!("p{i}")).await.unwrap();
            assert_eq!(token.expose(), format!("token-{i}"));
        }
    });
    let (live, peak) = rss_kib();
    println!("plugin {}", plugin.display());
    println!(
        "{n} providers: rss {} before, {} loaded, {} with {n} live instances (peak {})",
        mib(start),
        mib(loaded),
        mib(live),
        mib(peak)
    );
    println!(
        "per provider: {} KiB to load, {} KiB per live instance",
        loaded.saturating_sub(start) / n.max(1) as u64,
        live.saturating_sub(loaded) / n.max(1) as u64
    );
}
