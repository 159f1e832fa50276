//! What a plugin may do with the person during `login`, and only then: show a message,
//! have a browser opened, receive one loopback redirect.
//!
//! The host keeps every decision: a browser is opened only in an interactive login
//! (`tokenhost login` at a terminal, without `--no-browser`); otherwise the URL is printed
//! on stderr on a line of its own, for the person (or a test) to open. The redirect
//! listener binds 127.0.0.1 only (RFC 8252 §7.3), answers exactly one request to the
//! redirect path with a small "you can close this tab" page, and every wait ends at the
//! login's deadline. The plugin sees the redirect's query string, never a socket.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest message a plugin may show, in bytes.
pub const MESSAGE_MAX: usize = 2048;
/// The longest URL a plugin may have opened, in bytes.
pub const URL_MAX: usize = 8192;
/// The largest request head the listener reads.
const REQUEST_MAX: usize = 16 * 1024;
/// How long one browser connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const CLOSE_TAB_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>tokenhost</title></head>\
<body><p>tokenhost received the sign-in response. You can close this tab and return to the terminal.</p></body></html>";

/// The person-facing side of one `login` call.
pub struct Interaction {
    provider: Arc<str>,
    interactive: bool,
    deadline: Instant,
    redirect: Option<Redirect>,
}

struct Redirect {
    listener: TcpListener,
    path: String,
}

impl Interaction {
    /// An interaction for `provider`'s login that ends at `deadline`; `interactive`:
    /// whether a browser may be opened.
    pub fn new(provider: Arc<str>, interactive: bool, deadline: Instant) -> Self {
        Interaction {
            provider,
            interactive,
            deadline,
            redirect: None,
        }
    }

    /// Writes `text` to stderr, each line escaped and the whole capped.
    pub fn show_message(&self, text: &str) -> Result<(), String> {
        let text = cap(text, MESSAGE_MAX);
        let mut err = std::io::stderr().lock();
        for line in text.lines() {
            let _ = writeln!(err, "{}", crate::text::escaped(line));
        }
        Ok(())
    }

    /// Opens `url` in the system browser when interactive, else prints it on a line of
    /// its own. Whether a browser was started.
    pub fn open_browser(&self, url: &str) -> Result<bool, String> {
        check_url(url)?;
        let provider = crate::text::escaped(&self.provider);
        let opened = self.interactive && spawn_browser(url);
        let mut err = std::io::stderr().lock();
        let _ = match opened {
            true => writeln!(
                err,
                "tokenhost: opened a browser to sign in to provider \"{provider}\"; if it did not \
                 appear, open this URL:"
            ),
            false => writeln!(
                err,
                "tokenhost: to sign in to provider \"{provider}\", open this URL in a browser:"
            ),
        };
        let _ = writeln!(err, "{url}");
        let _ = err.flush();
        Ok(opened)
    }

    /// Binds the redirect listener on 127.0.0.1 (`port`, or a free one) for `path`.
    /// The redirect URI.
    pub async fn listen_redirect(
        &mut self,
        port: Option<u16>,
        path: &str,
    ) -> Result<String, String> {
        if !path.starts_with('/') || path.len() > 256 || path.contains(['?', '#', ' ']) {
            return Err("the redirect path must start with / and have no query".into());
        }
        if self.redirect.is_some() {
            return Err("a redirect listener is already bound for this login".into());
        }
        let listener = TcpListener::bind(("127.0.0.1", port.unwrap_or(0)))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", port.unwrap_or(0)))?;
        let bound = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listener's port: {e}"))?
            .port();
        self.redirect = Some(Redirect {
            listener,
            path: path.to_string(),
        });
        Ok(format!("http://127.0.0.1:{bound}{path}"))
    }

    /// Waits for the one request to the redirect path (other paths get a 404 and the
    /// wait goes on), answers it and returns its query. Ends at `timeout_ms` or the
    /// login's deadline, whichever is first; the listener is closed either way.
    pub async fn await_redirect(&mut self, timeout_ms: u64) -> Result<String, String> {
        let Some(redirect) = self.redirect.take() else {
            return Err("no redirect listener: call listen-redirect first".into());
        };
        let until = self
            .deadline
            .min(Instant::now() + Duration::from_millis(timeout_ms));
        let wait = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, redirect.accept_one()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no sign-in response reached the redirect listener within {} s",
                wait.as_secs()
            )),
        }
    }
}

impl Redirect {
    async fn accept_one(&self) -> Result<String, String> {
        loop {
            let (stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| format!("the redirect listener failed: {e}"))?;
            match tokio::time::timeout(REQUEST_TIMEOUT, self.answer(stream)).await {
                Ok(Some(query)) => return Ok(query),
                Ok(None) | Err(_) => continue,
            }
        }
    }

    /// Reads one request; answers it. The query if it was the redirect.
    async fn answer(&self, mut stream: TcpStream) -> Option<String> {
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 || head.len() + n > REQUEST_MAX {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head).lines().next()?.to_string();
        let mut parts = line.split(' ');
        let (method, target) = (parts.next()?, parts.next()?);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let ours = method == "GET" && path == self.path;
        let (status, body) = match ours {
            true => ("200 OK", CLOSE_TAB_PAGE),
            false => ("404 Not Found", "not found"),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
             cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        ours.then(|| query.to_string())
    }
}

/// `text` cut at `max` bytes, on a character boundary.
fn cap(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An http(s) URL without control characters or spaces, of a sane length.
fn check_url(url: &str) -> Result<(), String> {
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.len() > URL_MAX || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err("the URL to open must be http(s), one line, at most 8 KiB".into());
    }
    Ok(())
}

/// Starts the platform's URL opener, detached from our stdio. Whether it started.
fn spawn_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_opened() {
        assert!(check_url("https://idp.example/auth?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/auth").is_ok());
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "https://a\nb",
            "https://a b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_listener_answers_one_redirect_and_ignores_other_paths() {
        let mut interaction =
            Interaction::new("p".into(), false, Instant::now() + Duration::from_secs(10));
        let uri = interaction
            .listen_redirect(None, "/callback")
            .await
            .unwrap();
        let authority = uri
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix("/callback"))
            .unwrap()
            .to_string();
        let browser = tokio::spawn(async move {
            let get = |path: &'static str| {
                let authority = authority.clone();
                async move {
                    let mut s = TcpStream::connect(&authority).await.unwrap();
                    let req = format!("GET {path} HTTP/1.1\r\nhost: {authority}\r\n\r\n");
                    s.write_all(req.as_bytes()).await.unwrap();
                    let mut out = String::new();
                    s.read_to_string(&mut out).await.unwrap();
                    out
                }
            };
            let favicon = get("/favicon.ico").await;
            let page = get("/callback?code=c&state=s").await;
            (favicon, page)
        });
        let query = interaction.await_redirect(5000).await.unwrap();
        assert_eq!(query, "code=c&state=s");
        let (favicon, page) = browser.await.unwrap();
        assert!(favicon.starts_with("HTTP/1.1 404"), "{favicon}");
        assert!(page.contains("You can close this tab"), "{page}");
    }

    #[tokio::test]
    async fn the_wait_ends_at_the_deadline() {
        let mut interaction = Interaction::new(
            "p".into(),
            false,
            Instant::now() + Duration::from_millis(200),
        );
        interaction.listen_redirect(None, "/cb").await.unwrap();
        let started = Instant::now();
        let error = interaction.await_redirect(60_000).await.unwrap_err();
        assert!(error.contains("no sign-in response"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
