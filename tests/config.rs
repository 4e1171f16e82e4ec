//! registry.yaml: the seed's example loads unchanged, the repository's own file loads, a
//! malformed or misspelt file is exit 2 with the line and the key, and the environment
//! overrides the file.

mod common;

use common::*;

/// The seed document's registry.yaml example, verbatim.
const SEED: &str = include_str!("fixtures/seed-registry.yaml");

fn with_config(text: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
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
    let out = run(protoreg()
        .arg("--config")
        .arg(&repo_file)
        .arg("--cache-dir")
        .arg(tempfile::tempdir().unwrap().path())
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
    let dir = tempfile::tempdir().unwrap();
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
