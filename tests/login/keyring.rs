//! The sign-in kept in a real Secret Service: gnome-keyring in a private D-Bus session
//! that the test starts (`dbus-daemon --session`), unlocked with a throwaway password.
//! Skipped, saying so, where gnome-keyring or dbus is not installed (.ci/run installs them).

use super::*;
use crate::support::keyring::Keyring;

#[test]
fn the_sign_in_lives_in_the_secret_service() {
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let bus = [("DBUS_SESSION_BUS_ADDRESS", keyring.address.as_str())];
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, None, "");
    sign_in(&env, &idp, &config, &bus);
    // Nothing went to the file store.
    assert!(!env.path().join("data/tokenhost/secrets").exists());
    let out = token(&env, &config, &bus);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(userinfo(&idp, stdout(&out).trim()).0, 200);

    // Without the keyring (and no opt-in to the file store), never a silent fallback.
    let out = token(&env, &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        stderr(&out).contains("no OS keyring answers"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("secret_store = \"file\""),
        "{}",
        stderr(&out)
    );

    let mut logout = env.command(&["logout", "corp", "-c", config.to_str().unwrap()]);
    let out = logout.envs(bus).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let out = token(&env, &config, &bus);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(stderr(&out).contains("not signed in; run: tokenhost login corp"));
}
