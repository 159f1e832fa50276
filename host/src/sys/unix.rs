//! The Unix answers (Linux and macOS).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use super::ProcessIdentity;

/// This process's effective uid.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The effective uid of the process at the other end of the connected Unix socket `fd`,
/// from the kernel (`SO_PEERCRED` on Linux, `getpeereid` on macOS): what the peer cannot
/// lie about.
pub fn peer_uid(fd: std::os::fd::RawFd) -> std::io::Result<u32> {
    #[cfg(target_os = "linux")]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are valid for writes of the sizes given; the kernel
        // writes at most `len` bytes.
        let status = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        };
        match status {
            0 => Ok(cred.uid),
            _ => Err(std::io::Error::last_os_error()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: both out-pointers are valid for writes.
        match unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } {
            0 => Ok(uid),
            _ => Err(std::io::Error::last_os_error()),
        }
    }
}

/// Makes `bytes` this process's stdin (fd 0), read from their start: for a process that
/// read its input and then `exec`s a program that must read the same input. They are
/// held in an anonymous file (a `memfd` on Linux; elsewhere a private file in the temp
/// directory, removed before anything is written to it), so any size fits and nothing is
/// left behind.
pub fn stdin_from(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Seek, Write};
    use std::os::fd::AsRawFd;
    let mut file = anonymous_file()?;
    file.write_all(bytes)?;
    file.rewind()?;
    // SAFETY: both are open descriptors; dup2 replaces fd 0 atomically, and the copy
    // does not inherit close-on-exec. `file` closes its own descriptor when dropped.
    match unsafe { libc::dup2(file.as_raw_fd(), 0) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(target_os = "linux")]
fn anonymous_file() -> std::io::Result<fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: the name is a valid C string; the flags are known to the kernel.
    let fd = unsafe { libc::memfd_create(c"tokenhost-input".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    Ok(unsafe { fs::File::from_raw_fd(fd) })
}

#[cfg(not(target_os = "linux"))]
fn anonymous_file() -> std::io::Result<fs::File> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("tokenhost-input-{}-{nanos}", std::process::id());
    let path = std::env::temp_dir().join(name);
    let file = create_private_file(&path)?;
    fs::remove_file(&path)?;
    Ok(file)
}

/// Where the administrator's system policy lives: `/etc/tokenhost/policy.toml` (macOS
/// too: `/etc` is root's there as well).
pub fn system_policy_path() -> std::path::PathBuf {
    std::path::PathBuf::from("/etc/tokenhost/policy.toml")
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

/// Whether `path` is a file this user could run: a regular file with an execute bit.
pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Creates the directory `dir` readable and writable by this user only (mode 0700).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new().mode(0o700).create(dir)
}

/// Why the directory with `meta` is not private to this user (owned by it, writable by
/// no one else), or `None` if it is.
pub(crate) fn private_dir_problem(_dir: &Path, meta: &fs::Metadata) -> Option<String> {
    let ours = effective_uid();
    if meta.uid() != ours {
        return Some(format!(
            "owned by uid {}, not this user ({ours})",
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o022 != 0).then(|| format!("writable by others (mode {mode:o}); run chmod 700 on it"))
}

/// Why the file with `meta` is not private to this user (others may read or write it),
/// or `None`.
pub(crate) fn private_file_problem(meta: &fs::Metadata) -> Option<String> {
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| format!("is readable by others (mode {mode:o}); chmod 600 it"))
}

/// Creates a new file at `path` (never an existing one, so never through a symlink)
/// that only this user may read or write: mode 0600 from its creation on.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Makes `options` refuse to open a symlink (`O_NOFOLLOW`) and create files private to
/// this user (mode 0600).
pub(crate) fn private_no_follow(options: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    options.mode(0o600).custom_flags(libc::O_NOFOLLOW)
}

/// Makes `options` open a FIFO without waiting for a writer (`O_NONBLOCK`), so that a
/// file's type can be checked on the open handle.
pub(crate) fn open_without_waiting(options: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    options.custom_flags(libc::O_NONBLOCK)
}

/// What a file that is not a regular file is, for an error message.
pub(crate) fn file_kind(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// How a process that did not exit with a code ended: `"was killed by signal 9
/// (SIGKILL)"`, or `None` if it exited with a code.
pub(crate) fn describe_signal(status: ExitStatus) -> Option<String> {
    let signal = status.signal()?;
    let name = match signal {
        libc::SIGHUP => " (SIGHUP)",
        libc::SIGINT => " (SIGINT)",
        libc::SIGQUIT => " (SIGQUIT)",
        libc::SIGILL => " (SIGILL)",
        libc::SIGTRAP => " (SIGTRAP)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGFPE => " (SIGFPE)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGUSR1 => " (SIGUSR1)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGUSR2 => " (SIGUSR2)",
        libc::SIGPIPE => " (SIGPIPE)",
        libc::SIGALRM => " (SIGALRM)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGXCPU => " (SIGXCPU)",
        libc::SIGSYS => " (SIGSYS)",
        _ => "",
    };
    let core = if status.core_dumped() {
        ", core dumped"
    } else {
        ""
    };
    Some(format!("was killed by signal {signal}{name}{core}"))
}

/// Makes `command` run with `name` as its `argv[0]` (the program as the user wrote it,
/// while the file that runs is the approved one).
pub(crate) fn set_arg0(command: &mut tokio::process::Command, name: &str) {
    command.arg0(name);
}

/// What tells a long-running command (the broker, the proxy) to stop: SIGTERM or SIGINT.
/// Installed up front, so that a signal that comes early is a graceful stop and not the
/// default action.
pub(crate) struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers. Call inside a Tokio runtime.
    pub(crate) fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves when the process is told to stop.
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// A command's whole process tree, so that a timeout kills grandchildren too: the child
/// leads a new process group, and the group is killed.
#[derive(Debug)]
pub(crate) struct ProcessTree {
    pgid: Option<libc::pid_t>,
}

impl ProcessTree {
    /// Prepares `command` to start its own tree (a new process group).
    pub(crate) fn prepare(command: &mut tokio::process::Command) {
        command.process_group(0);
    }

    /// The tree of the child just spawned from a prepared command.
    pub(crate) fn of(child: &tokio::process::Child) -> ProcessTree {
        Self::led_by(child.id())
    }

    fn led_by(pid: Option<u32>) -> ProcessTree {
        // Never let a bogus id turn into kill(-1) or kill(0): those hit far more than the group.
        let pgid = pid
            .and_then(|pid| libc::pid_t::try_from(pid).ok())
            .filter(|&pid| pid > 1);
        ProcessTree { pgid }
    }

    /// Kills every process in the tree (SIGKILL to the group).
    pub(crate) fn kill(&self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: kill(2) has no memory-safety preconditions; `pgid > 1` is our child's
            // pid, which is the id of the group it leads (`process_group(0)`).
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }

    /// Forgets the tree (after its leader was reaped its group id may be reused).
    pub(crate) fn forget(&mut self) {
        self.pgid = None;
    }

    /// Whether the tree would still be killed.
    #[cfg(test)]
    pub(crate) fn is_armed(&self) -> bool {
        self.pgid.is_some()
    }
}

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

    #[test]
    fn a_process_tree_never_targets_every_process() {
        for pid in [None, Some(0), Some(1), Some(u32::MAX)] {
            assert_eq!(ProcessTree::led_by(pid).pgid, None, "{pid:?}");
        }
        let mut tree = ProcessTree::led_by(Some(4242));
        assert_eq!(tree.pgid, Some(4242));
        tree.forget();
        assert!(!tree.is_armed());
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
