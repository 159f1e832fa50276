//! The device code flow (RFC 8628) end to end: the test reads the URL and code that
//! `tokenhost login` shows and approves them on the provider's device page; and a
//! provider that asks the plugin to slow down.

use super::*;

#[test]
fn device_code_login_then_token() {
    let idp = provider(None);
    let env = Env::new();
    let config = config(&env, &idp, Some("file"), "flow = \"device_code\"");
    let mut login = Login::start(&env, &config, &[]);
    let message = login.line_starting("To sign in, open ");
    assert!(message.contains(" and enter the code "), "{message}");
    // The URL on a line of its own: verification_uri_complete, with the code in it.
    let url = login.line_starting(&idp.url("/device"));
    let mut browser = browser::Browser::default();
    let page = browser.approve_device(&url, "bob");
    assert!(page.body.contains("Sign-in Success"), "{}", page.body);
    let (status, text) = login.finish();
    assert!(status.success(), "{text}\n{}", idp.stderr());
    assert!(text.contains("signed in to provider \"corp\""), "{text}");

    let out = token(&env, &config, &[]);
    assert!(out.status.success(), "{}", output_text(&out));
    let (status, body) = userinfo(&idp, stdout(&out).trim());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"sub\":\"bob\""), "{body}");
}

/// RFC 8628 §3.5 against a provider that says `slow_down` (a small stand-in for the
/// provider: oidc-provider only says it to a client that polls too fast, which the plugin
/// never does): the plugin polls at the given interval, then 5 s slower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_makes_the_plugin_poll_five_seconds_slower() {
    use std::sync::{Arc, Mutex};
    use support::idp::{Reply, Server};

    let polls: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let base: Arc<Mutex<String>> = Arc::default();
    let server = Server::start({
        let (polls, base) = (polls.clone(), base.clone());
        move |seen, _| {
            let base = base.lock().unwrap().clone();
            match seen.path.as_str() {
                "/.well-known/openid-configuration" => Reply::json(
                    200,
                    json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/auth"),
                        "token_endpoint": format!("{base}/token"),
                        "device_authorization_endpoint": format!("{base}/device"),
                    }),
                ),
                "/device" => Reply::json(
                    200,
                    json!({"device_code": "dc-1", "user_code": "WXYZ-1234",
                           "verification_uri": format!("{base}/verify"),
                           "interval": 1, "expires_in": 120}),
                ),
                _ => {
                    let mut polls = polls.lock().unwrap();
                    polls.push(Instant::now());
                    match polls.len() {
                        1 => Reply::json(400, json!({"error": "authorization_pending"})),
                        2 => Reply::json(400, json!({"error": "slow_down"})),
                        _ => Reply::token("access-after-slow-down", 3600),
                    }
                }
            }
        }
    })
    .await;
    *base.lock().unwrap() = server.url("");
    let env = Env::new();
    let config = env.config(&format!(
        "[model_providers.corp.auth]\nplugin = {plugin}\nallowed_hosts = [\"{authority}\"]\n\
         timeout_ms = 15000\nsecret_store = \"file\"\n\
         [model_providers.corp.auth.config]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT}\"\n\
         flow = \"device_code\"\nlogin_timeout_ms = 60000\n",
        plugin = support::toml_path(&support::plugin("oidc-login")),
        authority = server.authority(),
        issuer = server.url(""),
    ));
    let (status, text) = tokio::task::spawn_blocking(move || {
        let mut login = Login::start(&env, &config, &[]);
        login.line_starting("To sign in, open ");
        let finished = login.finish();
        let out = token(&env, &config, &[]);
        assert!(out.status.success(), "{}", output_text(&out));
        assert_eq!(stdout(&out).trim(), "access-after-slow-down");
        finished
    })
    .await
    .unwrap();
    assert!(status.success(), "{text}");
    let polls = polls.lock().unwrap().clone();
    assert_eq!(polls.len(), 3, "{text}");
    let (first, second) = (polls[1] - polls[0], polls[2] - polls[1]);
    assert!(first < Duration::from_secs(4), "{first:?}");
    assert!(
        second >= Duration::from_secs(6),
        "interval 1 s + 5 s: {second:?}"
    );
}
