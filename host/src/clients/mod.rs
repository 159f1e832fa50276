//! How real clients ask for a token when they run tokenhost as a command, and how they
//! say a token was rejected.
//!
//! Each client has its own protocol: [`git`]'s credential helpers, [`kubectl`]'s exec
//! credential plugins (an ExecCredential is also a command source's output format, see
//! [`OutputFormat`](crate::config::OutputFormat)). What one process learns (git's `erase`)
//! must reach the next, which is what [`RejectedTokens`] is for.

pub mod git;
pub mod kubectl;
mod rejected;

pub use rejected::{MAX_AGE, MAX_ENTRIES, RejectedTokens};
