//! `plugin = "oci://..."` and its two keys, as the config reads them.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/th/config.toml"))
}

fn oci(text: &str) -> crate::oci::OciSource {
    let config = parse(text).unwrap();
    let spec = config.provider("corp").unwrap();
    *spec
        .source
        .plugin()
        .unwrap()
        .oci
        .clone()
        .expect("an OCI source")
}

#[test]
fn an_oci_plugin_gets_its_reference_and_defaults() {
    let source = oci(
        "[model_providers.corp.auth]\nplugin = \"oci://registry.example.com/contoso/entra:1.2.0\"\n",
    );
    assert_eq!(source.reference.registry(), "registry.example.com");
    assert_eq!(source.reference.repository(), "contoso/entra");
    assert_eq!(source.reference.tag(), Some("1.2.0"));
    assert_eq!(source.refresh, Duration::from_millis(3_600_000));
    assert_eq!(source.max_bytes, 64 << 20);

    let source = oci(
        "[model_providers.corp.auth]\nplugin = \"oci://127.0.0.1:5000/p:v1\"\noci_refresh_ms = 0\noci_max_mb = 2\n",
    );
    assert_eq!(source.refresh, Duration::ZERO);
    assert_eq!(source.max_bytes, 2 << 20);

    // A file plugin has no OCI source, and its path resolves as before.
    let config = parse("[model_providers.corp.auth]\nplugin = \"oci.wasm\"\n").unwrap();
    let plugin = config
        .provider("corp")
        .unwrap()
        .source
        .plugin()
        .unwrap()
        .clone();
    assert_eq!(plugin.oci, None);
    assert_eq!(plugin.path, Path::new("/etc/th/oci.wasm"));
}

#[test]
fn bad_oci_settings_name_the_provider_and_the_key() {
    for (auth, expected) in [
        (
            "plugin = \"oci://registry.example.com/p\"",
            "provider \"corp\": plugin: \"oci://registry.example.com/p\" names no version",
        ),
        (
            "plugin = \"oci://registry.example.com/P:1\"",
            "provider \"corp\": plugin: \"P\" is not a repository name",
        ),
        (
            "plugin = \"x.wasm\"\noci_refresh_ms = 5",
            "provider \"corp\": `oci_refresh_ms` applies only to a plugin from a registry",
        ),
        (
            "plugin = \"x.wasm\"\noci_max_mb = 5",
            "provider \"corp\": `oci_max_mb` applies only to a plugin from a registry",
        ),
        (
            "plugin = \"oci://r.example/p:1\"\noci_max_mb = 0",
            "provider \"corp\": oci_max_mb must be",
        ),
        (
            "command = \"echo\"\noci_refresh_ms = 5",
            "provider \"corp\": `oci_refresh_ms` applies only to plugin sources",
        ),
    ] {
        let error = parse(&format!("[model_providers.corp.auth]\n{auth}\n"))
            .expect_err(auth)
            .to_string();
        assert!(error.starts_with(expected), "{auth}: {error}");
    }
}
