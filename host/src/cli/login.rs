//! `tokenhost login`, `logout` and `status`: a person's sign-in for providers whose plugin
//! has one (contract 0.2 `login`, e.g. the `oidc-login` plugin).
//!
//! `login` is the only command that may wait for a person: it runs the plugin's `login`
//! in this process (never in a broker, which has no terminal), with a browser opened only
//! when stdin and stderr are terminals and `--no-browser` is not given; otherwise the URL
//! to open is printed on stderr on a line of its own. `logout` deletes the provider's
//! stored secrets, then makes a broker that serves the config drop its cached token.
//! `status` asks for a token without any interaction (as `tokenhost token` does) and
//! shows whether that works, its fingerprint and expiry, never a secret.

use std::io::{IsTerminal, Write};

use tokenhost::broker::{BrokerClient, socket_path};
use tokenhost::config::SourceSpec;
use tokenhost::{FailureKind, LoginOptions};

use super::obtain::Ask;
use super::{ConfigArg, Failure};

/// Arguments of `tokenhost login`.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// The provider id (a key under [model_providers]).
    provider: String,
    #[command(flatten)]
    config: ConfigArg,
    /// Never open a browser: print the URL to open on stderr.
    #[arg(long)]
    no_browser: bool,
}

/// Arguments of `tokenhost logout`.
#[derive(clap::Args)]
pub struct LogoutArgs {
    /// The provider id.
    provider: String,
    #[command(flatten)]
    config: ConfigArg,
}

/// Arguments of `tokenhost status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Only this provider (default: every provider).
    provider: Option<String>,
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs `tokenhost login`.
pub fn login(args: LoginArgs) -> Result<(), Failure> {
    let prepared = args.config.prepare(Some(&args.provider))?;
    let spec = super::provider_spec(prepared.config(), &args.provider)?;
    if let Some(policy) = prepared.policy().denies_interactive_login() {
        return Err(Failure::usage(format!(
            "provider \"{}\": interactive login is denied by the administrator's policy {}",
            tokenhost::text::escaped(&args.provider),
            policy.display()
        )));
    }
    // The same policy and pin checks as `check`, once: nothing is compiled if refused.
    let source = prepared.source(spec).map_err(Failure::usage)?;
    let interactive =
        !args.no_browser && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let id = tokenhost::text::escaped(&args.provider);
    let token = match super::runtime()?.block_on(source.login(LoginOptions { interactive })) {
        None => {
            return Err(Failure::usage(format!(
                "provider \"{id}\": its token source has no interactive sign-in (only plugins \
                 built for contract 0.2 with a login, such as oidc-login, have one)"
            )));
        }
        Some(Err(e)) => return Err(Failure::source(e)),
        Some(Ok(token)) => token,
    };
    let _ = writeln!(
        std::io::stderr(),
        "tokenhost: signed in to provider \"{id}\" (token {}, {})",
        token.fingerprint(),
        super::describe_expiry(token.expires_at_ms())
    );
    Ok(())
}

/// Runs `tokenhost logout`.
pub fn logout(args: LogoutArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let spec = super::provider_spec(&config, &args.provider)?;
    let id = tokenhost::text::escaped(&args.provider);
    let SourceSpec::Plugin(plugin) = &spec.source else {
        return Err(Failure::usage(format!(
            "provider \"{id}\": a command source keeps no sign-in to log out of"
        )));
    };
    // The store the policy has the provider use; clearing it is allowed even where the
    // policy now denies the store.
    let mut secrets = plugin.secrets.clone();
    args.config.policy()?.decide_secrets(&mut secrets);
    secrets.denied = false;
    secrets
        .store_for(&spec.id)
        .and_then(|store| store.clear())
        .map_err(Failure::source)?;
    // A broker serving this config may still hold a token from the sign-in: report it
    // rejected, so the broker refreshes, which now fails, and never hands it out again.
    let socket = socket_path(config.path());
    super::runtime()?.block_on(async {
        let Ok(mut client) = BrokerClient::try_connect(&socket).await else {
            return;
        };
        if let Ok(token) = client.token(&args.provider).await {
            let _ = client
                .unauthorized(&args.provider, token.fingerprint())
                .await;
        }
    });
    let _ = writeln!(
        std::io::stderr(),
        "tokenhost: signed out of provider \"{id}\""
    );
    Ok(())
}

/// Runs `tokenhost status`: one line per provider on stdout; exit 1 if any has no token.
pub fn status(args: StatusArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let ids: Vec<String> = match &args.provider {
        Some(id) => vec![super::provider_spec(&config, id)?.id.to_string()],
        None => {
            let mut ids: Vec<String> = config.providers().map(|p| p.id.to_string()).collect();
            ids.sort_unstable();
            ids
        }
    };
    let mut all_ok = true;
    for id in &ids {
        let shown = tokenhost::text::escaped(id);
        let token = args
            .config
            .prepare(Some(id))
            .and_then(|prepared| super::obtain::token(prepared, id, Ask::default()));
        match token {
            Ok(token) => outln!(
                "{shown}: ok: token {}, {}",
                token.fingerprint(),
                super::describe_expiry(token.expires_at_ms())
            )?,
            Err(failure) => {
                all_ok = false;
                let message = &failure.message;
                let kind = match message.contains(FailureKind::NotSignedIn.label()) {
                    true => "not signed in",
                    false => "error",
                };
                outln!("{shown}: {kind}: {message}")?;
            }
        }
    }
    match all_ok {
        true => Ok(()),
        false => Err(Failure::source("")),
    }
}
