//! A git server on loopback: git's own `git http-backend` (a CGI program) behind the test
//! HTTP server, demanding a token by HTTP Basic and rejecting the first token it sees, as
//! a server that revoked it would.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;

use super::idp::{Reply, Seen, Server};

/// A bare repository `repo.git` with one commit, in `dir/repos`.
pub fn make_repo(dir: &Path) -> PathBuf {
    let repos = dir.join("repos");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let git = |cwd: &Path, args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(cwd)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(
        dir,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            repos.join("repo.git").to_str().unwrap(),
        ],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("README"), "hello from the test repository\n").unwrap();
    git(&work, &["add", "README"]);
    git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "one",
        ],
    );
    git(
        &work,
        &[
            "push",
            "-q",
            repos.join("repo.git").to_str().unwrap(),
            "main",
        ],
    );
    repos
}

/// What the server saw of the tokens: the first one (rejected) and every token accepted.
#[derive(Debug, Default)]
pub struct Tokens {
    pub rejected: Option<String>,
    pub accepted: Vec<String>,
}

/// Serves `repos` with `git http-backend`, wanting `Authorization: Basic` with the token
/// as the password (or `Bearer <token>`); the first token it sees is rejected forever.
pub async fn serve(repos: PathBuf) -> (Server, Arc<Mutex<Tokens>>) {
    let tokens: Arc<Mutex<Tokens>> = Arc::default();
    let seen_tokens = tokens.clone();
    let server = Server::start(move |seen, _| {
        let Some(token) = presented_token(seen) else {
            return unauthorized();
        };
        {
            let mut tokens = seen_tokens.lock().unwrap();
            let rejected = tokens.rejected.get_or_insert_with(|| token.clone());
            if *rejected == token {
                return unauthorized();
            }
            if !tokens.accepted.contains(&token) {
                tokens.accepted.push(token);
            }
        }
        http_backend(&repos, seen)
    })
    .await;
    (server, tokens)
}

fn presented_token(seen: &Seen) -> Option<String> {
    let header = seen.headers.get("authorization")?;
    if let Some(token) = header.strip_prefix("Bearer ") {
        return Some(token.to_string());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(header.strip_prefix("Basic ")?)
        .ok()?;
    let (_user, token) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(token.to_string())
}

fn unauthorized() -> Reply {
    Reply {
        status: 401,
        headers: vec![("www-authenticate".into(), "Basic realm=\"git\"".into())],
        body: b"token required\n".to_vec(),
        delay: None,
    }
}

/// Runs the CGI program for one request.
fn http_backend(repos: &Path, seen: &Seen) -> Reply {
    let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
    let header = |name: &str| seen.headers.get(name).cloned().unwrap_or_default();
    let mut child = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", repos)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("REQUEST_METHOD", &seen.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", seen.raw.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", "token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&seen.raw).unwrap();
    let out = child.wait_with_output().unwrap();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        });
    let Some((end, sep)) = split else {
        return Reply {
            status: 500,
            headers: Vec::new(),
            body: out.stderr,
            delay: None,
        };
    };
    let head = String::from_utf8_lossy(&out.stdout[..end]).into_owned();
    let mut status = 200;
    let mut headers: HashMap<String, String> = HashMap::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "status" => status = value.split(' ').next().unwrap().parse().unwrap(),
            name => {
                headers.insert(name.to_string(), value);
            }
        }
    }
    Reply {
        status,
        headers: headers.into_iter().collect(),
        body: out.stdout[end + sep..].to_vec(),
        delay: None,
    }
}
