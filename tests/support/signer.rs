//! The independent signer of the signature tests: the `wasmsign2` CLI (crates.io
//! `wasmsign2-cli`, pinned, installed by `scripts/install-clients`) with its own keys and
//! with OpenSSH keys made by `ssh-keygen`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

/// The pinned signer, or `None` (the test then says why and skips).
fn wasmsign2() -> Option<PathBuf> {
    let clients = support::root().join("target/clients");
    let bin = clients.join("wasmsign2/bin/wasmsign2");
    if bin.is_file() {
        return Some(bin);
    }
    let why = std::fs::read_to_string(clients.join("wasmsign2.unavailable"))
        .unwrap_or_else(|_| "run scripts/install-clients".into());
    eprintln!(
        "SKIPPED: the wasmsign2 CLI is not installed at {} ({})",
        bin.display(),
        why.trim()
    );
    None
}

/// Signs with the wasmsign2 CLI and makes keys with it and with ssh-keygen, in `dir`.
pub struct Signer {
    /// The wasmsign2 binary.
    bin: PathBuf,
    /// Where keys are made.
    dir: PathBuf,
}

/// A key pair: the secret key file and the public key file.
pub struct Keys {
    /// The secret key file.
    pub secret: PathBuf,
    /// The public key file.
    pub public: PathBuf,
    /// Whether it is an OpenSSH key.
    pub ssh: bool,
}

impl Signer {
    /// A signer making its keys in `dir`, or `None` (saying why) if the pinned wasmsign2
    /// CLI is not installed.
    pub fn new(dir: &Path) -> Option<Signer> {
        Some(Signer {
            bin: wasmsign2()?,
            dir: dir.to_path_buf(),
        })
    }

    /// Runs wasmsign2 with `args`; it must succeed.
    pub fn run(&self, args: &[&str]) {
        let out = Command::new(&self.bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "wasmsign2 {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `wasmsign2 keygen`: its own format.
    pub fn keygen(&self, name: &str) -> Keys {
        let (secret, public) = (self.dir.join(name), self.dir.join(format!("{name}.public")));
        self.run(&["keygen", "-k", s(&secret), "-K", s(&public)]);
        Keys {
            secret,
            public,
            ssh: false,
        }
    }

    /// `ssh-keygen -t ed25519`: an OpenSSH key, used with `wasmsign2 --ssh`.
    pub fn ssh_keygen(&self, name: &str) -> Keys {
        let secret = self.dir.join(name);
        let out = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                name,
                "-f",
                s(&secret),
            ])
            .output()
            .expect("ssh-keygen (openssh-client) is needed to make an OpenSSH key");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Keys {
            public: self.dir.join(format!("{name}.pub")),
            secret,
            ssh: true,
        }
    }

    /// Signs `input` into `output` with `keys` (recording the key id); `detached`: the
    /// signature goes to that file and `output` is the module as the signer wrote it.
    pub fn sign(&self, input: &Path, output: &Path, keys: &Keys, detached: Option<&Path>) {
        let mut args = vec!["sign", "-i", s(input), "-o", s(output)];
        args.extend(["-k", s(&keys.secret), "-K", s(&keys.public)]);
        if keys.ssh {
            args.push("--ssh");
        }
        if let Some(sig) = detached {
            args.extend(["-S", s(sig)]);
        }
        self.run(&args);
    }
}

/// A path as text.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}
