//! `tokenhost token`: one token on stdout, nothing else.

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
}

/// Runs `tokenhost token`.
pub fn run(args: TokenArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let Some(spec) = config.provider(&args.provider) else {
        let mut known: Vec<&str> = config.providers().map(|p| &*p.id).collect();
        known.sort_unstable();
        let hint = if config.providers_without_auth().contains(&args.provider) {
            format!("provider \"{}\" has no [auth] table", args.provider)
        } else {
            format!("unknown provider \"{}\"", args.provider)
        };
        let known = if known.is_empty() {
            "(none)".to_string()
        } else {
            known.join(", ")
        };
        return Err(Failure::usage(format!(
            "{hint}; providers with a token source in {}: {known}",
            config.path().display()
        )));
    };
    let factory = args.config.factory()?;
    let source = factory.build(spec).map_err(Failure::usage)?;
    let manager = tokenhost::AuthManager::builder()
        .provider(spec.id.clone(), spec.refresh_interval, source)
        .build();
    let token = super::runtime()?.block_on(async {
        if args.refresh {
            manager.refresh(&args.provider).await
        } else {
            manager.auth(&args.provider).await
        }
    });
    let token = token.map_err(Failure::auth)?;
    if args.json {
        let json = serde_json::json!({
            "token": token.expose(),
            "expires_at_ms": token.expires_at_ms(),
        });
        println!("{json}");
    } else {
        println!("{}", token.expose());
    }
    Ok(())
}
