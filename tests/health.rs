//! health against a healthy registry, one missing pinned tags, a stopped one and one with
//! wrong credentials; the cache against its limit.

mod common;

use common::ops::*;
use common::*;

fn health(ws: &Workspace, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut args = vec!["health", "--json"];
    args.extend_from_slice(extra);
    let out = ws.run(&args);
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", text(&out)));
    (out.status.code(), json, text(&out))
}

/// A pins file naming protoc 36.2 on linux-x86_64 (values of the fixture zip).
fn pins_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = pin(&fixture(PROTOC_ZIP));
    let mut pins = protoreg::maintain::pins::Pins::default();
    pins.defaults.insert("protoc".into(), "36.2".into());
    pins.pins
        .entry("protoc".into())
        .or_default()
        .entry("36.2".into())
        .or_default()
        .insert(
            "linux-x86_64".into(),
            protoreg::maintain::pins::Pin {
                format: protoreg::pipeline::extract::Format::Zip,
                size: Some(p.size),
                sha256: p.sha256,
                url: "https://example.invalid/protoc.zip".into(),
            },
        );
    let path = dir.join("pins.bzl");
    std::fs::write(&path, pins.render()).unwrap();
    path
}

#[test]
fn healthy_then_degraded_then_unhealthy() {
    let mut reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    let pins = pins_file(ws.dir.path());
    let pins_arg = pins.display().to_string();

    // Reachable, but the pinned tags are not published yet: degraded, exit 1.
    let (code, j, all) = health(&ws, &["--pins", &pins_arg]);
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(j["status"], "degraded", "{all}");
    assert_eq!(j["checks"]["primary_registry"]["expected_tags"], 2);
    assert_eq!(j["checks"]["primary_registry"]["test_tags_found"], 0);

    ws.json(&[
        "publish",
        "--tool",
        "protoc",
        "--version",
        "36.2",
        "--platform",
        "linux-x86_64",
        "--json",
    ]);
    let (code, j, all) = health(&ws, &["--pins", &pins_arg]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(j["status"], "healthy");
    let primary = &j["checks"]["primary_registry"];
    assert_eq!(primary["status"], "healthy");
    assert_eq!(primary["test_tags_found"], 2);
    assert!(primary["latency_ms"].as_f64().unwrap() >= 0.0, "{j}");
    assert_eq!(j["checks"]["cache"]["status"], "healthy");
    assert!(j["checks"]["cache"]["usage_percent"].as_f64().is_some());

    // The cache over its limit degrades the service (publish left the blob in the cache).
    ws.write_config(&reg.host, "cache:\n  max_cache_size_gb: 0.000001\n");
    let (code, j, all) = health(&ws, &["--pins", &pins_arg]);
    assert_eq!(
        (code, j["status"].as_str()),
        (Some(1), Some("degraded")),
        "{all}"
    );
    assert_eq!(j["checks"]["cache"]["status"], "degraded");
    assert!(j["checks"]["cache"]["usage_percent"].as_f64().unwrap() > 100.0);

    // Stopped: unhealthy, exit 1, the reason named.
    ws.write_config(&reg.host, "");
    reg.stop();
    let (code, j, all) = health(&ws, &["--pins", &pins_arg]);
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(j["status"], "unhealthy");
    let err = j["checks"]["primary_registry"]["error"].as_str().unwrap();
    assert!(err.contains("refused") || err.contains("connect"), "{err}");
}

#[test]
fn wrong_credentials_are_unhealthy_and_never_printed() {
    let reg = RegistryServer::start_with_htpasswd("ci", "right-password");
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let out = run(ws
        .cmd()
        .env("PROTOREG_REGISTRY_USERNAME", "ci")
        .env("PROTOREG_REGISTRY_PASSWORD", "wrong-password")
        .args(["health", "--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["checks"]["primary_registry"]["status"], "unhealthy");
    let err = j["checks"]["primary_registry"]["error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("401") || err.contains("auth"),
        "{err}"
    );
    assert!(!text(&out).contains("wrong-password"));
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    assert!(!audit.contains("wrong-password"));

    let out = run(ws
        .cmd()
        .env("PROTOREG_REGISTRY_USERNAME", "ci")
        .env("PROTOREG_REGISTRY_PASSWORD", "right-password")
        .args(["health"]));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_backup_in_trouble_degrades_but_does_not_fail_the_primary() {
    let reg = RegistryServer::start();
    let ws = Workspace::new(
        &reg.host,
        "http://127.0.0.1:9",
        "backup_registries:\n  - name: spare\n    url: \"127.0.0.1:9\"\n    plain_http: true\n",
    );
    let (code, j, all) = health(&ws, &[]);
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(j["status"], "degraded", "{all}");
    assert_eq!(j["checks"]["primary_registry"]["status"], "healthy");
    assert_eq!(j["checks"]["backup_registry:spare"]["status"], "unhealthy");
}
