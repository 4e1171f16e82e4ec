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
            &protoreg::pipeline::verify::Sha256::of_bytes(&o.stdout).oci(),
            digest,
            "{tag}"
        );
    }
    // The layout is a source for materialize.
    let p = pin(&fixture(PROTOC_ZIP));
    let out = scratch();
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

/// An image-layout tree at `root` holding protoc's linux zip as `tools/protoc`, tag
/// `v36.2-linux-x86_64`, written by hand (as another tool would).
fn protoc_layout(root: &std::path::Path) -> Pinned {
    use protoreg::artifact::{self, ToolFile};
    let protoc = pin(&fixture(PROTOC_ZIP));
    let l = protoreg::operate::oci_layout::Layout::new(root.join("tools/protoc"));
    l.put_blob_bytes(artifact::EMPTY_CONFIG).unwrap();
    std::fs::copy(&protoc.path, l.blob_path(&protoc.sha256)).unwrap();
    let tool = ToolFile {
        file_name: PROTOC_ZIP.into(),
        sha256: protoc.sha256.clone(),
        size: protoc.size,
        format: protoreg::pipeline::extract::Format::Zip,
        version: "36.2".into(),
        source_url: "https://example.invalid/".into(),
        created: "2025-07-01T00:00:00Z".into(),
    };
    l.put_manifest(
        Some("v36.2-linux-x86_64"),
        &artifact::to_bytes(&tool.manifest()),
        artifact::MANIFEST_MEDIA_TYPE,
    )
    .unwrap();
    protoc
}

/// A cache directory on another file system than the workspace when there is one
/// (/dev/shm), so blobs cross devices on their way into a layout.
fn other_device_cache() -> Scratch {
    use std::os::unix::fs::MetadataExt;
    let shm = std::path::Path::new("/dev/shm");
    let here = std::fs::metadata(std::env::temp_dir())
        .map(|m| m.dev())
        .ok();
    match std::fs::metadata(shm) {
        Ok(m) if Some(m.dev()) != here => scratch_in(shm),
        _ => scratch(),
    }
}

#[test]
fn a_torn_blob_in_the_target_layout_is_replaced_not_trusted() {
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let src = ws.dir.path().join("src");
    let protoc = protoc_layout(&src);
    // What a crash during the old cross-device copy left: the blob's final name, half of
    // its bytes.
    let dst = ws.dir.path().join("dst");
    let dst_repo = dst.join("tools/protoc");
    std::fs::create_dir_all(dst_repo.join("blobs/sha256")).unwrap();
    std::fs::write(
        dst_repo.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let torn = dst_repo.join("blobs/sha256").join(protoc.sha256.hex());
    let bytes = std::fs::read(&protoc.path).unwrap();
    std::fs::write(&torn, &bytes[..bytes.len() / 2]).unwrap();

    let cache = other_device_cache();
    let o = run(protoreg().current_dir(ws.dir.path()).args([
        "--config",
        &ws.config().display().to_string(),
        "--cache-dir",
        &cache.path().display().to_string(),
        "mirror",
        "--from",
        &format!("oci-layout:{}", src.display()),
        "--to",
        &format!("oci-layout:{}", dst.display()),
        "--json",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::metadata(&torn).unwrap().len(), protoc.size);
    // No temporary copies are left in the layout.
    let debris: Vec<_> = std::fs::read_dir(&dst_repo)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(debris.is_empty(), "{debris:?}");
    // The layout serves materialize.
    let out = scratch();
    let mut args = materialize_args(
        &protoc,
        "zip",
        &ws.dir.path().join("c2"),
        &out.path().join("t"),
    );
    args.extend([
        "--source".into(),
        format!("oci-layout:{}", dst_repo.display()),
    ]);
    let o = run(protoreg().args(&args));
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn damaged_source_data_is_a_failure_of_the_work() {
    use protoreg::artifact::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let mirror = |src: &std::path::Path| {
        ws.run(&[
            "mirror",
            "--from",
            &format!("oci-layout:{}", src.display()),
            "--to",
            &format!("oci-layout:{}", ws.dir.path().join("dst").display()),
        ])
    };
    // A manifest that is not JSON.
    let bad = ws.dir.path().join("not-json");
    protoreg::operate::oci_layout::Layout::new(bad.join("tools/protoc"))
        .put_manifest(Some("v1"), b"not json at all", MANIFEST_MEDIA_TYPE)
        .unwrap();
    let o = mirror(&bad);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not JSON"),
        "{}",
        text(&o)
    );
    // An index that lists a manifest the source does not have.
    let missing = format!("sha256:{}", "ab".repeat(32));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{"mediaType": MANIFEST_MEDIA_TYPE, "digest": missing, "size": 10}],
    });
    let incomplete = ws.dir.path().join("incomplete");
    protoreg::operate::oci_layout::Layout::new(incomplete.join("tools/protoc"))
        .put_manifest(
            Some("v1"),
            &serde_json::to_vec(&index).unwrap(),
            INDEX_MEDIA_TYPE,
        )
        .unwrap();
    let o = mirror(&incomplete);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&missing),
        "{}",
        text(&o)
    );
}

#[test]
fn a_catalog_name_that_leaves_the_layout_is_refused() {
    use common::http::{HttpServer, Route};
    use protoreg::artifact::{self, EMPTY_CONFIG, MANIFEST_MEDIA_TYPE};
    let fake = HttpServer::start();
    fake.route("/v2/", Route::Body("application/json", b"{}".to_vec()));
    fake.route(
        "/v2/_catalog",
        Route::Body(
            "application/json",
            format!(r#"{{"repositories":["{NS}/../../escape"]}}"#).into_bytes(),
        ),
    );
    // Enough behind the (normalized) escaping name for a copy to go through.
    let config = protoreg::pipeline::verify::Sha256::of_bytes(EMPTY_CONFIG);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": artifact::EMPTY_MEDIA_TYPE, "digest": config.oci(), "size": 2},
        "layers": [],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    for prefix in ["/escape", &format!("/v2/{NS}/../../escape")] {
        fake.route(
            &format!("{prefix}/tags/list"),
            Route::Body(
                "application/json",
                br#"{"name":"escape","tags":["v1"]}"#.to_vec(),
            ),
        );
        fake.route(
            &format!("{prefix}/manifests/v1"),
            Route::Body(MANIFEST_MEDIA_TYPE, manifest.clone()),
        );
        fake.route(
            &format!("{prefix}/blobs/{}", config.oci()),
            Route::Body("application/octet-stream", EMPTY_CONFIG.to_vec()),
        );
    }
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let root = ws.dir.path().join("a/b/layout");
    let o = ws.run(&[
        "--plain-http",
        "mirror",
        "--from",
        &format!("oci://{}/{NS}", fake.addr),
        "--to",
        &format!("oci-layout:{}", root.display()),
    ]);
    assert!(
        !ws.dir.path().join("a/escape").exists(),
        "wrote outside the layout root: {}",
        text(&o)
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("contains `..`"),
        "{}",
        text(&o)
    );
}

#[test]
fn mirror_waits_for_a_running_cache_cleanup() {
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let src = ws.dir.path().join("src");
    protoc_layout(&src);
    let dst = ws.dir.path().join("dst");
    // What `cleanup` holds while it removes entries (tmp/ included).
    let locks = ws.cache().join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let lock = std::fs::File::create(locks.join("cache.lock")).unwrap();
    lock.lock().unwrap();
    let mut child = ws
        .cmd()
        .args([
            "mirror",
            "--from",
            &format!("oci-layout:{}", src.display()),
            "--to",
            &format!("oci-layout:{}", dst.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let early = child.try_wait().unwrap();
    let copied_early = dst.join("tools/protoc/index.json").exists();
    drop(lock);
    let status = child.wait().unwrap();
    assert!(
        early.is_none() && !copied_early,
        "mirror ran while cleanup held the cache"
    );
    assert!(status.success());
    assert!(dst.join("tools/protoc/index.json").is_file());
}

/// A loopback server speaking just enough of the registry API for `mirror --from` (the
/// version check, the catalog, one repository's tag list), serving each tag's manifest by
/// `manifest_route`.
fn hostile_registry(
    tags: &[&str],
    manifest_route: impl Fn(&str) -> common::http::Route,
) -> common::http::HttpServer {
    use common::http::{HttpServer, Route};
    let fake = HttpServer::start();
    fake.route("/v2/", Route::Body("application/json", b"{}".to_vec()));
    fake.route(
        "/v2/_catalog",
        Route::Body(
            "application/json",
            format!(r#"{{"repositories":["{NS}/tools/protoc"]}}"#).into_bytes(),
        ),
    );
    let list = serde_json::json!({"name": format!("{NS}/tools/protoc"), "tags": tags});
    fake.route(
        &format!("/v2/{NS}/tools/protoc/tags/list"),
        Route::Body("application/json", serde_json::to_vec(&list).unwrap()),
    );
    for tag in tags {
        fake.route(
            &format!("/v2/{NS}/tools/protoc/manifests/{tag}"),
            manifest_route(tag),
        );
    }
    fake
}

/// `mirror` from `fake` to a fresh layout, timed.
fn mirror_from(
    ws: &Workspace,
    fake: &common::http::HttpServer,
) -> (std::process::Output, std::time::Duration) {
    let started = std::time::Instant::now();
    let o = run(ws.cmd().env("PROTOREG_TIMEOUT", "5").args([
        "--plain-http",
        "mirror",
        "--from",
        &format!("oci://{}/{NS}", fake.addr),
        "--to",
        &format!("oci-layout:{}", ws.dir.path().join("dst").display()),
    ]));
    (o, started.elapsed())
}

#[test]
fn an_oversized_manifest_from_a_registry_is_refused_after_at_most_the_limit() {
    use common::http::Route;
    use protoreg::artifact::MANIFEST_MEDIA_TYPE;
    // A "manifest" that declares 3 GB, and one with no length that runs on (both bounded
    // here at 64 MiB, so a client that buffers whole still finishes); either way the limit is
    // 4 MiB and the read stops there.
    for declared in [Some(3u64 << 30), None] {
        let fake = hostile_registry(&["v1"], |_| Route::Huge {
            ctype: MANIFEST_MEDIA_TYPE,
            declared,
            sent: 64 << 20,
        });
        let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
        let (o, took) = mirror_from(&ws, &fake);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{declared:?}: {}", text(&o));
        assert!(
            err.contains(&format!("{NS}/tools/protoc:v1"))
                && err.contains("4.0 MiB")
                && err.contains("4194304 bytes"),
            "{declared:?}: the error names the reference and the limit: {}",
            text(&o)
        );
        assert!(took < std::time::Duration::from_secs(20), "{took:?}");
        assert!(!ws.dir.path().join("dst/tools/protoc/index.json").exists());
    }
}

#[test]
fn an_oversized_manifest_or_index_in_a_layout_is_refused_unread() {
    use protoreg::artifact::MANIFEST_MEDIA_TYPE;
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let mirror = |src: &std::path::Path| {
        ws.run(&[
            "mirror",
            "--from",
            &format!("oci-layout:{}", src.display()),
            "--to",
            &format!("oci-layout:{}", ws.dir.path().join("dst").display()),
        ])
    };
    // A tag naming a 3 GB manifest blob (sparse: no disk is used, and a reader that reads it
    // whole would need 3 GB of memory).
    let src = ws.dir.path().join("src");
    let l = protoreg::operate::oci_layout::Layout::new(src.join("tools/protoc"));
    let digest = l
        .put_manifest(Some("v1"), b"{}", MANIFEST_MEDIA_TYPE)
        .unwrap();
    let blob = l.blob_path(&digest);
    let _ = std::fs::remove_file(&blob);
    std::fs::File::create(&blob)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let o = mirror(&src);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("manifest v1") && err.contains("4194304 bytes"),
        "{}",
        text(&o)
    );
    // An index.json of 3 GB.
    let src2 = ws.dir.path().join("src2");
    let l = protoreg::operate::oci_layout::Layout::new(src2.join("tools/protoc"));
    l.put_manifest(Some("v1"), b"{}", MANIFEST_MEDIA_TYPE)
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(src2.join("tools/protoc/index.json"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let o = mirror(&src2);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("index.json") && err.contains("4194304 bytes"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_chain_of_nested_indexes_is_refused_at_the_depth_limit() {
    use common::http::Route;
    use protoreg::artifact::{self, EMPTY_CONFIG, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
    use protoreg::pipeline::verify::Sha256;
    // 20,000 indexes, each listing the next, the last a manifest: served by digest.
    let config = Sha256::of_bytes(EMPTY_CONFIG);
    let mut doc = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": artifact::EMPTY_MEDIA_TYPE, "digest": config.oci(), "size": 2},
        "layers": [],
    }))
    .unwrap();
    let mut media_type = MANIFEST_MEDIA_TYPE;
    let mut chain: Vec<(String, Vec<u8>)> = Vec::new();
    for _ in 0..20_000 {
        let digest = Sha256::of_bytes(&doc).oci();
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [{"mediaType": media_type, "digest": digest, "size": doc.len()}],
        }))
        .unwrap();
        chain.push((digest, std::mem::replace(&mut doc, index)));
        media_type = INDEX_MEDIA_TYPE;
    }
    let top = doc;
    let fake = hostile_registry(&["v1"], |_| Route::Body(INDEX_MEDIA_TYPE, top.clone()));
    for (digest, bytes) in &chain {
        fake.route(
            &format!("/v2/{NS}/tools/protoc/manifests/{digest}"),
            Route::Body(INDEX_MEDIA_TYPE, bytes.clone()),
        );
    }
    fake.route(
        &format!("/v2/{NS}/tools/protoc/blobs/{}", config.oci()),
        Route::Body("application/octet-stream", EMPTY_CONFIG.to_vec()),
    );
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let (o, took) = mirror_from(&ws, &fake);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nested 9 deep") && err.contains("at most 8 levels"),
        "{}",
        text(&o)
    );
    // It stopped there: the 8 indexes under the tag's were read, no more.
    let read = chain
        .iter()
        .filter(|(d, _)| fake.count(&format!("/v2/{NS}/tools/protoc/manifests/{d}")) > 0)
        .count();
    assert_eq!(read, 8, "{}", text(&o));
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    assert!(!ws.dir.path().join("dst/tools/protoc/index.json").exists());
}

#[test]
fn an_index_nested_within_the_limit_is_copied() {
    use protoreg::artifact::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let src = ws.dir.path().join("src");
    let protoc = protoc_layout(&src);
    let l = protoreg::operate::oci_layout::Layout::new(src.join("tools/protoc"));
    let (mut doc, _) = l.manifest("v36.2-linux-x86_64").unwrap().unwrap();
    let mut media_type = MANIFEST_MEDIA_TYPE;
    // Eight indexes deep: the limit, still copied.
    for _ in 0..8 {
        let d = l.put_manifest(None, &doc, media_type).unwrap();
        doc = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [{"mediaType": media_type, "digest": d.oci(), "size": doc.len()}],
        }))
        .unwrap();
        media_type = INDEX_MEDIA_TYPE;
    }
    l.put_manifest(Some("v36.2"), &doc, INDEX_MEDIA_TYPE)
        .unwrap();
    let dst = ws.dir.path().join("dst");
    let o = ws.run(&[
        "mirror",
        "--from",
        &format!("oci-layout:{}", src.display()),
        "--to",
        &format!("oci-layout:{}", dst.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let copied = protoreg::operate::oci_layout::Layout::new(dst.join("tools/protoc"));
    assert!(copied.manifest("v36.2").unwrap().is_some());
    assert!(copied.has_blob(&protoreg::pipeline::verify::Expected {
        sha256: protoc.sha256.clone(),
        size: Some(protoc.size),
    }));
}

/// A source manifest claiming a 1 TiB layer (served as an endless body) is refused by the
/// mirror's cap (PROTOREG_MAX_UNSIZED_BYTES) before any blob is asked for: the claimed size
/// is remote data, not a bound.
#[test]
fn a_manifest_claiming_a_huge_layer_is_refused_before_any_transfer() {
    use common::http::Route;
    use protoreg::artifact::{EMPTY_CONFIG, MANIFEST_MEDIA_TYPE};
    use protoreg::pipeline::verify::Sha256;
    let config = Sha256::of_bytes(EMPTY_CONFIG).oci();
    let layer = Sha256::of_bytes(b"never served whole").oci();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/zip", "digest": layer, "size": 1u64 << 40}],
    });
    let fake = hostile_registry(&["v1"], |_| {
        Route::Body(MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).unwrap())
    });
    let blob_path = |d: &str| format!("/v2/{NS}/tools/protoc/blobs/{d}");
    fake.route(
        &blob_path(&config),
        Route::Body("application/octet-stream", EMPTY_CONFIG.to_vec()),
    );
    fake.route(
        &blob_path(&layer),
        Route::Huge {
            ctype: "application/octet-stream",
            declared: Some(1u64 << 40),
            sent: 64 << 20,
        },
    );
    let ws = Workspace::new("127.0.0.1:9", "http://127.0.0.1:9", "");
    let (o, took) = mirror_from(&ws, &fake);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("claims a 1099511627776-byte blob, more than the 256.0 MiB")
            && err.contains("PROTOREG_MAX_UNSIZED_BYTES"),
        "{err}"
    );
    assert_eq!(fake.count(&blob_path(&layer)), 0, "the layer was requested");
    assert_eq!(fake.count(&blob_path(&config)), 0, "a blob moved first");
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    assert!(!ws.dir.path().join("dst/tools/protoc/index.json").exists());
}
