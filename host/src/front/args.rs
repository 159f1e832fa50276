//! The command lines the front answers by itself: `tokenhost token <provider>` with at
//! most a config path, a client reuse time and an output format, and git's
//! `tokenhost git-credential --provider <id> get` with at most a config path, a username
//! and an auth type. Anything else (another command or operation, any other option, `-v`,
//! help, a malformed line) is `None`: the full command decides, and prints exactly what
//! it always did. Whatever this accepts, the full parser accepts and reads the same way
//! (a test in the full command checks both on the same lines).

use std::ffi::OsString;
use std::path::PathBuf;

use tokenhost::clients::git::AuthType;

/// A `tokenhost token` command line the front can answer.
#[derive(Debug, PartialEq, Eq)]
pub struct LeanToken {
    /// The provider id.
    pub provider: String,
    /// `-c`/`--config`, if given.
    pub config: Option<PathBuf>,
    /// `--client-reuse-ms`, if given.
    pub client_reuse_ms: Option<u64>,
    /// `--format`'s value as given (checked by the caller), if given.
    pub format: Option<String>,
    /// `--json` (never together with `--format`).
    pub json: bool,
}

/// `args` (with the program name first) as a [`LeanToken`], or `None`.
pub fn parse(args: &[OsString]) -> Option<LeanToken> {
    let mut words = args.iter().skip(1).map(|a| a.to_str());
    if words.next()?? != "token" {
        return None;
    }
    let mut provider = None;
    let mut config = None;
    let mut reuse = None;
    let mut format = None;
    let mut json = false;
    while let Some(word) = words.next() {
        let word = word?;
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (word, None),
        };
        match name {
            "-c" | "--config" if config.is_none() => {
                let value = value(inline, &mut words)?;
                config = Some(PathBuf::from(value));
            }
            "--client-reuse-ms" if reuse.is_none() => {
                reuse = Some(value(inline, &mut words)?.parse().ok()?);
            }
            "--format" if format.is_none() && !json => {
                format = Some(value(inline, &mut words)?.to_string());
            }
            "--json" if inline.is_none() && format.is_none() && !json => json = true,
            _ if !word.starts_with('-') && provider.is_none() => {
                provider = Some(word.to_string());
            }
            _ => return None,
        }
    }
    Some(LeanToken {
        provider: provider?,
        config,
        client_reuse_ms: reuse,
        format,
        json,
    })
}

/// A `tokenhost git-credential ... get` command line the front can answer.
#[derive(Debug, PartialEq, Eq)]
pub struct LeanGit {
    /// `--provider`.
    pub provider: String,
    /// `-c`/`--config`, if given.
    pub config: Option<PathBuf>,
    /// `--username`, if given.
    pub username: Option<String>,
    /// `--authtype`, if given.
    pub authtype: Option<AuthType>,
}

/// `args` (with the program name first) as a [`LeanGit`], or `None`. Only `get`: `erase`
/// and `store` are the full command's.
pub fn parse_git(args: &[OsString]) -> Option<LeanGit> {
    let mut words = args.iter().skip(1).map(|a| a.to_str());
    if words.next()?? != "git-credential" {
        return None;
    }
    let mut provider = None;
    let mut config = None;
    let mut username = None;
    let mut authtype = None;
    let mut operation = None;
    while let Some(word) = words.next() {
        let word = word?;
        let (name, inline) = match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (word, None),
        };
        match name {
            "--provider" if provider.is_none() => {
                provider = Some(value(inline, &mut words)?.to_string());
            }
            "-c" | "--config" if config.is_none() => {
                config = Some(PathBuf::from(value(inline, &mut words)?));
            }
            "--username" if username.is_none() => {
                username = Some(value(inline, &mut words)?.to_string());
            }
            "--authtype" if authtype.is_none() => {
                authtype = Some(match value(inline, &mut words)? {
                    "basic" => AuthType::Basic,
                    "bearer" => AuthType::Bearer,
                    _ => return None,
                });
            }
            "get" if operation.is_none() => operation = Some(()),
            _ => return None,
        }
    }
    operation?;
    Some(LeanGit {
        provider: provider?,
        config,
        username,
        authtype,
    })
}

/// An option's value: given with `=`, or the next word, which must not look like an
/// option (the full parser refuses those) and must not be empty.
fn value<'a>(
    inline: Option<&'a str>,
    words: &mut impl Iterator<Item = Option<&'a str>>,
) -> Option<&'a str> {
    let value = match inline {
        Some(value) => value,
        None => words.next()??,
    };
    (!value.is_empty() && !value.starts_with('-')).then_some(value)
}
