//! The file store and the lock, without a keyring.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

fn store(dir: &std::path::Path) -> SecretStore {
    SecretStore::at(Arc::from("corp"), StoreKind::File, dir.to_path_buf(), 1024)
}

#[test]
fn the_file_store_keeps_values_in_a_private_file() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("tokenhost");
    let store = store(&dir);
    assert!(store.load().unwrap().is_empty());
    let mut map = SecretMap::default();
    map.insert("refresh_token".into(), "rt-value-1".into());
    store.save(&map).unwrap();
    assert_eq!(
        store.load().unwrap().get("refresh_token"),
        Some("rt-value-1")
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store.file_path()), 0o600);
    assert_eq!(mode(&dir.join("secrets")), 0o700);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.join("secrets")).unwrap().collect();
    assert_eq!(names.len(), 1);
    store.clear().unwrap();
    assert!(store.load().unwrap().is_empty());
    store.clear().unwrap();
}

#[test]
fn a_file_others_can_read_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let store = store(home.path());
    let mut map = SecretMap::default();
    map.insert("k".into(), "v".into());
    store.save(&map).unwrap();
    std::fs::set_permissions(store.file_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = store.load().unwrap_err().to_string();
    assert!(error.contains("readable by others"), "{error}");
}

#[test]
fn the_cap_counts_keys_and_values_and_errors_hold_no_value() {
    let home = tempfile::tempdir().unwrap();
    let store = store(home.path());
    let mut map = SecretMap::default();
    map.insert("refresh_token".into(), "s".repeat(2000));
    let error = store.save(&map).unwrap_err().to_string();
    assert!(error.contains("over the cap of 1024"), "{error}");
    assert!(!error.contains("sss"), "{error}");
    assert_eq!(format!("{map:?}"), "{\"refresh_token\"}");
}

#[test]
fn a_corrupt_entry_says_how_to_recover_without_showing_it() {
    let home = tempfile::tempdir().unwrap();
    let store = store(home.path());
    crate::secrets::file::write(&home.path().join("secrets"), &store.file_path(), b"rt-zzz")
        .unwrap();
    let error = store.load().unwrap_err().to_string();
    assert!(error.contains("tokenhost logout corp"), "{error}");
    assert!(!error.contains("rt-zzz"), "{error}");
}

#[test]
fn the_lock_is_exclusive_and_bounded() {
    let home = tempfile::tempdir().unwrap();
    let store = store(home.path());
    let held = store.lock(Instant::now() + Duration::from_secs(1)).unwrap();
    let started = Instant::now();
    // flock locks belong to the open file description: a second open waits like another
    // process would.
    let error = store
        .lock(Instant::now() + Duration::from_millis(100))
        .unwrap_err();
    assert!(matches!(error, SecretError::LockTimeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(held);
    store
        .lock(Instant::now() + Duration::from_millis(100))
        .unwrap();
}

#[test]
fn file_stems_are_safe_and_distinct() {
    assert!(file_stem("corp").starts_with("corp-"));
    assert_ne!(file_stem("a/b"), file_stem("ab"));
    assert!(!file_stem("../x").contains('/'));
}

#[test]
fn scoped_stores_of_one_provider_id_are_apart() {
    let home = tempfile::tempdir().unwrap();
    let a = store(home.path()).scoped("aaaa");
    let b = store(home.path()).scoped("bbbb");
    let mut map = SecretMap::default();
    map.insert("refresh_token".into(), "rt-of-a".into());
    a.save(&map).unwrap();
    assert!(
        b.load().unwrap().is_empty(),
        "another config's secrets were visible"
    );
    assert_ne!(a.file_path(), b.file_path());
    assert_eq!(a.provider(), "corp");
    // One scope's lock does not hold back the other's.
    let deadline = Instant::now() + Duration::from_millis(50);
    let _held = a.lock(deadline).unwrap();
    b.lock(deadline).unwrap();
    // No scope: the store as before.
    assert_eq!(
        store(home.path()).scoped("").file_path(),
        store(home.path()).file_path()
    );
}
