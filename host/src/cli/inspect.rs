//! `tokenhost inspect`: what a plugin file is, before anyone runs it, and who signed it.

use std::path::PathBuf;

use super::{ConfigArg, Failure};
use tokenhost::publisher::PublisherKey;
use tokenhost::source::wasm::{CompiledCache, PluginRuntime, inspect::inspect_with_keys};

/// Arguments of `tokenhost inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The plugin (.wasm component).
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Signatures are checked against the publisher keys of the policy and of the
    /// config's providers (the default config only if it loads).
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs `tokenhost inspect`.
pub fn run(args: InspectArgs) -> Result<(), Failure> {
    let policy = args.config.policy()?;
    let config = match &args.config.config {
        Some(_) => Some(args.config.load()?),
        None => args.config.load().ok(),
    };
    let mut keys: Vec<(String, &PublisherKey)> = policy.publisher_keys();
    if let Some(config) = &config {
        for spec in config.providers() {
            if let Some(key) = &spec.publisher_key {
                let id = tokenhost::text::escaped(&spec.id);
                keys.push((format!("config provider {id} publisher_key"), key));
            }
        }
    }
    let runtime = PluginRuntime::new(CompiledCache::default_location()).map_err(Failure::usage)?;
    let info = inspect_with_keys(&runtime, &args.file, &keys).map_err(Failure::usage)?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&info).map_err(Failure::usage)?
        )?;
        return Ok(());
    }
    outln!("file:     {}", args.file.display())?;
    outln!("sha256:   {}", info.sha256)?;
    if info.unsigned_sha256 != info.sha256 {
        outln!(
            "unsigned: {} (the file without its signature section)",
            info.unsigned_sha256
        )?;
    }
    outln!("size:     {} bytes", info.size)?;
    outln!(
        "contract: {}",
        info.contract
            .as_deref()
            .unwrap_or("none (not a tokenhost plugin)")
    )?;
    outln!("exports:")?;
    for name in &info.exports {
        outln!("  {name}")?;
    }
    outln!("imports:")?;
    for name in &info.imports {
        outln!("  {name}")?;
    }
    match info.signatures.is_empty() {
        true => outln!("signatures: none")?,
        false => outln!("signatures:")?,
    }
    for signature in &info.signatures {
        let key_id = match &signature.key_id {
            Some(id) => format!("key id {id}"),
            None => "no key id".to_string(),
        };
        let verdict = match (signature.covers_content, signature.verified_by.as_slice()) {
            (false, _) => "does not cover this file (modified after signing)".to_string(),
            (true, []) => "by a key the policy and the config do not name".to_string(),
            (true, labels) => format!("verifies with {}", labels.join(", ")),
        };
        outln!("  {}: {key_id}: {verdict}", signature.origin)?;
    }
    for problem in &info.signature_problems {
        outln!("  unreadable: {problem}")?;
    }
    Ok(())
}
