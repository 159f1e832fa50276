//! The cache directory's trust rules, on real directories.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::CompiledCache;
use super::dir::{CheckedDir, Owner};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn chown(path: &std::path::Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

#[test]
fn creates_a_private_dir_and_refuses_a_shared_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/compiled");
    let cache = CompiledCache::at(dir.clone());
    assert_eq!(cache.dir(), Some(dir.canonicalize().unwrap().as_path()));
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(CompiledCache::at(dir.clone()).dir(), None);

    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert_eq!(CompiledCache::at(file).dir(), None);
}

#[test]
fn a_parent_that_others_can_write_disables_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let why = CheckedDir::open(&shared.join("compiled"), Owner::CurrentUser, true).unwrap_err();
    assert!(
        why.contains("a parent directory writable by others"),
        "{why}"
    );
    assert_eq!(CompiledCache::at(shared.join("compiled")).dir(), None);
    // Sticky but not root's: another user could still have created it.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    if !is_root() {
        assert!(CheckedDir::open(&shared.join("compiled"), Owner::CurrentUser, true).is_err());
    }
}

#[test]
fn a_parent_owned_by_another_user_disables_the_cache() {
    if !is_root() {
        eprintln!("skipped: needs root to create another user's directory");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tmp.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    chown(&theirs, 65534);
    let why = CheckedDir::open(&theirs.join("compiled"), Owner::CurrentUser, true).unwrap_err();
    assert!(
        why.contains("a parent directory owned by uid 65534"),
        "{why}"
    );
}

#[test]
fn a_symlink_in_place_of_the_dir_or_an_entry_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    let dir = CheckedDir::open(&real, Owner::CurrentUser, true).unwrap();
    fs::write(tmp.path().join("elsewhere"), b"forged").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), real.join("entry")).unwrap();
    assert_eq!(dir.read("entry").unwrap_err(), "is a symlink");
    assert_eq!(dir.read("missing").unwrap(), None);

    // Entries are read relative to the handle opened at check time: moving the checked
    // directory away and putting a symlink to another directory in its place (the
    // RENAME_EXCHANGE race) does not change what an open cache reads.
    dir.write("kept", &[b"ours"]).unwrap();
    fs::rename(&real, tmp.path().join("moved")).unwrap();
    let attacker = tmp.path().join("attacker");
    fs::create_dir(&attacker).unwrap();
    fs::write(attacker.join("kept"), b"forged").unwrap();
    std::os::unix::fs::symlink(&attacker, &real).unwrap();
    assert_eq!(dir.read("kept").unwrap().unwrap(), b"ours");
}

#[test]
fn an_entry_of_another_owner_or_kind_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c");
    let dir = CheckedDir::open(&path, Owner::CurrentUser, true).unwrap();
    fs::create_dir(path.join("a-dir")).unwrap();
    assert_eq!(dir.read("a-dir").unwrap_err(), "is not a regular file");
    fs::write(path.join("open"), b"x").unwrap();
    fs::set_permissions(path.join("open"), fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(dir.read("open").unwrap_err(), "is writable by others");
    if is_root() {
        fs::write(path.join("theirs"), b"x").unwrap();
        chown(&path.join("theirs"), 65534);
        let why = dir.read("theirs").unwrap_err();
        assert!(why.contains("belongs to uid 65534"), "{why}");
    }
}

#[test]
fn the_admin_cache_must_belong_to_root() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("admin");
    fs::create_dir(&path).unwrap();
    if is_root() {
        let dir = CheckedDir::open(&path, Owner::Root, false).unwrap();
        assert!(dir.writable(), "root writes its own cache");
        chown(&path, 65534);
        let why = CheckedDir::open(&path, Owner::Root, false).unwrap_err();
        assert!(why.contains("owned by uid 65534, not uid 0"), "{why}");
    } else {
        let why = CheckedDir::open(&path, Owner::Root, false).unwrap_err();
        assert!(why.contains("not uid 0"), "{why}");
    }
    assert!(CompiledCache::disabled().trusted_by_admin());
    assert!(!CompiledCache::at(tmp.path().join("user")).trusted_by_admin());
}

/// Two different components (as text, which wasmtime compiles too) and their digests.
fn components() -> [(Vec<u8>, [u8; 32]); 2] {
    use sha2::Digest;
    [
        r#"(component (core module (func (export "f"))))"#,
        r#"(component (core module (func (export "g") (result i32) i32.const 7)))"#,
    ]
    .map(|wat| {
        let digest: [u8; 32] = sha2::Sha256::digest(wat).into();
        (wat.as_bytes().to_vec(), digest)
    })
}

/// The artifact and check file of the only entry in `dir`.
fn entry_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let artifact = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("an entry");
    let check = dir.join(format!(
        "{}.check",
        artifact.file_name().unwrap().to_string_lossy()
    ));
    (artifact, check)
}

#[test]
fn a_mapped_entry_survives_its_replacement_and_a_changed_entry_is_checked_again() {
    let engine = wasmtime::Engine::default();
    let [(wasm, digest), (other, other_digest)] = components();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("compiled");
    let cache = CompiledCache::at(path.clone());
    cache.compile(&engine, &wasm, &digest).unwrap();
    let (artifact, check) = entry_files(&path);
    let mapped = cache
        .lookup(&engine, &digest)
        .expect("a valid entry is used");

    // Another artifact renamed over the mapped one (how entries are replaced): the
    // mapping keeps the old file, and the new file does not match the check file.
    let spare = CompiledCache::at(tmp.path().join("spare"));
    spare.compile(&engine, &other, &other_digest).unwrap();
    let (other_artifact, _) = entry_files(&tmp.path().join("spare"));
    fs::rename(other_artifact, &artifact).unwrap();
    assert!(
        cache.lookup(&engine, &digest).is_none(),
        "refused: not what was checked"
    );
    let mut store = wasmtime::Store::new(&engine, ());
    wasmtime::component::Linker::<()>::new(&engine)
        .instantiate(&mut store, &mapped)
        .expect("the mapped component still runs");

    // Recompiled, then written in place (same length, one byte flipped): the stamp no
    // longer matches, the checksum is computed again, and the entry is refused.
    cache.compile(&engine, &wasm, &digest).unwrap();
    assert!(cache.lookup(&engine, &digest).is_some());
    let mut bytes = fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&artifact, bytes).unwrap();
    assert!(cache.lookup(&engine, &digest).is_none(), "refused: corrupt");

    // An intact entry with a new stamp (a copied cache: new inodes) is checked once,
    // used, and stamped again, so the next load reads nothing.
    cache.compile(&engine, &wasm, &digest).unwrap();
    let stamped = fs::read(&check).unwrap();
    let copy = fs::read(&artifact).unwrap();
    fs::remove_file(&artifact).unwrap();
    fs::write(&artifact, copy).unwrap();
    fs::set_permissions(&artifact, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(cache.lookup(&engine, &digest).is_some(), "intact: used");
    assert_ne!(fs::read(&check).unwrap(), stamped, "stamped again");
    assert!(cache.lookup(&engine, &digest).is_some());

    // A missing check file (an entry from an older tokenhost, or a crash between the
    // two writes) means recompiling.
    fs::remove_file(&check).unwrap();
    assert!(cache.lookup(&engine, &digest).is_none());
}
