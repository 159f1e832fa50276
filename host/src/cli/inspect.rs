//! `tokenhost inspect`: what a plugin file is, before anyone runs it.

use std::path::PathBuf;

use super::Failure;
use tokenhost::source::wasm::{CompiledCache, PluginRuntime, inspect::inspect};

/// Arguments of `tokenhost inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The plugin (.wasm component).
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `tokenhost inspect`.
pub fn run(args: InspectArgs) -> Result<(), Failure> {
    let runtime = PluginRuntime::new(CompiledCache::default_location()).map_err(Failure::usage)?;
    let info = inspect(&runtime, &args.file).map_err(Failure::usage)?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&info).map_err(Failure::usage)?
        )?;
        return Ok(());
    }
    outln!("file:     {}", args.file.display())?;
    outln!("sha256:   {}", info.sha256)?;
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
    Ok(())
}
