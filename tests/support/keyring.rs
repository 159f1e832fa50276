//! A real Secret Service for tests: gnome-keyring in a private D-Bus session that the
//! test starts (`dbus-daemon --session`), unlocked with a throwaway password. Used by
//! the sign-in tests and by the Docker credential helper that keeps registry logins.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// A private session bus with gnome-keyring's secrets component. Stops when dropped.
pub struct Keyring {
    bus: Child,
    /// The bus address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Keyring {
    /// Starts the bus and an unlocked keyring, or `None` (saying why) if dbus or
    /// gnome-keyring is not installed.
    pub fn start() -> Option<Keyring> {
        for tool in ["dbus-daemon", "gnome-keyring-daemon"] {
            if std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map_or(true, |o| !o.status.success())
            {
                eprintln!("skipped: {tool} is not installed (apt-get install dbus gnome-keyring)");
                return None;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let mut bus = std::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        // --unlock reads the password on stdin and creates the login collection.
        let mut daemon = std::process::Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_RUNTIME_DIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        daemon
            .stdin
            .take()
            .unwrap()
            .write_all(b"test-password")
            .unwrap();
        let _ = daemon.wait();
        Some(Keyring {
            bus,
            address,
            _dir: dir,
        })
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        // gnome-keyring exits when its bus goes away.
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}
