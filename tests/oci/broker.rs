//! A plugin from a registry served by `tokenhost serve` under an admin policy: the broker
//! pulls, judges and loads it once, clients get its token through the socket, the
//! registry may go away, and a client refuses the broker's token when the pulled file
//! on disk no longer has the manifest's digest (under a policy each client judges the
//! bytes itself, as for a local plugin; without one, the user trusts their broker).

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::support::broker::{BrokerProcess, source_calls};

#[test]
fn a_broker_serves_a_pulled_plugin_and_clients_check_the_pulled_bytes() {
    let Some(mut registry) = Registry::start() else {
        return;
    };
    let (_, layer) = registry.push_plugin("team/p", "v1", &plugin_bytes());
    let home = Home::new(&registry.oci("team/p:v1"), "");
    let policy = home.env.path().join("policy.toml");
    let hex = layer.strip_prefix("sha256:").unwrap();
    std::fs::write(&policy, format!("[[plugins.allow]]\nsha256 = \"{hex}\"\n")).unwrap();
    let run = home.env.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut serve = home.env.command(&[]);
    serve
        .env("XDG_RUNTIME_DIR", &run)
        .env("TOKENHOST_POLICY", &policy);
    let _broker = BrokerProcess::start(serve, &run, &home.config);
    let token = || {
        let out = home
            .env
            .command(&["token", "corp", "--client-reuse-ms", "0", "-c"])
            .arg(&home.config)
            .env("XDG_RUNTIME_DIR", &run)
            .env("TOKENHOST_POLICY", &policy)
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
    };

    got_token(&token());
    got_token(&token());
    assert_eq!(
        source_calls(&run, &home.config),
        Some(1),
        "one plugin call, in the broker"
    );
    assert_eq!(
        registry.manifest_requests("team/p"),
        1,
        "{}",
        registry.log()
    );

    // The registry goes away: the tag was resolved a moment ago, nothing is asked.
    registry.stop();
    got_token(&token());

    // The pulled file is changed on disk: the client's own check refuses the token the
    // broker would hand out, and removes the file.
    let blob = home.blob(&layer);
    std::fs::write(&blob, one_byte_off(&std::fs::read(&blob).unwrap())).unwrap();
    refused(&token(), 2, "team/p:v1", "stored plugin layer");
    assert!(!blob.exists(), "the changed file is removed");

    // The registry is back: the next client pulls the layer again and gets the token.
    registry.resume();
    got_token(&token());
    assert!(blob.exists());
    assert_eq!(source_calls(&run, &home.config), Some(1));
}
