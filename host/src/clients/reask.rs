//! Telling a client's retry from its first ask: [`AskLedger`].
//!
//! A client that runs `tokenhost token` as its credential command (Codex, kubectl) keeps
//! the token it gets for a while and runs the command again when that time is up, or
//! right after a server answered 401, without saying which. It says nothing else either
//! (Codex gives the command no stdin and no extra environment), so tokenhost infers it:
//! a program that asks again *inside its reuse window* is telling us the token it got was
//! rejected.
//!
//! The ledger remembers, per provider and calling program, the fingerprint it handed out
//! and until when that program would normally reuse it. The program is the parent process
//! of `tokenhost token`, named by pid *and* start time ([`ProcessIdentity`]), so a reused
//! pid is a new program. The window ends at the earlier of tokenhost's own refresh point
//! for the token and the client's reuse time ([`ClientAsk::reuse_ms`], Codex's
//! `refresh_interval_ms`, default [`DEFAULT_CLIENT_REUSE`]). A re-ask inside it reports
//! the handed-out token as rejected with the manager's client-go rule: the source is
//! called only if the cache still holds that very token, once for any number of callers.
//!
//! Some clients re-run the command without any 401 (the Codex app does on every
//! conversation switch). So an inferred rejection is bounded: after one has made the
//! source refresh, the same program gets no other until its new window has passed. A
//! client that re-asks constantly costs at most one refresh per window, which is no more
//! than it would cost without tokenhost.
//!
//! A broker keeps the ledger in memory beside its cache; without one, `tokenhost token`
//! keeps it in a [`StateFile`] (fingerprints and times, never tokens).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::state_file::StateFile;
use crate::manager::expiry::reuse_until_ms;
use crate::sys::ProcessIdentity;
use crate::token::{Fingerprint, Token};
use crate::{AuthError, AuthManager};

/// How long a client reuses a token unless told otherwise: Codex's default
/// `refresh_interval_ms`.
pub const DEFAULT_CLIENT_REUSE: Duration = Duration::from_secs(300);
/// The most handouts a ledger remembers; the oldest go first.
pub const MAX_HANDOUTS: usize = 256;
/// The longest window, for a token with no expiry, no refresh interval and a client
/// without a reuse time.
const MAX_WINDOW_MS: u64 = 24 * 3600 * 1000;

/// A client asking for a token as a command: who it is and how long it reuses a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientAsk {
    /// The calling program (the parent of `tokenhost token`).
    pub caller: ProcessIdentity,
    /// How long the client reuses a token, in milliseconds; `None`: until tokenhost's own
    /// refresh point (kubectl, which is told that point in the ExecCredential).
    pub reuse_ms: Option<u64>,
}

impl ClientAsk {
    /// The program that runs `tokenhost token` (this process's parent), if its re-asks
    /// are to be read as retries. Not for an explicit `refresh`, not with a reuse time of
    /// 0, not for a person at a terminal (stdin is a tty: they may simply ask twice), and
    /// not when the parent cannot be named (see
    /// [`parent_process`](crate::sys::parent_process)). `told_until`: the client is told
    /// how long to reuse the token (kubectl's ExecCredential, never a person); without a
    /// `reuse_ms` it then reuses it until then. Otherwise the reuse time defaults to
    /// [`DEFAULT_CLIENT_REUSE`].
    pub fn of_parent(reuse_ms: Option<u64>, told_until: bool, refresh: bool) -> Option<ClientAsk> {
        use std::io::IsTerminal;
        if refresh || reuse_ms == Some(0) {
            return None;
        }
        let reuse_ms = match told_until {
            true => reuse_ms,
            false if std::io::stdin().is_terminal() => return None,
            false => Some(reuse_ms.unwrap_or(DEFAULT_CLIENT_REUSE.as_millis() as u64)),
        };
        Some(ClientAsk {
            caller: crate::sys::parent_process()?,
            reuse_ms,
        })
    }
}

/// What was handed out to which program, and until when a re-ask means "rejected".
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AskLedger {
    handouts: Vec<Handout>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Handout {
    provider: String,
    caller: ProcessIdentity,
    fingerprint: String,
    /// A re-ask before this is a retry.
    until_ms: u64,
    /// No inferred rejection for this caller before this (the bound).
    quiet_until_ms: u64,
}

impl AskLedger {
    /// The token `ask`'s program was handed for `provider`, if asking again at `now_ms`
    /// means the server rejected it.
    pub fn judge(&self, provider: &str, ask: &ClientAsk, now_ms: u64) -> Option<Fingerprint> {
        let handout = self.find(provider, &ask.caller)?;
        (now_ms < handout.until_ms && now_ms >= handout.quiet_until_ms)
            .then(|| handout.fingerprint.parse().ok())
            .flatten()
    }

    /// Records that `token` was handed to `ask`'s program at `now_ms`. `inferred`: the ask
    /// was judged a retry and made the source refresh, which quiets this program for the
    /// new window.
    pub fn handed(
        &mut self,
        provider: &str,
        ask: &ClientAsk,
        token: &Token,
        refresh_interval: Option<Duration>,
        now_ms: u64,
        inferred: bool,
    ) {
        let own = reuse_until_ms(now_ms, token.expires_at_ms(), refresh_interval);
        let client = ask.reuse_ms.map(|ms| now_ms.saturating_add(ms));
        let until_ms = [own, client]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now_ms.saturating_add(MAX_WINDOW_MS));
        let quiet_until_ms = match (inferred, self.find(provider, &ask.caller)) {
            (true, _) => until_ms,
            (false, Some(old)) => old.quiet_until_ms,
            (false, None) => 0,
        };
        self.handouts
            .retain(|h| now_ms < h.until_ms.max(h.quiet_until_ms));
        self.handouts
            .retain(|h| !(h.provider == provider && h.caller == ask.caller));
        self.handouts.push(Handout {
            provider: provider.to_string(),
            caller: ask.caller,
            fingerprint: token.fingerprint().to_string(),
            until_ms,
            quiet_until_ms,
        });
        let excess = self.handouts.len().saturating_sub(MAX_HANDOUTS);
        self.handouts.drain(..excess);
    }

    fn find(&self, provider: &str, caller: &ProcessIdentity) -> Option<&Handout> {
        self.handouts
            .iter()
            .find(|h| h.provider == provider && h.caller == *caller)
    }
}

/// Where a ledger is kept: in memory (a broker) or in a file (no broker).
pub trait LedgerStore {
    /// [`AskLedger::judge`] on the stored ledger.
    fn judge(&self, provider: &str, ask: &ClientAsk, now_ms: u64) -> Option<Fingerprint>;
    /// [`AskLedger::handed`] on the stored ledger.
    fn handed(
        &self,
        provider: &str,
        ask: &ClientAsk,
        token: &Token,
        refresh_interval: Option<Duration>,
        inferred: bool,
    );
}

impl LedgerStore for Mutex<AskLedger> {
    fn judge(&self, provider: &str, ask: &ClientAsk, now_ms: u64) -> Option<Fingerprint> {
        let ledger = self.lock().unwrap_or_else(|e| e.into_inner());
        ledger.judge(provider, ask, now_ms)
    }

    fn handed(
        &self,
        provider: &str,
        ask: &ClientAsk,
        token: &Token,
        interval: Option<Duration>,
        inferred: bool,
    ) {
        let mut ledger = self.lock().unwrap_or_else(|e| e.into_inner());
        ledger.handed(provider, ask, token, interval, super::now_ms(), inferred);
    }
}

/// The ledger of `tokenhost token` runs without a broker, in the private runtime
/// directory. A file that cannot be written costs the inference, never the token.
#[derive(Debug, Clone)]
pub struct LedgerFile {
    file: StateFile,
}

impl LedgerFile {
    /// The ledger for `config` in `dir` (normally the broker socket directory).
    pub fn in_dir(dir: &Path, config: &Path) -> Self {
        LedgerFile {
            file: StateFile::new(dir, "asks", config),
        }
    }
}

impl LedgerStore for LedgerFile {
    fn judge(&self, provider: &str, ask: &ClientAsk, now_ms: u64) -> Option<Fingerprint> {
        self.file.load::<AskLedger>().judge(provider, ask, now_ms)
    }

    fn handed(
        &self,
        provider: &str,
        ask: &ClientAsk,
        token: &Token,
        interval: Option<Duration>,
        inferred: bool,
    ) {
        let now = super::now_ms();
        let recorded = self.file.update(|ledger: &mut AskLedger| {
            ledger.handed(provider, ask, token, interval, now, inferred)
        });
        if let Err(e) = recorded {
            tracing::warn!("cannot remember which token went to which client: {e}");
        }
    }
}

/// The answer to a client's ask.
#[derive(Debug)]
pub struct Answer {
    /// The token to hand out.
    pub token: Token,
    /// The token the ask was taken to reject, when that made the source refresh.
    pub rejected: Option<Fingerprint>,
}

/// The token for a client's ask: `manager`'s current one, unless the ask is a retry
/// ([`AskLedger::judge`]) of the very token the cache holds, which is then reported
/// rejected. Records the handout in `ledger`.
pub async fn answer(
    manager: &AuthManager,
    provider: &str,
    refresh_interval: Option<Duration>,
    ask: &ClientAsk,
    ledger: &impl LedgerStore,
) -> Result<Answer, AuthError> {
    let retried = ledger.judge(provider, ask, super::now_ms());
    let token = manager.auth(provider).await?;
    let inferred = retried == Some(token.fingerprint());
    let token = match inferred {
        true => {
            tracing::info!(
                "provider \"{provider}\": process {} asked again for {} inside its reuse \
                 window: taking it as rejected",
                ask.caller.pid,
                token.fingerprint()
            );
            manager.unauthorized(provider, &token).await?
        }
        false => token,
    };
    ledger.handed(provider, ask, &token, refresh_interval, inferred);
    Ok(Answer {
        token,
        rejected: retried.filter(|_| inferred),
    })
}

#[cfg(test)]
mod tests;
