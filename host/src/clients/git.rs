//! git's credential-helper protocol (gitcredentials(7)), as `tokenhost git-credential`
//! speaks it.
//!
//! git writes `key=value` lines on the helper's stdin until a blank line; for `get`, the
//! helper answers with lines of the same form. A value must never carry a line break
//! into git's parser: the CVE-2020-5260 and CVE-2024-52006 class came from helpers that
//! let CR or LF through. So input with CR or NUL, a line without `=`, or a request without
//! `protocol` and `host` is refused before anything is printed, and every value we write
//! is checked to be one line.

use std::fmt::Write as _;
use std::io::Read as _;

/// What git asks, parsed. `Debug` shows whether git sent a token back, never the token.
#[derive(Default, PartialEq, Eq)]
pub struct Request {
    /// `protocol` (`https`, `http`).
    pub protocol: String,
    /// `host`, with the port if any.
    pub host: String,
    /// `path`, if git sent one.
    pub path: Option<String>,
    /// The `password` git sends back on `erase` and `store`: the token it used.
    pub password: Option<String>,
    /// The `credential` git sends back (the `authtype` form).
    pub credential: Option<String>,
    /// Whether git announced `capability[]=authtype` (git >= 2.46).
    pub authtype_capable: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |value: &Option<String>| value.as_ref().map(|_| "[hidden]");
        f.debug_struct("Request")
            .field("protocol", &self.protocol)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("password", &hidden(&self.password))
            .field("credential", &hidden(&self.credential))
            .field("authtype_capable", &self.authtype_capable)
            .finish()
    }
}

/// Why git's input was refused. Never quotes a value (it may be a token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A line holds a carriage return or a NUL.
    #[error("line {line} of git's input holds a carriage return or NUL; refusing it")]
    ControlCharacter {
        /// 1-based.
        line: usize,
    },
    /// A line is not `key=value`.
    #[error("line {line} of git's input is not key=value; refusing it")]
    NotAnAttribute {
        /// 1-based.
        line: usize,
    },
    /// A required attribute is missing.
    #[error("git's input has no `{0}` attribute; refusing it")]
    Missing(&'static str),
    /// A value we would print is not one line.
    #[error("the {0} would not be a single line for git; refusing to print it")]
    Unprintable(&'static str),
}

/// The username sent with the token unless `--username` says otherwise.
pub const DEFAULT_USERNAME: &str = "x-access-token";

/// The most input read from git (its requests are a few hundred bytes).
pub const MAX_INPUT: u64 = 64 * 1024;

/// Reads git's request from `input` (at most [`MAX_INPUT`] bytes) and parses it; the
/// error is the message `tokenhost git-credential` exits with. Also returns the bytes
/// read, so a process that hands the request on can give them to the next one.
pub fn read_request(input: impl std::io::Read) -> Result<(Request, String), String> {
    let mut text = String::new();
    input
        .take(MAX_INPUT)
        .read_to_string(&mut text)
        .map_err(|e| format!("git-credential: cannot read git's input: {e}"))?;
    let request = parse(&text).map_err(|e| format!("git-credential: {e}"))?;
    Ok((request, text))
}

/// Parses git's input (everything up to a blank line or the end).
pub fn parse(input: &str) -> Result<Request, ProtocolError> {
    let mut request = Request::default();
    let (mut protocol, mut host) = (None, None);
    for (index, line) in input.split('\n').enumerate() {
        let line_no = index + 1;
        if line.contains(['\r', '\0']) {
            return Err(ProtocolError::ControlCharacter { line: line_no });
        }
        if line.is_empty() {
            break;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or(ProtocolError::NotAnAttribute { line: line_no })?;
        match key {
            "protocol" => protocol = Some(value.to_string()),
            "host" => host = Some(value.to_string()),
            "path" => request.path = Some(value.to_string()),
            "password" => request.password = Some(value.to_string()),
            "credential" => request.credential = Some(value.to_string()),
            "capability[]" if value == "authtype" => request.authtype_capable = true,
            // Other attributes (username, url, wwwauth[], state[], ...) do not matter to
            // a token helper; they were checked to be well-formed lines above.
            _ => {}
        }
    }
    request.protocol = protocol
        .filter(|p| !p.is_empty())
        .ok_or(ProtocolError::Missing("protocol"))?;
    request.host = host
        .filter(|h| !h.is_empty())
        .ok_or(ProtocolError::Missing("host"))?;
    Ok(request)
}

/// How a token is offered to git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[non_exhaustive]
pub enum AuthType {
    /// `username` + `password` = the token: HTTP Basic, which GitHub, GitLab and Azure
    /// DevOps accept for tokens. Works with every git.
    #[default]
    Basic,
    /// `authtype=Bearer` + `credential` = the token (git >= 2.46 announces it); falls
    /// back to Basic with an older git.
    Bearer,
}

/// The answer to `get`: the token as `auth` asks (Bearer only if git can take it), and
/// its expiry so git does not reuse it after that.
pub fn answer(
    request: &Request,
    auth: AuthType,
    username: &str,
    token: &str,
    expires_at_ms: Option<u64>,
) -> Result<String, ProtocolError> {
    let one_line = |value: &str, what| match value.contains(['\r', '\n', '\0']) {
        true => Err(ProtocolError::Unprintable(what)),
        false => Ok(()),
    };
    one_line(token, "token")?;
    one_line(username, "username")?;
    let mut out = String::new();
    if auth == AuthType::Bearer && request.authtype_capable {
        out.push_str("capability[]=authtype\nauthtype=Bearer\n");
        let _ = writeln!(out, "credential={token}");
        // A bearer credential is not for git to store in another helper.
        out.push_str("ephemeral=1\n");
    } else {
        let _ = writeln!(out, "username={username}");
        let _ = writeln!(out, "password={token}");
    }
    if let Some(ms) = expires_at_ms {
        let _ = writeln!(out, "password_expiry_utc={}", ms / 1000);
    }
    Ok(out)
}

/// The token git reports on `erase` (or `store`): `credential` or `password`.
pub fn returned_token(request: &Request) -> Option<&str> {
    request
        .credential
        .as_deref()
        .or(request.password.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_git_sends() {
        let request = parse(
            "capability[]=authtype\nprotocol=https\nhost=git.example.com:8443\n\
             path=org/repo.git\nusername=x\nwwwauth[]=Bearer realm=\"x\"\n\nignored\n",
        )
        .unwrap();
        assert_eq!(request.protocol, "https");
        assert_eq!(request.host, "git.example.com:8443");
        assert_eq!(request.path.as_deref(), Some("org/repo.git"));
        assert!(request.authtype_capable);
        assert_eq!(returned_token(&request), None);
        let erase = parse("protocol=https\nhost=h\npassword=tok-SECRET\n").unwrap();
        assert_eq!(returned_token(&erase), Some("tok-SECRET"));
        let shown = format!("{erase:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("[hidden]"), "{shown}");
    }

    #[test]
    fn malformed_input_is_refused_without_quoting_it() {
        let cases = [
            (
                "protocol=https\nhost=h\r\n",
                ProtocolError::ControlCharacter { line: 2 },
            ),
            (
                "protocol=https\nhost=h\0evil\n",
                ProtocolError::ControlCharacter { line: 2 },
            ),
            (
                "protocol=https\nsecret-without-equals\n",
                ProtocolError::NotAnAttribute { line: 2 },
            ),
            ("host=h\n", ProtocolError::Missing("protocol")),
            ("protocol=https\n", ProtocolError::Missing("host")),
            ("protocol=https\nhost=\n", ProtocolError::Missing("host")),
            ("", ProtocolError::Missing("protocol")),
        ];
        for (input, expected) in cases {
            let err = parse(input).unwrap_err();
            assert_eq!(err, expected, "{input:?}");
            assert!(!err.to_string().contains("evil"), "{err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn answers_basic_or_bearer_with_the_expiry() {
        let old_git = parse("protocol=https\nhost=h\n").unwrap();
        let new_git = parse("capability[]=authtype\nprotocol=https\nhost=h\n").unwrap();
        let basic = answer(
            &new_git,
            AuthType::Basic,
            "x-access-token",
            "tok",
            Some(1_700_000_000_999),
        )
        .unwrap();
        assert_eq!(
            basic,
            "username=x-access-token\npassword=tok\npassword_expiry_utc=1700000000\n"
        );
        let bearer = answer(&new_git, AuthType::Bearer, "u", "tok", None).unwrap();
        assert_eq!(
            bearer,
            "capability[]=authtype\nauthtype=Bearer\ncredential=tok\nephemeral=1\n"
        );
        // An older git cannot take Bearer: Basic instead.
        let fallback = answer(&old_git, AuthType::Bearer, "u", "tok", None).unwrap();
        assert_eq!(fallback, "username=u\npassword=tok\n");
        assert_eq!(
            answer(&old_git, AuthType::Basic, "u\nhost=evil", "tok", None).unwrap_err(),
            ProtocolError::Unprintable("username")
        );
        assert_eq!(
            answer(&old_git, AuthType::Basic, "u", "tok\nx=y", None).unwrap_err(),
            ProtocolError::Unprintable("token")
        );
    }
}
