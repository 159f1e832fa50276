//! The provider's `auth.config` table as the plugin gets it from `host.config`.
//!
//! Every accessor that can fail returns an [`Error::InvalidConfig`] naming the key, so a
//! plugin can write `config.required("client_id")?` and the person reading the host's
//! error knows what to fix.

use std::str::FromStr;

use crate::Error;
use crate::http::DEFAULT_TIMEOUT_MS;
use crate::url::{self, SchemePolicy, Url};

/// The largest `http_timeout_ms` accepted.
pub const MAX_TIMEOUT_MS: u64 = 120_000;

/// Key/value configuration. Values are trimmed; an empty value counts as unset.
#[derive(Debug, Clone, Default)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// A config of these key/value pairs (for tests; plugins get theirs from
    /// [`crate::TokenSource::new`]).
    pub fn new(entries: Vec<(String, String)>) -> Self {
        Config { entries }
    }

    /// A config of these pairs (for tests): `Config::of(&[("client_id", "app")])`.
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        Config::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The provider's config, asked of the host. String values come as they are; other
    /// TOML values (numbers, booleans) as their TOML text, so `ttl_ms = 60000` and
    /// `ttl_ms = "60000"` read the same. Only inside a plugin: natively there is no host
    /// (tests build a config with [`Config::new`]).
    pub fn from_host() -> Self {
        Config::new(crate::bindings::tokenhost::plugin::host::config())
    }

    /// The trimmed value of `key`, unless missing or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `key`, or an `InvalidConfig` naming it.
    pub fn required(&self, key: &str) -> Result<&str, Error> {
        self.get(key)
            .ok_or_else(|| Error::InvalidConfig(format!("missing required config key `{key}`")))
    }

    /// `key` parsed as a `T` (a number, say), or `None` when unset. A value that does not
    /// parse is an `InvalidConfig` naming the key and the expected type `what`.
    pub fn parse<T: FromStr>(&self, key: &str, what: &str) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|_| Error::InvalidConfig(format!("config key `{key}` must be {what}"))),
        }
    }

    /// `key` as a boolean (`true`/`false`; unset is false).
    pub fn flag(&self, key: &str) -> Result<bool, Error> {
        match self.get(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(Error::InvalidConfig(format!(
                "config key `{key}` must be \"true\" or \"false\""
            ))),
        }
    }

    /// `key` parsed as a URL under `policy`.
    pub fn url(&self, key: &str, policy: SchemePolicy) -> Result<Url, Error> {
        url::parse(key, self.required(key)?, policy).map_err(Error::InvalidConfig)
    }

    /// `http_timeout_ms`: default 4000, between 1 and [`MAX_TIMEOUT_MS`].
    pub fn http_timeout_ms(&self) -> Result<u64, Error> {
        match self.get("http_timeout_ms") {
            None => Ok(DEFAULT_TIMEOUT_MS),
            Some(raw) => match raw.parse::<u64>() {
                Ok(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Ok(ms),
                _ => Err(Error::InvalidConfig(format!(
                    "config key `http_timeout_ms` must be an integer between 1 and {MAX_TIMEOUT_MS} (milliseconds)"
                ))),
            },
        }
    }

    /// `key` as a table of name/value pairs, or `None` when unset. In the provider's
    /// config it is a nested table (`[model_providers.<id>.auth.config.<key>]`, or
    /// `<key> = { name = "value" }`), which the host hands over as its TOML text.
    /// Values may be strings, numbers or booleans (given as their text), or arrays of
    /// them (one pair per element, in order); a nested table is refused. Pairs come
    /// sorted by name. Messages name the key and the entry, never a value.
    pub fn table(&self, key: &str) -> Result<Option<Vec<(String, String)>>, Error> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        let not_a_table = || {
            Error::InvalidConfig(format!(
                "config key `{key}` must be a table of names and values, e.g. \
                 `[model_providers.<id>.auth.config.{key}]` followed by `name = \"value\"` lines"
            ))
        };
        // The parser's own messages quote the input, which may hold a secret: not used.
        let Ok(toml::Value::Table(table)) = raw.parse::<toml::Value>() else {
            return Err(not_a_table());
        };
        let mut pairs = Vec::new();
        for (name, value) in table {
            let bad = || {
                Error::InvalidConfig(format!(
                    "config key `{key}`: `{name}` must be a string, a number, a boolean or an array of them"
                ))
            };
            let values = match value {
                toml::Value::Array(items) => items,
                other => vec![other],
            };
            for value in values {
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    _ => return Err(bad()),
                };
                pairs.push((name.clone(), text));
            }
        }
        Ok(Some(pairs))
    }

    /// The keys present that are not in `known` (likely typos), sorted.
    pub fn unknown_keys(&self, known: &[&str]) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .entries
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !known.contains(k))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::of(pairs)
    }

    #[test]
    fn values_are_trimmed_and_empty_is_unset() {
        let c = config(&[("a", " x "), ("b", "  ")]);
        assert_eq!(c.get("a"), Some("x"));
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("c"), None);
        assert_eq!(
            c.required("b"),
            Err(Error::InvalidConfig(
                "missing required config key `b`".into()
            ))
        );
    }

    #[test]
    fn parses_typed_values_naming_the_key() {
        let c = config(&[("ttl_ms", "60000"), ("bad", "-3")]);
        assert_eq!(c.parse::<u64>("ttl_ms", "milliseconds"), Ok(Some(60_000)));
        assert_eq!(c.parse::<u64>("unset", "milliseconds"), Ok(None));
        assert_eq!(
            c.parse::<u64>("bad", "a non-negative integer (milliseconds)"),
            Err(Error::InvalidConfig(
                "config key `bad` must be a non-negative integer (milliseconds)".into()
            ))
        );
    }

    #[test]
    fn flags_and_timeouts() {
        let c = config(&[("t", "TRUE"), ("f", "false"), ("x", "yes")]);
        assert_eq!(c.flag("t"), Ok(true));
        assert_eq!(c.flag("f"), Ok(false));
        assert_eq!(c.flag("missing"), Ok(false));
        assert!(c.flag("x").is_err());
        assert_eq!(config(&[]).http_timeout_ms(), Ok(4000));
        assert_eq!(
            config(&[("http_timeout_ms", "250")]).http_timeout_ms(),
            Ok(250)
        );
        for bad in ["0", "-1", "1.5", "999999999"] {
            assert!(
                config(&[("http_timeout_ms", bad)])
                    .http_timeout_ms()
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn tables_arrive_as_toml_text() {
        // What the host sends for `[...config.extra_params]` (toml 0.9's inline form,
        // with a multi-line string as TOML 1.1 allows).
        let text = "{ b = true, foo = \"bar baz\", n = 5, nl = \"\"\"\nline1\nline2\"\"\", \
                    \"we.ird\" = 'x\"y', r = [\"a\", \"b\"], f = 1.5 }";
        let c = config(&[("extra_params", text)]);
        let pairs = c.table("extra_params").unwrap().unwrap();
        let expected: Vec<(String, String)> = [
            ("b", "true"),
            ("f", "1.5"),
            ("foo", "bar baz"),
            ("n", "5"),
            ("nl", "line1\nline2"),
            ("r", "a"),
            ("r", "b"),
            ("we.ird", "x\"y"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs, expected);
        assert_eq!(config(&[]).table("extra_params"), Ok(None));
        assert_eq!(config(&[("t", "{}")]).table("t"), Ok(Some(vec![])));
        for bad in ["hunter2-secret", "\"hunter2-secret\"", "[1, 2]", "{ a = "] {
            let e = config(&[("t", bad)]).table("t").unwrap_err();
            assert!(e.message().contains("must be a table"), "{bad}: {e:?}");
            assert!(!e.message().contains("hunter2"), "{e:?}");
        }
        let e = config(&[("t", "{ a = { b = \"hunter2-secret\" } }")])
            .table("t")
            .unwrap_err();
        assert_eq!(
            e,
            Error::InvalidConfig(
                "config key `t`: `a` must be a string, a number, a boolean or an array of them"
                    .into()
            )
        );
    }

    #[test]
    fn reports_unknown_keys() {
        let c = config(&[("token_url", "x"), ("scopes", "y"), ("client_id", "z")]);
        assert_eq!(c.unknown_keys(&["token_url", "client_id"]), vec!["scopes"]);
    }
}
