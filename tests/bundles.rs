//! bundles: the configured sets are published under bundles/<name> with every member, and
//! `materialize --bundle` brings every member back, verified (a tampered member is refused).

mod common;

use std::process::Command;

use common::github::Asset;
use common::ops::*;
use common::*;

const GO_TGZ: &str = "protoc-gen-go.v1.28.1.linux.amd64.tar.gz";

#[test]
fn publish_and_materialize_a_bundle_with_every_member_verified() {
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let go = fixture(GO_TGZ);
    gh.release(
        "protocolbuffers/protobuf-go",
        "v1.28.1",
        &[Asset::new(GO_TGZ, &go)],
        false,
        false,
    );
    let ws = Workspace::new(
        &reg.host,
        &gh.api_url(),
        "    protoc-gen-go:\n      platforms: [linux-x86_64]\n\
         bundles:\n  go-development:\n    description: Go codegen\n    version: \"2025.07\"\n    platforms: [linux-x86_64]\n    tools: {protoc: \"36.2\", buf: \"1.75.0\", protoc-gen-go: \"1.28.1\"}\n",
    );
    // Publishing protoc with --bundles also publishes every version the bundle names.
    let r = ws.json(&[
        "publish",
        "--tool",
        "protoc",
        "--version",
        "36.2",
        "--platform",
        "linux-x86_64",
        "--bundles",
        "--json",
    ]);
    let statuses: Vec<&str> = r["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"bundle-published"), "{r}");
    let bundle_repo = format!("{NS}/bundles/go-development");
    let tags = tag_digests(&reg, &bundle_repo);
    assert_eq!(
        tags.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["2025.07", "latest"]
    );
    assert_eq!(tags[0].1, tags[1].1);
    let o = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/{bundle_repo}:latest", reg.host),
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["artifactType"], protoreg::artifact::BUNDLE_ARTIFACT_TYPE);

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("go-dev");
    let o = run(ws.cmd().args([
        "materialize",
        "--bundle",
        "go-development",
        "--platform",
        "linux-x86_64",
        "--out",
        &dest.display().to_string(),
        "--json",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let v = |p: &str, arg: &str| {
        let o = Command::new(dest.join(p)).arg(arg).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(v("protoc/bin/protoc", "--version"), "libprotoc 36.2");
    assert_eq!(v("buf/bin/buf", "--version"), "1.75.0");
    assert!(v("protoc-gen-go/protoc-gen-go", "--version").contains("1.28"));

    // Publishing again changes nothing.
    let again = ws.json(&[
        "publish",
        "--tool",
        "protoc",
        "--version",
        "36.2",
        "--platform",
        "linux-x86_64",
        "--bundles",
        "--json",
    ]);
    assert_eq!(again["counters"]["artifacts_published"], 0, "{again}");
    assert_eq!(tag_digests(&reg, &bundle_repo), tags);

    // A member whose bytes changed in the registry's storage is refused, and --out stays empty.
    let go_sha = pin(&go).sha256;
    let data = reg
        .dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&go_sha.hex()[..2])
        .join(go_sha.hex())
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&data, bytes).unwrap();
    let dest2 = out.path().join("tampered");
    let o = run(protoreg().current_dir(ws.dir.path()).args([
        "--config",
        &ws.config().display().to_string(),
        "--cache-dir",
        &out.path().join("cold-cache").display().to_string(),
        "materialize",
        "--bundle",
        "go-development@2025.07",
        "--platform",
        "linux-x86_64",
        "--out",
        &dest2.display().to_string(),
    ]));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(go_sha.hex()),
        "{}",
        text(&o)
    );
    assert!(
        absent_or_empty(&dest2),
        "partial output left in {}",
        dest2.display()
    );
}
