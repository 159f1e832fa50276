//! What tokenhost asks of the operating system, in one place.
//!
//! Every platform-specific call (process identity and uids, process trees, file
//! permissions and locks, signals) sits behind a small function here, so the rest of the
//! crate is the same on every OS and each platform's answer is side by side: [`unix`]
//! (Linux and macOS; the few macOS-only lines are marked, and only compiled on this Linux
//! machine) and `windows`. Where a platform has no answer, the function says "unknown"
//! (`None`) instead of failing to build.

// Some answers serve only the plugin runtime or the broker's records.
#![cfg_attr(not(all(feature = "wasm", feature = "broker")), allow(dead_code))]

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
pub use unix::*;
#[cfg(windows)]
pub use windows::*;

/// A running process, named so that a reused pid cannot pass for it: its pid and the
/// moment it started (in the platform's own unit, compared only for equality).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ProcessIdentity {
    /// The process id.
    pub pid: u32,
    /// When it started: clock ticks since boot on Linux, microseconds since the epoch on
    /// macOS, 100 ns ticks since 1601 on Windows.
    pub started: u64,
}
