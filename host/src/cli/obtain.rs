//! Getting a token for a client that runs tokenhost as a command (`token`,
//! `git-credential`), and telling tokenhost that a token was rejected.
//!
//! When a broker (`tokenhost serve`) serves the same config, the token comes from it;
//! otherwise, or with `--no-broker`, the provider's source runs in this process. A
//! broker that cannot be reached or breaks off mid-request means an in-process call, with
//! a log line; a broker's answer (a token, or a source failure) is final. Under a policy,
//! the provider is checked against this process's policy first, whether or not a broker
//! answers. A token that a client reported rejected ([`RejectedTokens`]) is never handed
//! out again: it is reported to the manager (or broker) as rejected, once, and the
//! replacement is handed out instead. A client that only asks again (Codex, kubectl) is
//! named in [`Ask::client`]; the broker's [`AskLedger`](tokenhost::clients::AskLedger),
//! or without one a [`LedgerFile`], tells its retry from a first ask.

use std::path::Path;

use tokenhost::broker::{BrokerClient, BrokerError, ErrorKind, socket_dir, socket_path};
use tokenhost::clients::{self, ClientAsk, LedgerFile, RejectedTokens};
use tokenhost::config::Config;
use tokenhost::token::Fingerprint;
use tokenhost::{Prepared, Token};

use super::Failure;

/// How a token is asked for.
#[derive(Clone, Copy, Default)]
pub(super) struct Ask {
    /// The program that runs tokenhost as its credential command, when its re-asks are
    /// to be read as retries.
    pub client: Option<ClientAsk>,
    /// Ask the source for a new token instead of using its current one.
    pub refresh: bool,
    /// Run the source in this process even when a broker serves this config.
    pub no_broker: bool,
}

/// A token for `provider` of `config` (see the module documentation).
pub(super) fn token(prepared: Prepared, provider: &str, ask: Ask) -> Result<Token, Failure> {
    let config = prepared.config();
    let spec = super::provider_spec(config, provider)?;
    // A broker applies the policy it was started with; what this process hands out must
    // satisfy this process's policy too (a stricter --policy, a tightened system file).
    if !prepared.policy().is_empty() {
        prepared.check(spec).map_err(|e| Failure::build(&e))?;
    }
    let rejected = RejectedTokens::for_config(config.path());
    let brokered = match ask.no_broker {
        true => None,
        false => super::current_thread_runtime()?.block_on(from_broker(
            &socket_path(config.path()),
            provider,
            ask,
            &rejected,
        ))?,
    };
    if let Some(token) = brokered {
        return Ok(token);
    }
    let interval = spec.refresh_interval;
    let ledger = LedgerFile::in_dir(&socket_dir(), config.path());
    let tokenhost = super::built(prepared.build(), true)?;
    let manager = tokenhost.manager();
    super::runtime()?.block_on(async {
        let token = match (ask.refresh, &ask.client) {
            (true, _) => manager.refresh(provider).await,
            (false, Some(client)) => {
                clients::answer(manager, provider, interval, client, &ledger)
                    .await
                    .map(|answer| {
                        // The next process's source may return the same token (a plugin
                        // that caches, a static one): tell it, as git's `erase` would.
                        if let Some(fingerprint) = answer.rejected
                            && let Err(e) = rejected.record(provider, &fingerprint)
                        {
                            tracing::warn!("cannot record the rejected token: {e}");
                        }
                        answer.token
                    })
            }
            (false, None) => manager.auth(provider).await,
        }
        .map_err(Failure::auth)?;
        if !rejected.contains(provider, &token.fingerprint()) {
            return Ok(token);
        }
        tracing::info!(
            "token {} was reported rejected; asking provider \"{provider}\" for another",
            token.fingerprint()
        );
        manager
            .unauthorized(provider, &token)
            .await
            .map_err(Failure::auth)
    })
}

/// Records that the token with `fingerprint` was rejected (for the next process), and
/// tells the broker, if one serves this config, so its cache moves on now. The broker
/// refreshes only if it still holds that very token (client-go's rule): a report of a
/// token it never handed out costs nothing.
pub(super) fn report_rejected(
    config: &Config,
    provider: &str,
    fingerprint: &Fingerprint,
) -> Result<(), Failure> {
    super::provider_spec(config, provider)?;
    RejectedTokens::for_config(config.path())
        .record(provider, fingerprint)
        .map_err(Failure::usage)?;
    let socket = socket_path(config.path());
    super::current_thread_runtime()?.block_on(async {
        let Ok(mut client) = BrokerClient::try_connect(&socket).await else {
            return;
        };
        match client.unauthorized(provider, *fingerprint).await {
            Ok(token) => tracing::info!(
                "reported {fingerprint} rejected to the broker; it now holds {}",
                token.fingerprint()
            ),
            Err(e) => tracing::warn!("could not report the rejected token to the broker: {e}"),
        }
    });
    Ok(())
}

/// The token from the broker at `socket`, `None` to resolve in-process (no broker, or it
/// did not answer), or the broker's error.
async fn from_broker(
    socket: &Path,
    provider: &str,
    ask: Ask,
    rejected: &RejectedTokens,
) -> Result<Option<Token>, Failure> {
    let socket_shown = socket.display();
    let mut client = match BrokerClient::try_connect(socket).await {
        Ok(client) => client,
        // A socket (or pipe) that is there but does not answer is worth a line.
        Err(e @ BrokerError::NotRunning { .. }) if !no_endpoint(&e) => {
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
    let mut answer = match (ask.refresh, &ask.client) {
        (true, _) => client.refresh(provider).await,
        (false, Some(asking)) => match client.ask(provider, asking).await {
            // A broker from before `ask`: its plain token, without retry detection.
            Err(BrokerError::Remote {
                kind: ErrorKind::NotFound,
                ..
            }) => client.token(provider).await,
            answer => answer,
        },
        (false, None) => client.token(provider).await,
    };
    if let Ok(token) = &answer
        && rejected.contains(provider, &token.fingerprint())
    {
        tracing::info!(
            "the broker's token {} was reported rejected; asking it for another",
            token.fingerprint()
        );
        answer = client.unauthorized(provider, token.fingerprint()).await;
    }
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
                 SIGHUP or restart it to reload its config); resolving in-process"
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

/// Whether `error` says there is no socket (Windows: no pipe) at all, rather than one
/// that does not answer.
fn no_endpoint(error: &BrokerError) -> bool {
    matches!(error, BrokerError::NotRunning { source, .. }
        if source.kind() == std::io::ErrorKind::NotFound)
}
