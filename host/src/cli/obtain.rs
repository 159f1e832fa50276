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

use tokenhost::broker::{BrokerClient, socket_dir, socket_path};
use tokenhost::clients::{self, Brokered, ClientAsk, CommandAsk, LedgerFile, RejectedTokens};
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
        false => from_broker(&socket_path(config.path()), provider, ask, &rejected)?,
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
        let replacement = manager
            .unauthorized(provider, &token)
            .await
            .map_err(Failure::auth)?;
        clients::forget_if_same(&rejected, provider, token.fingerprint(), &replacement);
        Ok(replacement)
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
/// did not answer), or the broker's error. On Unix over the blocking client the lean front
/// uses too; on Windows over the async one (named pipes).
fn from_broker(
    socket: &Path,
    provider: &str,
    ask: Ask,
    rejected: &RejectedTokens,
) -> Result<Option<Token>, Failure> {
    let ask = CommandAsk {
        client: ask.client,
        refresh: ask.refresh,
    };
    #[cfg(unix)]
    let answer = match tokenhost::broker::BlockingClient::connect(socket) {
        Err(e) => Brokered::unreachable(socket, e),
        Ok(mut client) => clients::from_broker(socket, provider, ask, rejected, |call| {
            client.send(provider, call)
        }),
    };
    #[cfg(not(unix))]
    let answer = {
        let runtime = super::current_thread_runtime()?;
        match runtime.block_on(BrokerClient::try_connect(socket)) {
            Err(e) => Brokered::unreachable(socket, e),
            Ok(mut client) => clients::from_broker(socket, provider, ask, rejected, |call| {
                runtime.block_on(client.send(provider, call))
            }),
        }
    };
    answer.log(socket);
    match answer {
        Brokered::Token(token) => Ok(Some(token)),
        Brokered::Failed(message) => Err(Failure::source(message)),
        Brokered::InProcess { .. } => Ok(None),
    }
}
