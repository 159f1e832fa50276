//! What keeps one client from exhausting the broker: [`Limits`] on how long a connection
//! may take to send a request, how big a body may be, and how many connections are open
//! at once ([`Slots`]).
//!
//! The peers are processes of the same user (the socket and `SO_PEERCRED` see to that),
//! but one of them may be broken or hostile: a command source, a script that opens
//! connections and never finishes a request. Such a client must not keep other clients
//! from their tokens, nor the broker from its file descriptors. So a connection only
//! keeps its slot while it behaves like a real client: a real client sends its whole
//! request at once, right after connecting, and a connection that is not serving a
//! request is the first to go when the broker is full.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The broker's limits (see [`Broker::with_limits`](super::Broker::with_limits)). The
/// defaults suit this protocol: requests are a few short header lines and at most a
/// hundred bytes of JSON, sent at once over a local socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (default 256). When all are taken, a new connection
    /// closes the one that has been idle longest (waiting for a request head, or between
    /// requests): a client that holds connections without using them cannot lock others
    /// out. When every connection is serving a request, the new one is closed at once
    /// (`tokenhost token` then resolves in-process).
    pub max_connections: usize,
    /// How long a connection may take to send a complete request head, counted from its
    /// accept or from the end of its previous answer (default 10 s). This closes
    /// slowloris connections and idle keep-alive connections alike; a client that wants
    /// another answer after a pause reconnects.
    pub header_read_timeout: Duration,
    /// How long a request may take to send its body once the head is in (default
    /// 10 s); then the answer is 408.
    pub body_read_timeout: Duration,
    /// The largest request body in bytes (default 8 KiB). A larger `Content-Length` is
    /// refused with 413 before any of the body is read; a chunked body is cut off there.
    pub max_request_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_request_body: 8 * 1024,
        }
    }
}

/// The open connections, at most `max` of them.
pub(super) struct Slots {
    max: usize,
    open: Mutex<Vec<Arc<Slot>>>,
    epoch: Instant,
}

/// One open connection's slot.
pub(super) struct Slot {
    /// Requests being handled on this connection right now.
    serving: AtomicUsize,
    /// When it last stopped serving (or was accepted), in ms since [`Slots::epoch`].
    idle_since_ms: AtomicU64,
    /// Notified when the slot is taken from this connection.
    evicted: Notify,
    slots: Arc<Slots>,
}

/// Why a connection got no slot.
#[derive(Debug)]
pub(super) struct Full {
    /// The limit.
    pub max: usize,
}

impl Slots {
    /// Room for `max` connections (at least one).
    pub(super) fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max: max.max(1),
            open: Mutex::new(Vec::new()),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Slot>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection, held until the [`Held`] drops. When all are taken,
    /// the connection idle longest loses its slot (it is notified, and closes); when all
    /// are serving, [`Full`].
    pub(super) fn take(self: &Arc<Self>) -> Result<Held, Full> {
        let mut open = self.lock();
        if open.len() >= self.max {
            let idlest = open
                .iter()
                .enumerate()
                .filter(|(_, slot)| slot.serving.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, slot)| slot.idle_since_ms.load(Ordering::Acquire))
                .map(|(index, _)| index)
                .ok_or(Full { max: self.max })?;
            open.swap_remove(idlest).evicted.notify_one();
        }
        let slot = Arc::new(Slot {
            serving: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            evicted: Notify::new(),
            slots: self.clone(),
        });
        open.push(slot.clone());
        Ok(Held(slot))
    }
}

impl Slot {
    /// Marks a request as being served until the guard drops.
    pub(super) fn serving(self: &Arc<Self>) -> Serving {
        self.serving.fetch_add(1, Ordering::AcqRel);
        Serving(self.clone())
    }

    /// Resolves when the slot was given to a newer connection: close this one.
    pub(super) async fn evicted(&self) {
        self.evicted.notified().await
    }
}

/// A connection's hold on its [`Slot`]; gives it back when dropped (the connection ended).
pub(super) struct Held(Arc<Slot>);

impl Held {
    /// The slot.
    pub(super) fn slot(&self) -> &Arc<Slot> {
        &self.0
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let held = &self.0;
        held.slots.lock().retain(|slot| !Arc::ptr_eq(slot, held));
    }
}

/// A request in progress on a [`Slot`]'s connection.
pub(super) struct Serving(Arc<Slot>);

impl Drop for Serving {
    fn drop(&mut self) {
        let slot = &self.0;
        slot.idle_since_ms
            .store(slot.slots.now_ms(), Ordering::Release);
        slot.serving.fetch_sub(1, Ordering::AcqRel);
    }
}
