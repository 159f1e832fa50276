//! `tokenhost check`: validate every provider (and, with --resolve, fetch a token from
//! each), one status line per provider, continuing after failures.

use super::{ConfigArg, Failure, describe_expiry};
use tokenhost::config::SourceSpec;
use tokenhost::source::SourceFactory;
use tokenhost::wasm::CompiledCache;

/// Arguments of `tokenhost check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Also fetch a token from every provider (prints fingerprints, never tokens).
    #[arg(long)]
    resolve: bool,
}

/// Runs `tokenhost check`.
pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let policy = args.config.policy()?;
    outln!("config {}", config.path().display())?;
    for file in policy.files() {
        outln!("policy {}", file.display())?;
    }
    let factory = SourceFactory::with_policy(CompiledCache::default_location(), policy);
    let runtime = super::runtime()?;
    let (mut config_errors, mut source_errors) = (0, 0);
    for spec in config.providers() {
        let id = tokenhost::text::escaped(&spec.id);
        let kind = match &spec.source {
            SourceSpec::Command(c) => format!("command `{}`", c.program),
            SourceSpec::Plugin(p) => format!("plugin {}", p.path.display()),
        };
        for lowered in factory.policy().lower_defaults(spec).1 {
            outln!("note {lowered}")?;
        }
        let source = match factory.build(spec) {
            Ok(source) => source,
            Err(e) if !e.violations().is_empty() => {
                config_errors += 1;
                for violation in e.violations() {
                    outln!("FAIL {violation}")?;
                }
                continue;
            }
            Err(e) => {
                config_errors += 1;
                outln!("FAIL {id}: {e}")?;
                continue;
            }
        };
        if !args.resolve {
            outln!("ok   {id}: {kind}")?;
            continue;
        }
        let manager = tokenhost::AuthManager::builder()
            .provider(spec.id.clone(), spec.refresh_interval, source)
            .build();
        match runtime.block_on(manager.auth(&spec.id)) {
            Ok(token) => outln!(
                "ok   {id}: {kind}: token {} ({})",
                token.fingerprint(),
                describe_expiry(token.expires_at_ms())
            )?,
            Err(e) => {
                source_errors += 1;
                outln!("FAIL {e}")?;
            }
        }
    }
    for id in config.providers_without_auth() {
        outln!("skip {}: no [auth] table", tokenhost::text::escaped(id))?;
    }
    match (config_errors, source_errors) {
        (0, 0) => Ok(()),
        (0, n) => Err(Failure::source(format!(
            "{n} provider(s) failed to produce a token"
        ))),
        (n, _) => Err(Failure::usage(format!(
            "{n} provider(s) have configuration errors"
        ))),
    }
}
