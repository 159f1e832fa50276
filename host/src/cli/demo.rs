//! `tokenhost demo`: the whole mission end to end, with no external service.
//!
//! It starts a loopback identity provider and a loopback API inside this process (see
//! [`servers`]), writes a temporary config with two providers, and then, one line per
//! step on stdout: gets a token through the real `oauth2` plugin, calls the API with
//! [`AuthClient`], has the API revoke that token, shows `AuthClient` recovering from the
//! 401 (the manager refreshes through the plugin and the request is retried), and gets a
//! token from the built-in command source. Tokens are shown as fingerprints only.
//!
//! Choices:
//! - The oauth2 plugin's client secret is in the temporary config
//!   (`allow_secret_in_config = "true"`), not in an environment variable: setting one
//!   would mutate this process's environment (unsound once threads run). The config lives
//!   in a private temp dir (mode 0700; an owner-only ACL on Windows) that is removed at
//!   the end.
//! - The command source ([`command`]) fetches a client-credentials token from the same
//!   identity provider with `curl` when `curl` is on `PATH` (Linux, macOS), else prints
//!   a token the identity provider issued to it during setup (`cmd.exe /c type` on
//!   Windows), so the demo never depends on curl.
//! - Sources are built under the admin policy (`/etc/tokenhost/policy.toml`,
//!   `$TOKENHOST_POLICY`), like every other command: a policy that refuses the demo's
//!   plugin or command exits 2 with the policy's message.
//!
//! Exit codes: 0 when every step worked; 1 when a step failed (one line naming the step);
//! 2 when the plugin is not found or the demo's providers cannot be built.

mod command;
mod servers;

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokenhost::SourceFactory;
use tokenhost::Token;
use tokenhost::client::{AuthClient, ClientError};
use tokenhost::config::Config;
use tokenhost::source::wasm::CompiledCache;

use self::command::{DemoCommand, write_private};
use self::servers::{Hit, Ledger, TOKEN_PATH};
use super::{ConfigArg, Failure};

/// Where `scripts/build-plugins` puts the oauth2 plugin, relative to the repository root.
const PLUGIN_RELATIVE: &str = "plugins/target/wasm32-wasip2/release/oauth2.wasm";
const PLUGIN_PROVIDER: &str = "demo-plugin";
const COMMAND_PROVIDER: &str = "demo-command";

/// Arguments of `tokenhost demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// The oauth2 plugin. Default: plugins/target/wasm32-wasip2/release/oauth2.wasm under
    /// the current directory or under a parent folder of the tokenhost executable.
    #[arg(long, value_name = "PATH")]
    plugin: Option<PathBuf>,
}

/// Runs `tokenhost demo`.
pub fn run(args: DemoArgs) -> Result<(), Failure> {
    let plugin = find_plugin(args.plugin)?;
    let policy = ConfigArg {
        config: None,
        policy: Vec::new(),
    }
    .policy()?;
    let factory = SourceFactory::with_policy(CompiledCache::default_location(), policy);
    let dir = tempfile::Builder::new()
        .prefix("tokenhost-demo-")
        .tempdir()
        .map_err(|e| Failure::usage(format!("cannot create a temporary directory: {e}")))?;
    // Owner-only on Windows too, where a temp dir has the ACL of its parent.
    let work = dir.path().join("demo");
    tokenhost::paths::prepare_private_dir(&work).map_err(Failure::usage)?;
    super::runtime()?.block_on(steps(&plugin, &factory, &work))?;
    Ok(())
}

/// The plugin given with `--plugin`, else the first `oauth2.wasm` found at
/// [`PLUGIN_RELATIVE`] under the current directory or an ancestor of the executable.
fn find_plugin(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    const HINT: &str = "run scripts/build-plugins, or pass --plugin PATH";
    if let Some(path) = given {
        return match path.is_file() {
            true => Ok(std::path::absolute(&path).unwrap_or(path)),
            false => Err(Failure::usage(format!(
                "--plugin {}: no such file; {HINT}",
                path.display()
            ))),
        };
    }
    let mut roots: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots
        .iter()
        .map(|root| root.join(PLUGIN_RELATIVE))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Failure::usage(format!(
                "the oauth2 plugin was not found ({PLUGIN_RELATIVE} under the current \
                 directory or the executable's parent folders); {HINT}"
            ))
        })
}

/// A step's failure: exit code 1 and a message naming the step.
fn failed(step: u8, what: &str, error: impl Display) -> Failure {
    Failure::source(format!("demo step {step} ({what}) failed: {error}"))
}

async fn steps(plugin: &Path, factory: &SourceFactory, dir: &Path) -> Result<(), Failure> {
    let plugin_secret = random_secret();
    let command_secret = random_secret();
    let ledger = Ledger::new(&[
        (PLUGIN_PROVIDER, &plugin_secret),
        (COMMAND_PROVIDER, &command_secret),
    ]);

    let step = "start the identity provider";
    let idp = servers::start_identity_provider(ledger.clone())
        .await
        .map_err(|e| failed(1, step, e))?;
    outln!(
        "1. identity provider listening on http://{idp}{TOKEN_PATH} (OAuth2 client \
         credentials; loopback, in this process)"
    )?;

    let step = "start the API";
    let api = servers::start_api(ledger.clone())
        .await
        .map_err(|e| failed(2, step, e))?;
    outln!(
        "2. API listening on http://{api}/v1 (GET /v1/models answers 200 only to an \
         unrevoked token from that identity provider)"
    )?;

    let step = "write the demo config";
    let command = command::write(dir, idp, &command_secret, || ledger.issue(COMMAND_PROVIDER))
        .map_err(|e| failed(3, step, e))?;
    let config_path = dir.join("config.toml");
    let text = config_text(plugin, &command, idp, api, &plugin_secret);
    write_private(&config_path, &text, 0o600).map_err(|e| failed(3, step, e))?;
    let config = Config::load(&config_path).map_err(Failure::usage)?;
    let manager = Arc::new(factory.manager(&config).map_err(Failure::usage)?);
    let client = |id: &str| {
        let spec = config
            .provider(id)
            .expect("the demo config has this provider");
        // The API is on loopback in this process: never send its requests to a proxy.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| failed(3, step, e))?;
        AuthClient::with_client(http, manager.clone(), spec.id.clone(), spec.api.clone())
            .map_err(|e| failed(3, step, e))
    };
    let (plugin_client, command_client) = (client(PLUGIN_PROVIDER)?, client(COMMAND_PROVIDER)?);
    outln!(
        "3. config {}: {PLUGIN_PROVIDER} = the oauth2 plugin {} (allowed_hosts = \
         [\"{idp}\"]), {COMMAND_PROVIDER} = the command {}",
        config_path.display(),
        plugin.display(),
        command.shown()
    )?;

    let step = "get a token from the oauth2 plugin";
    let first = manager
        .auth(PLUGIN_PROVIDER)
        .await
        .map_err(|e| failed(4, step, e))?;
    outln!(
        "4. {PLUGIN_PROVIDER}: token {} from the oauth2 plugin ({})",
        first.fingerprint(),
        expires_in(&first)
    )?;

    let step = "GET /v1/models";
    let models = get_models(&plugin_client)
        .await
        .map_err(|e| failed(5, step, e))?;
    outln!("5. GET /v1/models with that token -> 200 ({models})")?;

    let step = "revoke the token";
    if !ledger.revoke(first.fingerprint()) {
        return Err(failed(6, step, "the API does not know the token"));
    }
    outln!(
        "6. the API revokes token {} (as an admin or a key rotation would)",
        first.fingerprint()
    )?;

    let step = "GET /v1/models with the revoked token";
    let before = ledger.hits().len();
    let models = get_models(&plugin_client)
        .await
        .map_err(|e| failed(7, step, e))?;
    let status = manager
        .status(PLUGIN_PROVIDER)
        .map_err(|e| failed(7, step, e))?;
    let refreshed = status
        .fingerprint
        .ok_or_else(|| failed(7, step, "nothing cached after recovery"))?;
    let hits = ledger.hits().split_off(before);
    let expected = [
        Hit {
            status: 401,
            token: Some(first.fingerprint()),
        },
        Hit {
            status: 200,
            token: Some(refreshed),
        },
    ];
    if hits != expected || refreshed == first.fingerprint() || status.source_calls != 2 {
        return Err(failed(
            7,
            step,
            format!(
                "expected a 401 for {} then a 200 for a new token from a second plugin \
                 call; the API saw {hits:?} and the plugin was called {} time(s)",
                first.fingerprint(),
                status.source_calls
            ),
        ));
    }
    outln!(
        "7. GET /v1/models -> 401 for {}; recovery refreshed through the plugin (token \
         {refreshed}) and the retry -> 200 ({models})",
        first.fingerprint()
    )?;

    let step = "GET /v1/models with the command source's token";
    let models = get_models(&command_client)
        .await
        .map_err(|e| failed(8, step, e))?;
    let status = manager
        .status(COMMAND_PROVIDER)
        .map_err(|e| failed(8, step, e))?;
    let token = status
        .fingerprint
        .ok_or_else(|| failed(8, step, "no token cached"))?;
    outln!(
        "8. {COMMAND_PROVIDER}: token {token} from the built-in command source ({}); \
         GET /v1/models -> 200 ({models})",
        command.how
    )?;

    let (issued, _) = ledger.issued(PLUGIN_PROVIDER);
    outln!(
        "demo complete: {issued} tokens issued, 1 revoked and replaced by 401 recovery, both \
         source kinds behind one AuthManager; no token value was printed and the temp config \
         is removed"
    )?;
    Ok(())
}

/// `GET /v1/models`: the model count on 200, an error otherwise.
async fn get_models(client: &AuthClient) -> Result<String, String> {
    let response = client
        .get("models")
        .send()
        .await
        .map_err(|e: ClientError| e.to_string())?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the response: {}", e.without_url()))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("the response is not JSON: {e}"))?;
    let ids: Vec<&str> = json["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    Ok(format!("models: {}", ids.join(", ")))
}

/// "expires in 3600 s", rounded to the second.
fn expires_in(token: &Token) -> String {
    let Some(at) = token.expires_at_ms() else {
        return "no expiry".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    format!("expires in {} s", at.saturating_sub(now).div_ceil(1000))
}

/// A client secret for this run: 32 random hex digits.
fn random_secret() -> String {
    (0..32)
        .map(|_| char::from_digit(fastrand::u32(0..16), 16).expect("a hex digit"))
        .collect()
}

/// The demo config: one plugin provider and one command provider, both calling the API.
fn config_text(
    plugin: &Path,
    command: &DemoCommand,
    idp: SocketAddr,
    api: SocketAddr,
    secret: &str,
) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let plugin = quote(&plugin.display().to_string());
    let program = quote(&command.program);
    let args = toml::Value::Array(
        command
            .args
            .iter()
            .map(|arg| toml::Value::String(arg.clone()))
            .collect(),
    );
    let token_url = quote(&format!("http://{idp}{TOKEN_PATH}"));
    let base_url = quote(&format!("http://{api}/v1"));
    let host = quote(&idp.to_string());
    let secret = quote(secret);
    format!(
        r#"# Written by `tokenhost demo`; removed when it ends.

[model_providers.{PLUGIN_PROVIDER}]
name = "Demo (oauth2 plugin)"
base_url = {base_url}

[model_providers.{PLUGIN_PROVIDER}.auth]
plugin = {plugin}
allowed_hosts = [{host}]

[model_providers.{PLUGIN_PROVIDER}.auth.config]
token_url = {token_url}
client_id = "{PLUGIN_PROVIDER}"
client_secret = {secret}
allow_secret_in_config = "true"
scope = "models.read"

[model_providers.{COMMAND_PROVIDER}]
name = "Demo (command)"
base_url = {base_url}

[model_providers.{COMMAND_PROVIDER}.auth]
command = {program}
args = {args}
"#
    )
}
