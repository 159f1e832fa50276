use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/th/config.toml"))
}

fn error(text: &str) -> String {
    parse(text)
        .expect_err("config should be refused")
        .to_string()
}

#[test]
fn plugin_defaults_and_relative_path() {
    let config = parse(
        r#"
        [model_providers.corp.auth]
        plugin = "plugins/x.wasm"
        "#,
    )
    .unwrap();
    let spec = config.provider("corp").unwrap();
    assert_eq!(spec.refresh_interval, Some(Duration::from_millis(300_000)));
    let SourceSpec::Plugin(plugin) = &spec.source else {
        panic!("{spec:?}")
    };
    assert_eq!(plugin.path, Path::new("/etc/th/plugins/x.wasm"));
    assert_eq!(plugin.timeout, Duration::from_millis(5_000));
    assert_eq!(plugin.memory_limit_bytes, 64 * 1024 * 1024);
    assert!(plugin.config.is_empty());
}

#[test]
fn plugin_config_values_become_strings() {
    let config = parse(
        r#"
        [model_providers.corp.auth]
        plugin = "/abs/x.wasm"
        timeout_ms = 250
        refresh_interval_ms = 0
        memory_limit_mb = 16
        [model_providers.corp.auth.config]
        token = "abc"
        ttl_ms = 5000
        flag = true
        "#,
    )
    .unwrap();
    let spec = config.provider("corp").unwrap();
    assert_eq!(spec.refresh_interval, None);
    let SourceSpec::Plugin(plugin) = &spec.source else {
        panic!()
    };
    assert_eq!(plugin.path, Path::new("/abs/x.wasm"));
    assert_eq!(plugin.timeout, Duration::from_millis(250));
    assert_eq!(plugin.memory_limit_bytes, 16 << 20);
    let config: BTreeMap<_, _> = plugin.config.iter().cloned().collect();
    assert_eq!(config["token"], "abc");
    assert_eq!(config["ttl_ms"], "5000");
    assert_eq!(config["flag"], "true");
}

#[test]
fn command_defaults() {
    let config = parse(
        r#"
        [model_providers.cmd.auth]
        command = "print-token"
        "#,
    )
    .unwrap();
    let SourceSpec::Command(command) = &config.provider("cmd").unwrap().source else {
        panic!()
    };
    assert_eq!(command.program, "print-token");
    assert!(command.args.is_empty());
    assert_eq!(command.cwd, Path::new("/etc/th"));
    assert_eq!(command.timeout, Duration::from_millis(5_000));
    assert_eq!(command.format, OutputFormat::Text);
}

#[test]
fn command_with_everything() {
    let config = parse(
        r#"
        [model_providers.cmd.auth]
        command = "./bin/tok"
        args = ["--scope", "x"]
        cwd = "work"
        format = "exec-credential"
        timeout_ms = 10
        "#,
    )
    .unwrap();
    let SourceSpec::Command(command) = &config.provider("cmd").unwrap().source else {
        panic!()
    };
    assert_eq!(command.args, ["--scope", "x"]);
    assert_eq!(command.cwd, Path::new("/etc/th/work"));
    assert_eq!(command.format, OutputFormat::ExecCredential);
}

#[test]
fn codex_config_is_accepted_as_is() {
    let config = parse(
        r#"
        model = "gpt-5"
        approval_policy = "never"
        [profiles.fast]
        model = "x"
        [model_providers.openai]
        name = "OpenAI"
        base_url = "https://api.openai.com/v1"
        env_key = "OPENAI_API_KEY"
        wire_api = "responses"
        [model_providers.corp]
        name = "Corp"
        base_url = "https://llm.corp.example/v1"
        http_headers = { "X-Team" = "a" }
        [model_providers.corp.auth]
        command = "corp-token"
        "#,
    )
    .unwrap();
    assert_eq!(config.providers().count(), 1);
    assert_eq!(config.providers_without_auth(), ["openai"]);
}

#[test]
fn bad_inputs_name_the_provider_and_the_cause() {
    let cases: &[(&str, &str)] = &[
        (
            "[model_providers.p.auth]\nplugin = \"a.wasm\"\ncommand = \"x\"",
            "provider \"p\": auth sets both `command` and `plugin`",
        ),
        (
            "[model_providers.p.auth]\ntimeout_ms = 5",
            "provider \"p\": auth needs a token source",
        ),
        (
            "[model_providers.p.auth]\nplugin = \"a.wasm\"\ntimeout_ms = 0",
            "provider \"p\": timeout_ms must be at least 1",
        ),
        (
            "[model_providers.p.auth]\nplugin = \"a.wasm\"\ntimout_ms = 5",
            "unknown field `timout_ms`",
        ),
        (
            "[model_providers.p.auth]\nplugin = \"a.wasm\"\ntimout_ms = 5",
            "provider \"p\"",
        ),
        ("[model_providers.p.auth]\nplugin = 5", "provider \"p\""),
        (
            "[model_providers.p.auth]\nplugin = \"a.wasm\"\nargs = []",
            "`args` applies only to command",
        ),
        (
            "[model_providers.p.auth]\ncommand = \"x\"\nmemory_limit_mb = 5",
            "`memory_limit_mb` applies only to plugin",
        ),
        (
            "[model_providers.p.auth]\ncommand = \"x\"\nconfig = {}",
            "`config` applies only to plugin",
        ),
        (
            "[model_providers.p.auth]\ncommand = \"\"",
            "`command` is empty",
        ),
        (
            "[model_providers.p.auth]\ncommand = \"x\"\nformat = \"yaml\"",
            "provider \"p\"",
        ),
        (
            "[model_providers.p.auth]\nplugin = \"a.wasm\"\nmemory_limit_mb = 0",
            "memory_limit_mb must be between 1",
        ),
        (
            "[model_providers.p.auth]\nplugin = \"a.wasm\"\nmemory_limit_mb = 99999",
            "memory_limit_mb must be between 1",
        ),
        (
            "[model_providers.p]\nenv_key = \"K\"\n[model_providers.p.auth]\ncommand = \"x\"",
            "provider auth cannot be combined with env_key",
        ),
        (
            "[model_providers.p]\nexperimental_bearer_token = \"t\"\n[model_providers.p.auth]\ncommand = \"x\"",
            "provider auth cannot be combined with experimental_bearer_token",
        ),
        (
            "[model_providers.p]\nrequires_openai_auth = true\n[model_providers.p.auth]\ncommand = \"x\"",
            "provider auth cannot be combined with requires_openai_auth",
        ),
        (
            "model_providers = 3",
            "config file /etc/th/config.toml is not valid",
        ),
        (
            "[model_providers.p.auth",
            "config file /etc/th/config.toml is not valid",
        ),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(
            message.contains(expected),
            "for {text:?}\n got: {message}\nwant: {expected}"
        );
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[test]
fn missing_file_is_a_read_error() {
    let err = Config::load(Path::new("/nonexistent/tokenhost.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string().contains("/nonexistent/tokenhost.toml"),
        "{err}"
    );
}

#[test]
fn api_settings_reach_the_spec() {
    let config = parse(
        r#"
        [model_providers.corp]
        base_url = "https://llm.corp.example/api/v1"
        http_headers = { "X-Team" = "a", "x-org" = "acme" }
        query_params = { api-version = "2025-01-01" }
        [model_providers.corp.auth]
        command = "corp-token"
        "#,
    )
    .unwrap();
    let api = &config.provider("corp").unwrap().api;
    assert_eq!(
        api.base_url.as_deref(),
        Some("https://llm.corp.example/api/v1")
    );
    assert_eq!(
        api.headers,
        [
            ("X-Team".to_string(), "a".to_string()),
            ("x-org".to_string(), "acme".to_string())
        ]
    );
    assert_eq!(
        api.query,
        [("api-version".to_string(), "2025-01-01".to_string())]
    );
}

#[test]
fn api_settings_default_to_none() {
    let config = parse("[model_providers.p.auth]\ncommand = \"x\"").unwrap();
    assert_eq!(config.provider("p").unwrap().api, ApiSpec::default());
}

#[test]
fn api_debug_hides_header_and_query_values() {
    let config = parse(
        r#"
        [model_providers.p]
        http_headers = { "X-Api-Key" = "hdr-s3cr3t" }
        query_params = { key = "qry-s3cr3t" }
        [model_providers.p.auth]
        command = "x"
        "#,
    )
    .unwrap();
    let shown = format!("{:?}", config.provider("p").unwrap());
    assert!(
        shown.contains("X-Api-Key") && shown.contains("key"),
        "{shown}"
    );
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

#[test]
fn bad_api_settings_name_the_provider_and_the_key() {
    let auth = "[model_providers.p.auth]\ncommand = \"x\"";
    let cases: &[(&str, &str)] = &[
        (
            "base_url = \"not a url\"",
            "provider \"p\": base_url \"not a url\" is not a valid URL",
        ),
        (
            "base_url = \"ftp://files.example/v1\"",
            "provider \"p\": base_url \"ftp://files.example/v1\" must be an http:// or https:// URL",
        ),
        (
            "http_headers = { \"bad name\" = \"v\" }",
            "provider \"p\": http_headers: \"bad name\" is not a valid HTTP header name",
        ),
        (
            "http_headers = { \"X-A\" = \"line\\r\\nX-Injected: s3cr3t\" }",
            "provider \"p\": http_headers.X-A: the value is not a valid HTTP header value",
        ),
        (
            "http_headers = { \"Authorization\" = \"Bearer x\" }",
            "provider \"p\": http_headers cannot set \"Authorization\"",
        ),
        (
            "http_headers = { \"X-A\" = \"1\", \"x-a\" = \"2\" }",
            "provider \"p\": http_headers sets \"x-a\" twice",
        ),
        (
            "query_params = { \"\" = \"1\" }",
            "provider \"p\": query_params has an empty key",
        ),
        ("http_headers = { \"X-A\" = 1 }", "config file"),
    ];
    for (keys, expected) in cases {
        let text = format!("[model_providers.p]\n{keys}\n{auth}");
        let message = error(&text);
        assert!(
            message.contains(expected),
            "for {keys:?}\n got: {message}\nwant: {expected}"
        );
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[test]
fn api_settings_of_providers_without_auth_are_not_checked() {
    // A Codex provider that tokenhost does not serve keeps whatever Codex accepts.
    let config = parse("[model_providers.other]\nbase_url = \"not a url\"").unwrap();
    assert_eq!(config.providers_without_auth(), ["other"]);
}

#[test]
fn debug_output_hides_config_values_and_arguments() {
    let config = parse(
        r#"
        [model_providers.p.auth]
        plugin = "x.wasm"
        [model_providers.p.auth.config]
        client_secret = "SECRET-IN-CONFIG"
        allow_secret_in_config = "true"
        [model_providers.c.auth]
        command = "tok"
        args = ["--password", "SECRET-IN-ARGS"]
        "#,
    )
    .unwrap();
    let shown = format!("{config:?} {:#?}", config.providers().collect::<Vec<_>>());
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(
        shown.contains("client_secret"),
        "keys stay visible: {shown}"
    );
}

#[test]
fn parse_errors_keep_the_position_and_never_quote_the_file() {
    let cases: &[(&str, &str)] = &[
        // A missing closing quote: the crate's report would print the whole line.
        (
            "[model_providers.p]\nexperimental_bearer_token = \"sk-live-s3cr3t\n",
            "config file /etc/th/config.toml is not valid: line 2, column ",
        ),
        (
            "[model_providers.p]\nhttp_headers = \"Bearer sk-live-s3cr3t\"\n[model_providers.p.auth]\ncommand = \"x\"",
            "line 2, column 16: invalid type: a string, expected a map",
        ),
        (
            "[model_providers.p.auth]\ncommand = \"x\"\ntimeout_ms = \"sk-live-s3cr3t\"",
            "provider \"p\": in [model_providers.p.auth]: invalid type: a string, expected u64",
        ),
        (
            "[model_providers.p.auth]\ncommand = \"x\"\nformat = \"sk-live-s3cr3t\"",
            "provider \"p\": in [model_providers.p.auth]: unknown variant, expected one of",
        ),
    ];
    for (text, expected) in cases {
        let message = error(text);
        assert!(
            message.contains(expected),
            "for {text:?}\n got: {message}\nwant: {expected}"
        );
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[test]
fn security_keys_in_the_wrong_table_are_refused() {
    let pin = "0".repeat(64);
    let cases: Vec<(String, &str)> = vec![
        (
            format!("[model_providers.p]\nsha256 = \"{pin}\"\n[model_providers.p.auth]\nplugin = \"x.wasm\""),
            "provider \"p\": `sha256` belongs in [model_providers.p.auth]; in [model_providers.p] it would be ignored and the source would run unpinned",
        ),
        (
            format!("[model_providers.p]\nsha256 = \"{pin}\""),
            "provider \"p\": `sha256` belongs in [model_providers.p.auth]",
        ),
        (
            "[model_providers.p]\nallowed_paths = [\"/srv\"]\n[model_providers.p.auth]\nplugin = \"x.wasm\"".into(),
            "provider \"p\": `allowed_paths` belongs in [model_providers.p.auth]; in [model_providers.p] it would be ignored",
        ),
        (
            "[model_providers.p]\npublisher_key = \"ssh-ed25519 AAAA\"\n[model_providers.p.auth]\nplugin = \"x.wasm\"".into(),
            "provider \"p\": `publisher_key` belongs in [model_providers.p.auth]; in [model_providers.p] it would be ignored and the source would run unpinned",
        ),
        (
            "[model_providers.p]\ncommand = \"tok\"".into(),
            "provider \"p\": `command` belongs in [model_providers.p.auth]",
        ),
        (
            format!("[model_providers.p.auth]\nplugin = \"x.wasm\"\n[model_providers.p.auth.config]\nsha256 = \"{pin}\""),
            "provider \"p\": `sha256` is in [model_providers.p.auth.config], where it is handed to the plugin as a setting and not checked as a pin",
        ),
        (
            "include = \"corp.toml\"\n[model_providers.p.auth]\ncommand = \"x\"".into(),
            "config file /etc/th/config.toml is not valid: `include` at the top level is not supported",
        ),
        (
            "[model_providers.p]\ninclude = \"corp.toml\"\n[model_providers.p.auth]\ncommand = \"x\"".into(),
            "provider \"p\": `include` in [model_providers.p] is not supported",
        ),
        (
            format!("sha256 = \"{pin}\""),
            "`sha256` at the top level is ignored",
        ),
        (
            "[auth]\nplugin = \"x.wasm\"".into(),
            "an `auth` table at the top level is ignored",
        ),
    ];
    for (text, expected) in &cases {
        let message = error(text);
        assert!(
            message.contains(expected),
            "for {text:?}\n got: {message}\nwant: {expected}"
        );
    }
}

#[test]
fn every_codex_provider_key_and_top_level_key_is_still_accepted() {
    let config = parse(
        r#"
        model = "gpt-5"
        model_provider = "corp"
        approval_policy = "never"
        sandbox_mode = "workspace-write"
        include_apply_patch_tool = true
        notify = ["notify-send"]
        [mcp_servers.x]
        command = "mcp-x"
        args = ["--stdio"]
        [profiles.fast]
        model = "x"
        [model_providers.corp]
        name = "Corp"
        base_url = "https://llm.corp.example/v1"
        env_key_instructions = "ask IT"
        wire_api = "responses"
        query_params = { api-version = "2025-01-01" }
        http_headers = { "X-Team" = "a" }
        env_http_headers = { "X-Org" = "CORP_ORG" }
        request_max_retries = 4
        stream_max_retries = 5
        stream_idle_timeout_ms = 300000
        [model_providers.corp.auth]
        plugin = "corp.wasm"
        [model_providers.corp.auth.config]
        cert_sha256 = "not a pin"
        [model_providers.openai]
        name = "OpenAI"
        env_key = "OPENAI_API_KEY"
        experimental_bearer_token = "t"
        requires_openai_auth = true
        "#,
    )
    .unwrap();
    assert_eq!(config.providers().count(), 1);
    assert_eq!(config.providers_without_auth(), ["openai"]);
}

#[test]
fn the_misplaced_key_list_is_every_auth_key() {
    let schema = schemars::schema_for!(raw::RawAuth);
    let mut keys: Vec<&str> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .expect("RawAuth has properties")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut listed = placement::AUTH_KEYS.to_vec();
    listed.sort_unstable();
    assert_eq!(listed, keys);
}
