//! bundles: the configured sets are published under bundles/<name> with every member, and
//! `materialize --bundle` brings every member back, verified (a tampered member is refused).

mod common;

use std::process::Command;

use common::github::Asset;
use common::http::HttpServer;
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

    let out = scratch();
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

/// Push protoc's linux-x86_64 zip to `ns/tools/protoc` and a bundle `ns/bundles/<name>:latest`
/// whose one member is that artifact under the tool name `tool` (hostile names included).
fn push_bundle(
    reg: &RegistryServer,
    name: &str,
    tool: &str,
    creds: Option<protoreg::auth::Credentials>,
) -> Pinned {
    use protoreg::artifact::{self, BundleArtifact, BundleDoc, BundleMember};
    let protoc = pin(&fixture(PROTOC_ZIP));
    let manifest = reg.push(
        &format!("{NS}/tools/protoc"),
        &protoc,
        protoreg::pipeline::extract::Format::Zip,
        "v36.2-linux-x86_64",
        creds.clone(),
    );
    let doc = BundleDoc {
        bundle: name.into(),
        description: String::new(),
        members: vec![BundleMember {
            tool: tool.into(),
            version: "36.2".into(),
            repository: "tools/protoc".into(),
            platforms: [(
                "linux-x86_64".to_string(),
                BundleArtifact {
                    manifest: manifest.oci(),
                    sha256: protoc.sha256.oci(),
                    size: protoc.size,
                    format: "zip".into(),
                    strip_prefix: String::new(),
                    binaries: vec!["bin/protoc".into()],
                },
            )]
            .into_iter()
            .collect(),
        }],
    };
    let bytes = artifact::to_bytes(&doc);
    let client = reg.client(creds);
    let repo = format!("{NS}/bundles/{name}");
    let digest = client.push_blob_bytes(&repo, &bytes).unwrap();
    client
        .push_blob_bytes(&repo, artifact::EMPTY_CONFIG)
        .unwrap();
    let m = artifact::bundle_manifest(
        name,
        "1",
        "2025-01-01T00:00:00Z",
        &digest,
        bytes.len() as u64,
    );
    client
        .push_manifest(
            &repo,
            Some("latest"),
            &artifact::to_bytes(&m),
            artifact::MANIFEST_MEDIA_TYPE,
        )
        .unwrap();
    protoc
}

fn bundle_args(name: &str, out: &std::path::Path, offline: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "materialize",
        "--bundle",
        name,
        "--platform",
        "linux-x86_64",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(out.display().to_string());
    a.push("--json".into());
    if offline {
        a.push("--offline".into());
    }
    a
}

fn json_of(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_plain_http_backup_does_not_downgrade_a_tls_primary() {
    // The primary is configured for TLS; behind its address is a plain-HTTP server that
    // counts requests. The backup is a real registry on plain HTTP, as configured.
    let primary = HttpServer::start();
    let backup = RegistryServer::start();
    let protoc = push_bundle(&backup, "dev", "protoc", None);
    let ws = Workspace::new(&backup.host, "http://127.0.0.1:9", "");
    std::fs::write(
        ws.config(),
        format!(
            "primary_registry:\n  url: \"{}\"\n  namespace: \"{NS}\"\n  plain_http: false\n\
             backup_registries:\n  - name: local\n    url: \"{}\"\n    namespace: \"{NS}\"\n    plain_http: true\n",
            primary.addr, backup.host
        ),
    )
    .unwrap();
    let out = ws.dir.path().join("out");
    let o = run(ws
        .cmd()
        .env("PROTOREG_TIMEOUT", "3")
        .args(bundle_args("dev", &out, false)));
    assert!(o.status.success(), "{}", text(&o));
    let blob = format!("/v2/{NS}/tools/protoc/blobs/{}", protoc.sha256.oci());
    assert_eq!(
        primary.count(&blob),
        0,
        "the TLS primary was asked for the member over cleartext HTTP"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["members"][0]["source"],
        format!("oci://{}/{NS}/tools/protoc", backup.host),
        "{v}"
    );
    assert!(out.join("protoc/bin/protoc").is_file());
}

#[test]
fn members_are_fetched_with_the_registrys_own_credentials() {
    const PASSWORD: &str = "bundle-Pa55word";
    let reg = RegistryServer::start_with_htpasswd("ci", PASSWORD);
    let creds = protoreg::auth::Credentials::Basic {
        username: "ci".into(),
        password: PASSWORD.into(),
    };
    push_bundle(&reg, "dev", "protoc", Some(creds));
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    std::fs::write(
        ws.config(),
        format!(
            "primary_registry:\n  url: \"{}\"\n  namespace: \"{NS}\"\n  plain_http: true\n  auth_required: true\n  auth:\n    username_env: BUNDLE_REG_USER\n    password_env: BUNDLE_REG_PASS\n",
            reg.host
        ),
    )
    .unwrap();
    let out = ws.dir.path().join("out");
    let o = run(ws
        .cmd()
        .env("BUNDLE_REG_USER", "ci")
        .env("BUNDLE_REG_PASS", PASSWORD)
        .args(bundle_args("dev", &out, false)));
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("protoc/bin/protoc").is_file());
    assert!(!text(&o).contains(PASSWORD));
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap_or_default();
    assert!(!audit.contains(PASSWORD));
}

#[test]
fn offline_bundles_come_from_the_cache_and_an_unreachable_registry_is_exit_1() {
    let mut reg = RegistryServer::start();
    push_bundle(&reg, "dev", "protoc", None);
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let dir = ws.dir.path().to_path_buf();
    let out = |n: &str| dir.join(n);

    // A cold cache with --offline: nothing is fetched, exit 1 naming the bundle.
    let o = run(ws.cmd().args(bundle_args("dev", &out("cold"), true)));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("dev@latest") && err.contains("--offline"),
        "{err}"
    );
    assert!(absent_or_empty(&dir.join("cold")));
    assert!(
        cache_trees(&ws.cache()).is_empty(),
        "--offline fetched something"
    );

    // Online once: the document and the member go into the cache.
    json_of(&run(ws.cmd().args(bundle_args("dev", &out("warm"), false))));

    // The registry goes away. Online, that is a failure of the work with a connectivity
    // hint, not bad input.
    reg.stop();
    let o =
        run(ws
            .cmd()
            .env("PROTOREG_TIMEOUT", "3")
            .args(bundle_args("dev", &out("down"), false)));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("reachable"), "{err}");
    assert!(!err.contains("publish it"), "{err}");

    // Offline, everything comes from the cache.
    let v = json_of(&run(ws.cmd().args(bundle_args(
        "dev",
        &out("offline"),
        true,
    ))));
    assert_eq!(v["members"][0]["cache"], "hit", "{v}");
    let o = Command::new(dir.join("offline/protoc/bin/protoc"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "libprotoc 36.2");

    // A damaged cached document is refused, not trusted.
    for e in std::fs::read_dir(ws.cache().join("bundles-v1")).unwrap() {
        let p = e.unwrap().path();
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, t.replace("36.2", "36.3")).unwrap();
    }
    let o = run(ws.cmd().args(bundle_args("dev", &out("damaged"), true)));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(absent_or_empty(&dir.join("damaged")));
}

#[test]
fn a_member_tool_name_never_becomes_a_path_outside_out() {
    let reg = RegistryServer::start();
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let base = ws.dir.path().join("a");
    std::fs::create_dir_all(&base).unwrap();
    let absolute = ws.dir.path().join("abs-escape");
    for (name, tool, escape) in [
        ("dotdot", "../escape".to_string(), base.join("escape")),
        ("abs", absolute.display().to_string(), absolute.clone()),
        (
            "unknown",
            "not-a-tool".to_string(),
            base.join("out-unknown/not-a-tool"),
        ),
    ] {
        push_bundle(&reg, name, &tool, None);
        let out = base.join(format!("out-{name}"));
        let o = run(ws.cmd().args(bundle_args(name, &out, false)));
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("not a tool protoreg knows"),
            "{name}: {}",
            text(&o)
        );
        assert!(!escape.exists(), "{name}: wrote {}", escape.display());
        assert!(absent_or_empty(&out), "{name}: left output");
    }
}
