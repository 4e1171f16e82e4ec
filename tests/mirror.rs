//! mirror from a registry to an OCI image-layout directory and to a second registry:
//! digests unchanged, skopeo reads the copies, a second run copies nothing, and the layout
//! serves materialize as the serverless registry.

mod common;

use std::process::Command;

use common::ops::*;
use common::*;

#[test]
fn mirror_to_a_layout_and_to_a_second_registry_keeps_digests() {
    let a = RegistryServer::start();
    let b = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&a.host, &gh.api_url(), "");
    ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);
    let source = tag_digests(&a, &format!("{NS}/tools/protoc"));
    assert_eq!(source.len(), 6);

    // To an image-layout tree.
    let layout = ws.dir.path().join("layout");
    let to = format!("oci-layout:{}", layout.display());
    let r = ws.json(&["mirror", "--from", "primary", "--to", &to, "--json"]);
    assert_eq!(r["copied"].as_array().unwrap().len(), 6, "{r}");
    assert_eq!(r["blobs_copied"], 6, "5 zips and the empty config: {r}");
    let repo_dir = layout.join("tools/protoc");
    for (tag, digest) in &source {
        let o = run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            &format!("oci:{}:{tag}", repo_dir.display()),
        ]));
        assert!(o.status.success(), "{tag}: {}", text(&o));
        assert_eq!(
            &protoreg::verify::Sha256::of_bytes(&o.stdout).oci(),
            digest,
            "{tag}"
        );
    }
    // The layout is a source for materialize.
    let p = pin(&fixture(PROTOC_ZIP));
    let out = tempfile::tempdir().unwrap();
    let mut args = materialize_args(&p, "zip", &ws.dir.path().join("c2"), &out.path().join("t"));
    args.extend([
        "--source".into(),
        format!("oci-layout:{}", repo_dir.display()),
    ]);
    let o = run(protoreg().args(&args));
    assert!(o.status.success(), "{}", text(&o));

    // Idempotent.
    let again = ws.json(&["mirror", "--from", "primary", "--to", &to, "--json"]);
    assert_eq!(again["copied"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["skipped"].as_array().unwrap().len(), 6);

    // From the layout to a second registry under another namespace: the migration path.
    let to_b = format!("oci://{}/mirror-ns", b.host);
    let r = ws.json(&[
        "--plain-http",
        "mirror",
        "--from",
        &to,
        "--to",
        &to_b,
        "--json",
    ]);
    assert_eq!(r["copied"].as_array().unwrap().len(), 6, "{r}");
    assert_eq!(tag_digests(&b, "mirror-ns/tools/protoc"), source);
    let o = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/mirror-ns/tools/protoc:v36.2", b.host),
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let again = ws.json(&[
        "--plain-http",
        "mirror",
        "--from",
        &to,
        "--to",
        &to_b,
        "--json",
    ]);
    assert_eq!(again["copied"].as_array().unwrap().len(), 0, "{again}");

    // Registry to registry directly, with a dry run first.
    let c = RegistryServer::start();
    let to_c = format!("oci://{}/{NS}", c.host);
    let dry = ws.json(&[
        "--plain-http",
        "mirror",
        "--from",
        "primary",
        "--to",
        &to_c,
        "--dry-run",
        "--json",
    ]);
    assert_eq!(dry["copied"].as_array().unwrap().len(), 6);
    assert!(c
        .client(None)
        .tags(&format!("{NS}/tools/protoc"))
        .unwrap()
        .is_empty());
    ws.json(&[
        "--plain-http",
        "mirror",
        "--from",
        "primary",
        "--to",
        &to_c,
        "--json",
    ]);
    assert_eq!(tag_digests(&c, &format!("{NS}/tools/protoc")), source);
}

#[test]
fn mirror_refuses_unknown_endpoints() {
    let a = RegistryServer::start();
    let ws = Workspace::new(&a.host, "http://127.0.0.1:9", "");
    let out = ws.run(&["mirror", "--from", "nowhere", "--to", "oci-layout:/tmp/x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a configured registry"));
}
