//! `tokenhost precompile`: fills the administrator's compiled-plugin cache.
//!
//! Under a plugin allowlist, users' own caches are not trusted (they could hold forged
//! code under an approved digest; see `tokenhost::source::wasm::cache`), so each process would
//! compile its plugins afresh: 30 ms for a Rust plugin, seconds for JavaScript or Python.
//! Run as root, this command compiles the approved plugins once into the admin cache,
//! which every user then reads and nobody else can write.

use std::path::PathBuf;

use tokenhost::source::wasm::{CompiledCache, PluginRuntime};

use super::{ConfigArg, Failure};

/// Arguments of `tokenhost precompile`.
#[derive(clap::Args)]
pub struct PrecompileArgs {
    /// Plugin files to compile. Default: every plugin in the config.
    files: Vec<PathBuf>,
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs `tokenhost precompile`: each plugin must pass the policy's plugin rule.
pub fn run(args: PrecompileArgs) -> Result<(), Failure> {
    let policy = args.config.policy()?;
    // Each file with the detached signature files that came with it (an OCI artifact's
    // signature layer).
    let files: Vec<(PathBuf, Vec<PathBuf>)> = match args.files.is_empty() {
        false => args.files.iter().map(|f| (f.clone(), Vec::new())).collect(),
        true => {
            let config = args.config.load()?;
            let store = tokenhost::oci::Store::default_location();
            let mut files = Vec::new();
            for spec in config.providers() {
                let Some(plugin) = spec.source.plugin() else {
                    continue;
                };
                // A plugin from a registry is compiled from where it was pulled to.
                files.push(match &plugin.oci {
                    Some(oci) => {
                        let helpers = tokenhost::oci::CredentialHelpers::under(&policy, &spec.id);
                        let pulled = tokenhost::oci::fetch(oci, &store, helpers).map_err(|e| {
                            match e.is_unreachable() {
                                true => Failure::source(e),
                                false => Failure::usage(e),
                            }
                        })?;
                        (pulled.path, pulled.signature.into_iter().collect())
                    }
                    None => (plugin.path.clone(), Vec::new()),
                });
            }
            files
        }
    };
    if files.is_empty() {
        return Err(Failure::usage("no plugins to precompile"));
    }
    let cache = CompiledCache::admin_for_writing()
        .map_err(|why| Failure::usage(format!("cannot write the administrator's cache: {why}")))?;
    let dir = cache
        .dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let runtime = PluginRuntime::new(cache).map_err(Failure::usage)?;
    for (file, signatures) in &files {
        let name = file.display().to_string();
        let mut refused = Vec::new();
        let loaded = runtime
            .load_verified(file, &mut |plugin| {
                let plugin = plugin.with_signature_files(signatures);
                refused = policy.check_plugin(&name, &plugin);
                refused.is_empty()
            })
            .map_err(|e| match refused.is_empty() {
                true => Failure::usage(e),
                false => Failure::usage(tokenhost::policy::Violation::joined(&refused)),
            })?;
        outln!(
            "{name}: sha256 {} ({}) in {dir}",
            hex::encode(loaded.sha256),
            match loaded.origin {
                tokenhost::source::wasm::cache::Origin::Cache => "already compiled",
                _ => "compiled",
            }
        )?;
    }
    Ok(())
}
