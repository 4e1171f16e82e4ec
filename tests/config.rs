//! registry.yaml: the seed's example loads unchanged, the repository's own file loads, a
//! malformed or misspelt file is exit 2 with the line and the key, and the environment
//! overrides the file.

mod common;

use common::*;

/// The seed document's registry.yaml example, verbatim.
const SEED: &str = include_str!("fixtures/seed-registry.yaml");

fn with_config(text: &str, args: &[&str]) -> std::process::Output {
    let dir = scratch();
    std::fs::write(dir.path().join("registry.yaml"), text).unwrap();
    // ./registry.yaml is the default when present.
    run(protoreg()
        .current_dir(dir.path())
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(args))
}

#[test]
fn the_seed_example_and_the_repository_file_load() {
    let out = with_config(SEED, &["metrics", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let repo_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("registry.yaml");
    // A cache that does not exist yet: `cleanup` refuses a directory that is not a protoreg
    // cache, and reports a missing one as nothing to clean.
    let dir = scratch();
    let out = run(protoreg()
        .arg("--config")
        .arg(&repo_file)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["cleanup", "--dry-run"]));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn malformed_and_misspelt_files_name_the_line_and_the_key() {
    let cases = [
        (SEED.replace("  parallel_uploads: 4", "  parallel_upload: 4"), "registry.yaml:15: `publishing.parallel_upload`: unknown key"),
        (SEED.replace("retention_days: 365", "retention_days: forever"), "registry.yaml:11: `repositories.tools.retention_days`"),
        (SEED.replace("\"darwin-arm64\",", "\"macos\","), "registry.yaml:19: `publishing.tool_sources.protoc.platforms[3]`: unknown platform `macos`"),
        (SEED.replace("  namespace: \"buck2-protobuf\"", "  namespace: [\"buck2-protobuf\""), "registry.yaml:"),
        (format!("{SEED}bundles:\n  go-development:\n    tools: {{protoc: \"36.2\", protoc-gen-rust: \"1.0\"}}\n"), "`bundles.go-development.tools.protoc-gen-rust`: unknown tool"),
    ];
    for (text_, want) in cases {
        let out = with_config(&text_, &["metrics"]);
        assert_eq!(out.status.code(), Some(2), "{want}\n{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "want `{want}` in:\n{err}");
        assert!(err.contains("hint:"), "{err}");
    }
    let out = run(protoreg().args(["--config", "/nonexistent/registry.yaml", "metrics"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn the_environment_overrides_the_file() {
    let reg = RegistryServer::start();
    // The file names a registry that is not there; PROTOREG_REGISTRY points at the real one.
    let text_ = "primary_registry:\n  url: \"127.0.0.1:9\"\n  plain_http: true\n";
    let dir = scratch();
    std::fs::write(dir.path().join("registry.yaml"), text_).unwrap();
    let out = run(protoreg()
        .current_dir(dir.path())
        .env("PROTOREG_REGISTRY", &reg.host)
        .args([
            "--cache-dir",
            &dir.path().join("c").display().to_string(),
            "health",
            "--json",
        ]));
    assert!(out.status.success(), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(j["checks"]["primary_registry"]["url"]
        .as_str()
        .unwrap()
        .starts_with(&reg.host));
    let out = run(protoreg()
        .current_dir(dir.path())
        .env("PROTOREG_PARALLEL_UPLOADS", "0")
        .args(["metrics"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_key_with_control_characters_is_shown_escaped() {
    // `\e` and `\a` in a double-quoted key are ESC and BEL; a raw ESC byte in a plain key is
    // the other way to get one in.
    for doc in [
        "cache:\n  \"max\\e]0;pwned\\a\\e[2J\": 1\n",
        "cache:\n  max\x1b[31m: 1\n",
    ] {
        let out = with_config(doc, &["metrics"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let raw: Vec<u8> = out
            .stderr
            .iter()
            .copied()
            .filter(|b| (*b < 0x20 && *b != b'\n') || *b == 0x7f)
            .collect();
        assert!(raw.is_empty(), "raw control bytes {raw:?} in: {err:?}");
        assert!(
            err.contains("registry.yaml:2:") && err.contains("\\u{1b}"),
            "{err}"
        );
    }
}

#[test]
fn credentials_in_a_url_are_never_echoed() {
    for (doc, env) in [
        (
            "primary_registry:\n  url: \"https://alice:hunter2@ghcr.io/acme\"\n",
            None,
        ),
        (
            "primary_registry:\n  url: \"alice:hunter2@ghcr.io\"\n",
            None,
        ),
        (
            "publishing:\n  github_api_url: \"ftp://alice:hunter2@example.com/api\"\n",
            None,
        ),
        ("", Some("https://alice:hunter2@ghcr.io/acme")),
    ] {
        let dir = scratch();
        std::fs::write(dir.path().join("registry.yaml"), doc).unwrap();
        let mut cmd = protoreg();
        cmd.current_dir(dir.path())
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .arg("metrics");
        if let Some(v) = env {
            cmd.env("PROTOREG_REGISTRY", v);
        }
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(2), "{doc}{env:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("***@") && err.contains("hint:"), "{err}");
    }
}

#[test]
fn an_empty_port_and_a_non_utf8_file_are_refused_with_the_file() {
    let out = with_config("primary_registry:\n  url: \"127.0.0.1:\"\n", &["metrics"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("registry.yaml:2: `primary_registry.url`"),
        "{err}"
    );

    let dir = scratch();
    std::fs::write(
        dir.path().join("registry.yaml"),
        b"cache:\n  max_cache_size_gb: 1 # caf\xe9\n",
    )
    .unwrap();
    let out = run(protoreg()
        .current_dir(dir.path())
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .arg("metrics"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("registry.yaml:2:") && err.contains("UTF-8") && err.contains("hint:"),
        "{err}"
    );
}

/// `security.audit_log` and PROTOREG_AUDIT_LOG name only a `.jsonl`/`.log` file protoreg
/// started: a shell profile, a symlink to one, or someone else's log is refused (exit 2,
/// the file and line), and a line with registry-chosen `$(…)` expands nothing in a shell.
#[test]
fn the_audit_log_is_never_a_file_protoreg_did_not_start() {
    let dir = scratch();
    let home = dir.path();
    let bashrc = home.join(".bashrc");
    std::fs::write(&bashrc, "# mine\n").unwrap();
    std::os::unix::fs::symlink(&bashrc, home.join("profile.jsonl")).unwrap();
    std::fs::write(home.join("notes.log"), "my notes\n").unwrap();
    let cmd = |config_value: Option<&str>, env_value: Option<&str>, args: &[&str]| {
        let yaml = home.join("registry.yaml");
        let mut text = String::from("primary_registry:\n  url: \"127.0.0.1:9\"\n");
        if let Some(v) = config_value {
            text.push_str(&format!("security:\n  audit_log: \"{v}\"\n"));
        }
        std::fs::write(&yaml, text).unwrap();
        let mut c = protoreg();
        c.current_dir(home)
            .env("HOME", home)
            .env_remove("PROTOREG_AUDIT_LOG")
            .arg("--config")
            .arg(&yaml)
            .arg("--cache-dir")
            // Text that reaches a log line (here the cache's path) with `$(…)` and backticks.
            .arg(home.join("cache$(touch${IFS}pwned)`touch${IFS}pwned2`"));
        if let Some(v) = env_value {
            c.env("PROTOREG_AUDIT_LOG", v);
        }
        run(c.args(args))
    };
    let materialize = [
        "materialize",
        "--sha256",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "--format",
        "zip",
        "--out",
        "out",
        "--source",
        "http://127.0.0.1:9/a.zip",
    ];
    for (value, why) in [
        ("~/.bashrc", "not a `.jsonl` or `.log` file"),
        ("profile.jsonl", "symbolic link"),
        ("notes.log", "not a protoreg audit log"),
    ] {
        let o = cmd(Some(value), None, &materialize);
        assert_eq!(o.status.code(), Some(2), "{value}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("registry.yaml:4:") && err.contains(why),
            "{err}"
        );
        let path = home.join(value.trim_start_matches("~/"));
        let o = cmd(None, Some(path.to_str().unwrap()), &materialize);
        assert_eq!(o.status.code(), Some(2), "{value}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("PROTOREG_AUDIT_LOG"),
            "{}",
            text(&o)
        );
    }
    assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), "# mine\n");
    assert_eq!(
        std::fs::read_to_string(home.join("notes.log")).unwrap(),
        "my notes\n"
    );
    // A log of protoreg's own: the failed source is recorded, and the line is inert in bash.
    let o = cmd(Some("audit.jsonl"), None, &materialize);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let log = std::fs::read_to_string(home.join("audit.jsonl")).unwrap();
    assert!(log.contains("touch"), "{log}");
    let o = run(std::process::Command::new("bash")
        .arg("audit.jsonl")
        .current_dir(home));
    assert!(!o.status.success());
    assert!(
        !home.join("pwned").exists() && !home.join("pwned2").exists(),
        "{log}"
    );
    // And it is appended to next time.
    let o = cmd(Some("audit.jsonl"), None, &materialize);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        std::fs::read_to_string(home.join("audit.jsonl"))
            .unwrap()
            .len()
            > log.len()
    );
}
