//! `tokenhost token`: one token on stdout, nothing else.
//!
//! When a broker (`tokenhost serve`) serves the same config, the token comes from it
//! (`--refresh` asks it for a new one); otherwise, or with `--no-broker`, the provider's
//! source runs in this process. A broker that cannot be reached or breaks off mid-request
//! means an in-process call, with a log line; a broker's answer (a token, or a source
//! failure) is final.

use std::path::Path;

use tokenhost::Token;
use tokenhost::broker::{BrokerClient, BrokerError, ErrorKind, socket_path};

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
    let spec = super::provider_spec(&config, &args.provider)?;
    let runtime = super::runtime()?;
    let brokered = match args.no_broker {
        true => None,
        false => runtime.block_on(from_broker(
            &socket_path(config.path()),
            &args.provider,
            args.refresh,
        ))?,
    };
    let token = match brokered {
        Some(token) => token,
        None => {
            let factory = args.config.factory()?;
            let source = factory.build(spec).map_err(Failure::usage)?;
            let manager = tokenhost::AuthManager::builder()
                .provider(spec.id.clone(), spec.refresh_interval, source)
                .build();
            let token = runtime.block_on(async {
                if args.refresh {
                    manager.refresh(&args.provider).await
                } else {
                    manager.auth(&args.provider).await
                }
            });
            token.map_err(Failure::auth)?
        }
    };
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

/// The token from the broker at `socket`, `None` to resolve in-process (no broker, or it
/// did not answer), or the broker's error.
async fn from_broker(
    socket: &Path,
    provider: &str,
    refresh: bool,
) -> Result<Option<Token>, Failure> {
    let socket_shown = socket.display();
    let mut client = match BrokerClient::try_connect(socket).await {
        Ok(client) => client,
        Err(e @ BrokerError::NotRunning { .. }) if socket.exists() => {
            tracing::info!("{e}; resolving in-process");
            return Ok(None);
        }
        Err(e @ BrokerError::NotRunning { .. }) => {
            tracing::debug!("{e}; resolving in-process");
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!("not using the broker at {socket_shown} ({e}); resolving in-process");
            return Ok(None);
        }
    };
    let answer = match refresh {
        true => client.refresh(provider).await,
        false => client.token(provider).await,
    };
    match answer {
        Ok(token) => {
            tracing::info!(
                "token {} from the broker at {socket_shown}",
                token.fingerprint()
            );
            Ok(Some(token))
        }
        Err(BrokerError::Remote {
            kind: ErrorKind::UnknownProvider,
            ..
        }) => {
            tracing::warn!(
                "the broker at {socket_shown} does not know provider \"{provider}\" (send it \
                 SIGHUP to reload its config); resolving in-process"
            );
            Ok(None)
        }
        Err(BrokerError::Remote { message, .. }) => Err(Failure::source(message)),
        Err(e) => {
            tracing::warn!("broker at {socket_shown} did not answer ({e}); resolving in-process");
            Ok(None)
        }
    }
}
