//! The lean front of `tokenhost` (Unix): a brokered token needs nothing but the front,
//! and everything the front does not answer goes to `tokenhost-engine` beside it before
//! any request reaches the broker. A front installed alone shows which is which: what it
//! answers works, what it hands over fails with exit 2 naming the missing file.

use super::*;
use crate::support;

fn lone_front(env: &Env) -> PathBuf {
    support::lone_front(env.path())
}

/// Runs `program` (a front, or the engine) with `args` in `env`, with `envs` set.
fn run(env: &Env, program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(program);
    support::isolate(&mut command, env.path())
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null());
    command.output().unwrap()
}

/// The exit and message of a front that had to hand over to a missing engine.
fn assert_handed_over(output: &Output, front: &Path, what: &str) {
    let engine = front.with_file_name("tokenhost-engine");
    assert_eq!(output.status.code(), Some(2), "{what}: {}", stderr(output));
    assert!(output.stdout.is_empty(), "{what}");
    let err = stderr(output);
    assert!(
        err.contains(&format!("cannot run {} (", engine.display()))
            && err.contains("tokenhost needs it installed beside itself"),
        "{what}: {err}"
    );
}

#[test]
fn a_brokered_token_needs_only_the_front() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    env.serve(&config);
    let front = lone_front(&env);
    let config_arg = config.to_str().unwrap();
    let with_equals = format!("--config={config_arg}");
    for args in [
        vec!["token", "a", "-c", config_arg],
        vec![
            "token",
            "--config",
            config_arg,
            "a",
            "--client-reuse-ms",
            "0",
        ],
        vec!["token", &with_equals, "a", "--client-reuse-ms=0"],
    ] {
        let out = run(&env, &front, &args, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "tok-1\n", "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
    // $TOKENHOST_CONFIG names the config as -c does.
    let envs = [("TOKENHOST_CONFIG", config_arg)];
    let out = run(
        &env,
        &front,
        &["token", "a", "--client-reuse-ms", "0"],
        &envs,
    );
    assert_eq!(stdout(&out), "tok-1\n", "{}", stderr(&out));
    assert_eq!(env.count("a"), 1, "one source call for every ask");
    // The first ask said this program reuses a token for 300 s: asking again now is its
    // retry, which the front reports to the broker as the full command would.
    let out = run(&env, &front, &["token", "a", "-c", config_arg], &[]);
    assert_eq!(stdout(&out), "tok-2\n", "{}", stderr(&out));
    assert_eq!(env.count("a"), 2);
}

#[test]
fn the_front_hands_over_before_asking_the_broker_whenever_it_could_answer_differently() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok"), ("b", "other")]);
    env.serve(&config);
    let front = lone_front(&env);
    let c = config.to_str().unwrap();
    let policy = env.path().join("policy.toml");
    std::fs::write(&policy, "").unwrap();
    let policy = policy.to_str().unwrap();
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let cases: [Case; 11] = [
        ("-v", vec!["token", "b", "-c", c, "-v"], vec![]),
        (
            "--refresh",
            vec!["token", "b", "-c", c, "--refresh"],
            vec![],
        ),
        (
            "an unknown format",
            vec!["token", "b", "-c", c, "--format", "yaml"],
            vec![],
        ),
        (
            "--no-broker",
            vec!["token", "b", "-c", c, "--no-broker"],
            vec![],
        ),
        (
            "--policy",
            vec!["token", "b", "-c", c, "--policy", policy],
            vec![],
        ),
        (
            "$TOKENHOST_POLICY",
            vec!["token", "b", "-c", c],
            vec![("TOKENHOST_POLICY", policy)],
        ),
        (
            "$RUST_LOG",
            vec!["token", "b", "-c", c],
            vec![("RUST_LOG", "info")],
        ),
        (
            "kubectl asking for an unknown apiVersion",
            vec!["token", "b", "-c", c, "--format", "exec-credential"],
            vec![(
                "KUBERNETES_EXEC_INFO",
                r#"{"apiVersion":"client.authentication.k8s.io/v9"}"#,
            )],
        ),
        (
            "an unknown provider",
            vec!["token", "nope", "-c", c],
            vec![],
        ),
        ("another command", vec!["status", "-c", c], vec![]),
        ("--version", vec!["--version"], vec![]),
    ];
    for (what, args, envs) in cases {
        assert_handed_over(&run(&env, &front, &args, &envs), &front, what);
    }
    // A config that no longer loads is the full command's error, even though the broker
    // still serves what it loaded.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\nnot toml [")).unwrap();
    let out = run(&env, &front, &["token", "b", "-c", c], &[]);
    assert_handed_over(&out, &front, "a broken config");
    std::fs::write(&config, text).unwrap();
    assert_eq!(env.count("b"), 0, "no request reached the broker");
    // With nothing to stop it, the same front answers.
    assert_eq!(
        stdout(&run(&env, &front, &["token", "b", "-c", c], &[])),
        "other-1\n"
    );
}

#[test]
fn without_a_broker_the_front_hands_over_and_the_engine_answers() {
    let env = Env::new();
    let config = env.config(&[("a", "tok")]);
    let c = config.to_str().unwrap();
    // A `tokenhost-engine` on PATH is never what runs: only the one beside the front.
    let impostor = env.path().join("impostor");
    std::fs::create_dir(&impostor).unwrap();
    let script = impostor.join("tokenhost-engine");
    std::fs::write(&script, "#!/bin/sh\necho impostor\n").unwrap();
    std::fs::set_permissions(&script, mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", impostor.display());
    let front = lone_front(&env);
    let out = run(&env, &front, &["token", "a", "-c", c], &[("PATH", &path)]);
    assert_handed_over(&out, &front, "no broker");
    assert_eq!(env.count("a"), 0);
    // Installed as it should be, the same line runs the source in-process.
    let out = env.token(&["a"], &config);
    assert_eq!(stdout(&out), "tok-1\n", "{}", stderr(&out));
}

#[test]
fn the_engine_is_found_beside_the_file_the_front_runs_from_not_beside_a_link_to_it() {
    let env = Env::new();
    let front = lone_front(&env);
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_tokenhost-engine"),
        front.with_file_name("tokenhost-engine"),
    )
    .unwrap();
    let elsewhere = env.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = elsewhere.join("tokenhost");
    std::os::unix::fs::symlink(&front, &link).unwrap();
    let out = run(&env, &link, &["--version"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("tokenhost {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_front_prints_every_format_as_the_full_command_does() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    env.serve(&config);
    let front = lone_front(&env);
    let c = config.to_str().unwrap();
    let engine = |args: &[&str], envs: &[(&str, &str)]| {
        let engine = Path::new(env!("CARGO_BIN_EXE_tokenhost-engine"));
        run(&env, engine, args, envs)
    };
    let v1beta1 = [(
        "KUBERNETES_EXEC_INFO",
        r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#,
    )];
    for (args, envs) in [
        (vec!["token", "a", "-c", c, "--json"], &[][..]),
        (vec!["token", "a", "-c", c, "--format=json"], &[][..]),
        (vec!["token", "a", "-c", c, "--format", "text"], &[][..]),
        (
            vec!["token", "a", "-c", c, "--format", "exec-credential"],
            &v1beta1[..],
        ),
        (
            vec!["token", "a", "-c", c, "--format", "exec-credential"],
            &[][..],
        ),
    ] {
        let mut args = args;
        args.extend(["--client-reuse-ms", "0"]);
        let (ours, full) = (run(&env, &front, &args, envs), engine(&args, envs));
        assert!(ours.status.success(), "{args:?}: {}", stderr(&ours));
        assert!(full.status.success(), "{args:?}: {}", stderr(&full));
        assert_eq!(stdout(&ours), stdout(&full), "{args:?}");
    }
    let credential = stdout(&run(
        &env,
        &front,
        &["token", "a", "-c", c, "--format", "exec-credential"],
        &v1beta1,
    ));
    assert!(
        credential.contains(r#""apiVersion":"client.authentication.k8s.io/v1beta1""#)
            && credential.contains(r#""token":"tok-1""#),
        "{credential}"
    );
    assert_eq!(env.count("a"), 1);
}

#[test]
fn a_front_whose_stdout_fails_exits_as_the_full_command_does() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    env.serve(&config);
    let front = lone_front(&env);
    let c = config.to_str().unwrap();
    for args in [
        vec!["token", "a", "-c", c, "--client-reuse-ms", "0"],
        vec!["token", "a", "-c", c, "--client-reuse-ms", "0", "--json"],
    ] {
        let with_stdout = |stdout: Stdio| {
            let mut command = Command::new(&front);
            support::isolate(&mut command, env.path())
                .args(&args)
                .stdin(Stdio::null())
                .stdout(stdout);
            command.output().unwrap()
        };
        // A reader that went away: quiet, 141.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = with_stdout(writer.into());
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
        // A full disk: exit 1 with the cause, never the token.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = with_stdout(full.into());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&out),
            "tokenhost: cannot write to stdout: No space left on device (os error 28)\n"
        );
    }
    assert_eq!(env.count("a"), 1);
}

/// Runs `program` with `args` in `env`, writing `input` to its stdin (git's request).
fn run_with_stdin(env: &Env, program: &Path, args: &[&str], input: &str) -> Output {
    let mut command = Command::new(program);
    support::isolate(&mut command, env.path()).args(args);
    support::output_with_stdin(&mut command, input.as_bytes())
}

const GIT_GET: &str = "protocol=https\nhost=git.example.com\n\n";

#[test]
fn git_credential_get_through_a_broker_needs_only_the_front() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok"), ("b", "other")]);
    let broken =
        "[model_providers.broken.auth]\ncommand = \"/bin/sh\"\nargs = [\"-c\", \"exit 3\"]\n";
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}{broken}")).unwrap();
    env.serve(&config);
    let front = lone_front(&env);
    let c = config.to_str().unwrap();
    let with_equals = format!("--config={c}");
    for args in [
        vec!["git-credential", "--provider", "a", "-c", c, "get"],
        vec!["git-credential", "get", &with_equals, "--provider=a"],
    ] {
        let out = run_with_stdin(&env, &front, &args, GIT_GET);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "username=x-access-token\npassword=tok-1\n");
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
    let new_git = "capability[]=authtype\nprotocol=https\nhost=git.example.com\n\n";
    let bearer = ["git-credential", "--provider", "a", "--authtype", "bearer"];
    let args = [&bearer[..], &["--username", "u", "-c", c, "get"]].concat();
    let out = run_with_stdin(&env, &front, &args, new_git);
    let answer = "capability[]=authtype\nauthtype=Bearer\ncredential=tok-1\nephemeral=1\n";
    assert_eq!(stdout(&out), answer, "{}", stderr(&out));
    // The same bytes as the full command's.
    let engine = Path::new(env!("CARGO_BIN_EXE_tokenhost-engine"));
    assert_eq!(
        stdout(&run_with_stdin(&env, engine, &args, new_git)),
        answer
    );
    assert_eq!(env.count("a"), 1, "one source call for every get");

    // git's request is refused as the full command refuses it, before the broker is
    // asked: nothing printed, exit 2, no source call.
    let get_b = ["git-credential", "--provider", "b", "-c", c, "get"];
    for (input, reason) in [
        (
            "protocol=https\nhost=git.example.com\r\n\n",
            "carriage return or NUL",
        ),
        ("host=git.example.com\n\n", "no `protocol` attribute"),
    ] {
        let out = run_with_stdin(&env, &front, &get_b, input);
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        assert!(out.stdout.is_empty(), "{input:?}");
        assert!(stderr(&out).starts_with("tokenhost: git-credential: "));
        assert!(stderr(&out).contains(reason), "{input:?}: {}", stderr(&out));
        let full = run_with_stdin(&env, engine, &get_b, input);
        assert_eq!((full.status.code(), stderr(&full)), (Some(2), stderr(&out)));
    }
    assert_eq!(env.count("b"), 0, "nothing ran for refused input");
    // A source failure the broker reports is final, as in the full command: exit 1 with
    // its line, nothing for git.
    let get_broken = ["git-credential", "--provider", "broken", "-c", c, "get"];
    let out = run_with_stdin(&env, &front, &get_broken, GIT_GET);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out)
            .contains("provider \"broken\": failed: command `/bin/sh` exited with status 3"),
        "{}",
        stderr(&out)
    );
    let full = run_with_stdin(&env, engine, &get_broken, GIT_GET);
    assert_eq!((full.status.code(), stderr(&full)), (Some(1), stderr(&out)));
    // `erase` and `store` are the full command's, before git's input is read (so none is
    // given here: the front would exit without reading it).
    for op in ["erase", "store"] {
        let args = ["git-credential", "--provider", "a", "-c", c, op];
        assert_handed_over(&run(&env, &front, &args, &[]), &front, op);
    }
    assert_eq!(env.count("a"), 1);
}

/// A broker that cannot answer after git's request was read (it does not know the
/// provider, added to the config after it started): the full command gets the same
/// request on its stdin and answers in-process, whatever its size.
#[test]
fn git_credential_hands_its_input_on_when_the_broker_cannot_answer() {
    let mut env = Env::new();
    let config = env.config(&[("a", "tok")]);
    env.serve(&config);
    env.config(&[("a", "tok"), ("late", "late")]);
    let c = config.to_str().unwrap();
    let args = ["git-credential", "--provider", "late", "-c", c, "get"];
    let full_command = Path::new(env!("CARGO_BIN_EXE_tokenhost"));
    // Lines git does not send to helpers it has not heard of are ignored: a request
    // near the 64 KiB limit, larger than a pipe's buffer.
    let padding = format!("wwwauth[]=Basic realm=\"{}\"\n", "x".repeat(1000)).repeat(60);
    for input in [GIT_GET.to_string(), format!("{padding}{GIT_GET}")] {
        let out = run_with_stdin(&env, full_command, &args, &input);
        assert!(out.status.success(), "{}", stderr(&out));
        let n = env.count("late");
        assert_eq!(
            stdout(&out),
            format!("username=x-access-token\npassword=late-{n}\n")
        );
        let err = stderr(&out);
        assert!(
            err.contains("WARN") && err.contains("does not know provider \"late\""),
            "{err}"
        );
    }
    assert_eq!(env.count("late"), 2, "each get ran the source in-process");
}
