//! How real clients ask for a token when they run tokenhost as a command, and how they
//! say a token was rejected.
//!
//! Each client has its own protocol: [`git`]'s credential helpers, [`kubectl`]'s exec
//! credential plugins (an ExecCredential is also a command source's output format, see
//! [`OutputFormat`](crate::config::OutputFormat)). Some say a token was rejected (git's
//! `erase`); what one process learns must reach the next, which is what
//! [`RejectedTokens`] is for. Others only ask again (Codex, kubectl): the [`AskLedger`]
//! tells such a retry from a first ask.

mod brokered;
pub mod git;
pub mod kubectl;
mod reask;
mod rejected;
mod state_file;

pub use brokered::{Brokered, CommandAsk, forget_if_same, from_broker};
pub use reask::{
    Answer, AskLedger, ClientAsk, DEFAULT_CLIENT_REUSE, LedgerFile, LedgerStore, MAX_HANDOUTS,
    answer,
};
pub use rejected::{MAX_AGE, MAX_ENTRIES, RejectedTokens};
pub use state_file::StateError;

/// Milliseconds since the Unix epoch, by the wall clock: these records are shared between
/// processes, so a monotonic clock would not do.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
