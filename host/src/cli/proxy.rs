//! `tokenhost proxy`: a local endpoint that adds a provider's token to every request
//! (see [`tokenhost::proxy`]). The proxy hosts its own manager, built like every other
//! command's (the admin policy applies); it does not ask a broker per request.
//!
//! On start it prints one line on stderr, `tokenhost: proxy for <provider> at
//! http://127.0.0.1:PORT (local key in <path>)`, and with `--print-env` the
//! `OPENAI_BASE_URL` and `OPENAI_API_KEY` lines a shell or an `.env` file takes. Each
//! request is one info line on stderr; `RUST_LOG` filters them like any other.

use std::path::PathBuf;
use std::time::Duration;

use tokenhost::proxy::{BoundProxy, Listen, ProxyOptions};

use super::{ConfigArg, Failure};

/// The log filter without `-v`: warnings, and the proxy's request lines.
pub const LOG_DEFAULT: &str = "warn,tokenhost::proxy=info";

/// Arguments of `tokenhost proxy`.
#[derive(clap::Args)]
pub struct ProxyArgs {
    /// The provider id (a key under [model_providers]); it needs a base_url.
    provider: String,
    #[command(flatten)]
    config: ConfigArg,
    /// Where to listen: IP:PORT (loopback; port 0 picks a free port) or, on Linux and
    /// macOS, unix:PATH (only this user may connect, no key needed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: String,
    /// Where to write the local key (readable by this user alone). Default: the private
    /// runtime directory, proxy-<provider>-<port>.key.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Also print OPENAI_BASE_URL=... and OPENAI_API_KEY=<the local key> on stdout.
    #[arg(long)]
    print_env: bool,
    /// Allow a --listen address that other machines can reach (the key is still needed).
    #[arg(long)]
    allow_non_loopback: bool,
    /// Request bodies up to this many bytes are kept to be replayed after a 401.
    #[arg(long, value_name = "BYTES", default_value_t = ProxyOptions::default().replay_cap)]
    replay_cap: usize,
    /// Seconds upstream may take to send its response head; then the client gets 504.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    upstream_timeout: f64,
}

/// Runs `tokenhost proxy` until SIGTERM or SIGINT (Windows: Ctrl+C, Ctrl+Break, the
/// console closing, logoff or shutdown). Setup failures exit 2.
pub fn run(args: ProxyArgs) -> Result<(), Failure> {
    let listen: Listen = args.listen.parse().map_err(Failure::usage)?;
    if args.print_env && !listen.is_tcp() {
        return Err(Failure::usage(
            "--print-env needs a TCP --listen: SDKs take an http:// base URL",
        ));
    }
    let upstream_timeout = Duration::try_from_secs_f64(args.upstream_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Failure::usage("--upstream-timeout wants a positive number of seconds"))?;
    let built = args.config.tokenhost(Some(&args.provider), true)?;
    let api = super::provider_spec(built.config(), &args.provider)?
        .api
        .clone();
    let manager = built.manager().clone();
    let options = ProxyOptions {
        replay_cap: args.replay_cap,
        upstream_timeout,
        allow_non_loopback: args.allow_non_loopback,
        key_file: args.key_file,
    };
    super::runtime()?.block_on(async {
        let proxy = BoundProxy::bind(manager, &args.provider, &api, &listen, options)
            .await
            .map_err(Failure::usage)?;
        match proxy.key_file() {
            Some(file) => eprintln!(
                "tokenhost: proxy for {} at {} (local key in {})",
                args.provider,
                proxy.url(),
                file.display()
            ),
            None => eprintln!(
                "tokenhost: proxy for {} at {} (this user only)",
                args.provider,
                proxy.url()
            ),
        }
        if args.print_env
            && let Some(key) = proxy.key()
        {
            outln!("OPENAI_BASE_URL={}", proxy.url())?;
            outln!("OPENAI_API_KEY={}", key.expose())?;
        }
        proxy.serve().await.map_err(Failure::usage)
    })
}
