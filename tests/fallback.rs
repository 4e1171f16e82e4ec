//! Every kind of failing source hands over to the next; with no good source the run fails
//! with exit 1, names every source, and leaves no output.

mod common;

use std::time::Duration;

use common::http::{HttpServer, Route};
use common::*;
use protoreg::pipeline::extract::Format;

fn refused_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    format!("http://{addr}/protoc.zip")
}

#[test]
fn each_fault_hands_over_to_the_next_source() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let good = server.route("/good.zip", Route::File(protoc.path.clone()));
    let faults = [
        ("refused", refused_port()),
        ("404", server.route("/404.zip", Route::Status(404))),
        ("500", server.route("/500.zip", Route::Status(500))),
        (
            "short",
            server.route("/short.zip", Route::Short(protoc.path.clone())),
        ),
        (
            "corrupt",
            server.route("/corrupt.zip", Route::Corrupt(protoc.path.clone())),
        ),
        (
            "stall",
            server.route("/stall.zip", Route::Stall(Duration::from_secs(5))),
        ),
        // Headers and the first 64 KiB, then nothing for 5 s.
        (
            "stall mid-body",
            server.route(
                "/stall-body.zip",
                Route::Slow(protoc.path.clone(), Duration::from_secs(5)),
            ),
        ),
    ];
    for (name, bad) in &faults {
        let tmp = scratch();
        let out = tmp.path().join("out");
        let o = run(protoreg()
            .env("PROTOREG_TIMEOUT", "1")
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join("cache"),
                &out,
            ))
            .args(["--json", "--source", bad, "--source", &good]));
        assert!(o.status.success(), "{name}: {}", text(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(json["source"], good.as_str(), "{name}");
        assert_eq!(json["failed_sources"][0]["source"], bad.as_str(), "{name}");
        let reason = json["failed_sources"][0]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        let expected = match *name {
            "refused" => "connection refused",
            "404" => "HTTP 404",
            "500" => "HTTP 500",
            "short" => "cut short",
            "corrupt" => "sha256",
            _ => "timed out",
        };
        assert!(reason.contains(expected), "{name}: {reason}");
        assert!(out.join("bin/protoc").is_file());
    }
    assert_eq!(server.count("/good.zip"), faults.len());
}

#[test]
fn registry_without_the_blob_hands_over_to_http() {
    let reg = RegistryServer::start();
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let good = server.route("/good.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache"),
            &out,
        ))
        .args(["--plain-http", "--json", "--source"])
        .arg(format!("oci://{}/ns/tools/protoc", reg.host))
        .args(["--source", &good]));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["source"], good.as_str());
}

#[test]
fn all_sources_failing_is_exit_1_naming_each_and_leaves_nothing() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let reg = RegistryServer::start();
    // The registry holds other bytes under the pinned repository: the digest lookup misses.
    reg.push(
        "ns/tools/protoc",
        &pin(&fixture(BUF_TGZ)),
        Format::TarGz,
        "v1",
        None,
    );
    let sources = [
        refused_port(),
        server.route("/404.zip", Route::Status(404)),
        server.route("/corrupt.zip", Route::Corrupt(protoc.path.clone())),
        format!("oci://{}/ns/tools/protoc", reg.host),
        "oci-layout:/nonexistent/layout".to_string(),
    ];
    let tmp = scratch();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    let mut cmd = protoreg();
    cmd.args(materialize_args(&protoc, "zip", &cache, &out))
        .arg("--plain-http");
    for s in &sources {
        cmd.args(["--source", s]);
    }
    let o = run(&mut cmd);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("every source failed"), "{err}");
    for s in &sources {
        assert!(err.contains(s.as_str()), "{s} missing from: {err}");
    }
    assert!(absent_or_empty(&out));
    assert!(cache_trees(&cache).is_empty());
    assert!(absent_or_empty(&cache.join("tmp")), "debris left in tmp/");
}

#[test]
fn offline_without_a_cached_entry_fails_clearly() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let tmp = scratch();
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache"),
            &out,
        ))
        .arg("--offline"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--offline") && err.contains(protoc.sha256.hex()),
        "{err}"
    );
    assert!(absent_or_empty(&out));
}

#[test]
fn an_unsized_body_past_the_cap_fails_that_source_and_the_next_is_tried() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let big = fixture(BUF_TGZ); // ~32 MB of other bytes
    let server = HttpServer::start();
    let endless = server.route("/endless.zip", Route::Endless);
    let huge = server.route("/huge.zip", Route::File(big.clone()));
    let good = server.route("/good.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    // An image layout whose blob under the pinned digest is the big file.
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::copy(&big, layout.join("blobs/sha256").join(protoc.sha256.hex())).unwrap();
    let layout = format!("oci-layout:{}", layout.display());

    // The cap is the artifact's own size: it fits exactly, anything longer does not.
    let cap = protoc.size.to_string();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    let started = std::time::Instant::now();
    let o = run(protoreg()
        .env("PROTOREG_MAX_UNSIZED_BYTES", &cap)
        .args(without_size(materialize_args(&protoc, "zip", &cache, &out)))
        .args(["--json", "--source", &endless, "--source", &huge])
        .args(["--source", &layout, "--source", &good]));
    assert!(o.status.success(), "{}", text(&o));
    // The endless body was cut off at the cap, not read for its 4 GiB.
    assert!(started.elapsed() < Duration::from_secs(60));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["source"], good.as_str());
    assert_eq!(json["size"], protoc.size);
    let failed = json["failed_sources"].as_array().unwrap();
    assert_eq!(failed.len(), 3, "{json}");
    for (f, source) in failed.iter().zip([&endless, &huge, &layout]) {
        assert_eq!(f["source"], source.as_str());
        let reason = f["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("more than {cap} bytes"))
                && reason.contains("unknown size")
                && reason.contains("PROTOREG_MAX_UNSIZED_BYTES"),
            "{source}: {reason}"
        );
    }
    assert!(out.join("bin/protoc").is_file());
    assert!(absent_or_empty(&cache.join("tmp")), "debris left in tmp/");

    // A cap below the artifact: every source fails, exit 1, and the error says how to raise
    // it. A known size is not capped.
    let small = (protoc.size - 1).to_string();
    let out = tmp.path().join("out2");
    let o = run(protoreg()
        .env("PROTOREG_MAX_UNSIZED_BYTES", &small)
        .args(without_size(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache2"),
            &out,
        )))
        .args(["--source", &good]));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("more than {small} bytes"))
            && err.contains("PROTOREG_MAX_UNSIZED_BYTES"),
        "{err}"
    );
    assert!(absent_or_empty(&out));
    let o = run(protoreg()
        .env("PROTOREG_MAX_UNSIZED_BYTES", "1")
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache3"),
            &out,
        ))
        .args(["--source", &good]));
    assert!(o.status.success(), "{}", text(&o));
}

/// A small raw artifact (64 bytes) and its pin, in `dir`.
fn small_artifact(dir: &std::path::Path) -> Pinned {
    let path = dir.join("tool.bin");
    let bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    std::fs::write(&path, bytes).unwrap();
    pin(&path)
}

fn raw_args(p: &Pinned, cache: &std::path::Path, out: &std::path::Path) -> Vec<String> {
    vec![
        "materialize".into(),
        "--sha256".into(),
        p.sha256.to_string(),
        "--size".into(),
        p.size.to_string(),
        "--format".into(),
        "raw".into(),
        "--cache-dir".into(),
        cache.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--json".into(),
    ]
}

#[test]
fn a_trickling_source_is_timed_out_over_oci_as_over_http() {
    // Both sources send the right bytes, one every 400 ms: no read ever waits the 2 s
    // timeout, but 64 bytes take ~26 s, far past the budget for 64 bytes (the timeout plus
    // 64 bytes at 256 KiB/s). Each must fail at about the timeout and hand over to the next.
    let tmp = scratch();
    let art = small_artifact(tmp.path());
    let server = HttpServer::start();
    let pause = Duration::from_millis(400);
    let http_trickle = server.route("/trickle.bin", Route::Trickle(art.path.clone(), pause));
    // The server speaks just enough of the distribution API: the blob by its digest.
    server.route(
        &format!("/v2/ns/tools/x/blobs/{}", art.sha256.oci()),
        Route::Trickle(art.path.clone(), pause),
    );
    let oci_trickle = format!("oci://{}/ns/tools/x", server.addr);
    let good = server.route("/good.bin", Route::File(art.path.clone()));
    for bad in [&oci_trickle, &http_trickle] {
        let out = tmp.path().join(format!("out-{}", bad.len()));
        let started = std::time::Instant::now();
        let o = run(protoreg()
            .env("PROTOREG_TIMEOUT", "2")
            .args(raw_args(
                &art,
                &tmp.path().join(format!("c-{}", bad.len())),
                &out,
            ))
            .args(["--plain-http", "--source", bad, "--source", &good]));
        let took = started.elapsed();
        assert!(o.status.success(), "{bad}: {}", text(&o));
        assert!(took < Duration::from_secs(12), "{bad}: took {took:?}");
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(json["source"], good.as_str(), "{bad}: {json}");
        assert_eq!(json["failed_sources"][0]["source"], bad.as_str());
        let reason = json["failed_sources"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("timed out"), "{bad}: {reason}");
        assert!(out.join("artifact").is_file());
    }
}

#[test]
fn a_trickling_registry_answer_fails_the_operators_call_too() {
    // `versions` reads the tag list: trickled at one byte per 300 ms, it must fail within the
    // document budget (the 1 s timeout plus 4 MiB at 256 KiB/s, 17 s), not after 5 minutes.
    let tmp = scratch();
    let tags = tmp.path().join("tags.json");
    let mut body = String::from(r#"{"name":"ns/tools/protoc","tags":["#);
    while body.len() < 1000 {
        body.push_str(r#""v36.2-linux-x86_64","#);
    }
    body.push_str(r#""v36.2"]}"#);
    std::fs::write(&tags, body).unwrap();
    let server = HttpServer::start();
    server.route(
        "/v2/ns/tools/protoc/tags/list",
        Route::Trickle(tags, Duration::from_millis(300)),
    );
    let started = std::time::Instant::now();
    let o = run(protoreg()
        .current_dir(tmp.path())
        .env("PROTOREG_TIMEOUT", "1")
        .env("PROTOREG_REGISTRY", format!("http://{}/ns", server.addr))
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args(["versions", "protoc"]));
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(took < Duration::from_secs(40), "took {took:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("list tags") && err.contains("timed out"),
        "{err}"
    );
}

#[test]
fn a_redirect_to_another_scheme_is_refused_by_name() {
    let tmp = scratch();
    let art = small_artifact(tmp.path());
    let server = HttpServer::start();
    let to_file = server.route("/r.bin", Route::Redirect("file:///etc/passwd".into()));
    let good = server.route("/good.bin", Route::File(art.path.clone()));
    // A relative redirect to a real file is still followed.
    let relative = server.route("/rel.bin", Route::Redirect("good.bin".into()));
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .args(raw_args(&art, &tmp.path().join("cache"), &out))
        .args(["--source", &to_file, "--source", &relative]));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["source"], relative.as_str(), "{json}");
    let reason = json["failed_sources"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("file:///etc/passwd") && reason.contains("`file:` scheme"),
        "{reason}"
    );
    assert!(!reason.contains("too many"), "{reason}");
    assert_eq!(server.count("/good.bin"), 1);
    let _ = good;
}
