//! `tokenhost check`: validate every provider (and, with --resolve, fetch a token from
//! each), one status line per provider, continuing after failures.

use tokenhost::config::ProviderSpec;
use tokenhost::policy::Policy;
use tokenhost::publisher::SignedPlugin;

use super::{ConfigArg, Failure, describe_expiry};

/// Arguments of `tokenhost check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Also fetch a token from every provider (prints fingerprints, never tokens).
    #[arg(long)]
    resolve: bool,
}

/// Runs `tokenhost check`.
pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let built = args.config.tokenhost(None, false)?;
    let config = built.config();
    outln!("config {}", config.path().display())?;
    for file in built.policy().files() {
        outln!("policy {}", file.display())?;
    }
    let runtime = super::runtime()?;
    let (mut config_errors, mut source_errors) = (0, 0);
    for spec in config.providers() {
        let id = tokenhost::text::escaped(&spec.id);
        let kind = spec.source.to_string();
        for lowered in built.policy().lower_defaults(spec).1 {
            outln!("note {lowered}")?;
        }
        let failure = built.failures().iter().find(|f| f.provider == *spec.id);
        if let Some(failure) = failure {
            match failure.error.is_unreachable() {
                true => source_errors += 1,
                false => config_errors += 1,
            }
            match failure.error.violations() {
                [] => outln!("FAIL {id}: {}", failure.error)?,
                violations => {
                    for violation in violations {
                        outln!("FAIL {violation}")?;
                    }
                }
            }
            continue;
        }
        if let Some(line) = oci_line(spec, built.policy()) {
            outln!("     {line}")?;
        }
        if !args.resolve {
            outln!("ok   {id}: {kind}")?;
            continue;
        }
        match runtime.block_on(built.manager().auth(&spec.id)) {
            Ok(token) => outln!(
                "ok   {id}: {kind}: token {} ({})",
                token.fingerprint(),
                describe_expiry(token.expires_at_ms())
            )?,
            Err(e) => {
                source_errors += 1;
                outln!("FAIL {e}")?;
            }
        }
    }
    for id in config.providers_without_auth() {
        outln!("skip {}: no [auth] table", tokenhost::text::escaped(id))?;
    }
    match (config_errors, source_errors) {
        (0, 0) => Ok(()),
        (0, n) => Err(Failure::source(format!(
            "{n} provider(s) failed to produce a token"
        ))),
        (n, _) => Err(Failure::usage(format!(
            "{n} provider(s) have configuration errors"
        ))),
    }
}

/// For a plugin from a registry: its tag -> digest (from the store, where building the
/// provider just put it) and who signed it, among the keys the policy and the provider
/// name. `None` for other providers.
fn oci_line(spec: &ProviderSpec, policy: &Policy) -> Option<String> {
    let oci = spec.source.plugin()?.oci.as_ref()?;
    let helpers = tokenhost::oci::CredentialHelpers::under(policy, &spec.id);
    let pulled =
        tokenhost::oci::fetch(oci, &tokenhost::oci::Store::default_location(), helpers).ok()?;
    let bytes = std::fs::read(&pulled.path).ok()?;
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
    let signatures: Vec<_> = pulled.signature.iter().cloned().collect();
    let signed = SignedPlugin::new(&pulled.path, &bytes, digest).with_signature_files(&signatures);
    let mut keys = policy.publisher_keys();
    if let Some(key) = &spec.publisher_key {
        keys.push(("its publisher_key".to_string(), key));
    }
    let signers: Vec<String> = signed
        .signatures()
        .iter()
        .map(|signature| {
            let verified: Vec<&str> = keys
                .iter()
                .filter(|(_, key)| signed.verifies(key, signature))
                .map(|(label, _)| label.as_str())
                .collect();
            match (verified.is_empty(), &signature.key_id) {
                (false, _) => verified.join(", "),
                (true, Some(id)) => format!("key id {id} (not named by the policy or config)"),
                (true, None) => "a key not named by the policy or config".to_string(),
            }
        })
        .collect();
    let signed_by = match signers.is_empty() {
        true => "unsigned".to_string(),
        false => format!("signed by {}", signers.join("; ")),
    };
    Some(format!(
        "{}; {signed_by}",
        super::pull::describe(&spec.id, &pulled)
    ))
}
