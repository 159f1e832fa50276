//! `tokenhost request`: a curl-like authenticated request. The response body goes to
//! stdout as raw bytes and nothing else does; `-v` adds the request line, the status
//! line and timings on stderr (never a header value, so never the token).
//!
//! Exit codes: 0 for a 2xx response; 1 for any other response (its body is still
//! printed, and stderr gets `tokenhost: HTTP 404 from <url>`), for a token source that
//! failed, a network error, or a 401 that recovery could not fix; 2 for usage and
//! configuration errors (unknown provider, bad URL or header, unreadable `-d @file`);
//! 141 when stdout's reader went away (see [`super::output`]).

use std::io::Read;
use std::time::Instant;

use reqwest::Method;
use tokenhost::client::{ClientError, without_query};

use super::{ConfigArg, Failure};

/// Arguments of `tokenhost request`.
#[derive(clap::Args)]
pub struct RequestArgs {
    /// The provider id (a key under [model_providers]).
    provider: String,
    /// An absolute http(s) URL, or a path appended to the provider's base_url
    /// ("chat/completions" and "/chat/completions" both go under base_url).
    #[arg(value_name = "URL_OR_PATH")]
    target: String,
    #[command(flatten)]
    config: ConfigArg,
    /// The request method. Default: GET, or POST with -d.
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// A request header, "Name: value". Repeatable. Replaces a provider header of the
    /// same name; cannot set Authorization.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// The request body: the text itself, @FILE for a file's bytes, or @- for stdin.
    /// No Content-Type is added; pass one with -H.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Option<String>,
}

/// Runs `tokenhost request`; `verbose` is the global `-v` count.
pub fn run(args: RequestArgs, verbose: u8) -> Result<(), Failure> {
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.as_bytes())
            .map_err(|_| Failure::usage(format!("-X {m:?} is not a valid HTTP method")))?,
        None if args.data.is_some() => Method::POST,
        None => Method::GET,
    };
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let body = args.data.as_deref().map(read_data).transpose()?;

    let built = args.config.tokenhost(Some(&args.provider), true)?;
    super::provider_spec(built.config(), &args.provider)?;
    let client = built.client(&args.provider).map_err(failure)?;
    let url = client.url(&args.target).map_err(failure)?;

    super::runtime()?.block_on(async {
        let mut request = client.request(method.clone(), &args.target);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        if verbose > 0 {
            eprintln!("> {method} {url}");
        }
        let started = Instant::now();
        let mut response = request.send().await.map_err(failure)?;
        let status = response.status();
        if verbose > 0 {
            eprintln!(
                "< {:?} {status} ({} ms)",
                response.version(),
                started.elapsed().as_millis()
            );
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut bytes = 0usize;
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                Failure::source(format!(
                    "provider \"{}\": reading the response from {} failed: {}",
                    args.provider,
                    without_query(&url),
                    e.without_url()
                ))
            })?;
            let Some(chunk) = chunk else { break };
            bytes += chunk.len();
            // A reader that went away (`| head`) stops the command quietly (exit 141).
            super::output::bytes(&chunk)?;
        }
        if verbose > 0 {
            eprintln!("* {bytes} bytes in {} ms", started.elapsed().as_millis());
        }
        if status.is_success() {
            return Ok(());
        }
        let mut message = format!("HTTP {} from {}", status.as_u16(), without_query(&url));
        if let Some(location) = location.filter(|_| status.is_redirection()) {
            message.push_str(&format!(" (redirects to {location}; not followed)"));
        }
        Err(Failure::source(message))
    })
}

/// Exit code 2 for unusable input, 1 for everything that went wrong at run time.
fn failure(error: ClientError) -> Failure {
    match error {
        ClientError::Auth(e) => Failure::auth(e),
        e @ ClientError::Invalid { .. } => Failure::usage(e),
        e => Failure::source(e),
    }
}

/// `-H "Name: value"`. The error never repeats the value.
fn parse_header(text: &str) -> Result<(String, String), Failure> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(Failure::usage(format!(
            "-H wants \"Name: value\"; got no ':' in the header named {:?}",
            text.split_whitespace().next().unwrap_or("")
        )));
    };
    let name = name.trim();
    if name.eq_ignore_ascii_case("authorization") {
        return Err(Failure::usage(
            "-H cannot set Authorization: tokenhost sends the provider's token in it",
        ));
    }
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(Failure::usage(format!(
            "-H: {name:?} is not a valid HTTP header name"
        )));
    }
    let value = value.trim();
    if reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(Failure::usage(format!(
            "-H: the value of {name:?} is not a valid HTTP header value"
        )));
    }
    Ok((name.to_string(), value.to_string()))
}

/// `-d`: the text, `@FILE`'s bytes, or stdin for `@-`.
fn read_data(data: &str) -> Result<Vec<u8>, Failure> {
    match data.strip_prefix('@') {
        None => Ok(data.as_bytes().to_vec()),
        Some("-") => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| Failure::usage(format!("-d @-: cannot read stdin: {e}")))?;
            Ok(body)
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| Failure::usage(format!("-d @{path}: cannot read the file: {e}"))),
    }
}
