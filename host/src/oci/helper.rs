//! Docker credential helpers: `credHelpers` and `credsStore` in Docker's config name a
//! program, `docker-credential-<name>`, that keeps registry logins in the platform's
//! secret store (`secretservice`, `pass`, `osxkeychain`, `wincred`, `desktop`, or an
//! enterprise's own). The protocol: run `docker-credential-<name> get`, write the
//! registry's host on its stdin, read `{"ServerURL", "Username", "Secret"}` from its
//! stdout.
//!
//! Why it is gated: a helper is a program that tokenhost runs, named by a file the user
//! writes. Under an admin policy that restricts commands, it must pass the very check a
//! command source passes (its resolved file against `[commands]`, digest pins included),
//! and the approved file is the one run. A helper that is refused, missing, slow or
//! failing means an anonymous pull with a warning, never a hang: the registry then
//! answers for itself. The secret never reaches a log, an error or `Debug`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::credentials::Credentials;
use crate::config::{CommandSpec, OutputFormat};
use crate::policy::Policy;
use crate::source::command::process;

/// How long a helper may take (an OS keychain may show an unlock prompt).
const TIMEOUT: Duration = Duration::from_secs(30);

/// Which credential helpers a pull may run: those the admin policy allows for the
/// provider whose plugin is pulled, as for a command source.
#[derive(Clone, Copy)]
pub struct CredentialHelpers<'a> {
    policy: &'a Policy,
    provider: &'a str,
}

impl<'a> CredentialHelpers<'a> {
    /// Helpers as `policy` allows them for `provider` (an empty policy allows any).
    pub fn under(policy: &'a Policy, provider: &'a str) -> Self {
        CredentialHelpers { policy, provider }
    }

    /// The helper program for `name`, located on `PATH` and allowed by the policy, or
    /// why not (said in a warning by the caller).
    fn approve(&self, name: &str) -> Result<PathBuf, String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "credential helper name {:?} is not a plain name",
                crate::text::one_line(name, 60)
            ));
        }
        let program = helper_program(name);
        let located = crate::source::command::locate(&program, &std::env::temp_dir())
            .map_err(|e| format!("{program}: {e}"))?;
        let resolved = located.canonicalize().unwrap_or(located);
        if self.policy.is_empty() {
            return Ok(resolved);
        }
        let mut hash = || crate::digest::sha256_file(&resolved);
        let violations = self
            .policy
            .check_command(self.provider, &resolved, &mut hash);
        match violations.first() {
            None => Ok(resolved),
            Some(refused) => Err(format!("{program} is not run: {refused}")),
        }
    }
}

/// `docker-credential-<name>` (with `.exe` on Windows, where it is looked up as written).
fn helper_program(name: &str) -> String {
    match cfg!(windows) {
        true => format!("docker-credential-{name}.exe"),
        false => format!("docker-credential-{name}"),
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// What helper `name` holds for `registry`: `Ok(None)` when it has nothing for it, `Err`
/// (a reason without the secret) when it cannot be asked or answers nonsense.
pub(crate) async fn get(
    helpers: CredentialHelpers<'_>,
    name: &str,
    registry: &str,
) -> Result<Option<Credentials>, String> {
    let program = helpers.approve(name)?;
    let spec = CommandSpec {
        program: program.to_string_lossy().into_owned(),
        args: vec!["get".into()],
        cwd: std::env::temp_dir(),
        timeout: TIMEOUT,
        format: OutputFormat::Text,
    };
    let shown = helper_program(name);
    let finished = process::run_with_input(&spec, Some(&program), registry.as_bytes())
        .await
        .map_err(|e| format!("{shown} get: {e}"))?;
    let stdout = String::from_utf8_lossy(&finished.stdout);
    if !finished.status.success() {
        // Every helper says so on stdout when it simply has no login for the registry.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        // Only stderr is quoted: stdout is where a helper puts a secret.
        let stderr = String::from_utf8_lossy(&finished.stderr);
        let said = match stderr.trim().is_empty() {
            true => "nothing on stderr".to_string(),
            false => crate::text::one_line(stderr.trim(), 200),
        };
        return Err(format!("{shown} get failed ({}): {said}", finished.status));
    }
    // serde_json's errors name a position and a type, never the value.
    let answer: Answer = serde_json::from_slice(&finished.stdout)
        .map_err(|e| format!("{shown} get printed something that is not its JSON: {e}"))?;
    if answer.username == "<token>" {
        return Err(format!(
            "{shown} holds an identity token for {registry}, which tokenhost does not \
             exchange; log in with a user name and password or token"
        ));
    }
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        user: answer.username,
        password: answer.secret,
    }))
}
