//! cleanup of the cache (unused for a duration, least recently used beyond a size, debris),
//! with --dry-run and for real; registry retention with --dry-run and for real, never
//! deleting what a pin or a bundle references.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::http::{HttpServer, Route};
use common::ops::*;
use common::*;

fn age(path: &Path, days: u32) {
    let o = Command::new("touch")
        .args(["-h", "-d", &format!("{days} days ago")])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success());
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v = cache_trees(cache);
    for fan in std::fs::read_dir(cache.join("blobs-v1/sha256"))
        .into_iter()
        .flatten()
        .flatten()
    {
        v.extend(
            std::fs::read_dir(fan.path())
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
    }
    v.sort();
    v
}

#[test]
fn cache_cleanup_by_age_then_by_size() {
    let http = HttpServer::start();
    let reg = RegistryServer::start();
    let ws = Workspace::new(
        &reg.host,
        "http://127.0.0.1:9",
        "cache:\n  cleanup_older_than_days: 7\n",
    );
    let protoc = pin(&fixture(PROTOC_ZIP));
    let buf = pin(&fixture(BUF_TGZ));
    let materialize = |p: &Pinned, format: &str, name: &str| {
        let url = http.route(&format!("/{name}"), Route::File(p.path.clone()));
        let out = tempfile::tempdir().unwrap();
        let mut args = materialize_args(p, format, &ws.cache(), &out.path().join("t"));
        args.extend(["--source".into(), url]);
        let o = run(protoreg().args(&args));
        assert!(o.status.success(), "{}", text(&o));
    };
    materialize(&protoc, "zip", "p.zip");
    materialize(&buf, "tar.gz", "b.tgz");
    let all = entries(&ws.cache());
    assert_eq!(all.len(), 4, "{all:?}");
    // protoc's blob and tree were last used 10 days ago; leave debris in tmp/.
    let tree_of_protoc = cache_trees(&ws.cache())
        .into_iter()
        .find(|t| t.join("bin/protoc").exists())
        .unwrap();
    age(&tree_of_protoc, 10);
    age(
        &ws.cache()
            .join("blobs-v1/sha256")
            .join(&protoc.sha256.hex()[..2])
            .join(protoc.sha256.hex()),
        10,
    );
    std::fs::write(
        ws.cache().join("tmp/blob-12345-000000001"),
        b"half a download",
    )
    .unwrap();

    // The default age comes from registry.yaml (7 days): dry run lists, removes nothing.
    let dry = ws.json(&["cleanup", "--dry-run", "--json"]);
    let removed = dry["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 3, "{dry}");
    assert_eq!(
        removed.iter().filter(|r| r["reason"] == "unused").count(),
        2
    );
    assert_eq!(
        removed.iter().filter(|r| r["reason"] == "debris").count(),
        1
    );
    assert_eq!(entries(&ws.cache()).len(), 4);

    let done = ws.json(&["cleanup", "--json"]);
    assert_eq!(done["removed"].as_array().unwrap().len(), 3);
    let left = entries(&ws.cache());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|p| !p.ends_with(protoc.sha256.hex())));
    assert!(!tree_of_protoc.exists());
    assert!(cache_trees(&ws.cache())
        .iter()
        .any(|t| t.join("bin/buf").exists()));

    // Least recently used beyond a size: protoc comes back (newest use), buf is older.
    materialize(&protoc, "zip", "p2.zip");
    for e in entries(&ws.cache()) {
        if e.to_string_lossy().contains(buf.sha256.hex()) || e.join("bin/buf").exists() {
            age(&e, 2);
        }
    }
    // protoc's zip and tree (about 4x the zip) fit; buf's do not.
    let limit = (protoc.size * 5).to_string();
    let lru = ws.json(&[
        "cleanup",
        "--older-than",
        "30d",
        "--max-size",
        &limit,
        "--json",
    ]);
    let removed = lru["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2, "{lru}");
    assert!(removed.iter().all(|r| r["reason"] == "lru"));
    assert!(cache_trees(&ws.cache())
        .iter()
        .all(|t| !t.join("bin/buf").exists()));
    assert!(cache_trees(&ws.cache())
        .iter()
        .any(|t| t.join("bin/protoc").exists()));

    // The seed's "clear the cache": --older-than 0.
    ws.json(&["cleanup", "--older-than", "0", "--json"]);
    assert!(entries(&ws.cache()).is_empty());

    let bad = ws.run(&["cleanup", "--older-than", "soon"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn registry_retention_spares_pins_and_bundles() {
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    // Released 2025-07-01 (the fake upstream's date): older than one day.
    let ws = Workspace::new(
        &reg.host,
        &gh.api_url(),
        "repositories:\n  tools:\n    retention_days: 1\n",
    );
    ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);
    let repo = format!("{NS}/tools/protoc");
    assert_eq!(tag_digests(&reg, &repo).len(), 6);

    let dry = ws.json(&["cleanup", "--registry", "--no-pins", "--dry-run", "--json"]);
    let arts = dry["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 6, "{dry}");
    assert!(arts.iter().all(|a| a["action"] == "delete"), "{dry}");
    assert_eq!(
        tag_digests(&reg, &repo).len(),
        6,
        "a dry run deletes nothing"
    );

    // A bundle that names protoc 36.2 protects every artifact of that version.
    let ws_b = Workspace::new(
        &reg.host,
        &gh.api_url(),
        "repositories:\n  tools:\n    retention_days: 1\nbundles:\n  go-development:\n    tools: {protoc: \"36.2\"}\n",
    );
    let kept = ws_b.json(&["cleanup", "--registry", "--no-pins", "--json"]);
    assert!(
        kept["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["action"] != "delete"),
        "{kept}"
    );
    assert_eq!(tag_digests(&reg, &repo).len(), 6);

    // So does a pin of protoc 36.2 (any platform of the version).
    let p = pin(&fixture(PROTOC_ZIP));
    let mut pins = protoreg::pins::Pins::default();
    pins.defaults.insert("protoc".into(), "36.2".into());
    pins.pins
        .entry("protoc".into())
        .or_default()
        .entry("36.2".into())
        .or_default()
        .insert(
            "linux-x86_64".into(),
            protoreg::pins::Pin {
                format: protoreg::extract::Format::Zip,
                size: Some(p.size),
                sha256: p.sha256,
                url: "https://example.invalid/p.zip".into(),
            },
        );
    let pins_path = ws.dir.path().join("pins.bzl");
    std::fs::write(&pins_path, pins.render()).unwrap();
    let kept = ws.json(&[
        "cleanup",
        "--registry",
        "--json",
        "--pins",
        &pins_path.display().to_string(),
    ]);
    assert_eq!(kept["deleted"], 0, "{kept}");
    assert_eq!(tag_digests(&reg, &repo).len(), 6);

    let done = ws.json(&["cleanup", "--registry", "--no-pins", "--json"]);
    assert_eq!(done["deleted"], 6, "{done}");
    let client = reg.client(None);
    for tag in ["v36.2", "v36.2-linux-x86_64", "v36.2-windows-x86_64"] {
        assert!(
            client.manifest(&repo, tag).unwrap().is_none(),
            "{tag} survived"
        );
    }
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("retention.delete"))
            .count(),
        6
    );
}

#[test]
fn registry_retention_refuses_to_run_without_pins() {
    let reg = RegistryServer::start();
    let repo = format!("{NS}/tools/protoc");
    // Created 2025-01-01: older than the one-day retention.
    reg.push(
        &repo,
        &pin(&fixture(PROTOC_ZIP)),
        protoreg::extract::Format::Zip,
        "v36.2-linux-x86_64",
        None,
    );
    let ws = Workspace::new(
        &reg.host,
        "http://127.0.0.1:9",
        "repositories:\n  tools:\n    retention_days: 1\n",
    );
    // No pins file in reach (the workspace is outside any repository): refused, exit 2,
    // nothing deleted.
    let o = ws.run(&["cleanup", "--registry", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--pins") && err.contains("--no-pins"), "{err}");
    assert_eq!(tag_digests(&reg, &repo).len(), 1);
    // A --pins file that does not exist: the same.
    let o = ws.run(&["cleanup", "--registry", "--pins", "/nonexistent/pins.bzl"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(tag_digests(&reg, &repo).len(), 1);
    // --no-pins only goes with --registry, and not with --pins.
    let o = ws.run(&["cleanup", "--no-pins"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = ws.run(&["cleanup", "--registry", "--no-pins", "--pins", "x.bzl"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(tag_digests(&reg, &repo).len(), 1);
    // Explicitly without pins: applied.
    let done = ws.json(&["cleanup", "--registry", "--no-pins", "--json"]);
    assert_eq!(done["deleted"], 1, "{done}");
    assert!(tag_digests(&reg, &repo).is_empty());
}
