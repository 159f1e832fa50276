//! [`RejectedTokens`]: what clients told us was rejected, kept between processes.
//!
//! A client that runs `tokenhost` as a command (git's `erase`) says "this token was
//! rejected" in one process; the next ask comes in another. A broker keeps that in its
//! cache, but without one, or when the broker restarted in between, the next process would
//! hand out the same token again if its source returns it (a plugin that caches, a static
//! token). So each report is also written to a small private file beside the broker
//! socket, holding fingerprints and times, never tokens. A process that gets a token whose
//! fingerprint is listed treats it as rejected once, with the manager's client-go rule
//! (refresh only if the cache still holds that token). If the source answers with the very
//! same token, the entry is forgotten ([`RejectedTokens::forget`]): the source has no other
//! to give, and asking it again in every later process would change nothing.
//!
//! The file is bounded ([`MAX_ENTRIES`], entries older than [`MAX_AGE`] dropped) and lives
//! in the user's private runtime directory (0700, checked), written atomically.

use std::path::Path;
use std::time::Duration;

use super::StateError;
use super::state_file::StateFile;
use crate::token::Fingerprint;

/// The most entries kept; the oldest go first.
pub const MAX_ENTRIES: usize = 64;
/// How long a report is remembered.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The rejected-token record for one config file.
#[derive(Debug, Clone)]
pub struct RejectedTokens {
    file: StateFile,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Entry {
    provider: String,
    fingerprint: String,
    at_ms: u64,
}

impl RejectedTokens {
    /// The record for `config`, in the broker socket directory.
    pub fn for_config(config: &Path) -> Self {
        Self::in_dir(&crate::paths::runtime_dir(), config)
    }

    /// The record for `config` in `dir`.
    pub fn in_dir(dir: &Path, config: &Path) -> Self {
        RejectedTokens {
            file: StateFile::new(dir, "rejected", config),
        }
    }

    /// Records that `fingerprint`, handed out for `provider`, was rejected.
    pub fn record(&self, provider: &str, fingerprint: &Fingerprint) -> Result<(), StateError> {
        let now = super::now_ms();
        let fingerprint = fingerprint.to_string();
        self.file.update(|entries: &mut Vec<Entry>| {
            retain_recent(entries, now);
            entries.retain(|e| !(e.provider == provider && e.fingerprint == fingerprint));
            entries.push(Entry {
                provider: provider.to_string(),
                fingerprint,
                at_ms: now,
            });
            let excess = entries.len().saturating_sub(MAX_ENTRIES);
            entries.drain(..excess);
        })
    }

    /// Forgets that `fingerprint` was rejected for `provider`: its source was asked for
    /// another token and gave the same one again (a static token, a source that caches
    /// its own), so treating it as rejected in every later process would only cost each
    /// of them one more source call for the same answer. Missing entries are fine.
    pub fn forget(&self, provider: &str, fingerprint: &Fingerprint) -> Result<(), StateError> {
        let fingerprint = fingerprint.to_string();
        self.file.update(|entries: &mut Vec<Entry>| {
            entries.retain(|e| !(e.provider == provider && e.fingerprint == fingerprint));
        })
    }

    /// Whether `fingerprint` was reported rejected for `provider` (and not too long ago).
    /// A missing, unreadable or unsafe record means no.
    pub fn contains(&self, provider: &str, fingerprint: &Fingerprint) -> bool {
        let fingerprint = fingerprint.to_string();
        let mut entries: Vec<Entry> = self.file.load();
        retain_recent(&mut entries, super::now_ms());
        entries
            .iter()
            .any(|e| e.provider == provider && e.fingerprint == fingerprint)
    }
}

fn retain_recent(entries: &mut Vec<Entry>, now: u64) {
    let max_age = MAX_AGE.as_millis() as u64;
    entries.retain(|e| now.saturating_sub(e.at_ms) < max_age);
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn records_fingerprints_not_tokens_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "").unwrap();
        let record = RejectedTokens::in_dir(&run, &config);
        let rejected = Fingerprint::of("SECRET-TOKEN");
        assert!(!record.contains("p", &rejected));
        record.record("p", &rejected).unwrap();
        assert!(record.contains("p", &rejected));
        assert!(!record.contains("other", &rejected));
        assert!(!record.contains("p", &Fingerprint::of("another")));
        record.forget("p", &rejected).unwrap();
        assert!(!record.contains("p", &rejected));
        record.forget("p", &rejected).unwrap();
        record.record("p", &rejected).unwrap();
        let text = std::fs::read_to_string(record.file.path()).unwrap();
        assert!(!text.contains("SECRET"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&run).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        for i in 0..(MAX_ENTRIES + 10) {
            record
                .record("p", &Fingerprint::of(&format!("t{i}")))
                .unwrap();
        }
        assert!(!record.contains("p", &rejected), "the oldest went first");
        assert!(record.contains("p", &Fingerprint::of(&format!("t{}", MAX_ENTRIES + 9))));
        let entries: Vec<Entry> =
            serde_json::from_str(&std::fs::read_to_string(record.file.path()).unwrap()).unwrap();
        assert_eq!(entries.len(), MAX_ENTRIES);
    }

    #[test]
    fn an_unsafe_directory_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let config = dir.path().join("config.toml");
        let record = RejectedTokens::in_dir(&run, &config);
        record.record("p", &Fingerprint::of("t")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!record.contains("p", &Fingerprint::of("t")));
        assert!(record.record("p", &Fingerprint::of("u")).is_err());
    }
}
