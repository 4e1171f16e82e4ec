//! `protoreg baseline push` against Debian's docker-registry: a descriptor set pushed as an
//! ORAS artifact, fetched back by its digest, the same push again a no-op, a released tag
//! never moved, and bad input refused with exit 2 before anything is pushed.

mod common;

use std::path::{Path, PathBuf};

use common::ops::*;
use common::*;

/// A FileDescriptorSet holding one file descriptor with only a name.
fn image(dir: &Path, file: &str) -> PathBuf {
    let name = file.as_bytes();
    let mut descriptor = vec![0x0a, name.len() as u8];
    descriptor.extend_from_slice(name);
    let mut set = vec![0x0a, descriptor.len() as u8];
    set.extend_from_slice(&descriptor);
    let path = dir.join(format!("{}.binpb", file.replace('/', "_")));
    std::fs::write(&path, set).unwrap();
    path
}

#[test]
fn a_baseline_is_pushed_fetched_by_digest_and_never_moved() {
    let reg = RegistryServer::start();
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let v1 = image(ws.dir.path(), "acme/weather/v1/weather.proto");
    let push = |file: &Path, tag: &str| {
        ws.run(&[
            "baseline",
            "push",
            file.to_str().unwrap(),
            "--repository",
            "images/acme-weather",
            "--tag",
            tag,
            "--json",
        ])
    };
    let o = push(&v1, "v1.0.0");
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let want = pin(&v1);
    assert_eq!(report["status"], "pushed", "{report}");
    assert_eq!(report["sha256"], want.sha256.hex(), "{report}");
    assert_eq!(report["size"], want.size, "{report}");
    assert_eq!(report["repository"], format!("{NS}/images/acme-weather"));

    // The manifest is an ORAS artifact of its own type, its one layer the image as built.
    let client = reg.client(None);
    let (bytes, _) = client
        .manifest(&format!("{NS}/images/acme-weather"), "v1.0.0")
        .unwrap()
        .unwrap();
    let m: protoreg::artifact::Manifest = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        m.artifact_type.as_deref(),
        Some("application/vnd.buck2-protobuf.image.v1")
    );
    assert_eq!(m.layers[0].digest, want.sha256.oci());
    assert_eq!(
        m.layers[0].annotations["org.opencontainers.image.title"],
        "image.binpb"
    );

    // Fetched back by digest, as registry_image does.
    let out = ws.dir.path().join("fetched");
    let o = run(protoreg()
        .args(["materialize", "--sha256", want.sha256.hex(), "--size"])
        .arg(want.size.to_string())
        .args([
            "--format",
            "raw",
            "--executable",
            "image.binpb",
            "--plain-http",
        ])
        .arg("--cache-dir")
        .arg(ws.cache())
        .arg("--out")
        .arg(&out)
        .args([
            "--source",
            &format!("oci://{}/{NS}/images/acme-weather", reg.host),
        ]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(out.join("image.binpb")).unwrap(),
        std::fs::read(&v1).unwrap()
    );

    // The same image again: nothing to do. Another image under the released tag: refused.
    let o = push(&v1, "v1.0.0");
    assert!(o.status.success(), "{}", text(&o));
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(again["status"], "unchanged");
    assert_eq!(again["manifest"], report["manifest"]);
    let v2 = image(ws.dir.path(), "acme/weather/v2/weather.proto");
    let o = push(&v2, "v1.0.0");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("already holds another image"),
        "{}",
        text(&o)
    );
    let (after, _) = client
        .manifest(&format!("{NS}/images/acme-weather"), "v1.0.0")
        .unwrap()
        .unwrap();
    assert_eq!(after, bytes, "the released tag moved");
    // ...and under its own tag it goes in; the text output is the target to paste.
    let o = ws.run(&[
        "baseline",
        "push",
        v2.to_str().unwrap(),
        "--repository",
        "images/acme-weather",
        "--tag",
        "v2.0.0",
        "--name",
        "weather_v2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let target = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        target,
        format!(
            "registry_image(\n    name = \"weather_v2\",\n    repository = \"images/acme-weather\",\n    tag = \"v2.0.0\",\n    sha256 = \"{}\",\n    size = {},\n)\n",
            pin(&v2).sha256.hex(),
            pin(&v2).size
        )
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_pushed() {
    let reg = RegistryServer::start();
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let good = image(ws.dir.path(), "a.proto");
    let text_file = ws.dir.path().join("notes.txt");
    std::fs::write(&text_file, "syntax = \"proto3\";\n").unwrap();
    let empty = ws.dir.path().join("empty.binpb");
    std::fs::write(&empty, "").unwrap();
    for (file, repository, tag, says) in [
        (&text_file, "images/x", "v1", "is not a descriptor set"),
        (&empty, "images/x", "v1", "is not a descriptor set"),
        (&good, "Images/X", "v1", "is not a repository path"),
        (&good, "images/x", "v1/../x", "is not an OCI tag"),
        (&good, "images/x", "", "is not an OCI tag"),
    ] {
        let o = ws.run(&[
            "baseline",
            "push",
            file.to_str().unwrap(),
            "--repository",
            repository,
            "--tag",
            tag,
        ]);
        assert_eq!(o.status.code(), Some(2), "{says}: {}", text(&o));
        assert!(text(&o).contains(says), "{says}: {}", text(&o));
    }
    let tags = reg.client(None).tags(&format!("{NS}/images/x")).unwrap();
    assert!(tags.is_empty(), "{tags:?}");
}

/// Two pushes of different images to one new tag, at once, ten times: from one machine (one
/// cache: they take turns) and as if from two (two caches: no shared lock). Each time at
/// most one reports `pushed`, and the tag holds that one's image: a released tag never moves.
#[test]
fn racing_pushes_of_two_images_to_one_tag_release_at_most_one() {
    let reg = RegistryServer::start();
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let images = [
        image(ws.dir.path(), "race/a.proto"),
        image(ws.dir.path(), "race/b.proto"),
    ];
    let client = reg.client(None);
    let repository = format!("{NS}/images/race");
    let mut pushed_total = 0;
    for round in 0..10 {
        let shared_cache = round % 2 == 0;
        let tag = format!("v{round}.0.0");
        let children: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, file)| {
                let cache = if shared_cache {
                    ws.cache()
                } else {
                    ws.dir.path().join(format!("cache-{i}"))
                };
                protoreg()
                    .current_dir(ws.dir.path())
                    .env_remove("PROTOREG_AUDIT_LOG")
                    .arg("--config")
                    .arg(ws.config())
                    .arg("--cache-dir")
                    .arg(cache)
                    .args(["baseline", "push"])
                    .arg(file)
                    .args(["--repository", "images/race", "--tag", &tag, "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let winners: Vec<usize> = (0..2)
            .filter(|&i| {
                outputs[i].status.success()
                    && serde_json::from_slice::<serde_json::Value>(&outputs[i].stdout)
                        .is_ok_and(|r| r["status"] == "pushed")
            })
            .collect();
        let shown = || outputs.iter().map(text).collect::<Vec<_>>().join("\n");
        assert!(
            winners.len() <= 1,
            "round {round}: both pushed\n{}",
            shown()
        );
        for (i, o) in outputs.iter().enumerate() {
            if !winners.contains(&i) {
                assert!(!o.status.success(), "round {round}: {}", shown());
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains("already holds another image")
                        || err.contains("a concurrent push put another image"),
                    "round {round}: {}",
                    shown()
                );
            }
        }
        let (bytes, _) = client.manifest(&repository, &tag).unwrap().unwrap();
        let m: protoreg::artifact::Manifest = serde_json::from_slice(&bytes).unwrap();
        if let Some(&w) = winners.first() {
            pushed_total += 1;
            assert_eq!(
                m.layers[0].digest,
                pin(&images[w]).sha256.oci(),
                "round {round}"
            );
        }
    }
    // A release happened in most rounds (a push fails only when it raced another).
    assert!(
        pushed_total >= 5,
        "{pushed_total} of 10 rounds released an image"
    );
}
