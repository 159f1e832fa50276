//! `tokenhost serve`: the token broker for one config (see [`tokenhost::broker`]).

use std::sync::Arc;

use tokenhost::broker::{Broker, Loader, socket_path};

use super::{ConfigArg, Failure};

/// Arguments of `tokenhost serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs `tokenhost serve` until SIGTERM or SIGINT (Windows: Ctrl+C, the console closing).
/// SIGHUP (Unix) re-reads the config and the policy. Setup failures (bad config, a broker
/// already serving) exit 2.
pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let (config, manager) = args.config.tokenhost(None, true)?.into_parts();
    let socket = socket_path(config.path());
    let path = config.path().to_path_buf();
    let arg = Arc::new(args.config);
    let reload: Loader = Arc::new(move || {
        let built = arg.tokenhost(None, true).map_err(|f| f.message)?;
        Ok(built.into_parts())
    });
    super::runtime()?.block_on(async {
        let broker = Broker::bind(config, manager, &socket)
            .await
            .map_err(Failure::usage)?;
        eprintln!(
            "tokenhost: serving {} at {}",
            path.display(),
            broker.socket().display()
        );
        broker.serve(reload).await.map_err(Failure::usage)
    })
}
