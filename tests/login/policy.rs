//! The administrator's say over sign-in: no interactive login, no file store, a storage cap.

use super::*;

#[test]
fn a_policy_can_deny_interactive_login_and_the_file_store() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    let policy = env.path().join("policy.toml");
    let cfg = config.to_str().unwrap();
    let pol = policy.to_str().unwrap();

    std::fs::write(&policy, "deny_interactive_login = true\n").unwrap();
    let out = env.run(&["login", "corp", "--no-browser", "-c", cfg, "--policy", pol]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(stderr(&out).contains("interactive login is denied by the administrator's policy"));
    assert!(!stderr(&out).contains("http://"), "no URL was printed");

    std::fs::write(&policy, "deny_file_store = true\n").unwrap();
    let mut command = env.command(&["token", "corp", "--no-broker", "-c", cfg, "--policy", pol]);
    let out = command.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        stderr(&out).contains("the administrator's policy denies the file secret store"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_policy_caps_what_a_sign_in_may_store() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    let policy = env.path().join("policy.toml");
    std::fs::write(&policy, "max_secret_bytes = 64\n").unwrap();
    let mut login = Login::start(
        &env,
        &config,
        &[("TOKENHOST_POLICY", policy.to_str().unwrap())],
    );
    let url = login.line_starting(&idp.url("/auth?"));
    let mut browser = browser::Browser::default();
    let redirect = browser.sign_in(&url, "alice");
    browser.request("GET", &redirect, "");
    let (status, text) = login.finish();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("provider \"corp\": secrets would take")
            && text.contains("over the cap of 64"),
        "{text}"
    );
    let secrets = env.path().join("data/tokenhost/secrets");
    let files: Vec<_> = std::fs::read_dir(&secrets)
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "nothing was stored: {files:?}");
}
