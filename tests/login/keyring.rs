//! The sign-in kept in a real Secret Service: gnome-keyring in a private D-Bus session
//! that the test starts (`dbus-daemon --session`), unlocked with a throwaway password.
//! Skipped, saying so, where gnome-keyring or dbus is not installed (.ci/run installs them).

use super::*;

/// A private session bus with gnome-keyring's secrets component. Stops when dropped.
struct Keyring {
    bus: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Keyring {
    fn start() -> Option<Keyring> {
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

#[test]
fn the_sign_in_lives_in_the_secret_service() {
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let bus = [("DBUS_SESSION_BUS_ADDRESS", keyring.address.as_str())];
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, None, "");
    sign_in(&env, &idp, &config, &bus);
    // Nothing went to the file store.
    assert!(!env.path().join("data/tokenhost/secrets").exists());
    let out = token(&env, &config, &bus);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(userinfo(&idp, stdout(&out).trim()).0, 200);

    // Without the keyring (and no opt-in to the file store), never a silent fallback.
    let out = token(&env, &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        stderr(&out).contains("no OS keyring answers"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("secret_store = \"file\""),
        "{}",
        stderr(&out)
    );

    let mut logout = env.command(&["logout", "corp", "-c", config.to_str().unwrap()]);
    let out = logout.envs(bus).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let out = token(&env, &config, &bus);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(stderr(&out).contains("not signed in; run: tokenhost login corp"));
}
