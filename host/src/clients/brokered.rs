//! A command-run client's token from a broker: which request to send, what a token the
//! client reported rejected means, and which answers are final.
//!
//! `tokenhost token` asks a broker in two places: the lean front of the command (a
//! blocking socket, no runtime) and the full command (any platform). Both decide here,
//! with their own way of sending a [`TokenCall`], so they hand out the same token and
//! fall back to an in-process call for the same reasons:
//! - a token is final, unless the client reported it rejected ([`RejectedTokens`]): the
//!   broker is then told so, once, and its replacement is the answer;
//! - a source failure the broker reports is final (the broker's message is the same line
//!   a local call prints);
//! - anything else (no broker, a broker that does not know the provider, one that broke
//!   off or did not speak the protocol) means resolving in-process, with a note for the
//!   log.

use tracing::Level;

use super::{ClientAsk, RejectedTokens};
use crate::broker::{BrokerError, ErrorKind, TokenCall};
use crate::token::Token;

/// How a command-run client asks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandAsk {
    /// The program that runs tokenhost as its credential command, when its re-asks are
    /// to be read as retries ([`ClientAsk::of_parent`]).
    pub client: Option<ClientAsk>,
    /// Ask the source for a new token instead of using its current one.
    pub refresh: bool,
}

/// What asking a broker came to.
pub enum Brokered {
    /// The token to hand out.
    Token(Token),
    /// The broker reports that the source failed: final. The message is the broker's.
    Failed(String),
    /// Resolve in-process instead. `note` says why, to be logged at `level`. `asked`: a
    /// request reached the broker, so asking it again could read as the client's retry;
    /// the in-process call must not go back to the broker.
    InProcess {
        /// Why, for the log.
        note: String,
        /// How loud the note is: a missing socket is routine (debug), a broker that
        /// broke off is worth a warning.
        level: Level,
        /// Whether a request reached the broker.
        asked: bool,
    },
}

impl Brokered {
    /// The answer when connecting to the broker at `socket` failed with `error`.
    pub fn unreachable(socket: &std::path::Path, error: BrokerError) -> Brokered {
        let (level, note) = match &error {
            BrokerError::NotRunning { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                (Level::DEBUG, format!("{error}; resolving in-process"))
            }
            // A socket (or pipe) that is there but does not answer is worth a line.
            BrokerError::NotRunning { .. } => {
                (Level::INFO, format!("{error}; resolving in-process"))
            }
            _ => (
                Level::WARN,
                format!(
                    "not using the broker at {} ({error}); resolving in-process",
                    socket.display()
                ),
            ),
        };
        Brokered::InProcess {
            note,
            level,
            asked: false,
        }
    }

    /// Logs what this answer says about the broker (not the token).
    pub fn log(&self, socket: &std::path::Path) {
        match self {
            Brokered::Token(token) => tracing::info!(
                "token {} from the broker at {}",
                token.fingerprint(),
                socket.display()
            ),
            Brokered::Failed(_) => {}
            Brokered::InProcess { note, level, .. } => match *level {
                Level::WARN => tracing::warn!("{note}"),
                Level::INFO => tracing::info!("{note}"),
                _ => tracing::debug!("{note}"),
            },
        }
    }
}

/// Asks a connected broker (at `socket`, reached by `send`) for `provider`'s token.
/// See the module documentation for what each answer means.
pub fn from_broker(
    socket: &std::path::Path,
    provider: &str,
    ask: CommandAsk,
    rejected: &RejectedTokens,
    mut send: impl FnMut(TokenCall) -> Result<Token, BrokerError>,
) -> Brokered {
    let mut answer = match (ask.refresh, ask.client) {
        (true, _) => send(TokenCall::Refresh),
        (false, Some(client)) => match send(TokenCall::Ask(client)) {
            // A broker from before `ask`: its plain token, without retry detection.
            Err(BrokerError::Remote {
                kind: ErrorKind::NotFound,
                ..
            }) => send(TokenCall::Token),
            answer => answer,
        },
        (false, None) => send(TokenCall::Token),
    };
    if let Ok(token) = &answer
        && rejected.contains(provider, &token.fingerprint())
    {
        tracing::info!(
            "the broker's token {} was reported rejected; asking it for another",
            token.fingerprint()
        );
        let rejected_fingerprint = token.fingerprint();
        answer = send(TokenCall::Unauthorized(rejected_fingerprint));
        if let Ok(again) = &answer {
            forget_if_same(rejected, provider, rejected_fingerprint, again);
        }
    }
    let shown = socket.display();
    match answer {
        Ok(token) => Brokered::Token(token),
        Err(BrokerError::Remote {
            kind: ErrorKind::UnknownProvider,
            ..
        }) => Brokered::InProcess {
            note: format!(
                "the broker at {shown} does not know provider \"{provider}\" (send it SIGHUP \
                 or restart it to reload its config); resolving in-process"
            ),
            level: Level::WARN,
            asked: true,
        },
        Err(BrokerError::Remote { message, .. }) => Brokered::Failed(message),
        Err(e) => Brokered::InProcess {
            note: format!("broker at {shown} did not answer ({e}); resolving in-process"),
            level: Level::WARN,
            asked: true,
        },
    }
}

/// After a token reported rejected was replaced by `replacement`: if that is the same
/// token, the source has no other, so the report is forgotten (see [`RejectedTokens`]).
pub fn forget_if_same(
    rejected: &RejectedTokens,
    provider: &str,
    fingerprint: crate::token::Fingerprint,
    replacement: &Token,
) {
    if replacement.fingerprint() != fingerprint {
        return;
    }
    tracing::info!(
        "provider \"{provider}\" gave the rejected token {fingerprint} again: it has no \
         other, so the report is forgotten"
    );
    if let Err(e) = rejected.forget(provider, &fingerprint) {
        tracing::warn!("cannot update the rejected-token record: {e}");
    }
}
