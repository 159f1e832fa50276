//! The ledger's rules as tables of asks, and [`answer`] driving a real manager with a
//! counting source.

use std::sync::Arc;

use super::*;
use crate::source::counting::Counting;

const NOW: u64 = 1_700_000_000_000;
const MIN: u64 = 60_000;

fn caller(pid: u32, started: u64) -> ProcessIdentity {
    ProcessIdentity { pid, started }
}

fn ask(pid: u32, reuse_ms: Option<u64>) -> ClientAsk {
    ClientAsk {
        caller: caller(pid, 7),
        reuse_ms,
    }
}

fn hour_token(value: &str) -> Token {
    Token::new(value, Some(NOW + 60 * MIN)).unwrap()
}

#[test]
fn a_re_ask_inside_the_window_is_a_retry_and_after_it_is_not() {
    let codex = ask(100, Some(5 * MIN));
    let token = hour_token("t1");
    let mut ledger = AskLedger::default();
    assert_eq!(ledger.judge("p", &codex, NOW), None, "a first ask");
    ledger.handed("p", &codex, &token, None, NOW, false);
    assert_eq!(
        ledger.judge("p", &codex, NOW + 1000),
        Some(token.fingerprint())
    );
    assert!(ledger.judge("p", &codex, NOW + 5 * MIN - 1).is_some());
    assert_eq!(
        ledger.judge("p", &codex, NOW + 5 * MIN),
        None,
        "its reuse time is up"
    );
    assert_eq!(ledger.judge("other", &codex, NOW + 1000), None);
    assert_eq!(
        ledger.judge("p", &ask(101, Some(5 * MIN)), NOW + 1000),
        None
    );
    let reused_pid = ClientAsk {
        caller: caller(100, 8),
        ..codex
    };
    assert_eq!(
        ledger.judge("p", &reused_pid, NOW + 1000),
        None,
        "a reused pid"
    );
}

#[test]
fn the_window_is_the_earlier_of_the_clients_reuse_and_our_refresh_point() {
    let mut ledger = AskLedger::default();
    // A token with 2 minutes left: tokenhost refreshes 12 s before its expiry.
    let short = Token::new("s", Some(NOW + 2 * MIN)).unwrap();
    let codex = ask(100, Some(5 * MIN));
    ledger.handed("p", &codex, &short, None, NOW, false);
    assert!(ledger.judge("p", &codex, NOW + 2 * MIN - 12_001).is_some());
    assert_eq!(ledger.judge("p", &codex, NOW + 2 * MIN - 12_000), None);
    // kubectl is told our refresh point; its window is exactly that.
    let kubectl = ask(200, None);
    ledger.handed("p", &kubectl, &hour_token("k"), None, NOW, false);
    assert!(ledger.judge("p", &kubectl, NOW + 58 * MIN).is_some());
    assert_eq!(ledger.judge("p", &kubectl, NOW + 59 * MIN), None);
    // ...or the provider's refresh interval.
    let interval = Some(Duration::from_secs(60));
    ledger.handed("p", &kubectl, &hour_token("k"), interval, NOW, false);
    assert_eq!(ledger.judge("p", &kubectl, NOW + MIN), None);
}

#[test]
fn an_inferred_rejection_quiets_the_program_for_its_new_window() {
    let mut ledger = AskLedger::default();
    let app = ask(100, Some(5 * MIN));
    ledger.handed("p", &app, &hour_token("t1"), None, NOW, false);
    assert!(ledger.judge("p", &app, NOW + 10_000).is_some());
    // It made the source refresh: the next re-asks in the new window are ordinary.
    ledger.handed("p", &app, &hour_token("t2"), None, NOW + 10_000, true);
    for later in [20_000, MIN, 5 * MIN + 9_999] {
        assert_eq!(ledger.judge("p", &app, NOW + later), None, "+{later} ms");
        ledger.handed("p", &app, &hour_token("t2"), None, NOW + later, false);
    }
    // Once that window has passed, a re-ask may be a retry again.
    assert!(ledger.judge("p", &app, NOW + 5 * MIN + 10_001).is_some());
}

#[test]
fn the_ledger_is_bounded_and_forgets_ended_windows() {
    let mut ledger = AskLedger::default();
    for pid in 0..(MAX_HANDOUTS as u32 + 10) {
        ledger.handed(
            "p",
            &ask(pid, Some(MIN)),
            &hour_token("t"),
            None,
            NOW,
            false,
        );
    }
    assert_eq!(ledger.handouts.len(), MAX_HANDOUTS);
    assert_eq!(
        ledger.judge("p", &ask(0, Some(MIN)), NOW + 1),
        None,
        "oldest first"
    );
    ledger.handed(
        "p",
        &ask(0, Some(MIN)),
        &hour_token("t"),
        None,
        NOW + MIN,
        false,
    );
    assert_eq!(ledger.handouts.len(), 1, "every other window had ended");
}

fn manager(source: Arc<Counting>) -> AuthManager {
    AuthManager::builder().provider("p", None, source).build()
}

#[tokio::test]
async fn retries_refresh_once_and_first_asks_never_do() {
    let source = Arc::new(Counting::new("t"));
    let manager = manager(source.clone());
    let ledger = Mutex::new(AskLedger::default());
    let calls = || source.calls();
    // Twenty new programs in a row: one source call.
    for pid in 0..20 {
        let token = answer(&manager, "p", None, &ask(pid, Some(5 * MIN)), &ledger).await;
        assert_eq!(token.unwrap().token.expose(), "t1");
    }
    assert_eq!(calls(), 1);
    // Program 3 asks again: t1 was rejected; the source is called once.
    let retry = answer(&manager, "p", None, &ask(3, Some(5 * MIN)), &ledger).await;
    assert_eq!(retry.unwrap().token.expose(), "t2");
    assert_eq!(calls(), 2);
    // Program 4 also held t1 and asks again: the cache moved on already, no call.
    let retry = answer(&manager, "p", None, &ask(4, Some(5 * MIN)), &ledger).await;
    assert_eq!(retry.unwrap().token.expose(), "t2");
    assert_eq!(calls(), 2);
    // Program 3 keeps asking (the Codex app on every conversation switch): quiet.
    for _ in 0..5 {
        let again = answer(&manager, "p", None, &ask(3, Some(5 * MIN)), &ledger).await;
        assert_eq!(again.unwrap().token.expose(), "t2");
    }
    assert_eq!(calls(), 2);
    // A client that does not reuse tokens (reuse 0) never looks like it retried.
    for _ in 0..3 {
        answer(&manager, "p", None, &ask(50, Some(0)), &ledger)
            .await
            .unwrap();
    }
    assert_eq!(calls(), 2);
}

#[cfg(unix)]
#[tokio::test]
async fn the_file_ledger_carries_handouts_between_processes_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (run, config) = (dir.path().join("run"), dir.path().join("c.toml"));
    let codex = ask(100, Some(5 * MIN));
    let now = crate::clients::now_ms();
    let token = Token::new("SECRET-VALUE", Some(now + 60 * MIN)).unwrap();
    LedgerFile::in_dir(&run, &config).handed("p", &codex, &token, None, false);
    let next = LedgerFile::in_dir(&run, &config);
    assert_eq!(next.judge("p", &codex, now), Some(token.fingerprint()));
    let text = std::fs::read_to_string(next.file.path()).unwrap();
    assert!(!text.contains("SECRET"), "{text}");
    // A ledger in a directory others can write is not believed.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(next.judge("p", &codex, now), None);
}
