//! The demo's command source, per OS, and the demo's private files.
//!
//! Linux and macOS: a `/bin/sh` script that fetches a client-credentials token from the
//! demo identity provider with `curl` when `curl` is on `PATH` (like `gcloud auth
//! print-access-token` would), else prints a token the identity provider issued to it
//! during setup. Windows: `cmd.exe /c type <file>` printing such a token (a `.cmd`
//! script with `curl.exe` would need cmd's own quoting, which the README warns about;
//! the demo shows the command source, not curl). Either way the demo never depends on
//! curl.
//!
//! Every file is new and readable by this user alone: mode 0600 (0700 for the script)
//! on Unix; on Windows the files inherit the owner-only ACL of the directory they are
//! in, which the caller prepares with
//! [`prepare_private_dir`](tokenhost::paths::prepare_private_dir).

use std::net::SocketAddr;
use std::path::Path;

/// The command source's `command` and `args` for the demo config, and what they do.
pub(super) struct DemoCommand {
    /// The program (`command = ...`).
    pub(super) program: String,
    /// Its arguments (`args = [...]`).
    pub(super) args: Vec<String>,
    /// How it gets its token, for step 8.
    pub(super) how: &'static str,
}

impl DemoCommand {
    /// The program and its arguments, for step 3.
    pub(super) fn shown(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The token command, its files in `dir`: the curl script when `curl` is found (with
/// `secret` for the identity provider at `idp`), else one that prints `issued()`.
#[cfg(unix)]
pub(super) fn write(
    dir: &Path,
    idp: SocketAddr,
    secret: &str,
    issued: impl FnOnce() -> String,
) -> std::io::Result<DemoCommand> {
    let script = dir.join("fetch-token.sh");
    let how = match tokenhost::source::command::locate("curl", dir).is_ok() {
        true => write_curl_script(dir, &script, idp, secret)?,
        false => write_printing_script(dir, &script, &issued())?,
    };
    Ok(DemoCommand {
        program: script.display().to_string(),
        args: Vec::new(),
        how,
    })
}

/// The token command, its file in `dir`: `cmd.exe /c type` of the token `issued()`.
#[cfg(windows)]
pub(super) fn write(
    dir: &Path,
    _idp: SocketAddr,
    _secret: &str,
    issued: impl FnOnce() -> String,
) -> std::io::Result<DemoCommand> {
    let file = dir.join("issued-token");
    write_private(&file, &format!("{}\n", issued()), 0o600)?;
    Ok(DemoCommand {
        program: "cmd.exe".into(),
        args: vec!["/c".into(), "type".into(), file.display().to_string()],
        how: "cmd.exe prints a token the identity provider issued to it at setup",
    })
}

/// The command source's script when curl is available: the client-credentials grant
/// against the identity provider, printing the access token alone. The client secret is
/// in a curl config file (not on curl's command line, where `ps` would show it).
#[cfg(unix)]
fn write_curl_script(
    dir: &Path,
    script: &Path,
    idp: SocketAddr,
    secret: &str,
) -> std::io::Result<&'static str> {
    let curlrc = dir.join("client.curlrc");
    write_private(
        &curlrc,
        &format!("user = \"{}:{secret}\"\n", super::COMMAND_PROVIDER),
        0o600,
    )?;
    let text = format!(
        r#"#!/bin/sh
# A token command, like `gcloud auth print-access-token`: asks the demo identity
# provider for a client-credentials token and prints the access token alone.
set -eu
response=$(curl --silent --show-error --fail --noproxy '*' --max-time 4 \
    --config {curlrc} \
    --data 'grant_type=client_credentials&scope=models.read' \
    {url})
printf '%s\n' "$response" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p'
"#,
        curlrc = sh_quote(&curlrc.display().to_string()),
        url = sh_quote(&format!("http://{idp}{}", super::servers::TOKEN_PATH)),
    );
    write_private(script, &text, 0o700)?;
    Ok("a script that gets it from the identity provider with curl")
}

/// The command source's script without curl: it prints a token the identity provider
/// issued to `demo-command` during setup (kept in a file only the user can read).
#[cfg(unix)]
fn write_printing_script(dir: &Path, script: &Path, token: &str) -> std::io::Result<&'static str> {
    let file = dir.join("issued-token");
    write_private(&file, &format!("{token}\n"), 0o600)?;
    let text = format!(
        "#!/bin/sh\n# A token command that prints the token the demo identity provider \
         issued to it\n# during setup (curl was not found to fetch one).\nexec cat {}\n",
        sh_quote(&file.display().to_string())
    );
    write_private(script, &text, 0o700)?;
    Ok("curl not found: a script that prints a token the identity provider issued to it at setup")
}

/// Writes `text` to a new file with mode `mode`.
#[cfg(unix)]
pub(super) fn write_private(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    // The umask may have removed bits (the script must stay executable).
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Writes `text` to a new file, private by the ACL its directory passes on (`mode` is
/// Unix's).
#[cfg(windows)]
pub(super) fn write_private(path: &Path, text: &str, _mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// `text` as one single-quoted sh word.
#[cfg(unix)]
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
