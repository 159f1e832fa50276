//! `tokenhost new-plugin`: a new plugin crate from the template in `plugins/template`,
//! so a plugin author starts from something that builds and loads.
//!
//! The template's files are compiled into the binary; only the crate name and the path
//! of the SDK (`plugins/sdk`, which is not on crates.io yet) are filled in.

use std::path::{Path, PathBuf};

use super::Failure;

const CARGO_TOML: &str = include_str!("../../../plugins/template/Cargo.toml");
const LIB_RS: &str = include_str!("../../../plugins/template/src/lib.rs");
const README: &str = include_str!("../../../plugins/template/README.md");
const GITIGNORE: &str = "/target\n";

/// The template's name and SDK dependency lines, replaced in the new crate.
const TEMPLATE_NAME: &str = "name = \"plugin-template\"";
const TEMPLATE_SDK: &str = "tokenhost-plugin = { path = \"../sdk\" }";

/// Arguments of `tokenhost new-plugin`.
#[derive(clap::Args)]
pub struct NewPluginArgs {
    /// The plugin's crate name (letters, digits, `-`, `_`; starts with a letter).
    name: String,
    /// Where to create it. Default: ./NAME. Must not exist, or be an empty directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The SDK crate (`plugins/sdk` in a tokenhost checkout). Default: the checkout this
    /// binary was built from, if it is still there.
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

/// Runs `tokenhost new-plugin`.
pub fn run(args: NewPluginArgs) -> Result<(), Failure> {
    check_name(&args.name).map_err(Failure::usage)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = locate_sdk(args.sdk)?;
    check_empty(&dir)?;
    let files = [
        ("Cargo.toml", cargo_toml(&args.name, &sdk)),
        ("src/lib.rs", LIB_RS.to_string()),
        ("README.md", README.to_string()),
        (".gitignore", GITIGNORE.to_string()),
    ];
    for (name, text) in &files {
        let path = dir.join(name);
        let write = std::fs::create_dir_all(path.parent().unwrap_or(&dir))
            .and_then(|()| std::fs::write(&path, text));
        write.map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    }
    let wasm = dir
        .canonicalize()
        .unwrap_or_else(|_| dir.clone())
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", args.name.replace('-', "_")));
    outln!(
        "Created plugin `{name}` in {dir} (SDK: {sdk}).\n\
         \n\
         Build it (once: rustup target add wasm32-wasip2):\n  \
           cd {dir} && cargo build --release --target wasm32-wasip2\n  \
           tokenhost inspect {wasm}\n\
         \n\
         Use it: add to your config (tokenhost token --help says where it is)\n  \
           [model_providers.{name}.auth]\n  \
           plugin = {wasm_toml}\n  \
           [model_providers.{name}.auth.config]\n  \
           token = \"hello-from-{name}\"\n\
         then: tokenhost token {name}",
        name = args.name,
        dir = dir.display(),
        sdk = sdk.display(),
        wasm = wasm.display(),
        wasm_toml = toml_string(&wasm.to_string_lossy()),
    )?;
    Ok(())
}

/// A crate name cargo accepts and that makes a sensible file name.
fn check_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match valid {
        true => Ok(()),
        false => Err(format!(
            "invalid plugin name {name:?}: use letters, digits, `-` and `_`, starting with a \
             letter (at most 64 characters)"
        )),
    }
}

/// The SDK directory: `--sdk`, else the checkout this binary was built from.
fn locate_sdk(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk");
    let (path, origin) = match given {
        Some(path) => (path, "--sdk"),
        None => (built_from, "the checkout tokenhost was built from"),
    };
    let manifest = path.join("Cargo.toml");
    let is_sdk = std::fs::read_to_string(&manifest)
        .is_ok_and(|text| text.contains("name = \"tokenhost-plugin\""));
    if !is_sdk {
        return Err(Failure::usage(format!(
            "no tokenhost-plugin SDK at {} ({origin}); pass --sdk with the path of \
             plugins/sdk in a tokenhost checkout",
            path.display()
        )));
    }
    path.canonicalize()
        .map_err(|e| Failure::usage(format!("cannot resolve {}: {e}", path.display())))
}

/// Refuses to write into anything but a missing or empty directory.
fn check_empty(dir: &Path) -> Result<(), Failure> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::usage(format!("cannot use {}: {e}", dir.display()))),
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(Failure::usage(format!(
                "{} already exists and is not empty; choose another --dir",
                dir.display()
            ))),
        },
    }
}

/// The template's Cargo.toml with the crate's name and the SDK's path.
fn cargo_toml(name: &str, sdk: &Path) -> String {
    CARGO_TOML
        .replace(TEMPLATE_NAME, &format!("name = {}", toml_string(name)))
        .replace(
            TEMPLATE_SDK,
            &format!(
                "tokenhost-plugin = {{ path = {} }}",
                toml_string(&sdk.to_string_lossy())
            ),
        )
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_has_the_lines_that_are_filled_in() {
        assert!(CARGO_TOML.contains(TEMPLATE_NAME));
        assert!(CARGO_TOML.contains(TEMPLATE_SDK));
        let filled = cargo_toml("my-idp", Path::new("/opt/th \"x\"/sdk"));
        assert!(filled.contains("name = \"my-idp\""), "{filled}");
        assert!(
            filled.contains(r#"tokenhost-plugin = { path = '/opt/th "x"/sdk' }"#)
                || filled.contains(r#"tokenhost-plugin = { path = "/opt/th \"x\"/sdk" }"#),
            "{filled}"
        );
        let parsed: toml::Table = filled.parse().unwrap();
        assert_eq!(parsed["package"]["name"].as_str(), Some("my-idp"));
    }

    #[test]
    fn names() {
        for good in ["a", "my-idp", "corp_sso2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "-x", "a/b", "a b", "ü", &"a".repeat(65)] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains("invalid plugin name"), "{e}");
        }
    }
}
