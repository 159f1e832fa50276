//! What the broker's named pipe needs from Windows: the owner-only security descriptor
//! to create it with, and the user at the other end of a connection.
//!
//! A pipe name is global to the machine, so access rests on the pipe's DACL (this user
//! alone, see [`acl`](super::acl)) and on each end asking who runs the other:
//! `GetNamedPipeClientProcessId` / `GetNamedPipeServerProcessId`, then that process's
//! token user, compared with ours. The process is asked by pid while the connection is
//! open; the DACL is what keeps other users out in the first place.

use std::ffi::c_void;
use std::io;
use std::os::windows::io::RawHandle;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};
use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};

use super::acl::{Descriptor, UserSid};

/// The user a process runs as, for the checks on both ends of the broker's pipe.
pub(crate) type PipeUser = UserSid;

/// The user this process runs as.
pub(crate) fn current_user() -> io::Result<PipeUser> {
    UserSid::current()
}

/// The `SECURITY_ATTRIBUTES` that every instance of the broker's pipe is created with:
/// the [owner-only](Descriptor::owner_only) descriptor, no inheritable handle.
pub(crate) struct PipeSecurity {
    attributes: SECURITY_ATTRIBUTES,
    _descriptor: Descriptor,
}

// SAFETY: the descriptor is written once, when made, and only read afterwards (by
// CreateNamedPipeW); `attributes` points into it and lives as long.
unsafe impl Send for PipeSecurity {}
// SAFETY: as above: shared use only reads.
unsafe impl Sync for PipeSecurity {}

impl PipeSecurity {
    /// Full access for this user alone (`D:P(A;OICI;FA;;;<user SID>)`).
    pub(crate) fn owner_only() -> io::Result<PipeSecurity> {
        let descriptor = Descriptor::owner_only()?;
        Ok(PipeSecurity {
            attributes: SECURITY_ATTRIBUTES {
                nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
                lpSecurityDescriptor: descriptor.0,
                bInheritHandle: 0,
            },
            _descriptor: descriptor,
        })
    }

    /// The pointer `CreateNamedPipeW` takes; valid while `self` is.
    pub(crate) fn as_raw(&self) -> *mut c_void {
        (&self.attributes as *const SECURITY_ATTRIBUTES)
            .cast_mut()
            .cast()
    }
}

/// The user running the client connected to the server end `pipe`.
pub(crate) fn pipe_client_user(pipe: RawHandle) -> io::Result<PipeUser> {
    let mut pid = 0u32;
    // SAFETY: `pipe` is the caller's open pipe handle; `pid` is written.
    if unsafe { GetNamedPipeClientProcessId(pipe as HANDLE, &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    user_of(pid)
}

/// The user running the server of the client end `pipe`.
pub(crate) fn pipe_server_user(pipe: RawHandle) -> io::Result<PipeUser> {
    let mut pid = 0u32;
    // SAFETY: `pipe` is the caller's open pipe handle; `pid` is written.
    if unsafe { GetNamedPipeServerProcessId(pipe as HANDLE, &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    user_of(pid)
}

/// The user that process `pid` runs as.
fn user_of(pid: u32) -> io::Result<PipeUser> {
    // SAFETY: no preconditions; a null handle means failure.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `process` was opened with the query right that `of_process` needs.
    let user = unsafe { UserSid::of_process(process) };
    // SAFETY: `process` is a handle we own.
    unsafe { CloseHandle(process) };
    user
}

/// The DACL of the kernel object `handle` (a pipe), in SDDL.
#[cfg(test)]
pub(crate) fn object_dacl(handle: RawHandle) -> io::Result<String> {
    use std::ptr::null_mut;
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
    use windows_sys::Win32::Security::{DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR};
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: `handle` is open; `descriptor` receives a LocalAlloc'd SD, freed below.
    let status = unsafe {
        GetSecurityInfo(
            handle as HANDLE,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            null_mut(),
            null_mut(),
            &mut descriptor,
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let text = super::acl::dacl_text(descriptor);
    // SAFETY: allocated by GetSecurityInfo.
    unsafe { LocalFree(descriptor) };
    text
}
