//! Which OCI manifests are tokenhost plugins: the CNCF TAG Runtime wasm layout (config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), optionally with
//! one more layer holding the plugin's detached publisher signatures.
//!
//! Why the rules are strict: a manifest is the registry's claim about what the plugin
//! is. Anything this module does not recognise (another config type, a tar layer, a
//! second plugin layer, a layer type it does not know) is refused rather than ignored,
//! so that what is pulled is exactly what the policy will judge.

use serde::Deserialize;

use super::registry::MANIFEST_MEDIA_TYPE;
use super::{OciError, OciReference};
use crate::publisher::MAX_SIGNATURE_FILE_BYTES;

/// The config media type of a wasm artifact (CNCF TAG Runtime's wasm OCI layout).
pub(crate) const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the plugin layer.
pub(crate) const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The media type of the optional signature layer: a wasmsign2 detached signature file
/// (what `wasmsign2 sign -S plugin.wasm.sig` writes; it may hold several signatures).
pub const SIGNATURE_LAYER_MEDIA_TYPE: &str = "application/vnd.tokenhost.wasmsign2.signature";

/// One layer to download: its digest (validated, `sha256:<hex>`) and declared size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layer {
    /// The layer's digest.
    pub(crate) digest: String,
    /// The size the manifest declares (already checked against the cap).
    pub(crate) size: u64,
}

/// What a plugin manifest names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Artifact {
    /// The `application/wasm` layer: the plugin.
    pub(crate) plugin: Layer,
    /// The signature layer, if the artifact has one.
    pub(crate) signature: Option<Layer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
}

/// Checks that `body` is a plugin artifact (an OCI image manifest in the wasm layout,
/// its plugin layer at most `max` bytes, at most one signature layer of at most
/// [`MAX_SIGNATURE_FILE_BYTES`]) and returns its layers.
pub(crate) fn artifact(
    body: &[u8],
    reference: &OciReference,
    max: u64,
) -> Result<Artifact, OciError> {
    let not_wasm = |reason: String| OciError::NotWasm {
        reference: reference.to_string(),
        reason,
    };
    let manifest: Manifest = serde_json::from_slice(body)
        .map_err(|e| not_wasm(format!("the manifest does not parse: {e}")))?;
    if manifest.schema_version != 2 {
        return Err(not_wasm(format!(
            "schemaVersion {}, not 2",
            manifest.schema_version
        )));
    }
    if let Some(media_type) = manifest.media_type.filter(|m| m != MANIFEST_MEDIA_TYPE) {
        return Err(not_wasm(format!(
            "manifest media type {media_type:?}, not {MANIFEST_MEDIA_TYPE:?}"
        )));
    }
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(not_wasm(format!(
            "config media type {:?}, not {WASM_CONFIG_MEDIA_TYPE:?}",
            crate::text::one_line(&manifest.config.media_type, 100)
        )));
    }
    let mut plugins = Vec::new();
    let mut signatures = Vec::new();
    for layer in &manifest.layers {
        match layer.media_type.as_str() {
            WASM_LAYER_MEDIA_TYPE => plugins.push(layer),
            SIGNATURE_LAYER_MEDIA_TYPE => signatures.push(layer),
            other => {
                return Err(not_wasm(format!(
                    "layer media type {:?}, not {WASM_LAYER_MEDIA_TYPE:?} (or \
                     {SIGNATURE_LAYER_MEDIA_TYPE:?} for its signatures)",
                    crate::text::one_line(other, 100)
                )));
            }
        }
    }
    let [plugin] = plugins[..] else {
        return Err(not_wasm(format!(
            "{} {WASM_LAYER_MEDIA_TYPE} layers, not one",
            plugins.len()
        )));
    };
    if signatures.len() > 1 {
        return Err(not_wasm(format!(
            "{} signature layers, not at most one (one signature file holds several \
             signatures)",
            signatures.len()
        )));
    }
    let layer = |descriptor: &Descriptor, cap: u64, what: &str| -> Result<Layer, OciError> {
        let digest = super::reference::parse_digest(&descriptor.digest)
            .map_err(|e| not_wasm(format!("{what}: {e}")))?;
        if descriptor.size > cap && what == "signature layer" {
            return Err(not_wasm(format!(
                "the signature layer is {} bytes, over the {cap}-byte cap of a signature file",
                descriptor.size
            )));
        }
        if descriptor.size > cap {
            return Err(OciError::TooLarge {
                reference: reference.to_string(),
                size: descriptor.size,
                max: cap,
                declared: true,
            });
        }
        Ok(Layer {
            digest,
            size: descriptor.size,
        })
    };
    Ok(Artifact {
        plugin: layer(plugin, max, "plugin layer")?,
        signature: signatures
            .first()
            .map(|s| layer(s, MAX_SIGNATURE_FILE_BYTES, "signature layer"))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(config_type: &str, layers: &[(&str, u64)]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|(media_type, size)| {
                serde_json::json!({
                    "mediaType": media_type,
                    "digest": format!("sha256:{}", "ab".repeat(32)),
                    "size": size,
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": config_type, "digest": format!("sha256:{}", "cd".repeat(32)), "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    #[test]
    fn only_the_wasm_layout_under_the_cap_is_accepted() {
        let r = OciReference::parse("oci://127.0.0.1:5000/p:1").unwrap();
        let ok = manifest(WASM_CONFIG_MEDIA_TYPE, &[(WASM_LAYER_MEDIA_TYPE, 100)]);
        let found = artifact(&ok, &r, 100).unwrap();
        assert_eq!(found.plugin.digest, format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(found.signature, None);
        let signed = manifest(
            WASM_CONFIG_MEDIA_TYPE,
            &[
                (SIGNATURE_LAYER_MEDIA_TYPE, 300),
                (WASM_LAYER_MEDIA_TYPE, 100),
            ],
        );
        let found = artifact(&signed, &r, 100).unwrap();
        assert_eq!(found.signature.unwrap().size, 300);
        let table: &[(Vec<u8>, &str)] = &[
            (
                manifest(
                    "application/vnd.oci.image.config.v1+json",
                    &[(WASM_LAYER_MEDIA_TYPE, 1)],
                ),
                "config media type",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[("application/vnd.oci.image.layer.v1.tar", 1)],
                ),
                "layer media type",
            ),
            (
                manifest(WASM_CONFIG_MEDIA_TYPE, &[]),
                "0 application/wasm layers",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[(WASM_LAYER_MEDIA_TYPE, 1), (WASM_LAYER_MEDIA_TYPE, 1)],
                ),
                "2 application/wasm layers",
            ),
            (
                manifest(WASM_CONFIG_MEDIA_TYPE, &[(SIGNATURE_LAYER_MEDIA_TYPE, 1)]),
                "0 application/wasm layers",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[
                        (WASM_LAYER_MEDIA_TYPE, 1),
                        (SIGNATURE_LAYER_MEDIA_TYPE, 1),
                        (SIGNATURE_LAYER_MEDIA_TYPE, 1),
                    ],
                ),
                "2 signature layers",
            ),
            (
                manifest(WASM_CONFIG_MEDIA_TYPE, &[(WASM_LAYER_MEDIA_TYPE, 101)]),
                "101 bytes by its manifest",
            ),
            (
                manifest(
                    WASM_CONFIG_MEDIA_TYPE,
                    &[
                        (WASM_LAYER_MEDIA_TYPE, 1),
                        (SIGNATURE_LAYER_MEDIA_TYPE, MAX_SIGNATURE_FILE_BYTES + 1),
                    ],
                ),
                "over the 65536-byte cap of a signature file",
            ),
            (b"not json".to_vec(), "does not parse"),
        ];
        for (body, expected) in table {
            let error = artifact(body, &r, 100).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}: {error}");
            assert!(error.starts_with("oci://127.0.0.1:5000/p:1: "), "{error}");
        }
    }
}
