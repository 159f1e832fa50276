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
    let mut words = Words::after(args, "token")?;
    let mut provider = None;
    let mut config = None;
    let mut reuse = None;
    let mut format = None;
    let mut json = false;
    while let Some((name, inline)) = words.next()? {
        match name {
            "-c" | "--config" if config.is_none() => {
                config = Some(PathBuf::from(words.value(inline)?));
            }
            "--client-reuse-ms" if reuse.is_none() => {
                reuse = Some(words.value(inline)?.parse().ok()?);
            }
            "--format" if format.is_none() && !json => {
                format = Some(words.value(inline)?.to_string());
            }
            "--json" if inline.is_none() && format.is_none() && !json => json = true,
            _ if !name.starts_with('-') && provider.is_none() => {
                provider = Some(name.to_string());
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
    let mut words = Words::after(args, "git-credential")?;
    let mut provider = None;
    let mut config = None;
    let mut username = None;
    let mut authtype = None;
    let mut operation = None;
    while let Some((name, inline)) = words.next()? {
        match name {
            "--provider" if provider.is_none() => {
                provider = Some(words.value(inline)?.to_string());
            }
            "-c" | "--config" if config.is_none() => {
                config = Some(PathBuf::from(words.value(inline)?));
            }
            "--username" if username.is_none() => {
                username = Some(words.value(inline)?.to_string());
            }
            "--authtype" if authtype.is_none() => {
                authtype = Some(match words.value(inline)? {
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

/// The words of a command line after `tokenhost <command>`, read as options.
struct Words<'a> {
    words: std::slice::Iter<'a, OsString>,
}

impl<'a> Words<'a> {
    /// The words after `tokenhost <command>`, or `None` for another command.
    fn after(args: &'a [OsString], command: &str) -> Option<Self> {
        let mut words = args.get(1..)?.iter();
        (words.next()?.to_str()? == command).then_some(Words { words })
    }

    /// The next word as its name and the value given with `=` (`--name=value`; a word
    /// that is not an option is its own name): `Some(None)` at the end, `None` for a
    /// word that is not UTF-8.
    fn next(&mut self) -> Option<Option<(&'a str, Option<&'a str>)>> {
        let Some(word) = self.words.next() else {
            return Some(None);
        };
        let word = word.to_str()?;
        Some(Some(match word.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value)),
            _ => (word, None),
        }))
    }

    /// An option's value: given with `=` (`inline`), or the next word, which must not
    /// look like an option (the full parser refuses those) and must not be empty.
    fn value(&mut self, inline: Option<&'a str>) -> Option<&'a str> {
        let value = match inline {
            Some(value) => value,
            None => self.words.next()?.to_str()?,
        };
        (!value.is_empty() && !value.starts_with('-')).then_some(value)
    }
}
