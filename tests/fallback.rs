//! Every kind of failing source hands over to the next; with no good source the run fails
//! with exit 1, names every source, and leaves no output.

mod common;

use std::time::Duration;

use common::http::{HttpServer, Route};
use common::*;
use protoreg::extract::Format;

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
        let tmp = tempfile::tempdir().unwrap();
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
    let tmp = tempfile::tempdir().unwrap();
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
    let tmp = tempfile::tempdir().unwrap();
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
    let tmp = tempfile::tempdir().unwrap();
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
