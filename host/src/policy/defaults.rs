//! Ceilings applied to defaults: a limit a provider left unset takes tokenhost's
//! default, and where a policy's ceiling is below that default, the ceiling is the
//! provider's limit instead. An admin who writes `max_timeout_ms = 2000` means "at most
//! 2 s", not "refuse every provider that did not write a timeout". A value the provider
//! set itself above a ceiling is still refused (see `check`): only defaults move.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::Policy;
use crate::config::{ProviderSpec, SourceSpec};

const MIB: u64 = 1024 * 1024;

/// A default that a policy ceiling lowered, for `tokenhost check` and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lowered {
    /// The provider.
    pub provider: String,
    /// The setting: `timeout_ms` or `memory_limit_mb`.
    pub setting: &'static str,
    /// tokenhost's default for it.
    pub default: u64,
    /// The ceiling it now has.
    pub ceiling: u64,
    /// The ceiling's rule: `max_timeout_ms` or `max_memory_mb`.
    pub rule: &'static str,
    /// The policy file with the lowest such ceiling.
    pub policy: PathBuf,
}

impl fmt::Display for Lowered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "provider \"{}\": {} is not set, so its default {} is lowered to {} by {} of policy {}",
            crate::text::escaped(&self.provider),
            self.setting,
            self.default,
            self.ceiling,
            self.rule,
            self.policy.display()
        )
    }
}

impl Policy {
    /// `spec` with every unset limit lowered to the policy's ceiling where the ceiling
    /// is below tokenhost's default, and what was lowered. Limits the provider set
    /// itself are left as they are, for the ceilings to check.
    pub fn lower_defaults(&self, spec: &ProviderSpec) -> (ProviderSpec, Vec<Lowered>) {
        let mut spec = spec.clone();
        let mut lowered = Vec::new();
        let timeout_ceiling = self.lowest(|f| f.max_timeout_ms);
        let memory_ceiling = self.lowest(|f| f.max_memory_mb);
        let id = spec.id.to_string();
        let (timeout, memory) = match &mut spec.source {
            SourceSpec::Command(command) => (&mut command.timeout, None),
            SourceSpec::Plugin(plugin) => {
                (&mut plugin.timeout, Some(&mut plugin.memory_limit_bytes))
            }
        };
        if spec.defaulted.timeout
            && let Some((max, policy)) = timeout_ceiling
            && timeout.as_millis() > u128::from(max)
        {
            lowered.push(Lowered {
                provider: id.clone(),
                setting: "timeout_ms",
                default: timeout.as_millis() as u64,
                ceiling: max,
                rule: "max_timeout_ms",
                policy,
            });
            *timeout = Duration::from_millis(max);
        }
        if spec.defaulted.memory_limit
            && let (Some(bytes), Some((max, policy))) = (memory, memory_ceiling)
            && *bytes > max.saturating_mul(MIB)
        {
            lowered.push(Lowered {
                provider: id,
                setting: "memory_limit_mb",
                default: *bytes / MIB,
                ceiling: max,
                rule: "max_memory_mb",
                policy,
            });
            *bytes = max.saturating_mul(MIB);
        }
        if let SourceSpec::Plugin(plugin) = &mut spec.source {
            self.decide_secrets(&mut plugin.secrets);
        }
        (spec, lowered)
    }

    /// Applies the secret-storage rules to a plugin's `secrets`: the administrator's
    /// opt-in to the file store (for providers that chose no store), the file store's
    /// denial (which wins over any opt-in: every use then fails, saying so), and the
    /// lowest `max_secret_bytes`.
    pub fn decide_secrets(&self, secrets: &mut crate::config::SecretsSpec) {
        use crate::secrets::StoreKind;
        if !secrets.explicit && self.files.iter().any(|f| f.file_store_by_default) {
            secrets.store = StoreKind::File;
        }
        if secrets.store == StoreKind::File && self.files.iter().any(|f| f.deny_file_store) {
            secrets.denied = true;
        }
        if let Some((max, _)) = self.lowest(|f| f.max_secret_bytes) {
            secrets.max_bytes = secrets
                .max_bytes
                .min(usize::try_from(max).unwrap_or(usize::MAX));
        }
    }

    /// The policy file that denies interactive login, if one does.
    pub fn denies_interactive_login(&self) -> Option<&std::path::Path> {
        self.files
            .iter()
            .find(|f| f.deny_interactive_login)
            .map(|f| f.path.as_path())
    }

    /// The lowest ceiling `get` finds in the stack, and the file it is in.
    fn lowest(
        &self,
        get: impl Fn(&super::file::PolicyFile) -> Option<u64>,
    ) -> Option<(u64, PathBuf)> {
        self.files
            .iter()
            .filter_map(|f| get(f).map(|max| (max, f.path.clone())))
            .min_by_key(|(max, _)| *max)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn spec(auth: &str) -> ProviderSpec {
        let text = format!("[model_providers.corp.auth]\n{auth}\n");
        let config = Config::parse(&text, Path::new("/tmp/config.toml")).unwrap();
        config.provider("corp").unwrap().clone()
    }

    fn policy(text: &str, path: &str) -> Policy {
        Policy::parse(text, Path::new(path)).unwrap()
    }

    fn limits(spec: &ProviderSpec) -> (u128, Option<u64>) {
        match &spec.source {
            SourceSpec::Command(c) => (c.timeout.as_millis(), None),
            SourceSpec::Plugin(p) => (p.timeout.as_millis(), Some(p.memory_limit_bytes / MIB)),
        }
    }

    #[test]
    fn unset_limits_are_lowered_to_the_lowest_ceiling_and_set_ones_are_not() {
        let stack = policy(
            "max_timeout_ms = 3000\nmax_memory_mb = 32",
            "/etc/tokenhost/policy.toml",
        )
        .stack(policy("max_timeout_ms = 2000", "/tmp/user.toml"));
        let unset = spec("plugin = \"p.wasm\"");
        let (lowered_spec, lowered) = stack.lower_defaults(&unset);
        assert_eq!(limits(&lowered_spec), (2000, Some(32)));
        let shown: Vec<String> = lowered.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "provider \"corp\": timeout_ms is not set, so its default 5000 is lowered to 2000 \
                 by max_timeout_ms of policy /tmp/user.toml",
                "provider \"corp\": memory_limit_mb is not set, so its default 64 is lowered to 32 \
                 by max_memory_mb of policy /etc/tokenhost/policy.toml",
            ]
        );
        // What was lowered now passes the ceilings it was lowered to.
        let SourceSpec::Plugin(plugin) = &lowered_spec.source else {
            unreachable!()
        };
        assert!(
            stack
                .check_limits(
                    "corp",
                    plugin.timeout,
                    Some(plugin.memory_limit_bytes),
                    &plugin.grants
                )
                .is_empty()
        );

        // Values the provider set are the provider's: a ceiling refuses them, never moves them.
        let set = spec("plugin = \"p.wasm\"\ntimeout_ms = 9000\nmemory_limit_mb = 128");
        let (same, none) = stack.lower_defaults(&set);
        assert_eq!((same, none), (set, vec![]));

        // A command's unset timeout too; a default already under the ceiling stays.
        let command = spec("command = \"echo\"");
        let (lowered_command, lowered) = stack.lower_defaults(&command);
        assert_eq!(limits(&lowered_command), (2000, None));
        assert_eq!(lowered.len(), 1);
        let roomy = policy("max_timeout_ms = 60000\nmax_memory_mb = 4096", "/p.toml");
        assert_eq!(roomy.lower_defaults(&command), (command, vec![]));
        assert!(Policy::unrestricted().lower_defaults(&unset).1.is_empty());
    }
}

#[cfg(test)]
mod secret_tests {
    use std::path::Path;

    use super::*;
    use crate::config::SecretsSpec;
    use crate::secrets::StoreKind;

    fn policy(text: &str) -> Policy {
        Policy::parse(text, Path::new("/etc/tokenhost/policy.toml")).unwrap()
    }

    #[test]
    fn the_file_store_opt_in_denial_and_cap() {
        let mut chosen = SecretsSpec::default();
        policy("secret_store = \"file\"\nmax_secret_bytes = 100").decide_secrets(&mut chosen);
        assert_eq!(chosen.store, StoreKind::File);
        assert_eq!(chosen.max_bytes, 100);
        assert!(!chosen.denied);

        // A provider's own choice is kept.
        let mut keyring = SecretsSpec {
            explicit: true,
            ..SecretsSpec::default()
        };
        policy("secret_store = \"file\"").decide_secrets(&mut keyring);
        assert_eq!(keyring.store, StoreKind::Keyring);

        // The denial wins over any opt-in.
        let mut file = SecretsSpec {
            store: StoreKind::File,
            explicit: true,
            ..SecretsSpec::default()
        };
        policy("deny_file_store = true").decide_secrets(&mut file);
        assert!(file.denied);
        let error = file.store_for(&"corp".into()).unwrap_err().to_string();
        assert!(
            error.contains("policy denies the file secret store"),
            "{error}"
        );
    }

    #[test]
    fn interactive_login_can_be_denied() {
        assert_eq!(policy("").denies_interactive_login(), None);
        assert_eq!(
            policy("deny_interactive_login = true").denies_interactive_login(),
            Some(Path::new("/etc/tokenhost/policy.toml"))
        );
        let zero = Policy::parse("max_secret_bytes = 0", Path::new("/p")).unwrap_err();
        assert!(
            zero.to_string()
                .contains("max_secret_bytes must be at least 1"),
            "{zero}"
        );
    }
}
