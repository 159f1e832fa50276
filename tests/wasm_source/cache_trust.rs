//! Whose compiled code runs: under a plugin allowlist, a forged entry in the user's cache
//! is never used, and the administrator's cache (filled by `tokenhost precompile` as
//! root) serves other users.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tokenhost::SourceFactory;
use tokenhost::config::Config;
use tokenhost::policy::Policy;
use tokenhost::source::wasm::{CompiledCache, PluginRuntime};

use crate::support;

/// The compiled artifact of the plugin with `digest` (its check file is beside it, with
/// `.check` appended).
fn entry_of(cache_dir: &Path, digest: &[u8; 32]) -> PathBuf {
    std::fs::read_dir(cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&hex::encode(digest)) && name.ends_with(".cwasm")
        })
        .expect("an entry for the plugin")
}

fn with_check(entry: &Path) -> PathBuf {
    let mut name = entry.as_os_str().to_owned();
    name.push(".check");
    PathBuf::from(name)
}

/// A config (written in `dir`) whose provider `p` runs `plugin` as static-token.
fn static_token_config(dir: &Path, plugin: &Path) -> Config {
    let text = format!(
        "[model_providers.p.auth]\nplugin = {}\nconfig = {{ token = \"approved\" }}\n",
        support::toml_path(plugin)
    );
    Config::load(&support::write_config(dir, &text)).unwrap()
}

fn allowlist(digest: &[u8; 32]) -> String {
    format!("[[plugins.allow]]\nsha256 = \"{}\"\n", hex::encode(digest))
}

#[tokio::test]
async fn under_a_plugin_allowlist_a_forged_cache_entry_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("compiled");
    let good = support::plugin("static-token");
    let evil = support::plugin("hostile");
    // Compile both into the user's cache, then put the hostile plugin's native code
    // under the approved plugin's key (with its check file), as a user constrained by
    // the policy could.
    let runtime = PluginRuntime::new(CompiledCache::at(cache_dir.clone())).unwrap();
    let good_digest = runtime.load(&good).unwrap().sha256;
    let evil_digest = runtime.load(&evil).unwrap().sha256;
    let (from, to) = (
        entry_of(&cache_dir, &evil_digest),
        entry_of(&cache_dir, &good_digest),
    );
    std::fs::copy(&from, &to).unwrap();
    std::fs::copy(with_check(&from), with_check(&to)).unwrap();
    let config = static_token_config(dir.path(), &good);
    let spec = config.provider("p").unwrap();

    // Without a policy the user decides what runs, and the forgery takes effect: this
    // is what the allowlist case below must not do.
    let factory = SourceFactory::unrestricted(CompiledCache::at(cache_dir.clone()));
    let forged = factory.build(spec).unwrap().resolve().await.unwrap_err();
    assert!(
        forged
            .to_string()
            .contains("missing required config key `mode`"),
        "{forged}"
    );

    let policy = Policy::parse(&allowlist(&good_digest), &dir.path().join("policy.toml")).unwrap();
    assert!(policy.restricts_plugins());
    let factory = SourceFactory::with_policy(CompiledCache::at(cache_dir.clone()), policy);
    let token = factory.build(spec).unwrap().resolve().await.unwrap();
    assert_eq!(token.expose(), "approved");
}

fn tokenhost(args: &[&str], envs: &[(&str, &Path)], uid: Option<u32>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenhost"));
    command
        .args(args)
        .env_remove("TOKENHOST_CONFIG")
        .env_remove("TOKENHOST_POLICY")
        .env_remove("RUST_LOG");
    for (key, value) in envs {
        command.env(key, value);
    }
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// root precompiles the approved plugin; another user (nobody) then loads it from the
/// admin cache under the policy, cannot write that cache, and writes nothing to its own.
#[test]
fn the_admin_cache_serves_other_users_under_a_policy() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to act as the administrator and as another user");
        return;
    }
    const NOBODY: u32 = 65534;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plugin = root.join("static.wasm");
    std::fs::copy(support::plugin("static-token"), &plugin).unwrap();
    let digest = {
        use sha2::Digest;
        let d: [u8; 32] = sha2::Sha256::digest(std::fs::read(&plugin).unwrap()).into();
        d
    };
    let policy = root.join("policy.toml");
    std::fs::write(&policy, allowlist(&digest)).unwrap();
    let config = static_token_config(root, &plugin);
    let config_path = config.path().to_path_buf();
    let admin = root.join("admin");
    let home = root.join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let envs = [
        ("TOKENHOST_ADMIN_CACHE", admin.as_path()),
        ("TOKENHOST_POLICY", policy.as_path()),
        ("HOME", home.as_path()),
        ("XDG_CACHE_HOME", &home.join("cache")),
        ("XDG_RUNTIME_DIR", &home.join("run")),
    ];
    let p = plugin.to_str().unwrap();

    // An unapproved plugin is not precompiled.
    let hostile = support::plugin("hostile");
    let out = tokenhost(&["precompile", hostile.to_str().unwrap()], &envs, None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("not in the plugin allowlist"),
        "{}",
        text(&out.stderr)
    );

    let out = tokenhost(&["precompile", p], &envs, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("compiled"),
        "{}",
        text(&out.stdout)
    );
    let mode = std::fs::metadata(&admin).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);

    let c = config_path.to_str().unwrap();
    let out = tokenhost(
        &["token", "p", "-c", c, "--no-broker", "-vv"],
        &envs,
        Some(NOBODY),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "approved\n");
    assert!(
        text(&out.stderr).contains("origin=Cache"),
        "{}",
        text(&out.stderr)
    );
    let user_cache = home.join("cache/tokenhost/compiled");
    let written = std::fs::read_dir(&user_cache).map_or(0, |d| d.count());
    assert_eq!(
        written, 0,
        "nothing is written to the user's cache under the policy"
    );

    let out = tokenhost(&["precompile", p], &envs, Some(NOBODY));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("run tokenhost precompile as root"),
        "{}",
        text(&out.stderr)
    );
}

/// `check` remembers the digest it approved, so that the build which follows loads the
/// cached code without hashing the file again; a file replaced in between is verified
/// afresh, and refused if the policy does not allow it.
#[tokio::test]
async fn a_plugin_replaced_between_check_and_build_is_checked_again() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("compiled");
    let plugin = dir.path().join("plugin.wasm");
    std::fs::copy(support::plugin("static-token"), &plugin).unwrap();
    let runtime = PluginRuntime::new(CompiledCache::at(cache_dir.clone())).unwrap();
    let digest = runtime.load(&plugin).unwrap().sha256;
    let config = static_token_config(dir.path(), &plugin);
    let spec = config.provider("p").unwrap();
    let policy = || Policy::parse(&allowlist(&digest), &dir.path().join("policy.toml")).unwrap();

    // Unchanged: checked, then built from the check's verdict.
    let factory = SourceFactory::with_policy(CompiledCache::at(cache_dir.clone()), policy());
    factory.check(spec).unwrap();
    let token = factory.build(spec).unwrap().resolve().await.unwrap();
    assert_eq!(token.expose(), "approved");

    // Replaced (a new file renamed over it) after the check: the build refuses it.
    let factory = SourceFactory::with_policy(CompiledCache::at(cache_dir.clone()), policy());
    factory.check(spec).unwrap();
    let swap = dir.path().join("swap.wasm");
    std::fs::copy(support::plugin("hostile"), &swap).unwrap();
    std::fs::rename(swap, plugin).unwrap();
    let refused = factory.build(spec).err().expect("refused");
    assert!(
        refused.to_string().contains("not in the plugin allowlist"),
        "{refused}"
    );
}
