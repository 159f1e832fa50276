//! Argument parsing, logging setup and the mapping from errors to exit codes.
//! Each command lives in its own module and returns a [`Failure`] on error; everything a
//! command prints on stdout goes through [`output`] (`outln!`).

#[macro_use]
mod output;

mod check;
mod demo;
mod git_credential;
mod inspect;
mod login;
mod new_plugin;
mod obtain;
mod precompile;
mod proxy;
mod pull;
mod request;
mod serve;
mod token;
/// What `tokenhost token` prints (`src/front/output.rs`, shared with the lean front).
#[path = "../front/output.rs"]
mod token_output;

/// The lean front's command line (`src/front/args.rs`), for the test that checks it
/// against this parser.
#[cfg(all(test, unix))]
#[path = "../front/args.rs"]
mod front_args;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokenhost::config::Config;

/// Bearer tokens for HTTP clients from sandboxed token sources.
#[derive(Parser)]
#[command(name = "tokenhost", version, about)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a token for a provider on stdout.
    Token(token::TokenArgs),
    /// Sign in to a provider whose plugin has an interactive sign-in (SSO).
    Login(login::LoginArgs),
    /// Sign out of a provider: delete its stored secrets and cached tokens.
    Logout(login::LogoutArgs),
    /// Show whether each provider (or one) has a token: fingerprint and expiry.
    Status(login::StatusArgs),
    /// Validate every provider; with --resolve, also fetch a token from each.
    Check(check::CheckArgs),
    /// A git credential helper: `get` answers with a provider's token, `erase` reports it
    /// rejected.
    GitCredential(git_credential::GitCredentialArgs),
    /// Describe a plugin file: sha256, size, contract, exports and imports.
    Inspect(inspect::InspectArgs),
    /// Create a plugin crate from the template, ready to build for wasm32-wasip2.
    NewPlugin(new_plugin::NewPluginArgs),
    /// Send an HTTP request with a provider's token (curl-like); the body goes to stdout.
    Request(request::RequestArgs),
    /// Compile approved plugins into the administrator's cache (run as root).
    Precompile(precompile::PrecompileArgs),
    /// Serve tokens to other processes on a Unix socket or, on Windows, a named pipe (the
    /// token broker).
    Serve(serve::ServeArgs),
    /// A local endpoint for any HTTP client: forwards to the provider's base_url with its
    /// token, and recovers from HTTP 401 by itself.
    Proxy(proxy::ProxyArgs),
    /// Pull the plugins that come from OCI registries (every provider's, or one), resolving
    /// tags now, and check them against the policy and pins.
    Pull(pull::PullArgs),
    /// Print the configuration's JSON Schema.
    Schema,
    /// Show the mission end to end on loopback: a token from the oauth2 plugin, 401
    /// recovery after the API revokes it, and a token from a command source.
    Demo(demo::DemoArgs),
}

/// The command line of `tokenhost token` alone: what credential-command clients (Codex,
/// kubectl) run, over and over. Building every subcommand's arguments costs about as
/// much as the broker round trip itself, so [`parse`] tries this grammar first. It is
/// the same `-v` and the same [`token::TokenArgs`], so whatever it accepts means the
/// same as in [`Cli`]; anything it does not (help, an error) goes to [`Cli`], which
/// prints exactly what it always did.
#[derive(Parser)]
#[command(name = "tokenhost")]
struct TokenCli {
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
enum TokenCommand {
    Token(token::TokenArgs),
}

/// The command line: the `token` fast path ([`TokenCli`]) when it applies, else [`Cli`].
fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|first| first == "token")
        && let Ok(TokenCli {
            verbose,
            command: TokenCommand::Token(args),
        }) = TokenCli::try_parse_from(&args)
    {
        return Cli {
            verbose,
            command: Command::Token(args),
        };
    }
    Cli::parse_from(args)
}

/// Where to find the configuration and the policy (shared by commands that read them).
#[derive(clap::Args)]
struct ConfigArg {
    /// The config file. Default: $TOKENHOST_CONFIG, else
    /// $XDG_CONFIG_HOME/tokenhost/config.toml (~/.config/tokenhost/config.toml).
    #[arg(long, short = 'c', value_name = "PATH")]
    config: Option<PathBuf>,
    /// An extra policy file, stacked on /etc/tokenhost/policy.toml: it can only add
    /// restrictions. Repeatable; $TOKENHOST_POLICY names one more.
    #[arg(long, value_name = "PATH")]
    policy: Vec<PathBuf>,
}

impl ConfigArg {
    /// The effective policy: the system file (if present), then $TOKENHOST_POLICY, then
    /// each --policy. A policy that cannot be read or parsed is an error: fail closed.
    fn policy(&self) -> Result<tokenhost::policy::Policy, Failure> {
        tokenhost::policy::Policy::from_environment(&self.policy).map_err(Failure::usage)
    }

    /// The config and the effective policy, with no source built yet (`only` this
    /// provider will be, if given), for commands that check a provider before deciding
    /// to build it.
    fn prepare(&self, only: Option<&str>) -> Result<tokenhost::Prepared, Failure> {
        let mut builder = tokenhost::Tokenhost::builder();
        if let Some(path) = &self.config {
            builder = builder.config(path);
        }
        for file in &self.policy {
            builder = builder.policy_file(file);
        }
        if let Some(id) = only {
            builder = builder.only([id]);
        }
        builder.prepare().map_err(Failure::usage)
    }

    /// The config, policy and providers (`only` these, if given), as an application gets
    /// them. `strict`: a provider that cannot be built is this command's failure.
    fn tokenhost(&self, only: Option<&str>, strict: bool) -> Result<tokenhost::Tokenhost, Failure> {
        built(self.prepare(only)?.build(), strict)
    }

    fn load(&self) -> Result<Config, Failure> {
        tokenhost::load_config(self.config.as_deref()).map_err(Failure::usage)
    }
}

/// A command's failure: a message for stderr (none for a quiet failure) and an exit code.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// Exit code 1: a token source failed.
    fn source(error: impl std::fmt::Display) -> Self {
        Failure {
            code: 1,
            message: error.to_string(),
        }
    }

    /// Exit code 2: a usage or configuration error.
    fn usage(error: impl std::fmt::Display) -> Self {
        Failure {
            code: 2,
            message: error.to_string(),
        }
    }

    /// From a build error: a registry that cannot be reached is a source that is down
    /// (exit 1, as for any unreachable source); the rest are configuration (exit 2).
    fn build(error: &tokenhost::BuildError) -> Self {
        match error.is_unreachable() {
            true => Failure::source(error),
            false => Failure::usage(error),
        }
    }

    /// From a manager error: an unknown provider is a usage error, the rest source errors.
    fn auth(error: tokenhost::AuthError) -> Self {
        match error {
            tokenhost::AuthError::UnknownProvider { .. } => Failure::usage(error),
            other => Failure::source(other),
        }
    }
}

/// Parses the arguments, runs the command and returns its exit code.
pub fn run() -> ExitCode {
    let cli = parse();
    let quiet = match cli.command {
        Command::Proxy(_) => proxy::LOG_DEFAULT,
        _ => "warn",
    };
    init_logging(cli.verbose, quiet);
    let result = match cli.command {
        Command::Token(args) => token::run(args),
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
        Command::Status(args) => login::status(args),
        Command::Check(args) => check::run(args),
        Command::GitCredential(args) => git_credential::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::NewPlugin(args) => new_plugin::run(args),
        Command::Request(args) => request::run(args, cli.verbose),
        Command::Precompile(args) => precompile::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Schema => print_schema(),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Quiet failures (stdout's reader went away) have no message. A stderr that
            // cannot be written either is not worth a panic: the exit code still says it.
            if !failure.message.is_empty() {
                let _ = writeln!(std::io::stderr(), "tokenhost: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

/// `quiet` is the filter without `-v` (the proxy logs its requests at info).
fn init_logging(verbose: u8, quiet: &str) {
    // -v raises tokenhost's own level; dependencies stay at warn (wasmtime's trace
    // output alone would bury everything else). RUST_LOG overrides all of it.
    let default = match verbose {
        0 => quiet,
        1 => "warn,tokenhost=info",
        2 => "warn,tokenhost=debug",
        _ => "warn,tokenhost=trace",
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // wasmtime's WASI bindings trace every host call with its arguments and results: a
    // plugin's request path and query, the values of the environment variables it was
    // granted. They never go below debug, whatever RUST_LOG says. oci-client logs a
    // registry's token answer (a bearer token) at debug: it never goes below info.
    for target in [
        "wasmtime_wasi=debug",
        "wasmtime_wasi_http=debug",
        "oci_client=info",
    ] {
        if let Ok(directive) = target.parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// The provider `id` of `config`, or a usage error that says why not (no such provider,
/// or one without an `[auth]` table) and lists the providers that have a token source.
/// `tokenhost`, or with `strict` the first provider it could not build as the failure.
fn built(tokenhost: tokenhost::Tokenhost, strict: bool) -> Result<tokenhost::Tokenhost, Failure> {
    if let (true, Some(failure)) = (strict, tokenhost.failures().first()) {
        return Err(Failure::build(&failure.error));
    }
    Ok(tokenhost)
}

fn provider_spec<'c>(
    config: &'c Config,
    id: &str,
) -> Result<&'c tokenhost::config::ProviderSpec, Failure> {
    if let Some(spec) = config.provider(id) {
        return Ok(spec);
    }
    let mut known: Vec<&str> = config.providers().map(|p| &*p.id).collect();
    known.sort_unstable();
    let known = match known.is_empty() {
        true => "(none)".to_string(),
        false => known.join(", "),
    };
    let hint = match config.providers_without_auth().iter().any(|p| p == id) {
        true => format!("provider \"{id}\" has no [auth] table"),
        false => format!("unknown provider \"{id}\""),
    };
    Err(Failure::usage(format!(
        "{hint}; providers with a token source in {}: {known}",
        config.path().display()
    )))
}

/// A runtime on this thread alone, for a command that makes one request (a broker
/// round trip): starting worker threads would cost more than the request.
fn current_thread_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

fn print_schema() -> Result<(), Failure> {
    let schema = schemars::schema_for!(tokenhost::config::raw::RawConfig);
    let text = serde_json::to_string_pretty(&schema).map_err(Failure::usage)?;
    outln!("{text}")
}

/// Formats an expiry for people: RFC 3339 and the time left.
fn describe_expiry(expires_at_ms: Option<u64>) -> String {
    let Some(ms) = expires_at_ms else {
        return "no expiry".into();
    };
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if ms > now {
        format!("expires {when} (in {}s)", (ms - now) / 1000)
    } else {
        format!("expired {when}")
    }
}
