//! `tokenhost token`: one token on stdout, nothing else. Where it comes from (a broker or
//! this process) is [`obtain`](super::obtain)'s business; `--refresh` asks for a new one.

use tokenhost::clients::ClientAsk;

use super::token_output::{Format, api_version, render};

use super::obtain::Ask;
use super::{ConfigArg, Failure};

/// Arguments of `tokenhost token`.
#[derive(clap::Args)]
pub struct TokenArgs {
    /// The provider id (a key under [model_providers]).
    provider: String,
    #[command(flatten)]
    config: ConfigArg,
    /// Ask the source for a new token instead of using its current one.
    #[arg(long)]
    refresh: bool,
    /// What to print: the bare token (`text`), `{"token", "expires_at_ms"}` (`json`), or a
    /// kubectl ExecCredential (`exec-credential`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Run the source in this process even when a broker serves this config.
    #[arg(long)]
    no_broker: bool,
    /// How long the calling program reuses a token (Codex: its `refresh_interval_ms`);
    /// asking again sooner means the token was rejected. Default 300000 (Codex's
    /// default), or with `--format exec-credential` the expirationTimestamp printed. 0:
    /// never read a re-ask as a rejection.
    #[arg(long, value_name = "MS")]
    client_reuse_ms: Option<u64>,
}

/// Runs `tokenhost token`.
pub fn run(args: TokenArgs) -> Result<(), Failure> {
    let prepared = args.config.prepare(Some(&args.provider))?;
    let format = if args.json { Format::Json } else { args.format };
    let ask = Ask {
        client: ClientAsk::of_parent(
            args.client_reuse_ms,
            format == Format::ExecCredential,
            args.refresh,
        ),
        refresh: args.refresh,
        no_broker: args.no_broker,
    };
    // A request kubectl cannot take is refused before any source runs.
    let version = api_version(format).map_err(Failure::usage)?;
    let interval = prepared
        .config()
        .provider(&args.provider)
        .and_then(|spec| spec.refresh_interval);
    let token = super::obtain::token(prepared, &args.provider, ask)?;
    outln!("{}", render(format, &token, version, interval))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command, TokenCli, TokenCommand};
    use super::TokenArgs;

    /// What a parse of `tokenhost token` decided, field by field.
    fn fields(a: &TokenArgs) -> String {
        format!(
            "{} {:?} {:?} {} {} {} {} {:?}",
            a.provider,
            a.config.config,
            a.config.policy,
            a.refresh,
            a.format as u8,
            a.json,
            a.no_broker,
            a.client_reuse_ms
        )
    }

    /// The `token` fast path (`cli::parse`) accepts only what the full parser accepts,
    /// and decides the same; whatever it refuses goes to the full parser anyway.
    #[test]
    fn the_token_fast_path_parses_as_the_full_parser_does() {
        for line in [
            "tokenhost token corp",
            "tokenhost token corp -v -c /x.toml --policy a --policy b --refresh --no-broker",
            "tokenhost token -vv corp --format exec-credential --client-reuse-ms 5",
            "tokenhost token corp --json",
            "tokenhost token corp --json --format text",
            "tokenhost token",
            "tokenhost token corp --help",
            "tokenhost token corp --version",
            "tokenhost token corp --bogus",
            "tokenhost token corp extra",
        ] {
            let args = line.split(' ');
            match (
                TokenCli::try_parse_from(args.clone()),
                Cli::try_parse_from(args),
            ) {
                (
                    Ok(TokenCli {
                        verbose,
                        command: TokenCommand::Token(fast),
                    }),
                    Ok(Cli {
                        verbose: full_verbose,
                        command: Command::Token(full),
                    }),
                ) => {
                    assert_eq!(verbose, full_verbose, "{line}");
                    assert_eq!(fields(&fast), fields(&full), "{line}");
                }
                (Err(_), _) => {}
                (Ok(_), _) => panic!("{line}: the fast path accepts what the full parser does not"),
            }
        }
    }

    /// The lean front of `tokenhost` (Unix) answers only lines that the full parser
    /// reads as a plain `token` for the same provider, config and reuse time.
    #[cfg(unix)]
    #[test]
    fn the_front_answers_only_what_the_full_parser_reads_the_same() {
        use super::super::front_args;
        for line in [
            "tokenhost token corp",
            "tokenhost token corp -c /x.toml",
            "tokenhost token -c /x.toml corp",
            "tokenhost token --config=/x.toml corp --client-reuse-ms 0",
            "tokenhost token corp --client-reuse-ms=300000 --config /x.toml",
            "tokenhost token corp -c /x.toml -c /y.toml",
            "tokenhost token corp -c",
            "tokenhost token corp -c --json",
            "tokenhost token corp --config=",
            "tokenhost token corp --client-reuse-ms -1",
            "tokenhost token corp --client-reuse-ms x",
            "tokenhost token corp -v",
            "tokenhost -v token corp",
            "tokenhost token corp --refresh",
            "tokenhost token corp --no-broker",
            "tokenhost token corp --json",
            "tokenhost token corp --json --json",
            "tokenhost token corp --json=true",
            "tokenhost token corp --json --format text",
            "tokenhost token corp --format json --json",
            "tokenhost token corp --format text",
            "tokenhost token corp --format=exec-credential -c /x.toml",
            "tokenhost token corp --format json --format text",
            "tokenhost token corp --format yaml",
            "tokenhost token corp --format Text",
            "tokenhost token corp --format",
            "tokenhost token corp --policy p.toml",
            "tokenhost token corp extra",
            "tokenhost token -- corp",
            "tokenhost token - corp",
            "tokenhost token",
            "tokenhost token --help",
            "tokenhost token corp -h",
            "tokenhost status corp",
            "tokenhost --version",
            "tokenhost",
        ] {
            let args: Vec<std::ffi::OsString> = line.split(' ').map(Into::into).collect();
            let Some(lean) = front_args::parse(&args) else {
                continue;
            };
            // The front hands over a format it does not know.
            if let Some(name) = &lean.format
                && super::super::token_output::Format::named(name).is_none()
            {
                continue;
            }
            let Ok(Cli {
                verbose: 0,
                command: Command::Token(full),
            }) = Cli::try_parse_from(&args)
            else {
                panic!("{line}: the front answers what the full parser reads otherwise");
            };
            // As parsed: `--json` leaves `format` at its default (`run` reads it).
            let format = match &lean.format {
                Some(name) => super::super::token_output::Format::named(name)
                    .unwrap_or_else(|| panic!("{line}: the front took an unknown format")),
                None => super::super::token_output::Format::Text,
            };
            let json_flag = lean.json;
            let plain = format!(
                "{} {:?} [] false {} {json_flag} false {:?}",
                lean.provider, lean.config, format as u8, lean.client_reuse_ms
            );
            assert_eq!(fields(&full), plain, "{line}");
        }
        let args =
            |line: &str| -> Vec<std::ffi::OsString> { line.split(' ').map(Into::into).collect() };
        assert!(front_args::parse(&args("tokenhost token corp -c /x.toml")).is_some());
        assert!(front_args::parse(&args("tokenhost token corp -v")).is_none());
    }
}
