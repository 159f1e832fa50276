//! The authorization code flow end to end, refresh with rotation, a revoked sign-in,
//! logout, a forged redirect, and the not-signed-in fast failure (file store).

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

#[test]
fn logout_also_empties_a_brokers_cache() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "");
    let run = env.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let run_env = [("XDG_RUNTIME_DIR", run.to_str().unwrap())];
    sign_in(&env, &idp, &config, &run_env);
    let cfg = config.to_str().unwrap();
    let mut serve = env.command(&[]);
    serve.envs(run_env);
    let _broker = support::broker::BrokerProcess::start(serve, &run, &config);
    let brokered = |args: &[&str]| {
        let mut command = env.command(args);
        command.envs(run_env).stdin(Stdio::null()).output().unwrap()
    };
    let out = brokered(&["token", "corp", "-c", cfg]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        support::broker::source_calls(&run, &config),
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
