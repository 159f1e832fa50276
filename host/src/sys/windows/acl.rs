//! Owner-only security descriptors: what makes a directory private to this user on
//! Windows, where permission bits do not exist.
//!
//! A private directory is created with a protected DACL that grants full access to the
//! current user's SID alone and is inherited by everything created inside it, so files
//! written there are private without further work; it is accepted later only while its
//! owner is still that user. The broker's named pipe is created with the same
//! descriptor (see `pipe`).

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    GetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    EqualSid, GetTokenInformation, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::Storage::FileSystem::CreateDirectoryW;
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// `s` as a NUL-terminated UTF-16 string.
fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(Some(0)).collect()
}

/// The NUL-terminated UTF-16 string at `text` as a `String`, then frees it.
///
/// # Safety
/// `text` must be a NUL-terminated UTF-16 string allocated with `LocalAlloc`, not used
/// afterwards.
unsafe fn take_local_string(text: *mut u16) -> String {
    // SAFETY: the caller promises a NUL-terminated string.
    let s = unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        String::from_utf16_lossy(std::slice::from_raw_parts(text, len))
    };
    // SAFETY: the caller promises LocalAlloc and no later use.
    unsafe { LocalFree(text.cast()) };
    s
}

/// A user's SID: a process token's `TOKEN_USER`, whose SID points into it.
pub(crate) struct UserSid {
    /// `u64`s so that the `TOKEN_USER` at its start is aligned.
    buffer: Vec<u64>,
}

impl UserSid {
    /// The user this process runs as.
    pub(crate) fn current() -> io::Result<UserSid> {
        // SAFETY: the pseudo-handle of this process is always valid.
        unsafe { Self::of_process(GetCurrentProcess()) }
    }

    /// The user the process `process` runs as.
    ///
    /// # Safety
    /// `process` must be a process handle with `PROCESS_QUERY_LIMITED_INFORMATION`.
    pub(crate) unsafe fn of_process(process: HANDLE) -> io::Result<UserSid> {
        let mut token: HANDLE = null_mut();
        // SAFETY: the caller promises a process handle; `token` is written.
        if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut len = 0u32;
        // SAFETY: a size query: no buffer, the length is written to `len`.
        unsafe { GetTokenInformation(token, TokenUser, null_mut(), 0, &mut len) };
        let mut buffer = vec![0u64; (len as usize).div_ceil(8).max(1)];
        // SAFETY: `buffer` holds at least `len` writable bytes.
        let ok = unsafe {
            GetTokenInformation(token, TokenUser, buffer.as_mut_ptr().cast(), len, &mut len)
        };
        let error = io::Error::last_os_error();
        // SAFETY: `token` is a handle we own.
        unsafe { CloseHandle(token) };
        match ok {
            0 => Err(error),
            _ => Ok(UserSid { buffer }),
        }
    }

    pub(crate) fn psid(&self) -> PSID {
        // SAFETY: the buffer starts with the TOKEN_USER that GetTokenInformation wrote.
        unsafe { (*self.buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }

    /// The SID as text (`S-1-5-21-...`).
    pub(crate) fn text(&self) -> io::Result<String> {
        let mut text: *mut u16 = null_mut();
        // SAFETY: `psid` is a valid SID; `text` receives a LocalAlloc'd string.
        if unsafe { ConvertSidToStringSidW(self.psid(), &mut text) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: allocated by ConvertSidToStringSidW with LocalAlloc.
        Ok(unsafe { take_local_string(text) })
    }
}

#[cfg(test)]
impl UserSid {
    /// The SID written as `text` (`S-1-5-18`), laid out as a `TOKEN_USER` is.
    pub(crate) fn from_text(text: &str) -> io::Result<UserSid> {
        use windows_sys::Win32::Security::Authorization::ConvertStringSidToSidW;
        use windows_sys::Win32::Security::{CopySid, GetLengthSid};
        let wide_text = wide(OsStr::new(text));
        let mut sid: PSID = null_mut();
        // SAFETY: `wide_text` is NUL-terminated; `sid` receives a LocalAlloc'd SID.
        if unsafe { ConvertStringSidToSidW(wide_text.as_ptr(), &mut sid) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `sid` is valid until freed below.
        let len = unsafe { GetLengthSid(sid) } as usize;
        let header = std::mem::size_of::<TOKEN_USER>();
        let mut buffer = vec![0u64; (header + len).div_ceil(8)];
        // SAFETY: the buffer holds a TOKEN_USER followed by `len` bytes for the SID, and
        // outlives the pointer stored in its header (a Vec's heap does not move).
        let copied = unsafe {
            let target = buffer.as_mut_ptr().cast::<u8>().add(header).cast();
            let copied = CopySid(len as u32, target, sid);
            (*buffer.as_mut_ptr().cast::<TOKEN_USER>()).User.Sid = target;
            LocalFree(sid);
            copied
        };
        match copied {
            0 => Err(io::Error::last_os_error()),
            _ => Ok(UserSid { buffer }),
        }
    }
}

impl PartialEq for UserSid {
    fn eq(&self, other: &UserSid) -> bool {
        // SAFETY: both are valid SIDs inside their buffers.
        unsafe { EqualSid(self.psid(), other.psid()) != 0 }
    }
}

impl std::fmt::Debug for UserSid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.text() {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str("<unreadable SID>"),
        }
    }
}

/// A security descriptor made from SDDL; freed when dropped.
pub(crate) struct Descriptor(pub(crate) PSECURITY_DESCRIPTOR);

impl Descriptor {
    /// Full access for the current user alone, nothing inherited from the parent, and
    /// inherited by the files and directories created inside.
    pub(crate) fn owner_only() -> io::Result<Descriptor> {
        Self::owner_only_with("OICI")
    }

    /// Full access for the current user alone on a file, nothing inherited from the
    /// parent directory.
    pub(crate) fn owner_only_file() -> io::Result<Descriptor> {
        Self::owner_only_with("")
    }

    /// `D:P(A;<inheritance>;FA;;;<this user>)`.
    fn owner_only_with(inheritance: &str) -> io::Result<Descriptor> {
        let sid = UserSid::current()?.text()?;
        let sddl = wide(OsStr::new(&format!("D:P(A;{inheritance};FA;;;{sid})")));
        let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `sddl` is NUL-terminated; `descriptor` receives a LocalAlloc'd SD.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                null_mut(),
            )
        };
        match ok {
            0 => Err(io::Error::last_os_error()),
            _ => Ok(Descriptor(descriptor)),
        }
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

/// Creates `dir` with the [owner-only](Descriptor::owner_only) descriptor.
pub(crate) fn create_owner_only_dir(dir: &Path) -> io::Result<()> {
    let descriptor = Descriptor::owner_only()?;
    let attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.0,
        bInheritHandle: 0,
    };
    let path = wide(dir.as_os_str());
    // SAFETY: `path` is NUL-terminated; `attributes` and its descriptor outlive the call.
    match unsafe { CreateDirectoryW(path.as_ptr(), &attributes) } {
        0 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// Creates the file `path` (`CREATE_NEW`: an existing file or link is an error) with the
/// [owner-only](Descriptor::owner_only_file) descriptor, open to read and write. Others
/// may share the handle's access as std's files do (read, write, and delete, so that it
/// can be renamed into place while open), but the DACL admits no one else.
pub(crate) fn create_owner_only_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::windows::io::FromRawHandle;
    use windows_sys::Win32::Foundation::{GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Storage::FileSystem::{
        CREATE_NEW, CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_DELETE, FILE_SHARE_READ,
        FILE_SHARE_WRITE,
    };
    let descriptor = Descriptor::owner_only_file()?;
    let attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.0,
        bInheritHandle: 0,
    };
    let wide_path = wide(path.as_os_str());
    // SAFETY: `wide_path` is NUL-terminated; `attributes` and its descriptor outlive the
    // call; no template file.
    let handle = unsafe {
        CreateFileW(
            wide_path.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            &attributes,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            null_mut(),
        )
    };
    if handle == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a file handle just opened, owned by nothing else.
    Ok(unsafe { std::fs::File::from_raw_handle(handle) })
}

/// Whether the current user owns `path`.
pub(crate) fn owned_by_current_user(path: &Path) -> io::Result<bool> {
    let user = UserSid::current()?;
    let wide_path = wide(path.as_os_str());
    let mut owner: PSID = null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: `wide_path` is NUL-terminated; `owner` points into `descriptor`, which is
    // LocalAlloc'd for us and freed below.
    let status = unsafe {
        GetNamedSecurityInfoW(
            wide_path.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            null_mut(),
            null_mut(),
            null_mut(),
            &mut descriptor,
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    // SAFETY: both are valid SIDs; `owner` lives in `descriptor` until it is freed.
    let same = unsafe { EqualSid(owner, user.psid()) } != 0;
    // SAFETY: allocated by GetNamedSecurityInfoW.
    unsafe { LocalFree(descriptor) };
    Ok(same)
}

/// The DACL of `descriptor` in SDDL.
#[cfg(test)]
pub(crate) fn dacl_text(descriptor: PSECURITY_DESCRIPTOR) -> io::Result<String> {
    use windows_sys::Win32::Security::Authorization::ConvertSecurityDescriptorToStringSecurityDescriptorW;
    use windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;
    let mut text: *mut u16 = null_mut();
    // SAFETY: `descriptor` is valid; `text` receives a LocalAlloc'd string.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            descriptor,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &mut text,
            null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: allocated by ConvertSecurityDescriptorToStringSecurityDescriptorW.
    Ok(unsafe { take_local_string(text) })
}

/// The DACL that the file system keeps for `path`, in SDDL.
#[cfg(test)]
pub(crate) fn dacl_of(path: &Path) -> io::Result<String> {
    use windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;
    let wide_path = wide(path.as_os_str());
    let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: as in `owned_by_current_user`.
    let status = unsafe {
        GetNamedSecurityInfoW(
            wide_path.as_ptr(),
            SE_FILE_OBJECT,
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
    let text = dacl_text(descriptor);
    // SAFETY: allocated by GetNamedSecurityInfoW.
    unsafe { LocalFree(descriptor) };
    text
}

/// Whether this is Wine (its ntdll exports `wine_get_version`), which keeps no security
/// descriptors on a Unix file system: it shows a default DACL whatever was set.
#[cfg(test)]
pub(crate) fn under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll = wide(OsStr::new("ntdll.dll"));
    // SAFETY: both names are NUL-terminated; ntdll is loaded in every process.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        !module.is_null() && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_grants_this_user_alone_and_inherits_nothing() {
        let sid = UserSid::current().unwrap().text().unwrap();
        assert!(sid.starts_with("S-1-"), "{sid}");
        let descriptor = Descriptor::owner_only().unwrap();
        assert_eq!(
            dacl_text(descriptor.0).unwrap(),
            format!("D:P(A;OICI;FA;;;{sid})")
        );
    }

    #[test]
    fn a_private_file_is_created_new_with_this_user_alone() {
        let sid = UserSid::current().unwrap().text().unwrap();
        let descriptor = Descriptor::owner_only_file().unwrap();
        assert_eq!(
            dacl_text(descriptor.0).unwrap(),
            format!("D:P(A;;FA;;;{sid})")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let mut file = create_owner_only_file(&path).unwrap();
        std::io::Write::write_all(&mut file, b"x").unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        let again = create_owner_only_file(&path).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists, "{again}");
        assert!(owned_by_current_user(&path).unwrap());
        if under_wine() {
            return; // Wine shows its default DACL here (see `under_wine`).
        }
        assert_eq!(dacl_of(&path).unwrap(), format!("D:P(A;;FA;;;{sid})"));
    }

    #[test]
    fn a_private_dir_is_created_with_it_and_owned_by_this_user() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("private");
        crate::paths::prepare_private_dir(&dir).unwrap();
        assert!(owned_by_current_user(&dir).unwrap());
        // A second prepare accepts it as it is.
        crate::paths::prepare_private_dir(&dir).unwrap();
        if under_wine() {
            return; // Wine shows its default DACL here (see `under_wine`).
        }
        let sid = UserSid::current().unwrap().text().unwrap();
        assert_eq!(dacl_of(&dir).unwrap(), format!("D:P(A;OICI;FA;;;{sid})"));
    }
}
