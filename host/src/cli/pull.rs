//! `tokenhost pull`: fetch the plugins that come from OCI registries ahead of time (on a
//! new machine, in an image build, before going offline), resolving every tag now, and
//! check what arrived against the policy and the pins, as `tokenhost token` would.

use tokenhost::oci::{OciReference, Pulled, Resolution};

use super::{ConfigArg, Failure};

/// Arguments of `tokenhost pull`.
#[derive(clap::Args)]
pub struct PullArgs {
    /// Only this provider (default: every provider whose plugin is an oci:// reference).
    provider: Option<String>,
    #[command(flatten)]
    config: ConfigArg,
}

/// Runs `tokenhost pull`.
pub fn run(args: PullArgs) -> Result<(), Failure> {
    let prepared = args.config.prepare(args.provider.as_deref())?;
    let config = prepared.config();
    let specs: Vec<_> = match &args.provider {
        Some(id) => {
            let spec = super::provider_spec(config, id)?;
            if oci_reference(spec).is_none() {
                return Err(Failure::usage(format!(
                    "provider \"{}\": its plugin does not come from a registry (plugin = \"oci://...\")",
                    tokenhost::text::escaped(id)
                )));
            }
            vec![spec]
        }
        None => config
            .providers()
            .filter(|spec| oci_reference(spec).is_some())
            .collect(),
    };
    if specs.is_empty() {
        outln!("no provider's plugin comes from a registry")?;
        return Ok(());
    }
    let (mut unreachable, mut refused) = (0, 0);
    for spec in specs {
        match prepared.pull(spec) {
            Ok(Some(pulled)) => outln!("ok   {}", describe(&spec.id, &pulled))?,
            Ok(None) => {}
            Err(e) => {
                match e.is_unreachable() {
                    true => unreachable += 1,
                    false => refused += 1,
                }
                match e.violations() {
                    [] => outln!("FAIL {e}")?,
                    violations => {
                        for violation in violations {
                            outln!("FAIL {violation}")?;
                        }
                    }
                }
            }
        }
    }
    match (refused, unreachable) {
        (0, 0) => Ok(()),
        (0, n) => Err(Failure::source(format!("{n} registry(ies) unreachable"))),
        (n, _) => Err(Failure::usage(format!("{n} plugin(s) refused"))),
    }
}

/// The reference of a provider whose plugin comes from a registry.
pub(super) fn oci_reference(spec: &tokenhost::config::ProviderSpec) -> Option<&OciReference> {
    spec.source
        .plugin()
        .and_then(|plugin| plugin.oci.as_ref())
        .map(|oci| &oci.reference)
}

/// `corp: oci://r/p:1 -> sha256:... (layer sha256:...)`, and how it was resolved.
pub(super) fn describe(id: &str, pulled: &Pulled) -> String {
    let how = match &pulled.resolution {
        Resolution::Offline { reason } => {
            format!("; registry unreachable, last good digest used ({reason})")
        }
        _ => String::new(),
    };
    format!(
        "{}: {} -> {} (plugin layer {}){how}",
        tokenhost::text::escaped(id),
        pulled.reference,
        pulled.manifest,
        pulled.layer
    )
}
