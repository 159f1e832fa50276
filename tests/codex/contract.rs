//! What Codex itself does with its auth command, which tokenhost's inference of a
//! rejected token relies on: the auth command here is a shell script that records how it
//! was run (no tokenhost in between). If a Codex upgrade changes any of this, these
//! tests say so before the tokenhost tests fail in a less obvious way.

use std::collections::BTreeMap;
use std::path::Path;

use super::{CodexEnv, Mode};
use crate::support::responses_api::ASSISTANT_TEXT;

/// How one run of the probe found itself.
#[derive(Debug)]
struct ProbeRun {
    facts: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

impl ProbeRun {
    fn fact(&self, key: &str) -> &str {
        self.facts.get(key).map_or("", String::as_str)
    }
}

/// Codex's auth command: `/bin/sh -c <probe>`, recording its pid, its parent's pid,
/// executable and start time, stdin, cwd, the time and its environment in `probe/<n>`,
/// then printing `tok-<n>` (or `same-token` every time when `same`).
fn probe(same: bool) -> impl FnOnce(&Path) -> (String, Vec<String>) {
    move |config| {
        let dir = config.parent().unwrap().join("probe");
        std::fs::create_dir(&dir).unwrap();
        let token = match same {
            true => "same-token",
            false => "tok-$n",
        };
        let script = format!(
            r#"cwd=$(pwd -P) stdin=$(readlink /proc/$$/fd/0) stdout=$(readlink /proc/$$/fd/1)
cd '{dir}' || exit 9
n=$(( $(ls | wc -l) + 1 ))
pstat=$(cat /proc/$PPID/stat)
grandparent=$(echo "${{pstat##*) }}" | cut -d' ' -f2)
{{
  echo "pid=$$"
  echo "ppid=$PPID"
  echo "parent_exe=$(readlink /proc/$PPID/exe)"
  echo "parent_start=$(echo "${{pstat##*) }}" | cut -d' ' -f20)"
  echo "grandparent_exe=$(readlink /proc/$grandparent/exe)"
  echo "pgid=$(cut -d' ' -f5 /proc/$$/stat) parent_pgid=$(echo "${{pstat##*) }}" | cut -d' ' -f3)"
  echo "stdin=$stdin"
  echo "stdout=${{stdout%%:*}}"
  echo "cwd=$cwd"
  echo "ms=$(date +%s%3N)"
  env | sort | sed 's/^/env:/'
}} > "$n.tmp" && mv "$n.tmp" "$n"
echo {token}"#,
            dir = dir.display()
        );
        ("/bin/sh".into(), vec!["-c".into(), script])
    }
}

/// The probe's runs, in order.
fn probe_runs(env: &CodexEnv) -> Vec<ProbeRun> {
    let dir = env.dir.path().join("probe");
    let mut runs = Vec::new();
    for n in 1.. {
        let Ok(text) = std::fs::read_to_string(dir.join(n.to_string())) else {
            break;
        };
        let (mut facts, mut vars) = (BTreeMap::new(), BTreeMap::new());
        for line in text.lines() {
            let (target, line) = match line.strip_prefix("env:") {
                Some(rest) => (&mut vars, rest),
                None => (&mut facts, line),
            };
            for pair in line.split(' ') {
                if let Some((k, v)) = pair.split_once('=') {
                    target.insert(k.to_string(), v.to_string());
                }
            }
        }
        runs.push(ProbeRun { facts, env: vars });
    }
    runs
}

/// The variables that differ between two runs (the shell's own left out).
fn env_difference(a: &ProbeRun, b: &ProbeRun) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = a.env.keys().chain(b.env.keys()).collect();
    names
        .into_iter()
        .filter(|k| !matches!(k.as_str(), "PWD" | "OLDPWD" | "SHLVL" | "_"))
        .filter(|k| a.env.get(*k) != b.env.get(*k))
        .cloned()
        .collect()
}

/// After a 401 Codex runs the command once more, from the same process (the native
/// binary, whose parent is the npm launcher), directly (no shell of its own), with stdin
/// at /dev/null and the same environment: nothing tells the command it is a retry but
/// that the same parent asks again. Then it retries with the new token.
#[test]
fn codex_runs_its_auth_command_directly_and_once_more_after_a_401() {
    let Some(env) = CodexEnv::with_auth(Mode::RevokeFirst, |_| String::new(), probe(false)) else {
        return;
    };
    let run = env.exec();
    let runs = probe_runs(&env);
    let report = format!("{runs:#?}\n{}", env.report(&run));
    assert!(run.status.success(), "{report}");
    assert!(run.stdout.contains(ASSISTANT_TEXT), "{report}");
    assert_eq!(env.api.response_tokens(), ["tok-1", "tok-2"], "{report}");
    assert_eq!(
        runs.len(),
        2,
        "one run at start, one after the 401: {report}"
    );
    let (first, second) = (&runs[0], &runs[1]);
    let native = first.fact("parent_exe");
    assert!(
        native.ends_with("/bin/codex") && native.contains("@openai/codex-linux"),
        "the parent is the native Codex binary: {report}"
    );
    for key in ["ppid", "parent_exe", "parent_start"] {
        assert_eq!(first.fact(key), second.fact(key), "{key}: {report}");
    }
    assert_eq!(first.fact("stdin"), "/dev/null", "{report}");
    assert_eq!(first.fact("stdout"), "pipe", "{report}");
    assert_eq!(
        first.fact("cwd"),
        env.dir
            .path()
            .join("work")
            .canonicalize()
            .unwrap()
            .to_str()
            .unwrap(),
        "the configured cwd: {report}"
    );
    assert_eq!(
        env_difference(first, second),
        Vec::<String>::new(),
        "{report}"
    );
    let extra: Vec<&String> = first
        .env
        .keys()
        .filter(|k| k.starts_with("CODEX_") && *k != "CODEX_HOME")
        .collect();
    let gap: i64 =
        second.fact("ms").parse::<i64>().unwrap() - first.fact("ms").parse::<i64>().unwrap();
    eprintln!(
        "codex ran its auth command {} times in {:?}; parent {} (pgid {} vs the command's {}), \
         grandparent {}; re-run {gap} ms after the first; variables Codex adds: {extra:?}",
        runs.len(),
        run.elapsed,
        native,
        first.fact("parent_pgid"),
        first.fact("pgid"),
        first.fact("grandparent_exe"),
    );
}

/// When the re-run hands back the rejected token, Codex retries it, reconnects (re-running
/// the command before each attempt) and gives up with exit 1: the burst of re-asks from
/// one process that tokenhost must bound.
#[test]
fn codex_gives_up_after_six_attempts_when_the_command_repeats_the_rejected_token() {
    let Some(env) = CodexEnv::with_auth(Mode::RevokeFirst, |_| String::new(), probe(true)) else {
        return;
    };
    let run = env.exec();
    let runs = probe_runs(&env);
    let report = format!("{} probe runs\n{}", runs.len(), env.report(&run));
    assert_eq!(run.status.code(), Some(1), "{report}");
    assert!(run.stderr.contains("401 Unauthorized"), "{report}");
    let tokens = env.api.response_tokens();
    assert!(tokens.iter().all(|t| t == "same-token"), "{report}");
    assert!(
        runs.windows(2)
            .all(|w| w[0].fact("ppid") == w[1].fact("ppid")),
        "{report}"
    );
    let ms: Vec<i64> = runs.iter().map(|r| r.fact("ms").parse().unwrap()).collect();
    let gaps: Vec<i64> = ms.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "codex gave up after {:?}: {} requests to /v1/responses, {} runs of the command, \
         gaps between runs {gaps:?} ms",
        run.elapsed,
        tokens.len(),
        runs.len()
    );
    assert_eq!(
        tokens.len(),
        12,
        "six attempts of two requests each: {report}"
    );
    assert_eq!(runs.len(), 7, "{report}");
}
