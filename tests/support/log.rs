//! Capturing what tokenhost logs, to check that no secret reaches a log line.
//!
//! Why one global subscriber and not `tracing::subscriber::set_default` per test: tracing
//! caches each callsite's interest process-wide. With scoped subscribers on many test
//! threads, a callsite first hit by another thread (whose own default is "no subscriber")
//! can store "never" just after this test's subscriber registered, and this test then
//! loses that line (seen in CI with the plugins' `plugin: ...` lines, even after
//! rebuilding the interest cache). Here one subscriber is installed for the whole test
//! binary, it answers every callsite with "sometimes", and decides per event whether the
//! current thread is capturing: nothing process-wide changes while tests run.
//!
//! The filter must be a dynamic one (`dynamic_filter_fn`): `filter_fn` takes its closure to
//! depend on the metadata alone and caches its first answer per callsite, so whichever
//! thread reached a callsite first decided for every test after it (seen in CI as the
//! plugins' `plugin: ...` info lines lost in three tests at once). It is installed before
//! `main` (an `.init_array` entry on Linux), so no test thread can be registering a
//! callsite against the empty dispatcher while it is installed.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

/// Everything logged on this thread while the guard lives, at every level.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

thread_local! {
    /// The capture this thread writes to, if any.
    static CURRENT: RefCell<Option<CapturedLog>> = const { RefCell::new(None) };
}

/// Ends a capture on this thread when dropped.
#[must_use = "the capture ends when the guard is dropped"]
pub struct CaptureGuard {
    previous: Option<CapturedLog>,
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

fn capturing() -> bool {
    CURRENT.with(|current| current.borrow().is_some())
}

/// Installs the one subscriber of this test binary (once).
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(ThreadWriter::default)
            // A dynamic filter: its callsites' interest is "sometimes", and each event is
            // asked about. (`filter_fn` caches its first answer per callsite, "never" if
            // the first thread to reach it was not capturing.)
            .with_filter(tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
                capturing()
            }));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets a global subscriber");
        // Callsites hit before the subscriber existed cached "never": recompute them.
        tracing::callsite::rebuild_interest_cache();
    });
}

impl CapturedLog {
    /// Starts capturing on this thread until the guard is dropped.
    pub fn start(&self) -> CaptureGuard {
        install();
        let previous = CURRENT.with(|current| current.borrow_mut().replace(self.clone()));
        CaptureGuard { previous }
    }

    /// What was captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Writes to the current thread's capture, or nowhere.
#[derive(Default)]
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|current| {
            if let Some(log) = current.borrow().as_ref() {
                log.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the subscriber before `main`, while the process has one thread.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL_BEFORE_MAIN: extern "C" fn() = {
    extern "C" fn install_before_main() {
        install();
    }
    install_before_main
};
