//! Real clients through the proxy: the OpenAI Python SDK (PyPI `openai`, pinned in
//! tests/clients/openai-python) and the Codex CLI (npm, pinned in tests/clients/codex)
//! with `env_key` at the local key, both installed by `scripts/install-clients`. Each is
//! skipped, with the reason printed, only where its registry could not be reached.

use std::process::Command;
use std::time::Duration;

use super::{ProxyProcess, World};
use crate::support;
use crate::support::clients;
use crate::support::responses_api::{ASSISTANT_TEXT, Mode, ResponsesApi};

const DEADLINE: Duration = Duration::from_secs(60);

/// Chat completions, whole and streamed, with the first token revoked after the first
/// call: the SDK never sees a 401 (its own retries are off); a wrong key gets 401 from the
/// proxy and the mock never sees that request.
#[test]
fn the_openai_python_sdk_works_through_the_proxy_and_never_sees_a_401() {
    let python = match clients::openai_python() {
        Ok(python) => python,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let world = World::new("");
    let proxy = world.proxy(&[]);
    world.api.revoke_after(1);
    let mut command = Command::new(python);
    support::isolate(&mut command, world.dir.path());
    for name in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_LOG",
        "HTTPS_PROXY",
        "HTTP_PROXY",
    ] {
        command.env_remove(name);
    }
    command
        .arg(support::root().join("tests/clients/openai-python/check.py"))
        .args([&proxy.url, &proxy.key]);
    let run = clients::run_with_deadline(command, DEADLINE);
    let report = format!("{run:?}\nproxy:\n{}", proxy.stderr());
    assert!(run.status.success(), "{report}");
    let out: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect(&report);
    assert_eq!(out["sdk"], "3.57.0");
    assert_eq!(out["chat"], "Hello through the tokenhost proxy", "{report}");
    assert_eq!(
        out["stream"], "Hello through the tokenhost proxy",
        "{report}"
    );
    assert_eq!(out["wrong_key"], 401, "{report}");
    assert_eq!(out["no_key"], 401, "{report}");
    let seen: Vec<_> = world
        .api
        .seen()
        .iter()
        .map(|s| (s.token.clone().unwrap_or_default(), s.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("tok-1".into(), 200),
            ("tok-1".into(), 401),
            ("tok-2".into(), 200)
        ],
        "the mock saw the revoked token once, the replay, and nothing of the wrong keys"
    );
    let replayed: serde_json::Value = serde_json::from_slice(&world.api.seen()[2].body).unwrap();
    assert_eq!(replayed["stream"], true, "the replay is the streamed call");
}

/// `codex exec` with a provider whose `base_url` is the proxy and whose `env_key` names
/// the variable that holds the local key finishes its turn, though the API revokes the
/// first token it sees: the proxy replays, Codex never re-runs or retries anything.
#[test]
fn codex_with_env_key_finishes_a_turn_through_the_proxy() {
    let codex = match clients::codex() {
        Ok(codex) => codex,
        Err(reason) => return eprintln!("skipped: {reason}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = runtime.block_on(ResponsesApi::start(Mode::RevokeFirst));
    let config = super::config(dir.path(), &api.base_url(), "");
    let proxy = ProxyProcess::start(dir.path(), &config, &[]);
    let (home, work) = (dir.path().join("codex-home"), dir.path().join("work"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let string = |s: &str| toml::Value::String(s.into()).to_string();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "model_provider = \"corp\"\nmodel = \"mock-model\"\n\n[model_providers.corp]\n\
             name = \"corp\"\nbase_url = {}\nwire_api = \"responses\"\n\
             env_key = \"TOKENHOST_PROXY_KEY\"\n",
            string(&proxy.url)
        ),
    )
    .unwrap();
    let mut command = Command::new(codex);
    support::isolate(&mut command, dir.path());
    for name in ["OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_API_KEY"] {
        command.env_remove(name);
    }
    command
        .env("CODEX_HOME", &home)
        .env("TOKENHOST_PROXY_KEY", &proxy.key)
        .args(["exec", "--skip-git-repo-check", "say hi"])
        .current_dir(&work);
    let run = clients::run_with_deadline(command, DEADLINE);
    let requests = api.requests();
    let report = format!(
        "codex {} after {:?}; API requests: {requests:?}\nstdout:\n{}\nstderr:\n{}\nproxy:\n{}",
        run.status,
        run.elapsed,
        run.stdout,
        run.stderr,
        proxy.stderr()
    );
    assert!(run.status.success(), "{report}");
    assert!(run.stdout.contains(ASSISTANT_TEXT), "{report}");
    assert_eq!(api.revoked().as_deref(), Some("tok-1"), "{report}");
    let refused: Vec<_> = requests.iter().filter(|r| r.status == 401).collect();
    assert_eq!(
        refused.len(),
        1,
        "one 401, answered by the proxy's replay: {report}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.status != 401)
            .all(|r| r.token.as_deref() == Some("tok-2")),
        "{report}"
    );
    assert_eq!(super::source_runs(dir.path()), 2, "{report}");
}
