//! `tokenhost token`: one token on stdout, nothing else. Where it comes from (a broker or
//! this process) is [`obtain`](super::obtain)'s business; `--refresh` asks for a new one.

use super::obtain::Ask;
use super::{ConfigArg, Failure};

/// Arguments of `tokenhost token`.
#[derive(clap::Args)]
pub struct TokenArgs {
    /// The provider id (a key under [model_providers]).
    provider: String,
    #[command(flatten)]
    config: ConfigArg,
    /// Ask the source for a new token instead of using its current one.
    #[arg(long)]
    refresh: bool,
    /// Print {"token": ..., "expires_at_ms": ...} instead of the bare token.
    #[arg(long)]
    json: bool,
    /// Run the source in this process even when a broker serves this config.
    #[arg(long)]
    no_broker: bool,
}

/// Runs `tokenhost token`.
pub fn run(args: TokenArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let ask = Ask {
        refresh: args.refresh,
        no_broker: args.no_broker,
    };
    let token = super::obtain::token(&args.config, &config, &args.provider, ask)?;
    if args.json {
        let json = serde_json::json!({
            "token": token.expose(),
            "expires_at_ms": token.expires_at_ms(),
        });
        outln!("{json}")?;
    } else {
        outln!("{}", token.expose())?;
    }
    Ok(())
}
