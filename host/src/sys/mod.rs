//! What tokenhost asks of the operating system, in one place.
//!
//! Every platform-specific call (process identity and uids, process trees, file
//! permissions and locks, signals) sits behind a small function here, so the rest of the
//! crate is the same on every OS and each platform's answer is side by side: `unix`
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

#[cfg(test)]
mod tests {
    /// Set in the child that [`a_child_names_this_process_as_its_parent`] starts.
    const PROBE: &str = "TOKENHOST_TEST_PARENT_PROBE";

    /// In the child: prints what `parent_process` says. Elsewhere: passes.
    #[test]
    fn parent_probe() {
        if std::env::var_os(PROBE).is_some() {
            let parent = super::parent_process().expect("the child knows its parent");
            assert_eq!(super::parent_process(), Some(parent), "stable");
            println!("parent={} started={}", parent.pid, parent.started);
        }
    }

    /// This test binary runs itself as a child (only the probe test): the child must name
    /// this process, which is alive, as its parent. The same on every OS (under Wine too).
    #[test]
    fn a_child_names_this_process_as_its_parent() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sys::tests::parent_probe",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(PROBE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The harness prints the test's name on the same line.
        let line = text.split("parent=").nth(1).expect("a probe line");
        let pid = line.split(' ').next().unwrap();
        assert_eq!(pid, std::process::id().to_string(), "{line}");
        assert!(!line.starts_with(&format!("{pid} started=0")), "{line}");
    }

    /// The system policy is where the platform keeps machine-wide settings, and no
    /// user's environment moves it.
    #[test]
    fn the_system_policy_path_is_the_machines() {
        let path = super::system_policy_path();
        assert!(path.is_absolute(), "{}", path.display());
        assert!(
            path.ends_with("tokenhost/policy.toml"),
            "{}",
            path.display()
        );
        #[cfg(unix)]
        assert_eq!(path, std::path::Path::new("/etc/tokenhost/policy.toml"));
        #[cfg(windows)]
        {
            assert!(
                path.to_string_lossy()
                    .to_lowercase()
                    .contains("programdata"),
                "{}",
                path.display()
            );
            // SAFETY (of the test): no other test reads ProgramData.
            unsafe { std::env::set_var("ProgramData", r"C:\Users\Public\evil") };
            assert_eq!(super::system_policy_path(), path);
        }
    }
}
