//! publish against Debian's docker-registry and a GitHub-shaped loopback upstream serving
//! real protoc and buf binaries in upstream's archive layouts: publish, materialize back by
//! pin, re-publish as a no-op; refusals (changed byte, wrong sha256.txt); a registry that
//! fails mid-upload; dry run; basic auth; interoperability with oras-py and skopeo.

mod common;

use std::process::Command;

use common::github::{Asset, FakeGitHub};
use common::http::Route;
use common::ops::*;
use common::proxy::{Answer, AnsweringProxy, FaultyProxy};
use common::*;

fn statuses(report: &serde_json::Value) -> Vec<(String, String)> {
    report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                format!(
                    "{}:{}",
                    o["repository"].as_str().unwrap(),
                    o["tag"].as_str().unwrap()
                ),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn materialize_from_registry(
    ws: &Workspace,
    reg: &RegistryServer,
    repo: &str,
    file: &str,
    format: &str,
) -> common::Scratch {
    let p = pin(&fixture(file));
    let out = scratch();
    let dest = out.path().join("t");
    let cache = ws.dir.path().join("fresh-cache");
    let mut args = materialize_args(&p, format, &cache, &dest);
    args.extend([
        "--plain-http".into(),
        "--source".into(),
        format!("oci://{}/{NS}/{repo}", reg.host),
    ]);
    let o = run(protoreg().args(&args));
    assert!(o.status.success(), "{}", text(&o));
    out
}

#[test]
fn publish_protoc_and_buf_materialize_back_and_republish_is_a_noop() {
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");

    let first = ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);
    let s = statuses(&first);
    assert_eq!(
        s.iter().filter(|(_, st)| st == "published").count(),
        5,
        "{s:?}"
    );
    assert!(
        s.contains(&(format!("{NS}/tools/protoc:v36.2"), "index-published".into())),
        "{s:?}"
    );
    assert_eq!(first["counters"]["blobs_uploaded"], 5);
    let buf = ws.json(&["publish", "--tool", "buf", "--version", "1.75.0", "--json"]);
    assert_eq!(buf["counters"]["artifacts_published"], 7, "{buf}");
    assert_eq!(buf["counters"]["blobs_uploaded"], 6);

    // Every platform tag plus the index, for both tools.
    let protoc_tags = tag_digests(&reg, &format!("{NS}/tools/protoc"));
    let buf_tags = tag_digests(&reg, &format!("{NS}/tools/buf"));
    assert_eq!(protoc_tags.len(), 6, "{protoc_tags:?}");
    assert_eq!(buf_tags.len(), 7, "{buf_tags:?}");
    assert!(buf_tags.iter().any(|(t, _)| t == "v1.75.0-windows-arm64"));

    // Back out by pin: the bytes in the registry are upstream's, byte for byte.
    let out = materialize_from_registry(&ws, &reg, "tools/protoc", PROTOC_ZIP, "zip");
    let v = Command::new(out.path().join("t/bin/protoc"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "libprotoc 36.2");
    let out = materialize_from_registry(&ws, &reg, "tools/buf", BUF_TGZ, "tar.gz");
    let v = Command::new(out.path().join("t/bin/buf"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "1.75.0");

    // Again: nothing downloaded, nothing uploaded, the same digests.
    let downloads_before = gh.downloads(PROTOC_REPO, "v36.2", PROTOC_ZIP);
    for (tool, version) in [("protoc", "36.2"), ("buf", "1.75.0")] {
        let again = ws.json(&["publish", "--tool", tool, "--version", version, "--json"]);
        assert_eq!(again["counters"]["blobs_uploaded"], 0, "{again}");
        assert_eq!(again["counters"]["artifacts_published"], 0, "{again}");
        assert_eq!(again["counters"]["downloads"], 0, "{again}");
    }
    assert_eq!(
        gh.downloads(PROTOC_REPO, "v36.2", PROTOC_ZIP),
        downloads_before
    );
    assert_eq!(
        tag_digests(&reg, &format!("{NS}/tools/protoc")),
        protoc_tags
    );
    assert_eq!(tag_digests(&reg, &format!("{NS}/tools/buf")), buf_tags);

    // The audit log has one line per push, with digests, and `versions` sees the result.
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("\"op\":\"publish.manifest\""))
            .count(),
        11
    );
    let versions = ws.json(&["versions", "buf", "--json"]);
    assert_eq!(versions["versions"][0]["version"], "1.75.0");
    assert_eq!(
        versions["versions"][0]["platforms"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    let plan = ws.json(&[
        "publish",
        "--tool",
        "protoc",
        "--dry-run",
        "--json",
        "--platform",
        "linux-x86_64",
        "--platform",
        "darwin-arm64",
    ]);
    let s = statuses(&plan);
    assert_eq!(s.len(), 2, "{s:?}");
    assert!(s.iter().all(|(_, st)| st == "planned"));
    assert!(reg
        .client(None)
        .tags(&format!("{NS}/tools/protoc"))
        .unwrap()
        .is_empty());
    assert_eq!(gh.downloads(PROTOC_REPO, "v36.2", PROTOC_ZIP), 0);
}

#[test]
fn a_changed_upstream_byte_is_refused_and_a_rerun_completes() {
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    // GitHub reports the true digest; the download serves one byte changed.
    gh.replace_asset(
        PROTOC_REPO,
        "v36.2",
        PROTOC_ZIP,
        Route::Corrupt(fixture(PROTOC_ZIP)),
    );
    let out = ws.run(&["publish", "--tool", "protoc", "--version", "36.2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("does not match its pin") || stdout.contains("sha256 of"),
        "{}",
        text(&out)
    );
    let client = reg.client(None);
    let tags = client.tags(&format!("{NS}/tools/protoc")).unwrap();
    assert!(
        !tags.contains(&"v36.2-linux-x86_64".to_string()),
        "{tags:?}"
    );
    assert!(
        !tags.contains(&"v36.2".to_string()),
        "an index over an incomplete set: {tags:?}"
    );
    assert!(!client
        .blob_exists(
            &format!("{NS}/tools/protoc"),
            &pin(&fixture(PROTOC_ZIP)).sha256
        )
        .unwrap());

    gh.replace_asset(
        PROTOC_REPO,
        "v36.2",
        PROTOC_ZIP,
        Route::File(fixture(PROTOC_ZIP)),
    );
    let again = ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);
    assert_eq!(again["counters"]["blobs_uploaded"], 1, "{again}");
    assert_eq!(client.tags(&format!("{NS}/tools/protoc")).unwrap().len(), 6);
}

#[test]
fn a_wrong_sha256_txt_entry_is_refused() {
    let reg = RegistryServer::start();
    let gh = FakeGitHub::start();
    let sums = tempfile::NamedTempFile::new().unwrap();
    let real = std::fs::read_to_string(fixture("sha256.txt")).unwrap();
    let wrong = real
        .lines()
        .map(|l| {
            if l.ends_with(" buf-Linux-x86_64.tar.gz") {
                format!("{}  buf-Linux-x86_64.tar.gz", "0".repeat(64))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(sums.path(), wrong).unwrap();
    let tgz = fixture(BUF_TGZ);
    // An older release: no digest from the API, so sha256.txt alone says what the bytes are.
    let assets = [
        Asset {
            name: BUF_TGZ,
            file: &tgz,
            digest: None,
        },
        Asset {
            name: "sha256.txt",
            file: sums.path(),
            digest: None,
        },
    ];
    gh.release(BUF_REPO, "v1.75.0", &assets, false, false);
    // Signatures are another test's subject: here the checksum file alone is checked.
    let ws = Workspace::new(
        &reg.host,
        &gh.api_url(),
        "security:\n  verify_signatures: false\n",
    );
    let out = ws.run(&[
        "publish",
        "--tool",
        "buf",
        "--version",
        "1.75.0",
        "--platform",
        "linux-x86_64",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("sha256.txt") && all.contains(&"0".repeat(64)),
        "{all}"
    );
    assert!(reg
        .client(None)
        .tags(&format!("{NS}/tools/buf"))
        .unwrap()
        .is_empty());
}

#[test]
fn a_checksum_file_that_its_signature_does_not_cover_is_refused() {
    let reg = RegistryServer::start();
    let gh = FakeGitHub::start();
    // sha256.txt with one line dropped, served beside the signature of the real file.
    let sums = tempfile::NamedTempFile::new().unwrap();
    let real = std::fs::read_to_string(fixture("sha256.txt")).unwrap();
    let edited: String = real.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(sums.path(), edited).unwrap();
    let tgz = fixture(BUF_TGZ);
    let sig = buf_signature();
    let assets = [
        Asset::new(BUF_TGZ, &tgz),
        Asset::new("sha256.txt", sums.path()),
        Asset::new("sha256.txt.minisig", &sig),
    ];
    gh.release(BUF_REPO, "v1.75.0", &assets, false, false);
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    let args = [
        "publish",
        "--tool",
        "buf",
        "--version",
        "1.75.0",
        "--platform",
        "linux-x86_64",
    ];
    let out = ws.run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("signature of buf 1.75.0 `sha256.txt`"),
        "{}",
        text(&out)
    );
    assert!(reg
        .client(None)
        .tags(&format!("{NS}/tools/buf"))
        .unwrap()
        .is_empty());

    // With the real file the same signature verifies and publishing proceeds.
    gh.replace_asset(
        BUF_REPO,
        "v1.75.0",
        "sha256.txt",
        Route::File(fixture("sha256.txt")),
    );
    let out = ws.run(&args);
    assert!(out.status.success(), "{}", text(&out));
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    assert!(audit
        .lines()
        .any(|l| l.contains("publish.signature") && l.contains("\"outcome\":\"ok\"")));
}

#[test]
fn a_registry_failing_mid_upload_is_retried_and_never_holds_a_wrong_artifact() {
    let reg = RegistryServer::start();
    // Cut the first 3 connections that send more than 1 MiB (the blob uploads).
    let proxy = FaultyProxy::start(&reg.host, 3, 1 << 20);
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&proxy.addr, &gh.api_url(), "");
    let report = ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);
    assert_eq!(proxy.faults_left(), 0, "the faults were not hit");
    assert!(
        report["counters"]["retries"].as_u64().unwrap() >= 3,
        "{report}"
    );
    assert_eq!(report["counters"]["artifacts_published"], 6, "{report}");
    // What the registry holds verifies: materialize every platform by its pin.
    for (name, path) in common::github::protoc_assets() {
        let p = pin(&path);
        let out = scratch();
        let o = run(protoreg().args([
            "materialize",
            "--sha256",
            p.sha256.hex(),
            "--size",
            &p.size.to_string(),
            "--format",
            "zip",
            "--plain-http",
            "--source",
            &format!("oci://{}/{NS}/tools/protoc", reg.host),
            "--cache-dir",
            &ws.dir.path().join("c2").display().to_string(),
            "--out",
            &out.path().join("x").display().to_string(),
        ]));
        assert!(o.status.success(), "{name}: {}", text(&o));
    }
}

/// The OCI empty config `{}`, every tool manifest's config.
const EMPTY_CONFIG_BLOB: &str =
    "/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

#[test]
fn a_500_on_a_blob_check_is_retried() {
    // docker-registry answers 500 ("invalid checksum digest format") to a blob check that
    // reads a link file while another upload of the same blob rewrites it.
    let reg = RegistryServer::start();
    let proxy = AnsweringProxy::start(
        &reg.host,
        vec![Answer {
            method: "HEAD",
            path_contains: "/blobs/sha256:".into(),
            status: 500,
            body: String::new(),
            times: 2,
        }],
    );
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&proxy.addr, &gh.api_url(), "");
    let report = ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);
    assert_eq!(proxy.answers_left(), 0, "the faults were not hit");
    assert_eq!(report["counters"]["retries"], 2, "{report}");
    assert_eq!(report["counters"]["artifacts_published"], 6, "{report}");
}

#[test]
fn a_config_blob_the_registry_lost_is_pushed_again_before_the_manifest() {
    // The registry claims the config blob (as a racing link read can), then rejects every
    // manifest that references it (400 MANIFEST_BLOB_UNKNOWN): the manifest push must push
    // the config again, not retry the same rejected request.
    let reg = RegistryServer::start();
    let proxy = AnsweringProxy::start(
        &reg.host,
        vec![Answer {
            method: "HEAD",
            path_contains: EMPTY_CONFIG_BLOB.into(),
            status: 200,
            body: String::new(),
            times: 1,
        }],
    );
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&proxy.addr, &gh.api_url(), "");
    let report = ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);
    assert_eq!(proxy.answers_left(), 0, "the fault was not hit");
    assert_eq!(report["counters"]["artifacts_published"], 6, "{report}");
    // What the registry holds verifies.
    let d = materialize_from_registry(&ws, &reg, "tools/protoc", PROTOC_ZIP, "zip");
    assert!(d.path().join("t").exists());
}

#[test]
fn publish_to_a_registry_with_basic_auth_keeps_the_password_out_of_the_audit_log() {
    let reg = RegistryServer::start_with_htpasswd("ci", "s3cret-pass");
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    // Its own credentials, by variable name, as registry.yaml configures a backup.
    ws.write_config(&reg.host, "");
    let text_cfg = std::fs::read_to_string(ws.config()).unwrap().replace(
        "  plain_http: true\n",
        "  plain_http: true\n  auth_required: true\n  auth: {username_env: REG_USER, password_env: REG_PASS}\n",
    ).replace("  auth_required: false\n", "");
    std::fs::write(ws.config(), text_cfg).unwrap();

    let out = ws.run(&[
        "publish",
        "--tool",
        "protoc",
        "--version",
        "36.2",
        "--platform",
        "linux-x86_64",
    ]);
    assert_eq!(out.status.code(), Some(2), "no credentials: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("REG_USER and REG_PASS"),
        "{}",
        text(&out)
    );

    let out = run(ws
        .cmd()
        .env("REG_USER", "ci")
        .env("REG_PASS", "s3cret-pass")
        .args([
            "publish",
            "--tool",
            "protoc",
            "--version",
            "36.2",
            "--platform",
            "linux-x86_64",
        ]));
    assert!(out.status.success(), "{}", text(&out));
    let creds = protoreg::auth::Credentials::Basic {
        username: "ci".into(),
        password: "s3cret-pass".into(),
    };
    let tags = reg
        .client(Some(creds))
        .tags(&format!("{NS}/tools/protoc"))
        .unwrap();
    assert!(tags.contains(&"v36.2-linux-x86_64".to_string()), "{tags:?}");
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    assert!(audit.contains("publish.blob"));
    assert!(!audit.contains("s3cret-pass") && !text(&out).contains("s3cret-pass"));
}

#[test]
fn oras_py_and_skopeo_read_what_protoreg_publishes_and_protoreg_reads_what_oras_pushes() {
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);

    // oras-py pulls the platform tag and gets the upstream file under its own name.
    let pulled = scratch();
    let script = format!(
        "import oras.client\nc = oras.client.OrasClient(hostname='{h}', insecure=True)\n\
         print(c.pull(target='{h}/{NS}/tools/protoc:v36.2-linux-x86_64', outdir='{d}'))\n",
        h = reg.host,
        d = pulled.path().display()
    );
    let o = run(Command::new(python()).arg("-c").arg(&script));
    assert!(o.status.success(), "{}", text(&o));
    let got = pulled.path().join(PROTOC_ZIP);
    assert_eq!(pin(&got).sha256, pin(&fixture(PROTOC_ZIP)).sha256);

    // skopeo reads the manifest and the index.
    let raw = |tag: &str| -> serde_json::Value {
        let o = run(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{NS}/tools/protoc:{tag}", reg.host),
        ]));
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let m = raw("v36.2-darwin-arm64");
    assert_eq!(m["artifactType"], protoreg::artifact::ARTIFACT_TYPE);
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "protoc-36.2-osx-aarch_64.zip"
    );
    let idx = raw("v36.2");
    assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<String> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["platform"]["os"].as_str().unwrap(),
                d["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            "linux/amd64",
            "linux/arm64",
            "darwin/amd64",
            "darwin/arm64",
            "windows/amd64"
        ]
    );

    // oras-py pushes buf's tarball with a title annotation; protoreg materializes it by pin.
    let staging = scratch();
    std::fs::copy(fixture(BUF_TGZ), staging.path().join(BUF_TGZ)).unwrap();
    let script = format!(
        "import os, oras.client\nos.chdir('{d}')\nc = oras.client.OrasClient(hostname='{h}', insecure=True)\n\
         c.push(target='{h}/other/buf:1.75.0', files=['{f}'])\n",
        d = staging.path().display(),
        h = reg.host,
        f = BUF_TGZ
    );
    let o = run(Command::new(python()).arg("-c").arg(&script));
    assert!(o.status.success(), "{}", text(&o));
    let p = pin(&fixture(BUF_TGZ));
    let out = scratch();
    let mut args = materialize_args(
        &p,
        "tar.gz",
        &ws.dir.path().join("c3"),
        &out.path().join("b"),
    );
    args.extend([
        "--plain-http".into(),
        "--source".into(),
        format!("oci://{}/other/buf", reg.host),
    ]);
    let o = run(protoreg().args(&args));
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.path().join("b/bin/buf").is_file());
}

#[test]
fn go_plugins_publish_under_their_real_asset_names_and_run() {
    // protoc-gen-go and protoc-gen-go-grpc releases as upstream names them (tags
    // `v1.28.1` and `cmd/protoc-gen-go-grpc/v1.0.0`), with the real binaries inside.
    let reg = RegistryServer::start();
    let gh = FakeGitHub::start();
    let go = fixture("protoc-gen-go.v1.28.1.linux.amd64.tar.gz");
    let grpc = fixture("protoc-gen-go-grpc.v1.0.0.linux.amd64.tar.gz");
    gh.release(
        "protocolbuffers/protobuf-go",
        "v1.28.1",
        &[Asset::new("protoc-gen-go.v1.28.1.linux.amd64.tar.gz", &go)],
        false,
        false,
    );
    gh.release(
        "grpc/grpc-go",
        "cmd/protoc-gen-go-grpc/v1.0.0",
        &[Asset::new(
            "protoc-gen-go-grpc.v1.0.0.linux.amd64.tar.gz",
            &grpc,
        )],
        false,
        false,
    );
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    for (tool, version) in [("protoc-gen-go", "1.28.1"), ("protoc-gen-go-grpc", "1.0.0")] {
        let report = ws.json(&[
            "publish",
            "--tool",
            tool,
            "--version",
            version,
            "--platform",
            "linux-x86_64",
            "--json",
        ]);
        let s = statuses(&report);
        assert!(
            s.contains(&(
                format!("{NS}/plugins/{tool}:v{version}-linux-x86_64"),
                "published".into()
            )),
            "{s:?}"
        );
    }
    for (tool, file, binary, expect) in [
        (
            "protoc-gen-go",
            "protoc-gen-go.v1.28.1.linux.amd64.tar.gz",
            "protoc-gen-go",
            "protoc-gen-go v1.28.1",
        ),
        (
            "protoc-gen-go-grpc",
            "protoc-gen-go-grpc.v1.0.0.linux.amd64.tar.gz",
            "protoc-gen-go-grpc",
            "protoc-gen-go-grpc 1.0",
        ),
    ] {
        let p = pin(&fixture(file));
        let out = scratch();
        let o = run(protoreg()
            .args([
                "materialize",
                "--sha256",
                p.sha256.hex(),
                "--size",
                &p.size.to_string(),
            ])
            .args([
                "--format",
                "tar.gz",
                "--executable",
                binary,
                "--plain-http",
                "--cache-dir",
            ])
            .arg(ws.dir.path().join("fresh"))
            .arg("--out")
            .arg(out.path().join("t"))
            .arg("--source")
            .arg(format!("oci://{}/{NS}/plugins/{tool}", reg.host)));
        assert!(o.status.success(), "{}", text(&o));
        let v = Command::new(out.path().join("t").join(binary))
            .arg("--version")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), expect);
    }
}
