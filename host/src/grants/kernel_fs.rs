//! Directories that are never granted: `/`, and the kernel's own filesystems.
//!
//! procfs shows the host process itself (`/proc/self/environ` holds variables outside
//! `allowed_env`; `/proc/self/mem` holds, in a broker, other providers' cached tokens);
//! sysfs and the device files show the machine. A plugin that may read any of them is
//! no longer contained, so a directory is refused, in a provider's `allowed_paths` and in
//! a policy's `allowed_paths` ceiling alike, when its canonical path (symlinks and `..`
//! resolved):
//! - is `/`, which holds all of them;
//! - is `/proc`, `/sys` or `/dev`, or inside one, whatever is mounted there (in a
//!   container `/dev` is usually a tmpfs);
//! - (Linux) is on a kernel filesystem by its `statfs` type, wherever it is mounted (a
//!   bind mount of `/proc/self` elsewhere, a second procfs);
//! - (Linux, grants only) has a kernel filesystem mounted anywhere below it
//!   (`/proc/self/mountinfo`): a chroot's `proc/` under a granted folder. If the mount
//!   table cannot be read, the grant is refused (the check failed, so the answer is no).
//!
//! Everything specific to an operating system is in this file. Elsewhere only the path
//! rules apply. A filesystem mounted below a granted folder after tokenhost checked it
//! needs root, who is trusted.

use std::path::Path;

/// Directories whose whole subtree is refused, with what a plugin could read there.
const KERNEL_DIRS: &[(&str, &str)] = &[
    (
        "/proc",
        "the kernel's process files: the host process's environment and memory",
    ),
    ("/sys", "the kernel's device and driver files"),
    ("/dev", "the machine's device files"),
];

/// Why `path` (canonical, or lexically normalised if it does not exist) may not be
/// granted by its name alone, or `None`.
pub(crate) fn path_refusal(path: &Path) -> Option<String> {
    if path.parent().is_none() {
        return Some("is the root directory, which holds every file on the machine".into());
    }
    KERNEL_DIRS.iter().find_map(|(dir, what)| {
        path.starts_with(dir)
            .then(|| format!("is inside {dir} ({what})"))
    })
}

/// Why the existing directory `canonical` may not be granted, or `None`: the path rules,
/// its filesystem type and, if `mounts_below`, what is mounted under it.
pub(crate) fn refusal(canonical: &Path, mounts_below: bool) -> Option<String> {
    if let Some(reason) = path_refusal(canonical) {
        return Some(reason);
    }
    os::refusal(canonical, mounts_below)
}

#[cfg(target_os = "linux")]
mod os {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    /// Kernel filesystems by `statfs` magic (linux/magic.h) and by their name in
    /// `/proc/self/mountinfo`. `devtmpfs` reports the tmpfs magic, so it is found by
    /// name (or by the `/dev` path rule), never by magic.
    const KERNEL_FILESYSTEMS: &[(u32, &str)] = &[
        (0x0000_9fa0, "proc"),
        (0x6265_6572, "sysfs"),
        (0x0000_1cd1, "devpts"),
        (0x6462_6720, "debugfs"),
        (0x7472_6163, "tracefs"),
        (0x7363_6673, "securityfs"),
        (0x0027_e0eb, "cgroup"),
        (0x6367_7270, "cgroup2"),
        (0xcafe_4a11, "bpf"),
        (0xde5e_81e4, "efivarfs"),
        (0x6265_6570, "configfs"),
        (0x6165_676c, "pstore"),
        (0x4249_4e4d, "binfmt_misc"),
        (0x6573_5543, "fusectl"),
        (0, "devtmpfs"),
    ];

    pub(super) fn refusal(canonical: &Path, mounts_below: bool) -> Option<String> {
        if let Some(name) = filesystem_type(canonical) {
            return Some(format!("is on a {name} filesystem (a kernel filesystem)"));
        }
        if !mounts_below {
            return None;
        }
        let table = match std::fs::read("/proc/self/mountinfo") {
            Ok(table) => table,
            Err(e) => {
                return Some(format!(
                    "cannot be checked for kernel filesystems mounted below it (cannot read /proc/self/mountinfo: {e})"
                ));
            }
        };
        kernel_mounts(&table)
            .into_iter()
            .find(|(point, _)| point.starts_with(canonical))
            .map(|(point, name)| {
                format!(
                    "has a {name} filesystem (a kernel filesystem) mounted below it, at {}",
                    point.display()
                )
            })
    }

    /// The kernel filesystem `path` is on, by its `statfs` magic; `None` if it is on
    /// another kind, or cannot be asked (the mount table check still applies).
    fn filesystem_type(path: &Path) -> Option<&'static str> {
        let path = CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
        // SAFETY: `path` is NUL-terminated and `stat` is a valid out-pointer; the struct
        // is read only if the call succeeded, and then the kernel has filled it.
        let stat = unsafe {
            if libc::statfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
                return None;
            }
            stat.assume_init()
        };
        // Magics are 32-bit; `f_type`'s width and sign differ between architectures.
        let magic = stat.f_type as u32;
        KERNEL_FILESYSTEMS
            .iter()
            .find(|(m, _)| *m != 0 && *m == magic)
            .map(|(_, name)| *name)
    }

    /// The mount points of kernel filesystems in a `/proc/self/mountinfo` table.
    pub(super) fn kernel_mounts(table: &[u8]) -> Vec<(PathBuf, &'static str)> {
        String::from_utf8_lossy(table)
            .lines()
            .filter_map(|line| {
                // `id parent major:minor root mount-point options [optional...] - type source super-options`
                let (before, after) = line.split_once(" - ")?;
                let point = before.split(' ').nth(4)?;
                let fstype = after.split(' ').next()?;
                let name = KERNEL_FILESYSTEMS
                    .iter()
                    .find(|(_, name)| *name == fstype)?
                    .1;
                Some((PathBuf::from(unescape(point)), name))
            })
            .collect()
    }

    /// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash).
    fn unescape(field: &str) -> String {
        let bytes = field.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
                std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| u8::from_str_radix(d, 8).ok())
            });
            match (bytes[i], octal) {
                (b'\\', Some(byte)) => {
                    out.push(byte);
                    i += 4;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    use std::path::Path;

    pub(super) fn refusal(_canonical: &Path, _mounts_below: bool) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/", Some("is the root directory")),
            ("/proc", Some("is inside /proc")),
            ("/proc/self", Some("is inside /proc")),
            ("/sys/kernel", Some("is inside /sys")),
            ("/dev", Some("is inside /dev")),
            ("/dev/shm", Some("is inside /dev")),
            ("/processes", None),
            ("/devices", None),
            ("/home/u/proc", None),
            ("/var/run/secrets", None),
        ];
        for (path, expected) in cases {
            let got = path_refusal(Path::new(path));
            match expected {
                Some(want) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(want)),
                    "{path}: {got:?}"
                ),
                None => assert_eq!(got, None, "{path}"),
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn mountinfo_is_parsed_and_unescaped() {
        let table = b"22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n\
            23 1 0:22 / /sys rw shared:2 - sysfs sysfs rw\n\
            40 1 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
            90 40 0:21 / /srv/my\\040root/proc rw - proc proc rw\n\
            91 40 0:50 / /tmp rw - tmpfs tmpfs rw\n";
        let mounts = os::kernel_mounts(table);
        assert_eq!(
            mounts,
            [
                (std::path::PathBuf::from("/proc"), "proc"),
                ("/sys".into(), "sysfs"),
                ("/srv/my root/proc".into(), "proc"),
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_kernel_filesystems_are_refused_by_type_and_below() {
        // /proc/self/fd is refused by path; the type check must also find procfs there.
        assert!(
            os::refusal(Path::new("/proc/self"), false)
                .is_some_and(|r| r.contains("proc filesystem")),
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(refusal(&dir.path().canonicalize().unwrap(), true), None);
    }
}
