//! The administrator's say over sign-in: no interactive login, no file store.

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
