//! Unit tests of the broker's pure parts; the server and client are tested end to end
//! in `tests/broker.rs` with real processes and sockets.

use std::os::unix::fs::PermissionsExt;

use super::*;

#[test]
fn only_the_same_user_is_allowed() {
    assert!(peer_allowed(1000, 1000));
    assert!(peer_allowed(0, 0));
    assert!(!peer_allowed(1000, 1001));
    assert!(!peer_allowed(1000, 0), "root gets no exception");
    assert!(!peer_allowed(0, 1000));
}

#[test]
fn provider_ids_survive_the_url_path() {
    for id in ["corp", "a b/c?d#e%f", "ünïcode", "-._~", ""] {
        let encoded = encode_segment(id);
        assert!(!encoded.contains(['/', ' ', '?', '#']), "{encoded}");
        assert_eq!(decode_segment(&encoded).as_deref(), Some(id));
    }
    for bad in ["%", "%4", "%zz", "%+1", "%ff"] {
        assert_eq!(decode_segment(bad), None, "{bad}");
    }
}

#[test]
fn each_config_gets_its_own_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    let run = dir.path().join("run");
    let socket = socket_path_in(&run, &a);
    assert_ne!(socket, socket_path_in(&run, &b));
    // Every spelling of one file (relative parts, symlinks) meets the same broker.
    std::fs::create_dir(dir.path().join("x")).unwrap();
    assert_eq!(
        socket,
        socket_path_in(&run, &dir.path().join("x/../a.toml"))
    );
    std::os::unix::fs::symlink(&a, dir.path().join("link.toml")).unwrap();
    assert_eq!(socket, socket_path_in(&run, &dir.path().join("link.toml")));
    let name = socket.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("broker-") && name.ends_with(".sock"),
        "{name}"
    );
    assert_eq!(name.len(), "broker-.sock".len() + 16);
}

#[test]
fn the_socket_dir_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("cache/tokenhost/run");
    prepare_private_dir(&run).unwrap();
    let mode = std::fs::metadata(&run).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = prepare_private_dir(&run).unwrap_err().to_string();
    assert!(err.contains("writable by others (mode 777)"), "{err}");
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(check_private_dir(&file).is_err());
}

#[test]
fn error_kinds_are_snake_case_on_the_wire() {
    let json = serde_json::to_string(&ErrorKind::UnknownProvider).unwrap();
    assert_eq!(json, "\"unknown_provider\"");
    let kind: ErrorKind = serde_json::from_str("\"bad_output\"").unwrap();
    assert_eq!((kind, kind.status()), (ErrorKind::BadOutput, 502));
    let kind: ErrorKind = serde_json::from_str("\"from_the_future\"").unwrap();
    assert_eq!(kind, ErrorKind::Other);
}
