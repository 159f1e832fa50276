//! Capturing what tokenhost logs, to check that no secret reaches a log line.

use std::sync::{Arc, Mutex};

/// Everything logged on this thread while the guard lives, at every level.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Starts capturing on this thread until the guard is dropped.
    pub fn start(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // tracing caches each callsite's interest. A callsite that another test's thread
        // registered while this subscriber was being added can keep the "never" it got
        // from the dispatchers it saw, and its events would be lost here (seen under load
        // with the plugins' `plugin: ...` lines). Recomputing every interest now, with
        // this subscriber registered, closes that window.
        tracing::callsite::rebuild_interest_cache();
        guard
    }

    /// What was captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
