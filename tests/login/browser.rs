//! The test plays the person's browser: a tiny HTTP/1.1 client with a cookie jar that
//! follows the provider's redirects and submits oidc-provider's devInteractions login and
//! consent forms, until the provider redirects to tokenhost's loopback listener.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response: status, headers (lower-case names) and body.
pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A browser: cookies for the provider.
#[derive(Default)]
pub struct Browser {
    cookies: BTreeMap<String, String>,
}

/// `http://host:port/path?q` split into the authority and the target.
fn split(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let target = if target.is_empty() { "/" } else { target };
    (authority.to_string(), target.to_string())
}

impl Browser {
    /// A GET with `authorization: Bearer <token>`.
    pub fn request_bearer(&mut self, url: &str, token: &str) -> Page {
        self.send("GET", url, "", Some(token))
    }

    /// One request (no redirect followed).
    pub fn request(&mut self, method: &str, url: &str, form: &str) -> Page {
        self.send(method, url, form, None)
    }

    fn send(&mut self, method: &str, url: &str, form: &str, bearer: Option<&str>) -> Page {
        let (authority, target) = split(url);
        let mut stream = TcpStream::connect(&authority).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
        if let Some(token) = bearer {
            head.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        if !cookie.is_empty() {
            head.push_str(&format!("cookie: {cookie}\r\n"));
        }
        if method == "POST" {
            head.push_str(&format!(
                "content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n",
                form.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(form.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        for (_, value) in headers.iter().filter(|(k, _)| k == "set-cookie") {
            if let Some((name, rest)) = value.split_once('=') {
                let value = rest.split(';').next().unwrap_or("");
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status,
            headers,
            body: body.to_string(),
        }
    }

    /// Follows `auth_url` through login (as `user`) and consent, and returns the URL the
    /// provider finally redirects to (tokenhost's listener), without requesting it.
    pub fn sign_in(&mut self, auth_url: &str, user: &str) -> String {
        match self.walk(auth_url, user) {
            Ok(redirect) => redirect,
            Err(page) => panic!("the sign-in ended on a page:\n{}", page.body),
        }
    }

    /// The device flow's verification page at `url`: enters and confirms the user code
    /// (already in the URL, `verification_uri_complete`), signs in as `user` and
    /// consents; the final page.
    pub fn approve_device(&mut self, url: &str, user: &str) -> Page {
        match self.walk(url, user) {
            Ok(redirect) => panic!("the device approval redirected away to {redirect}"),
            Err(page) => page,
        }
    }

    /// Walks the provider's pages: `Ok` with the first redirect away from it, or `Err`
    /// with a page that has no form this browser knows.
    fn walk(&mut self, start: &str, user: &str) -> Result<String, Page> {
        let (idp, _) = split(start);
        let auth_url = start;
        let base = format!("http://{idp}");
        let mut url = auth_url.to_string();
        let mut form = String::new();
        for _ in 0..20 {
            let method = if form.is_empty() { "GET" } else { "POST" };
            let page = self.request(method, &url, &form);
            form.clear();
            match page.status {
                302 | 303 => {
                    let location = page.header("location").expect("a redirect has a location");
                    let next = if location.starts_with('/') {
                        format!("{base}{location}")
                    } else {
                        location.to_string()
                    };
                    if !next.starts_with(&base) {
                        return Ok(next);
                    }
                    url = next;
                }
                200 if page.body.contains("name=\"login\"") => {
                    url = form_action(&base, &page.body);
                    form = format!("prompt=login&login={user}&password=any");
                }
                200 if page.body.contains("value=\"consent\"") => {
                    url = form_action(&base, &page.body);
                    form = "prompt=consent".to_string();
                }
                // verification_uri_complete: a form that script would submit at once.
                200 if page.body.contains("op.deviceInputForm\" novalidate")
                    || page.body.contains("<title>Submitting Callback</title>") =>
                {
                    url = form_action(&base, &page.body);
                    let code = input_value(&page.body, "user_code");
                    form = format!("xsrf={}&user_code={code}", input_value(&page.body, "xsrf"));
                }
                200 if page.body.contains("id=\"op.deviceConfirmForm\"") => {
                    url = form_action(&base, &page.body);
                    let code = input_value(&page.body, "user_code");
                    form = format!(
                        "xsrf={}&user_code={code}&confirm=yes",
                        input_value(&page.body, "xsrf")
                    );
                }
                200 => return Err(page),
                status => panic!("unexpected page {status} at {url}:\n{}", page.body),
            }
        }
        panic!("the sign-in from {auth_url} did not end");
    }
}

/// The absolute URL of the page's form.
fn form_action(base: &str, body: &str) -> String {
    let start = body.find("action=\"").expect("a form") + "action=\"".len();
    let action = &body[start..start + body[start..].find('"').unwrap()];
    if action.starts_with('/') {
        format!("{base}{action}")
    } else {
        action.to_string()
    }
}

/// The `value` of the form input named `name` (the first one).
fn input_value(body: &str, name: &str) -> String {
    let at = body.find(&format!("name=\"{name}\"")).expect("the input");
    // The value comes before or after the name, within the same tag.
    let start = body[..at].rfind('<').unwrap();
    let end = at + body[at..].find('>').unwrap();
    let tag = &body[start..end];
    let value = tag.find("value=\"").expect("a value") + "value=\"".len();
    tag[value..value + tag[value..].find('"').unwrap()].to_string()
}
