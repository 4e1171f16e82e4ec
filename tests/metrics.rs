//! metrics after a known sequence of operations show the exact counts, as JSON and as
//! Prometheus text, kept across runs in the cache directory.

mod common;

use common::http::{HttpServer, Route};
use common::ops::*;
use common::*;

#[test]
fn counters_after_a_known_sequence() {
    let http = HttpServer::start();
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    let protoc = pin(&fixture(PROTOC_ZIP));
    let buf = pin(&fixture(BUF_TGZ));
    let win = pin(&fixture("protoc-36.2-win64.zip"));
    let good_p = http.route("/p.zip", Route::File(protoc.path.clone()));
    let good_b = http.route("/b.tgz", Route::File(buf.path.clone()));
    let broken = http.route("/500", Route::Status(500));
    let corrupt = http.route("/w.zip", Route::Corrupt(win.path.clone()));
    let mat = |p: &Pinned, format: &str, sources: &[&str]| {
        let out = scratch();
        let mut args = materialize_args(p, format, &ws.cache(), &out.path().join("t"));
        if format == "zip" && p.path.ends_with("protoc-36.2-win64.zip") {
            args.retain(|a| a != "bin/protoc" && a != "--executable");
        }
        for s in sources {
            args.extend(["--source".to_string(), s.to_string()]);
        }
        run(protoreg().args(&args)).status.code()
    };
    assert_eq!(mat(&protoc, "zip", &[&good_p]), Some(0)); // miss, pull
    assert_eq!(mat(&protoc, "zip", &[&good_p]), Some(0)); // hit
    assert_eq!(mat(&buf, "tar.gz", &[&broken, &good_b]), Some(0)); // miss, fallback, pull
    assert_eq!(mat(&win, "zip", &[&corrupt]), Some(1)); // miss, verification failure, error
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

    let m = ws.json(&["metrics", "--json"]);
    let c = &m["counters"];
    let expect = [
        ("pulls", 2),
        ("cache_hits", 1),
        ("cache_misses", 3),
        ("bytes_downloaded", protoc.size + buf.size),
        ("fallbacks", 1),
        ("verification_failures", 1),
        ("errors", 1),
        ("publish_artifacts", 2),
        ("publish_skipped", 2),
        ("blobs_uploaded", 1),
        ("bytes_uploaded", protoc.size),
    ];
    for (k, v) in expect {
        assert_eq!(c[k], v, "{k}: {m}");
    }
    assert_eq!(m["durations_ms"]["materialize"]["count"], 4, "{m}");
    assert_eq!(m["durations_ms"]["publish"]["count"], 2, "{m}");
    assert!(m["storage"]["cache_bytes"].as_u64().unwrap() > protoc.size + buf.size);

    let out = ws.run(&["metrics", "--prometheus"]);
    assert!(out.status.success());
    let prom = String::from_utf8_lossy(&out.stdout);
    for line in [
        "protoreg_pulls_total 2",
        "protoreg_cache_hits_total 1",
        "protoreg_verification_failures_total 1",
        "# TYPE protoreg_fallbacks_total counter",
        "protoreg_command_duration_seconds_count{command=\"materialize\"} 4",
    ] {
        assert!(
            prom.lines().any(|l| l == line),
            "missing `{line}` in\n{prom}"
        );
    }

    // The audit log: one line per operation, outcomes as they happened.
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    let mats: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["op"] == "materialize")
        .collect();
    let outcomes: Vec<&str> = mats
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "ok", "ok", "failed"]);
    assert_eq!(mats[1]["source"], "cache");
    assert_eq!(mats[0]["digest"], format!("sha256:{}", protoc.sha256));
}

/// A reader that stops early (`protoreg metrics | head -1`) closes the pipe: the run ends
/// quietly with status 0, as a Unix tool ends on SIGPIPE, not with a panic (status 101).
#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    let tmp = common::scratch();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = common::protoreg()
        .arg("metrics")
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
