//! `tokenhost git-credential`: a git credential helper (gitcredentials(7)).
//!
//! ```text
//! git config --global credential.https://git.example.com.helper \
//!     '!tokenhost git-credential --provider corp'
//! ```
//!
//! `get` answers with the provider's token (see [`tokenhost::clients::git`] for the
//! format); `erase`, which git runs after the server rejected the credential, reports
//! that token as rejected, matched by its fingerprint, so the next `get` hands out a new
//! one (through the broker's cache or, without a broker, through the rejected-token
//! record); `store` has nothing to do. git retries nothing itself: the user's next
//! command gets the new token.

use tokenhost::clients::git::{self, AuthType};
use tokenhost::token::Fingerprint;

use super::obtain::Ask;
use super::{ConfigArg, Failure};

/// Arguments of `tokenhost git-credential`.
#[derive(clap::Args)]
pub struct GitCredentialArgs {
    /// The provider whose token git gets.
    #[arg(long)]
    provider: String,
    #[command(flatten)]
    config: ConfigArg,
    /// The username sent with the token (HTTP Basic).
    #[arg(long, default_value = git::DEFAULT_USERNAME)]
    username: String,
    /// `basic`: the token as the password (GitHub, GitLab, Azure DevOps); `bearer`:
    /// `Authorization: Bearer` where git can send it (git >= 2.46), else basic.
    #[arg(long, value_enum, default_value_t)]
    authtype: AuthType,
    /// Run the source in this process even when a broker serves this config.
    #[arg(long)]
    no_broker: bool,
    /// git's operation: get, store or erase (others are ignored, as git asks).
    operation: String,
}

/// Runs `tokenhost git-credential`.
pub fn run(args: GitCredentialArgs) -> Result<(), Failure> {
    let (request, _) = git::read_request(std::io::stdin()).map_err(Failure::usage)?;
    match args.operation.as_str() {
        "get" => {
            // git says when a token was rejected (`erase`): no need to infer it.
            let ask = Ask {
                client: None,
                refresh: false,
                no_broker: args.no_broker,
            };
            let token = super::obtain::token(
                args.config.prepare(Some(&args.provider))?,
                &args.provider,
                ask,
            )?;
            let answer = git::answer(
                &request,
                args.authtype,
                &args.username,
                token.expose(),
                token.expires_at_ms(),
            )
            .map_err(|e| Failure::usage(format!("git-credential: {e}")))?;
            super::output::bytes(answer.as_bytes())
        }
        "erase" => match git::returned_token(&request) {
            Some(value) => super::obtain::report_rejected(
                &args.config.load()?,
                &args.provider,
                &Fingerprint::of(value),
            ),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The lean front of `tokenhost` exists on Unix only.
#[cfg(all(test, unix))]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    /// The lean front of `tokenhost` answers only `get` lines that the full parser reads
    /// the same way: provider, config, username and auth type, no policy, broker allowed.
    #[test]
    fn the_front_answers_only_what_the_full_parser_reads_the_same() {
        use super::super::front_args;
        for line in [
            "tokenhost git-credential --provider corp get",
            "tokenhost git-credential get --provider corp",
            "tokenhost git-credential --provider=corp -c /x.toml get",
            "tokenhost git-credential --provider corp --config=/x.toml --username oauth2 get",
            "tokenhost git-credential --provider corp --authtype bearer get",
            "tokenhost git-credential --provider corp --authtype=basic get",
            "tokenhost git-credential --provider corp --authtype Bearer get",
            "tokenhost git-credential --provider corp --authtype token get",
            "tokenhost git-credential --provider corp --authtype get",
            "tokenhost git-credential --provider corp --username -x get",
            "tokenhost git-credential --provider corp --username= get",
            "tokenhost git-credential --provider corp --provider other get",
            "tokenhost git-credential --provider corp get get",
            "tokenhost git-credential --provider corp get extra",
            "tokenhost git-credential --provider corp erase",
            "tokenhost git-credential --provider corp store",
            "tokenhost git-credential --provider corp frobnicate",
            "tokenhost git-credential --provider corp --no-broker get",
            "tokenhost git-credential --provider corp --policy p.toml get",
            "tokenhost git-credential --provider corp -v get",
            "tokenhost -v git-credential --provider corp get",
            "tokenhost git-credential --provider corp -c /x.toml -c /y.toml get",
            "tokenhost git-credential --provider corp -- get",
            "tokenhost git-credential get",
            "tokenhost git-credential --provider corp",
            "tokenhost git-credential --provider corp get --help",
            "tokenhost git-credential",
        ] {
            let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            let Some(lean) = front_args::parse_git(&args) else {
                continue;
            };
            let Ok(Cli {
                verbose: 0,
                command: Command::GitCredential(full),
            }) = Cli::try_parse_from(&args)
            else {
                panic!("{line}: the front answers what the full parser reads otherwise");
            };
            let fields = |a: &GitCredentialArgs| {
                format!(
                    "{} {:?} {:?} {} {:?} {} {}",
                    a.provider,
                    a.config.config,
                    a.config.policy,
                    a.username,
                    a.authtype,
                    a.no_broker,
                    a.operation
                )
            };
            let plain = format!(
                "{} {:?} [] {} {:?} false get",
                lean.provider,
                lean.config,
                lean.username.as_deref().unwrap_or(git::DEFAULT_USERNAME),
                lean.authtype.unwrap_or_default(),
            );
            assert_eq!(fields(&full), plain, "{line}");
        }
        let args =
            |line: &str| -> Vec<std::ffi::OsString> { line.split(' ').map(Into::into).collect() };
        for answered in [
            "tokenhost git-credential --provider corp get",
            "tokenhost git-credential --provider corp --authtype bearer --username u get",
        ] {
            assert!(
                front_args::parse_git(&args(answered)).is_some(),
                "{answered}"
            );
        }
    }
}
