//! What a plugin's outgoing requests are doing during a call: which are in flight (so
//! a call that runs out of time can say what it was waiting for) and the last one that
//! failed without a response (so the plugin's final error can name the real cause, even
//! when the plugin only passes on the wasi:http error code, or loses it).
//!
//! Requests are named by method and `scheme://authority/path`: never the query, which
//! may carry a secret.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The requests of one plugin instance. Clones share state.
#[derive(Clone, Default)]
pub struct Activity {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Whether the state may differ from "nothing in flight, no failure": most calls
    /// make no request, and then neither end of the call takes the lock. Changed only
    /// under the lock.
    busy: AtomicBool,
    state: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    in_flight: Vec<InFlight>,
    last_failure: Option<String>,
}

struct InFlight {
    id: u64,
    what: String,
    started: Instant,
}

/// One request in flight; it leaves the list when dropped (done, failed or abandoned).
pub struct InFlightGuard {
    activity: Activity,
    id: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut inner = self.activity.lock();
        inner.in_flight.retain(|request| request.id != self.id);
        self.activity.settle(&inner);
    }
}

/// What a call's requests looked like when it ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CallRequests {
    /// The oldest request still in flight and how long it had been, if any.
    pub waiting_for: Option<(String, Duration)>,
    /// How many requests were in flight.
    pub in_flight: usize,
    /// The host's description of the last request that got no response.
    pub last_failure: Option<String>,
}

impl Activity {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Poisoned only if a panic happened while holding it: the data is still usable.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets `busy` from the state `inner` (locked).
    fn settle(&self, inner: &Inner) {
        let busy = !inner.in_flight.is_empty() || inner.last_failure.is_some();
        self.inner.busy.store(busy, Ordering::Release);
    }

    /// Records `what` (`POST https://host/path`) as in flight until the guard drops.
    pub fn start(&self, what: String) -> InFlightGuard {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.in_flight.push(InFlight {
            id,
            what,
            started: Instant::now(),
        });
        self.settle(&inner);
        InFlightGuard {
            activity: self.clone(),
            id,
        }
    }

    /// Records a request that failed without a response.
    pub fn failed(&self, detail: String) {
        let mut inner = self.lock();
        inner.last_failure = Some(detail);
        self.settle(&inner);
    }

    /// Starts a new call: forgets the previous call's failure (requests still in flight
    /// from it stay listed until they end).
    pub fn begin_call(&self) {
        if self.inner.busy.load(Ordering::Acquire) {
            let mut inner = self.lock();
            inner.last_failure = None;
            self.settle(&inner);
        }
    }

    /// What the call's requests are doing now.
    pub fn snapshot(&self) -> CallRequests {
        if !self.inner.busy.load(Ordering::Acquire) {
            return CallRequests::default();
        }
        let inner = self.lock();
        let oldest = inner.in_flight.iter().min_by_key(|r| r.started);
        CallRequests {
            waiting_for: oldest.map(|r| (r.what.clone(), r.started.elapsed())),
            in_flight: inner.in_flight.len(),
            last_failure: inner.last_failure.clone(),
        }
    }
}

/// `scheme://authority/path` of `uri`: no query, no user info.
pub fn shown_uri(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map_or("", |a| {
        let text = a.as_str();
        text.rsplit_once('@').map_or(text, |(_, host)| host)
    });
    format!("{scheme}://{authority}{}", uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_requests_leave_when_done_and_failures_last_one_call() {
        let activity = Activity::default();
        assert_eq!(activity.snapshot(), CallRequests::default());
        let first = activity.start("POST https://a/token".into());
        std::thread::sleep(Duration::from_millis(5));
        let second = activity.start("GET https://b/x".into());
        let seen = activity.snapshot();
        assert_eq!(seen.in_flight, 2);
        let (what, age) = seen.waiting_for.unwrap();
        assert_eq!(what, "POST https://a/token");
        assert!(age >= Duration::from_millis(5));
        drop(first);
        assert_eq!(
            activity.snapshot().waiting_for.unwrap().0,
            "GET https://b/x"
        );
        drop(second);
        activity.failed("a refused the connection".into());
        assert_eq!(
            activity.snapshot().last_failure.as_deref(),
            Some("a refused the connection")
        );
        activity.begin_call();
        assert_eq!(activity.snapshot(), CallRequests::default());
    }

    #[test]
    fn a_request_outliving_its_call_is_still_seen_by_the_next() {
        let activity = Activity::default();
        activity.begin_call();
        let abandoned = activity.start("GET https://slow/x".into());
        activity.failed("slow timed out".into());
        activity.begin_call();
        let seen = activity.snapshot();
        assert_eq!(seen.in_flight, 1, "still in flight: {seen:?}");
        assert_eq!(
            seen.last_failure, None,
            "the last call's failure is forgotten"
        );
        drop(abandoned);
        assert_eq!(activity.snapshot(), CallRequests::default());
        // A failure after the request left is still this call's.
        activity.failed("refused".into());
        assert_eq!(activity.snapshot().last_failure.as_deref(), Some("refused"));
        activity.begin_call();
        assert_eq!(activity.snapshot(), CallRequests::default());
    }

    #[test]
    fn shown_uris_have_no_query_or_credentials() {
        let uri: http::Uri = "https://user:pw@idp.example:8443/t/token?sig=SECRET"
            .parse()
            .unwrap();
        assert_eq!(shown_uri(&uri), "https://idp.example:8443/t/token");
    }
}
