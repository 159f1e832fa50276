//! Running the `tokenhost` binary as a user would, in a temporary home: its own config,
//! cache and XDG directories, none of the developer's environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary home directory for one test.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    /// A new empty home.
    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` as `config.toml` in the home and returns its path.
    pub fn config(&self, text: &str) -> PathBuf {
        super::write_config(self.path(), text)
    }

    /// The `tokenhost` binary with `args`, in this home.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
        command
            .args(args)
            .env_remove("TOKENHOST_CONFIG")
            .env_remove("RUST_LOG")
            .env("XDG_CACHE_HOME", self.path().join("cache"))
            .env("XDG_CONFIG_HOME", self.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            // No keyring but a test's own (tests/login/keyring.rs sets one).
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("HOME", self.path());
        command
    }

    /// Runs [`Env::command`] to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

/// A command's stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A command's stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}
