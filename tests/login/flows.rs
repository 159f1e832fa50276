//! The authorization code flow end to end, refresh with rotation, a revoked sign-in,
//! logout, a forged redirect, the not-signed-in fast failure (file store), a broker told of
//! a rejected token, the browser opened at a terminal, and sign-ins kept per config.

use super::*;

#[test]
fn login_then_token_needs_no_person_and_the_provider_accepts_it() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    let login_log = sign_in(&env, &idp, &config, &[]);
    assert!(
        login_log.contains("signed in to provider \"corp\""),
        "{login_log}"
    );

    let out = token(&env, &config, &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let access = stdout(&out).trim().to_string();
    let (status, body) = userinfo(&idp, &access);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sub\":\"alice\""), "{body}");

    // The refresh token is stored, privately, and never shown.
    let entry = stored(&env);
    let refresh = entry["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    for text in [&login_log, &stderr(&out)] {
        assert!(
            !text.contains(&refresh),
            "the refresh token leaked:\n{text}"
        );
        assert!(!text.contains(&access), "the access token leaked:\n{text}");
    }
    let status = env.run(&["status", "corp", "-c", config.to_str().unwrap()]);
    assert!(status.status.success(), "{}", output_text(&status));
    assert!(
        stdout(&status).starts_with("corp: ok: token sha256:"),
        "{}",
        stdout(&status)
    );
    assert!(!stdout(&status).contains(&access));
}

#[test]
fn token_without_a_sign_in_fails_fast_and_says_what_to_run() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    let started = Instant::now();
    let out = token(&env, &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_eq!(
        stderr(&out).trim(),
        "tokenhost: provider \"corp\": not signed in; run: tokenhost login corp"
    );
    assert!(stdout(&out).is_empty());
    assert!(started.elapsed() < Duration::from_secs(20));
    let status = env.run(&["status", "-c", config.to_str().unwrap()]);
    assert_eq!(status.status.code(), Some(1));
    assert!(
        stdout(&status).starts_with("corp: not signed in:"),
        "{}",
        stdout(&status)
    );
}

#[test]
fn a_redirect_with_the_wrong_state_is_refused() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    let mut login = Login::start(&env, &config, &[]);
    let url = login.line_starting(&idp.url("/auth?"));
    let mut browser = browser::Browser::default();
    let redirect = browser.sign_in(&url, "alice");
    let (head, query) = redirect.split_once('?').unwrap();
    let forged: Vec<String> = query
        .split('&')
        .map(|pair| match pair.starts_with("state=") {
            true => "state=forged".to_string(),
            false => pair.to_string(),
        })
        .collect();
    browser.request("GET", &format!("{head}?{}", forged.join("&")), "");
    let (status, text) = login.finish();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("`state` does not match"), "{text}");
    assert!(!env.path().join("data/tokenhost/secrets").exists() || stored_is_empty(&env));
}

fn stored_is_empty(env: &Env) -> bool {
    std::fs::read_dir(env.path().join("data/tokenhost/secrets"))
        .map(|d| {
            !d.filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .unwrap_or(true)
}

#[test]
fn refresh_rotates_concurrent_refreshes_lose_nothing_and_a_revoked_sign_in_says_run_login() {
    // Access tokens shorter than the plugin's reuse margin: every `token` refreshes.
    let idp = provider(Some(30));
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    sign_in(&env, &idp, &config, &[]);
    let first = stored(&env)["refresh_token"].as_str().unwrap().to_string();

    let out = token(&env, &config, &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let second = stored(&env)["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second, "a public client's refresh token rotates");
    assert_eq!(userinfo(&idp, stdout(&out).trim()).0, 200);

    // Two processes refreshing at once: the lock makes the second use the rotated token.
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut command = env.command(&[
                "token",
                "corp",
                "--no-broker",
                "-c",
                config.to_str().unwrap(),
            ]);
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            output_text(&out),
            idp.stderr()
        );
    }
    let out = token(&env, &config, &[]);
    assert!(
        out.status.success(),
        "the chain survived: {}",
        output_text(&out)
    );

    // Revoke the current refresh token: the next refresh is refused with invalid_grant.
    let current = stored(&env)["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = idp.request(
        "POST",
        "/token/revocation",
        None,
        &format!("token={current}&client_id={CLIENT}&token_type_hint=refresh_token"),
    );
    assert_eq!(status, 200, "{body}");
    let out = token(&env, &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let text = stderr(&out);
    assert!(
        text.contains("provider \"corp\": not signed in (signed out:"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("; run: tokenhost login corp"),
        "{text}"
    );
    assert!(!text.contains(&current));
}

#[test]
fn logout_deletes_the_sign_in() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    sign_in(&env, &idp, &config, &[]);
    let out = env.run(&["logout", "corp", "-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(stored_is_empty(&env));
    let out = token(&env, &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(stderr(&out).contains("not signed in; run: tokenhost login corp"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_0_1_plugin_still_loads_and_has_no_login() {
    use tokenhost::source::wasm::guest::ContractVersion;
    use tokenhost::{LoginOptions, TokenSource};
    let hostile = support::source("hostile", &[], Default::default(), &[], 5000);
    assert_eq!(hostile.contract(), ContractVersion::V0_1);
    assert!(hostile.login(LoginOptions::default()).await.is_none());
    let config = [("token", "t0k3n".to_string())];
    let sdk = support::source("static-token", &[], Default::default(), &config, 5000);
    assert_eq!(sdk.contract(), ContractVersion::V0_2);
    assert_eq!(sdk.resolve().await.unwrap().expose(), "t0k3n");
    let error = sdk
        .login(LoginOptions::default())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        error.to_string().contains("no interactive sign-in"),
        "{error}"
    );
}

/// A sign-in (file store) with a broker serving its config.
struct Brokered {
    // Declared first: the broker stops before the home it runs in is deleted.
    _broker: support::broker::BrokerProcess,
    idp: OidcProvider,
    env: Env,
    config: std::path::PathBuf,
    run: std::path::PathBuf,
}

impl Brokered {
    fn start() -> Brokered {
        let idp = provider(None);
        let env = Env::new();
        let config = config(&env, &idp, Some("file"), "");
        let run = env.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        sign_in(
            &env,
            &idp,
            &config,
            &[("XDG_RUNTIME_DIR", run.to_str().unwrap())],
        );
        let mut serve = env.command(&[]);
        serve.env("XDG_RUNTIME_DIR", &run);
        let broker = support::broker::BrokerProcess::start(serve, &run, &config);
        Brokered {
            _broker: broker,
            idp,
            env,
            config,
            run,
        }
    }

    /// `tokenhost args` beside the broker, stdin at /dev/null.
    fn tokenhost(&self, args: &[&str]) -> Output {
        let mut command = self.env.command(args);
        command
            .env("XDG_RUNTIME_DIR", &self.run)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn logout_also_empties_a_brokers_cache() {
    let signed_in = Brokered::start();
    let (run, config) = (&signed_in.run, &signed_in.config);
    let cfg = config.to_str().unwrap();
    let brokered = |args: &[&str]| signed_in.tokenhost(args);
    let out = brokered(&["token", "corp", "-c", cfg]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        support::broker::source_calls(run, config),
        Some(1),
        "the broker holds the token"
    );

    let out = brokered(&["logout", "corp", "-c", cfg]);
    assert!(out.status.success(), "{}", output_text(&out));
    let out = brokered(&["token", "corp", "-c", cfg]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        stderr(&out).contains("not signed in"),
        "the broker no longer hands out the old token: {}",
        stderr(&out)
    );
}

/// Contract 0.2's `rejected-fingerprint`: a broker holds T1 while another process
/// refreshes the sign-in (T2). When a client reports T1 rejected, the broker's plugin sees
/// that the stored token is already a newer one and answers it without a refresh grant,
/// which would rotate the refresh token once more.
#[test]
fn a_broker_told_of_a_rejected_token_uses_the_one_another_process_refreshed() {
    let signed_in = Brokered::start();
    let (env, idp, run, config) = (
        &signed_in.env,
        &signed_in.idp,
        &signed_in.run,
        &signed_in.config,
    );
    let cfg = config.to_str().unwrap();
    let run_token = |args: &[&str]| {
        let out = signed_in.tokenhost(args);
        assert!(out.status.success(), "{}", output_text(&out));
        stdout(&out).trim().to_string()
    };
    let t1 = run_token(&["token", "corp", "-c", cfg]);

    // Another process refreshes the sign-in on its own: T2, and a rotated refresh token.
    let t2 = run_token(&["token", "corp", "-c", cfg, "--no-broker", "--refresh"]);
    assert_ne!(t1, t2);
    let rotated = stored(env)["refresh_token"].as_str().unwrap().to_string();

    // The same program asks again within its reuse window: T1 was rejected. The broker
    // reports it to the plugin, which answers T2 with no request to the provider.
    let after_401 = run_token(&["token", "corp", "-c", cfg]);
    assert_eq!(
        after_401, t2,
        "the broker moved on to the token already stored"
    );
    assert_eq!(
        stored(env)["refresh_token"].as_str().unwrap(),
        rotated,
        "no second refresh grant (it would have rotated the refresh token)"
    );
    assert_eq!(userinfo(idp, &after_401).0, 200);
    assert_eq!(support::broker::source_calls(run, config), Some(2));
}

/// A second config that also names a provider `corp` (here the same plugin and provider:
/// it could as well be another plugin) does not see the first one's sign-in.
#[test]
fn another_config_with_the_same_provider_id_is_not_signed_in() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    sign_in(&env, &idp, &config, &[]);
    let other_dir = env.path().join("project");
    std::fs::create_dir(&other_dir).unwrap();
    let other = other_dir.join("config.toml");
    std::fs::copy(&config, &other).unwrap();
    let out = token(&env, &other, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        stderr(&out).contains("provider \"corp\": not signed in"),
        "{}",
        output_text(&out)
    );
    let out = token(&env, &config, &[]);
    assert!(out.status.success(), "{}", output_text(&out));
}

/// At a terminal, `tokenhost login` opens the system browser (`xdg-open` on Linux: here a
/// stand-in that records the URL, and the test is the browser that then signs in).
#[test]
fn at_a_terminal_login_opens_the_browser() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    let bin = env.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let opened = env.path().join("opened-url");
    let opener = bin.join("xdg-open");
    std::fs::write(&opener, "#!/bin/sh\nprintf '%s\\n' \"$1\" > \"$OPENED_URL.tmp\" && mv \"$OPENED_URL.tmp\" \"$OPENED_URL\"\n").unwrap();
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    // The login runs on a pseudo-terminal (stdin and stderr), as when a person runs it.
    let login = env.command(&[]);
    let mut command = std::process::Command::new("python3");
    command
        .args(["-c", ON_A_TERMINAL, env!("CARGO_BIN_EXE_tokenhost")])
        .args(["login", "corp", "-c", config.to_str().unwrap()])
        .envs(login.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("PATH", &path)
        .env("OPENED_URL", &opened)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in login.get_envs() {
        if value.is_none() {
            command.env_remove(key);
        }
    }
    let child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !opened.exists() {
        assert!(Instant::now() < deadline, "no browser was opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = std::fs::read_to_string(&opened).unwrap();
    assert!(url.starts_with(&idp.url("/auth?")), "{url}");
    let mut browser = browser::Browser::default();
    let redirect = browser.sign_in(url.trim(), "alice");
    assert!(
        browser
            .request("GET", &redirect, "")
            .body
            .contains("You can close this tab")
    );
    let out = child.wait_with_output().unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{terminal}{}", stderr(&out));
    assert!(
        terminal.contains("tokenhost: opened a browser to sign in to provider \"corp\""),
        "{terminal}"
    );
    let out = token(&env, &config, &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(userinfo(&idp, stdout(&out).trim()).0, 200);
}

/// Runs `argv[1:]` with stdin, stdout and stderr on a new pseudo-terminal; copies what
/// it writes there to stdout and exits with its status.
const ON_A_TERMINAL: &str = r#"
import os, subprocess, sys
main, sub = os.openpty()
child = subprocess.Popen(sys.argv[1:], stdin=sub, stdout=sub, stderr=sub, start_new_session=True)
os.close(sub)
while True:
    try:
        data = os.read(main, 4096)
    except OSError:
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
sys.stdout.flush()
sys.exit(child.wait())
"#;
