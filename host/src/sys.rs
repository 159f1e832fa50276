//! What tokenhost asks of the operating system that the standard library does not offer.
//!
//! Kept in one place so that each platform's answer sits side by side, and a platform
//! without one answers "unknown" (`None`) instead of failing to build.

/// A running process, named so that a reused pid cannot pass for it: its pid and the
/// moment it started (in the platform's own unit, compared only for equality).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ProcessIdentity {
    /// The process id.
    pub pid: u32,
    /// When it started: clock ticks since boot on Linux, microseconds since the epoch on
    /// macOS.
    pub started: u64,
}

/// This process's effective uid.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The identity of this process's parent, or `None` when it cannot be known (an
/// unsupported platform, or the parent already exited and we were adopted by init).
pub fn parent_process() -> Option<ProcessIdentity> {
    // SAFETY: getppid has no preconditions and cannot fail.
    let pid = unsafe { libc::getppid() };
    if pid <= 1 {
        return None;
    }
    let pid = u32::try_from(pid).ok()?;
    Some(ProcessIdentity {
        pid,
        started: start_time(pid)?,
    })
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks after boot. The command
/// name (field 2) is in parentheses and may hold spaces or parentheses itself, so the
/// fields are counted from the last `)`.
#[cfg(target_os = "linux")]
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_linux_start_time(&stat)
}

#[cfg(any(target_os = "linux", test))]
fn parse_linux_start_time(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state (field 3) ... starttime (field 22) is the 20th.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// `proc_pidinfo(PROC_PIDTBSDINFO)`: the start time in microseconds since the epoch.
#[cfg(target_os = "macos")]
fn start_time(pid: u32) -> Option<u64> {
    // SAFETY: proc_bsdinfo is plain data, for which all zeroes is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a writable proc_bsdinfo of exactly `size` bytes.
    let written = unsafe {
        libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (written == size).then(|| info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn start_time(_pid: u32) -> Option<u64> {
    None
}

// Checked with `cargo check --target aarch64-apple-darwin` on this module alone; the
// whole crate is not yet built for macOS (issue 16).

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_counted_from_the_last_parenthesis() {
        let fields = (3..=30)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        for name in ["(sh)", "(a b)", "(x) (y))", "())"] {
            let stat = format!("1234 {name} {fields}");
            assert_eq!(parse_linux_start_time(&stat), Some(22), "{stat}");
        }
        assert_eq!(parse_linux_start_time("1234 (sh) S 1"), None);
        assert_eq!(parse_linux_start_time("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn our_parent_is_known_and_stable() {
        let parent = parent_process().expect("the test runner is our parent");
        // SAFETY: getppid has no preconditions.
        assert_eq!(parent.pid as i32, unsafe { libc::getppid() });
        assert_eq!(parent_process(), Some(parent));
    }
}
