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

use std::io::Read;

use tokenhost::clients::git::{self, AuthType};
use tokenhost::token::Fingerprint;

use super::obtain::Ask;
use super::{ConfigArg, Failure};

/// The most input read from git (its requests are a few hundred bytes).
const MAX_INPUT: u64 = 64 * 1024;

/// Arguments of `tokenhost git-credential`.
#[derive(clap::Args)]
pub struct GitCredentialArgs {
    /// The provider whose token git gets.
    #[arg(long)]
    provider: String,
    #[command(flatten)]
    config: ConfigArg,
    /// The username sent with the token (HTTP Basic).
    #[arg(long, default_value = "x-access-token")]
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
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_INPUT)
        .read_to_string(&mut input)
        .map_err(|e| Failure::usage(format!("git-credential: cannot read git's input: {e}")))?;
    let request = git::parse(&input).map_err(|e| Failure::usage(format!("git-credential: {e}")))?;
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
