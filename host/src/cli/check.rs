//! `tokenhost check`: validate every provider (and, with --resolve, fetch a token from
//! each), one status line per provider, continuing after failures.

use super::{ConfigArg, Failure, describe_expiry};

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
    let built = args.config.tokenhost(None, false)?;
    let config = built.config();
    outln!("config {}", config.path().display())?;
    for file in built.policy().files() {
        outln!("policy {}", file.display())?;
    }
    let runtime = super::runtime()?;
    let (mut config_errors, mut source_errors) = (0, 0);
    for spec in config.providers() {
        let id = tokenhost::text::escaped(&spec.id);
        let kind = spec.source.to_string();
        for lowered in built.policy().lower_defaults(spec).1 {
            outln!("note {lowered}")?;
        }
        let failure = built.failures().iter().find(|f| f.provider == *spec.id);
        if let Some(failure) = failure {
            config_errors += 1;
            match failure.error.violations() {
                [] => outln!("FAIL {id}: {}", failure.error)?,
                violations => {
                    for violation in violations {
                        outln!("FAIL {violation}")?;
                    }
                }
            }
            continue;
        }
        if !args.resolve {
            outln!("ok   {id}: {kind}")?;
            continue;
        }
        match runtime.block_on(built.manager().auth(&spec.id)) {
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
