//! Embedding tokenhost in an application: `cargo run --example embed -- <config> <provider>`
//! prints the fingerprint of the provider's token (never the token).
//!
//! Everything goes through [`tokenhost::Tokenhost`], which applies the machine's admin
//! policy (`/etc/tokenhost/policy.toml` and `$TOKENHOST_POLICY`) just as the `tokenhost`
//! binary does: a provider the policy refuses is not built, and this example says why.
//! Exit codes as the CLI's: 0 ok, 1 the source failed, 2 a usage, config or policy error.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, provider] = args.as_slice() else {
        eprintln!("usage: embed <config.toml> <provider>");
        return ExitCode::from(2);
    };
    let tokenhost = match tokenhost::Tokenhost::builder()
        .config(config)
        .only([provider.as_str()])
        .build()
    {
        Ok(tokenhost) => tokenhost,
        Err(e) => {
            eprintln!("embed: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(failure) = tokenhost.failures().first() {
        eprintln!("embed: {}", failure.error);
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("embed: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(tokenhost.manager().auth(provider)) {
        Ok(token) => {
            println!("{}", token.fingerprint());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("embed: {e}");
            ExitCode::from(1)
        }
    }
}
