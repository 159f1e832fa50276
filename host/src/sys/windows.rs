//! The Windows answers.
//!
//! Compiled and tested under Wine on the Linux CI machine (see the README's Windows
//! section for what Wine cannot show).

use std::fs;
use std::os::windows::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitStatus;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT;
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};

use super::ProcessIdentity;

mod acl;
mod pipe;

#[cfg(test)]
pub(crate) use acl::{dacl_of, under_wine};
#[cfg(test)]
pub(crate) use pipe::object_dacl;
pub(crate) use pipe::{PipeSecurity, PipeUser, current_user, pipe_client_user, pipe_server_user};

/// Where the administrator's system policy lives: `policy.toml` in `tokenhost` under the
/// machine's ProgramData folder, asked of the shell (`FOLDERID_ProgramData`, set per
/// machine) rather than read from `%ProgramData%`, which any user can set to point away
/// from the admin's file. `C:\ProgramData` if the shell does not answer.
pub fn system_policy_path() -> std::path::PathBuf {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, SHGetKnownFolderPath};
    let mut path: *mut u16 = std::ptr::null_mut();
    // SAFETY: a known folder id, no flags, the current user's token (null); `path`
    // receives a CoTaskMemAlloc'd string, freed below whatever the result.
    let status =
        unsafe { SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, std::ptr::null_mut(), &mut path) };
    let folder = (status == 0 && !path.is_null()).then(|| {
        // SAFETY: NUL-terminated UTF-16 until freed.
        unsafe {
            let len = (0..).take_while(|&i| *path.add(i) != 0).count();
            std::ffi::OsString::from_wide(std::slice::from_raw_parts(path, len))
        }
    });
    // SAFETY: allocated by SHGetKnownFolderPath (null is allowed).
    unsafe { CoTaskMemFree(path.cast()) };
    std::path::PathBuf::from(folder.unwrap_or_else(|| r"C:\ProgramData".into()))
        .join("tokenhost")
        .join("policy.toml")
}

/// The identity of this process's parent: its pid from a Toolhelp snapshot, its creation
/// time from `GetProcessTimes`. Windows keeps the parent's pid after the parent exits,
/// and may give it to a new process: a "parent" created after this process is not ours,
/// and gives `None` (a re-ask is then never read as a retry: the safe side).
pub fn parent_process() -> Option<ProcessIdentity> {
    let parent = parent_pid(std::process::id())?;
    let started = creation_time(parent)?;
    let ours = creation_time(std::process::id())?;
    (started <= ours).then_some(ProcessIdentity {
        pid: parent,
        started,
    })
}

/// The parent pid that a process snapshot records for `pid`.
fn parent_pid(pid: u32) -> Option<u32> {
    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW,
        TH32CS_SNAPPROCESS,
    };
    // SAFETY: no preconditions; the handle is checked and closed below.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    if snapshot == INVALID_HANDLE_VALUE || snapshot.is_null() {
        return None;
    }
    let mut entry = PROCESSENTRY32W {
        dwSize: std::mem::size_of::<PROCESSENTRY32W>() as u32,
        ..Default::default()
    };
    let mut parent = None;
    // SAFETY: `entry` is a writable PROCESSENTRY32W whose dwSize says so.
    let mut more = unsafe { Process32FirstW(snapshot, &mut entry) } != 0;
    while more {
        if entry.th32ProcessID == pid {
            parent = Some(entry.th32ParentProcessID).filter(|&p| p != 0);
            break;
        }
        // SAFETY: as above.
        more = unsafe { Process32NextW(snapshot, &mut entry) } != 0;
    }
    // SAFETY: `snapshot` is a handle we own.
    unsafe { CloseHandle(snapshot) };
    parent
}

/// When process `pid` was created, in 100 ns ticks since 1601.
fn creation_time(pid: u32) -> Option<u64> {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::{
        GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    // SAFETY: no preconditions; a null handle means failure.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return None;
    }
    let zero = || FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero(), zero(), zero(), zero());
    // SAFETY: `process` is open with query rights; the four FILETIMEs are writable.
    let ok = unsafe { GetProcessTimes(process, &mut created, &mut exited, &mut kernel, &mut user) };
    // SAFETY: `process` is a handle we own.
    unsafe { CloseHandle(process) };
    let ticks = (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime);
    (ok != 0 && ticks != 0).then_some(ticks)
}

/// Whether `path` is a file that could be run. Windows has no execute bit: a regular
/// file is enough (`PATHEXT` decides what a bare name may resolve to).
pub(crate) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Creates the directory `dir` with an ACL that admits this user alone and is inherited
/// by what is created inside (see [`acl`]).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    acl::create_owner_only_dir(dir)
}

/// Why the directory `dir` (with `meta`) is not private, or `None`. Windows: a reparse
/// point (a junction or symlink) is refused, and so is a directory this user does not
/// own (one made by someone else to catch our files).
pub(crate) fn private_dir_problem(dir: &Path, meta: &fs::Metadata) -> Option<String> {
    if let Some(problem) = private_file_problem(meta) {
        return Some(problem);
    }
    match acl::owned_by_current_user(dir) {
        Ok(true) => None,
        Ok(false) => Some("owned by another user".to_string()),
        Err(e) => Some(format!("its owner cannot be read ({e})")),
    }
}

/// Why the file with `meta` is not private, or `None`: a reparse point is refused; its
/// ACL is inherited from the private directory it is in.
pub(crate) fn private_file_problem(meta: &fs::Metadata) -> Option<String> {
    use std::os::windows::fs::MetadataExt;
    const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
    (meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0)
        .then(|| "is a junction or symbolic link".to_string())
}

/// Creates a new file at `path` (never an existing one) that only this user may read or
/// write: a protected owner-only DACL given at creation (see [`acl`]), so that no other
/// user can open it even for a moment, wherever it is.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    acl::create_owner_only_file(path)
}

/// Makes `options` open a reparse point itself rather than what it points to.
pub(crate) fn private_no_follow(options: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
}

/// Opening never waits for a writer on Windows: nothing to do.
pub(crate) fn open_without_waiting(options: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    options
}

/// What a file that is not a regular file is, for an error message.
pub(crate) fn file_kind(file_type: fs::FileType) -> &'static str {
    match file_type.is_dir() {
        true => "a directory",
        false => "not a regular file",
    }
}

/// Windows processes end with an exit code, never a signal.
pub(crate) fn describe_signal(_status: ExitStatus) -> Option<String> {
    None
}

/// `argv[0]` cannot differ from the program on Windows: nothing to do.
pub(crate) fn set_arg0(_command: &mut tokio::process::Command, _name: &str) {}

/// What tells a long-running command (the broker, the proxy) to stop: Ctrl+C,
/// Ctrl+Break, its console closing, logoff or shutdown. Installed up front, so that an
/// early event is a graceful stop.
pub(crate) struct StopSignals {
    c: tokio::signal::windows::CtrlC,
    brk: tokio::signal::windows::CtrlBreak,
    close: tokio::signal::windows::CtrlClose,
    shutdown: tokio::signal::windows::CtrlShutdown,
}

impl StopSignals {
    /// Installs the console handlers. Call inside a Tokio runtime.
    pub(crate) fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_shutdown};
        Ok(StopSignals {
            c: ctrl_c()?,
            brk: ctrl_break()?,
            close: ctrl_close()?,
            shutdown: ctrl_shutdown()?,
        })
    }

    /// Resolves when the process is told to stop.
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.c.recv() => {}
            _ = self.brk.recv() => {}
            _ = self.close.recv() => {}
            _ = self.shutdown.recv() => {}
        }
    }
}

/// A command's whole process tree: a Job Object that kills every process in it when
/// told to or when it is closed, so that a timeout kills grandchildren too. A child that
/// starts a grandchild before it is assigned to the job (a few microseconds after spawn)
/// leaves that grandchild out.
#[derive(Debug)]
pub(crate) struct ProcessTree {
    job: Option<HANDLE>,
}

// SAFETY: a job handle may be used from any thread.
unsafe impl Send for ProcessTree {}
// SAFETY: the handle is only passed to thread-safe kernel calls.
unsafe impl Sync for ProcessTree {}

impl ProcessTree {
    /// Nothing to prepare: the job is made after spawn.
    pub(crate) fn prepare(_command: &mut tokio::process::Command) {}

    /// A job holding the child just spawned; `None` inside if the job could not be made
    /// (the child is then killed alone).
    pub(crate) fn of(child: &tokio::process::Child) -> ProcessTree {
        let Some(process) = child.raw_handle() else {
            return ProcessTree { job: None };
        };
        // SAFETY: plain Win32 calls on handles this function owns or borrows; the limit
        // structure is fully initialised (zeroed, then the flag set).
        unsafe {
            let job = CreateJobObjectW(std::ptr::null(), std::ptr::null());
            if job.is_null() {
                return ProcessTree { job: None };
            }
            let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
            limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            let set = SetInformationJobObject(
                job,
                JobObjectExtendedLimitInformation,
                (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            );
            if set == 0 || AssignProcessToJobObject(job, process as HANDLE) == 0 {
                CloseHandle(job);
                return ProcessTree { job: None };
            }
            ProcessTree { job: Some(job) }
        }
    }

    /// Kills every process in the tree.
    pub(crate) fn kill(&self) {
        if let Some(job) = self.job {
            // SAFETY: `job` is a job handle this tree owns.
            unsafe { TerminateJobObject(job, 1) };
        }
    }

    /// Lets the tree go without killing it: closing a kill-on-close job would kill what
    /// is left in it, so the handle is closed only after the limit is lifted.
    pub(crate) fn forget(&mut self) {
        if let Some(job) = self.job.take() {
            // SAFETY: `job` is a job handle this tree owns; the zeroed limits lift
            // kill-on-close before it is closed.
            unsafe {
                let limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
                SetInformationJobObject(
                    job,
                    JobObjectExtendedLimitInformation,
                    (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                    std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
                );
                CloseHandle(job);
            }
        }
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            // SAFETY: closing the last handle of a kill-on-close job kills what is in it.
            unsafe { CloseHandle(job) };
        }
    }
}
