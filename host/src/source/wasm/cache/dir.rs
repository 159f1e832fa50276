//! A cache directory opened through checked handles: the one place the compiled cache
//! touches the file system, and the only OS-specific part of it.
//!
//! A compiled entry is native code that runs as it is, so the directory it comes from
//! must be one that only its trusted owner can change, and it must stay that directory
//! between the check and the read. Hence:
//! - the path is walked from `/` one component at a time with `openat(O_NOFOLLOW)`, and
//!   each directory is checked on its open handle (`fstat`): an ancestor must belong to
//!   root or to the owner and must not be writable by others (a root-owned sticky
//!   directory such as `/tmp` is accepted: nobody else can rename what is in it). A
//!   component swapped for a symlink after the path was resolved fails the walk; a
//!   parent created or made writable by another user fails the check;
//! - entries are opened relative to the checked directory handle, never by path, with
//!   `O_NOFOLLOW`, and must be regular files belonging to the directory's owner; an
//!   artifact is mapped through its open handle (`/proc/self/fd/N`), never its name;
//! - entries are written to a fresh temporary name (`O_EXCL`) in the same directory and
//!   renamed into place relative to the same handle.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::entry::{OpenEntry, Stamp};

/// Who must own a cache directory for its entries to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// The user running tokenhost (the user's own cache).
    CurrentUser,
    /// root (the administrator's cache, read-only for everyone else).
    Root,
}

impl Owner {
    fn uid(self) -> libc::uid_t {
        match self {
            Owner::CurrentUser => euid(),
            Owner::Root => 0,
        }
    }
}

/// An open, checked cache directory.
#[derive(Debug)]
pub(super) struct CheckedDir {
    fd: OwnedFd,
    path: PathBuf,
    writable: bool,
    /// The mode of new entries: private in a user's cache, readable in the admin's.
    entry_mode: libc::c_uint,
}

/// The largest entry read (a compiled 18 MB Python plugin is ~40 MB).
const MAX_ENTRY_BYTES: u64 = 512 << 20;

impl CheckedDir {
    /// Opens `path`, which must belong to `owner` and be writable by nobody else, through
    /// ancestors that pass the same test. With `create`, missing components are created
    /// (mode 0700). Entries may be written only if this process runs as the owner.
    pub(super) fn open(path: &Path, owner: Owner, create: bool) -> Result<Self, String> {
        if create && !path.exists() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            use std::os::unix::fs::DirBuilderExt;
            // The user's cache is private; the admin's is readable by every user.
            let mode = match owner {
                Owner::CurrentUser => 0o700,
                Owner::Root => 0o755,
            };
            match std::fs::DirBuilder::new().mode(mode).create(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        // Symlinks in the path as the admin or user set it up are resolved once, here;
        // the walk below refuses any symlink that appears after this point.
        let canonical = path.canonicalize().map_err(|e| e.to_string())?;
        let uid = owner.uid();
        let mut fd = open_dir_at(None, c"/")?;
        let mut walked = PathBuf::from("/");
        let mut components = canonical.components().peekable();
        while let Some(component) = components.next() {
            let Component::Normal(name) = component else {
                continue;
            };
            walked.push(name);
            let name = CString::new(name.as_bytes()).map_err(|e| e.to_string())?;
            fd = open_dir_at(Some(&fd), &name).map_err(|e| format!("{}: {e}", walked.display()))?;
            let stat = fstat(&fd)?;
            let last = components.peek().is_none();
            check_dir(&stat, uid, last).map_err(|why| format!("{}: {why}", walked.display()))?;
        }
        Ok(CheckedDir {
            fd,
            path: canonical,
            writable: euid() == uid,
            entry_mode: match owner {
                Owner::CurrentUser => 0o600,
                Owner::Root => 0o644,
            },
        })
    }

    /// The directory's (canonical) path, for messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process may write entries.
    pub(super) fn writable(&self) -> bool {
        self.writable
    }

    /// Opens entry `name` without reading it, if it is a regular file of the directory's
    /// owner, not writable by others and at most [`MAX_ENTRY_BYTES`]. `None` if it does
    /// not exist; an error if it exists but must not be trusted.
    pub(super) fn open_entry(&self, name: &str) -> Result<Option<OpenEntry>, String> {
        let cname = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: a valid directory fd and a NUL-terminated name; the result is checked.
        let raw = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                cname.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if raw < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(None),
                Some(libc::ELOOP) => Err("is a symlink".into()),
                _ => Err(e.to_string()),
            };
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let file = unsafe { File::from_raw_fd(raw) };
        let stat = fstat(&file)?;
        let dir = fstat(&self.fd)?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err("is not a regular file".into());
        }
        if stat.st_uid != dir.st_uid {
            return Err(format!(
                "belongs to uid {}, not the directory's owner",
                stat.st_uid
            ));
        }
        if stat.st_mode & 0o022 != 0 {
            return Err("is writable by others".into());
        }
        let len = stat.st_size.max(0) as u64;
        if len > MAX_ENTRY_BYTES {
            return Err(format!("is larger than {} MiB", MAX_ENTRY_BYTES >> 20));
        }
        Ok(Some(OpenEntry {
            file,
            len,
            stamp: Some(stamp(&stat)),
        }))
    }

    /// A path by which wasmtime can map the entry open as `file`: the open file itself
    /// (`/proc/self/fd/N`, or `/dev/fd/N` where there is no `/proc`), never the entry's
    /// name, which may name another file by now.
    pub(super) fn mappable_path(&self, _name: &str, file: &File) -> PathBuf {
        let proc = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if proc.exists() {
            proc
        } else {
            PathBuf::from(format!("/dev/fd/{}", file.as_raw_fd()))
        }
    }

    /// Writes entry `name` atomically from `parts`, in order; returns the stamp of the
    /// file now under that name.
    pub(super) fn write(&self, name: &str, parts: &[&[u8]]) -> Result<Option<Stamp>, String> {
        if !self.writable {
            return Err("not writable by this user".into());
        }
        let temp = format!(".tmp-{:016x}", fastrand::u64(..));
        let ctemp = CString::new(temp).map_err(|e| e.to_string())?;
        let cname = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: as in `read`.
        let raw = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                ctemp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                self.entry_mode,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let mut file = unsafe { File::from_raw_fd(raw) };
        let written = parts
            .iter()
            .try_for_each(|part| file.write_all(part))
            .and_then(|()| file.sync_data())
            .map_err(|e| e.to_string())
            .and_then(|()| {
                // SAFETY: valid fds and NUL-terminated names.
                let renamed = unsafe {
                    libc::renameat(
                        self.fd.as_raw_fd(),
                        ctemp.as_ptr(),
                        self.fd.as_raw_fd(),
                        cname.as_ptr(),
                    )
                };
                match renamed {
                    // The stamp after the rename, which changes the file's ctime.
                    0 => fstat(&file).map(|stat| Some(stamp(&stat))),
                    _ => Err(std::io::Error::last_os_error().to_string()),
                }
            });
        if written.is_err() {
            // SAFETY: as above; failure to remove a temporary file is harmless.
            unsafe { libc::unlinkat(self.fd.as_raw_fd(), ctemp.as_ptr(), 0) };
        }
        written
    }
}

/// What identifies a file's content without reading it: device, inode, size, and the
/// modification and change times. Any write changes the change time, which no
/// unprivileged process can set back; a replaced file is another inode.
// The fields' types differ between platforms (`st_dev` is 32 bits on macOS).
#[allow(clippy::unnecessary_cast)]
fn stamp(stat: &libc::stat) -> Stamp {
    [
        stat.st_dev as u64,
        stat.st_ino as u64,
        stat.st_size as u64,
        stat.st_mtime as u64,
        stat.st_mtime_nsec as u64,
        stat.st_ctime as u64,
        stat.st_ctime_nsec as u64,
    ]
}

/// The checks for one directory on the walk: `last` is the cache directory itself.
fn check_dir(stat: &libc::stat, uid: libc::uid_t, last: bool) -> Result<(), String> {
    let others_write = stat.st_mode & 0o022 != 0;
    let sticky = stat.st_mode & libc::S_ISVTX != 0;
    if last {
        if stat.st_uid != uid {
            return Err(format!("owned by uid {}, not uid {uid}", stat.st_uid));
        }
        if others_write {
            return Err(format!(
                "writable by others (mode {:o}); run chmod go-w on it",
                stat.st_mode & 0o7777
            ));
        }
        return Ok(());
    }
    if stat.st_uid != 0 && stat.st_uid != uid {
        return Err(format!(
            "a parent directory owned by uid {}, who could replace the cache",
            stat.st_uid
        ));
    }
    if others_write && !(sticky && stat.st_uid == 0) {
        return Err(format!(
            "a parent directory writable by others (mode {:o}), who could replace the cache",
            stat.st_mode & 0o7777
        ));
    }
    Ok(())
}

fn open_dir_at(parent: Option<&OwnedFd>, name: &std::ffi::CStr) -> Result<OwnedFd, String> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid directory fd (or AT_FDCWD with an absolute name) and a
    // NUL-terminated name; the result is checked.
    let raw = unsafe {
        libc::openat(
            parent.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd()),
            name.as_ptr(),
            flags,
        )
    };
    if raw < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                "is not a directory (or was replaced by a symlink)".into()
            }
            _ => e.to_string(),
        });
    }
    // SAFETY: `raw` is a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn fstat(fd: &impl AsRawFd) -> Result<libc::stat, String> {
    // SAFETY: a zeroed stat is a valid out-buffer; the fd is valid.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    match unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } {
        0 => Ok(stat),
        _ => Err(std::io::Error::last_os_error().to_string()),
    }
}

fn euid() -> libc::uid_t {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
