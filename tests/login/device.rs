//! The device code flow (RFC 8628) end to end: the test reads the URL and code that
//! `tokenhost login` shows and approves them on the provider's device page.

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
