//! `hostile`: a plugin that misbehaves on purpose, for the host's sandbox tests.
//!
//! Config key `mode` selects the misbehaviour (see [`misbehave`]); config key `on`
//! (`resolve`, `refresh` or `both`, the default) selects which export misbehaves. The
//! other export returns the token "ok-token" with no expiry. Never ship this.

use std::hint::black_box;
use std::io::{Read, Write};

use exports::tokenhost::plugin::token_source::Guest;
use tokenhost::plugin::host::{self, LogLevel};
use tokenhost::plugin::types::{Error, RefreshContext, Token};

wit_bindgen::generate!({
    path: "../../wit",
    world: "token-provider",
});

struct Hostile;

/// The provider's configuration, as the host passes it.
struct Config(Vec<(String, String)>);

impl Config {
    fn load() -> Self {
        Config(host::config())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Which export is being called.
#[derive(Clone, Copy, PartialEq)]
enum Export {
    Resolve,
    Refresh,
}

fn ok(value: impl Into<String>) -> Result<Token, Error> {
    Ok(Token {
        value: value.into(),
        expires_at_ms: None,
    })
}

/// Replaces control characters (CR, LF, NUL, ...) with `_`.
fn sanitise(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

fn call(export: Export) -> Result<Token, Error> {
    let config = Config::load();
    let targeted = match config.get("on").unwrap_or("both") {
        "both" => true,
        "resolve" => export == Export::Resolve,
        "refresh" => export == Export::Refresh,
        other => {
            return Err(Error::InvalidConfig(format!(
                "config key `on` must be resolve, refresh or both, not `{other}`"
            )));
        }
    };
    if !targeted {
        return ok("ok-token");
    }
    let mode = config
        .get("mode")
        .ok_or_else(|| Error::InvalidConfig("missing required config key `mode`".to_string()))?;
    misbehave(mode, &config)
}

/// Does what `mode` says.
fn misbehave(mode: &str, config: &Config) -> Result<Token, Error> {
    match mode {
        // Burns CPU forever in guest code: only an epoch deadline or fuel stops it.
        "loop" => {
            let mut i = 0u64;
            loop {
                i = black_box(i.wrapping_add(1));
            }
        }
        // Blocks in a host clock wait (wasi:io/poll), not in guest code.
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(600));
            ok("slept")
        }
        // Grows linear memory by 1 GiB and writes every byte.
        "alloc" => {
            let big = black_box(vec![1u8; 1 << 30]);
            let touched = big.iter().step_by(4096).map(|&b| u64::from(b)).sum::<u64>();
            ok(format!("allocated {touched} pages"))
        }
        "panic" => {
            eprintln!("hostile: about to panic");
            panic!("hostile plugin panicked on purpose");
        }
        "stack-overflow" => ok(format!("depth {}", recurse(0))),
        "unreachable" => core::arch::wasm32::unreachable(),
        "read-file" => {
            let path = config.get("path").unwrap_or("/etc/passwd");
            match std::fs::read_to_string(path) {
                Ok(content) => ok(sanitise(&content.chars().take(100).collect::<String>())),
                Err(e) => Err(Error::Denied(format!("read failed: {e}"))),
            }
        }
        "env" => {
            let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            let argc = std::env::args().count();
            let args = if argc > 1 {
                format!("args visible: argc={argc}")
            } else {
                format!("no args visible: argc={argc}")
            };
            if vars.is_empty() {
                Err(Error::Denied(format!(
                    "no environment variables visible ({args})"
                )))
            } else {
                ok(sanitise(&format!("{};{args}", vars.join(";"))))
            }
        }
        "tcp" => {
            let addr = config.get("addr").unwrap_or("127.0.0.1:9");
            match std::net::TcpStream::connect(addr) {
                Ok(_) => ok("connected"),
                Err(e) => Err(Error::Denied(format!("connect failed: {e}"))),
            }
        }
        "dns" => {
            use std::net::ToSocketAddrs;
            match "localhost:80".to_socket_addrs() {
                Ok(_) => ok("resolved"),
                Err(e) => Err(Error::Denied(format!("lookup failed: {e}"))),
            }
        }
        "stdin" => {
            let mut input = Vec::new();
            match std::io::stdin().read_to_end(&mut input) {
                Ok(n) => ok(format!("stdin:{n}")),
                Err(e) => Err(Error::Unavailable(format!("stdin read failed: {e}"))),
            }
        }
        "crlf-token" => ok("abc\r\nX-Injected: yes"),
        "huge-token" => ok("a".repeat(1 << 20)),
        "empty-token" => ok(""),
        "log-spam" => {
            // 100,000 lines of 4 KiB: 400 MB through the host's log import.
            let line = "x".repeat(4 << 10);
            for _ in 0..100_000 {
                host::log(LogLevel::Info, &line);
            }
            let chunk = vec![b'y'; 64 << 10];
            let mut stdout = std::io::stdout();
            for _ in 0..1600 {
                let _ = stdout.write_all(&chunk);
            }
            let _ = stdout.flush();
            let mut stderr = std::io::stderr();
            for _ in 0..1600 {
                let _ = stderr.write_all(&chunk);
            }
            ok("spammed")
        }
        "print-secret" => {
            println!("SECRET-ON-STDOUT-{}", config.get("token").unwrap_or("x"));
            eprintln!("stderr line");
            ok("printed")
        }
        "error" => {
            let message = config.get("message").unwrap_or("hostile error").to_string();
            match config.get("kind").unwrap_or("unavailable") {
                "invalid-config" => Err(Error::InvalidConfig(message)),
                "denied" => Err(Error::Denied(message)),
                "unavailable" => Err(Error::Unavailable(message)),
                other => Err(Error::InvalidConfig(format!(
                    "config key `kind` must be invalid-config, denied or unavailable, not `{other}`"
                ))),
            }
        }
        // Holds `count` wasi:http Fields of one `size`-byte header each: host memory.
        "many-fields" => {
            let held = make_fields(
                number(config, "count", 4000)?,
                number(config, "size", 100 << 10)?,
            )?;
            ok(format!("held {} fields", held.len()))
        }
        // Like many-fields, but leaks them: they outlive the call, in the live instance.
        "leak-fields" => {
            let held = make_fields(
                number(config, "count", 16)?,
                number(config, "size", 100 << 10)?,
            )?;
            let count = held.len();
            held.into_iter().for_each(std::mem::forget);
            ok(format!("leaked {count} fields"))
        }
        // Holds `count` pollables (host resources that cost no memory of their own).
        "many-resources" => {
            let count = number(config, "count", 5000)?;
            let second = 1_000_000_000;
            let held: Vec<_> = (0..count)
                .map(|_| wasip2::clocks::monotonic_clock::subscribe_duration(second))
                .collect();
            ok(format!("held {} pollables", held.len()))
        }
        // Starts `count` GET requests to http://`authority`/ at once, then waits for all.
        "many-requests" => {
            let authority = config.get("authority").unwrap_or("127.0.0.1:9");
            Ok(Token {
                value: many_requests(authority, number(config, "count", 2000)?),
                expires_at_ms: None,
            })
        }
        other => Err(Error::InvalidConfig(format!("unknown mode `{other}`"))),
    }
}

/// Config key `key` as a number, or `default`.
fn number(config: &Config, key: &str, default: usize) -> Result<usize, Error> {
    config.get(key).map_or(Ok(default), |v| {
        v.parse()
            .map_err(|_| Error::InvalidConfig(format!("config key `{key}` must be a number")))
    })
}

/// `count` Fields, each with one header of `size` bytes.
fn make_fields(count: usize, size: usize) -> Result<Vec<wasip2::http::types::Fields>, Error> {
    let value = vec![b'v'; size];
    (0..count)
        .map(|i| {
            let fields = wasip2::http::types::Fields::new();
            fields
                .append("x-pad", &value)
                .map_err(|e| Error::Unavailable(format!("fields {i}: append failed: {e:?}")))?;
            Ok(fields)
        })
        .collect()
}

/// Sends `count` requests concurrently; returns how they ended, as `ok=N` and one
/// `<error code>=N` per kind of failure.
fn many_requests(authority: &str, count: usize) -> String {
    use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut futures = Vec::new();
    for _ in 0..count {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_scheme(Some(&Scheme::Http));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some("/"));
        match wasip2::http::outgoing_handler::handle(request, None) {
            Ok(future) => futures.push(future),
            Err(code) => *outcomes.entry(code_name(&code)).or_default() += 1,
        }
    }
    for future in futures {
        future.subscribe().block();
        let outcome = match future.get() {
            Some(Ok(Ok(_response))) => "ok".to_string(),
            Some(Ok(Err(code))) => code_name(&code),
            Some(Err(())) | None => "no-response".to_string(),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    let parts: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k}={n}")).collect();
    parts.join(" ")
}

/// An error code's variant name, without its payload.
fn code_name(code: &wasip2::http::types::ErrorCode) -> String {
    let debug = format!("{code:?}");
    debug
        .trim_start_matches("ErrorCode::")
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("unknown")
        .to_string()
}

/// Recurses until the wasm stack overflows. The 1 KiB frame is passed to `black_box`
/// and read after the recursive call, so the optimizer can turn this into neither a
/// loop nor a tail call.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[0] = depth as u8;
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(u64::from(frame[1]))
}

impl Guest for Hostile {
    fn resolve() -> Result<Token, Error> {
        call(Export::Resolve)
    }

    fn refresh(_context: RefreshContext) -> Result<Token, Error> {
        call(Export::Refresh)
    }
}

export!(Hostile);
