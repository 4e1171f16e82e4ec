//! Many Buck2 actions asking for the same pin at once: one download, identical trees.
//! A process killed at any moment never leaves an entry that looks complete but is not.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::http::{HttpServer, Route};
use common::*;

#[test]
fn sixteen_processes_share_one_download() {
    let buf = pin(&fixture(BUF_TGZ));
    let server = HttpServer::start();
    // Slow enough that all sixteen are waiting while the first one downloads.
    let url = server.route(
        "/buf.tar.gz",
        Route::Slow(buf.path.clone(), Duration::from_millis(1)),
    );
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let children: Vec<_> = (0..16)
        .map(|i| {
            protoreg()
                .args(materialize_args(
                    &buf,
                    "tar.gz",
                    &cache,
                    &tmp.path().join(format!("out{i}")),
                ))
                .args(["--source", &url])
                // Both link modes race for the one install; copies only for a quarter,
                // which keeps the test's disk use near 0.5 GB rather than 1.5 GB.
                .args(["--link", if i % 4 == 0 { "copy" } else { "hardlink" }])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_eq!(
        server.count("/buf.tar.gz"),
        1,
        "the artifact must be downloaded exactly once"
    );
    let first = tree_listing(&tmp.path().join("out0"));
    assert!(first.iter().any(|(p, _, x)| p == "bin/buf" && *x != 0));
    for i in 1..16 {
        assert_eq!(
            tree_listing(&tmp.path().join(format!("out{i}"))),
            first,
            "out{i}"
        );
    }
    assert_eq!(cache_trees(&cache).len(), 1);
}

#[test]
fn sigkill_at_random_points_never_leaves_a_false_entry() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let buf = pin(&fixture(BUF_TGZ));
    let server = HttpServer::start();
    let protoc_url = server.route(
        "/p.zip",
        Route::Slow(protoc.path.clone(), Duration::from_micros(300)),
    );
    let buf_url = server.route("/b.tgz", Route::File(buf.path.clone()));
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    // Deterministic pseudo-random delays spread over fetch and extraction.
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut delays = Vec::new();
    for i in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (pin_, format, url) = if i % 2 == 0 {
            (&protoc, "zip", &protoc_url)
        } else {
            (&buf, "tar.gz", &buf_url)
        };
        let delay = Duration::from_millis(5 + seed % 600);
        delays.push(delay);
        let out = tmp.path().join(format!("killed{i}"));
        let mut child = protoreg()
            .args(materialize_args(pin_, format, &cache, &out))
            .args(["--source", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever exists in the cache must be complete and correct.
        for tree in cache_trees(&cache) {
            let listing = tree_listing(&tree);
            let complete = listing
                .iter()
                .any(|(p, _, x)| (p == "bin/protoc" || p == "bin/buf") && *x != 0);
            assert!(
                complete,
                "kill {i} after {delay:?} left an incomplete entry {}",
                tree.display()
            );
        }
        for blob in std::fs::read_dir(cache.join("blobs-v1/sha256"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(blob.path()).unwrap().flatten() {
                let (sha, _) = protoreg::pipeline::verify::hash_file(&f.path()).unwrap();
                assert_eq!(
                    sha.hex(),
                    f.file_name().to_string_lossy(),
                    "kill {i}: unverified blob"
                );
            }
        }
    }
    // The next run of each succeeds, and agrees with a clean materialization.
    let started = Instant::now();
    for (p, format, url) in [(&protoc, "zip", &protoc_url), (&buf, "tar.gz", &buf_url)] {
        let out = tmp.path().join(format!("after-{format}"));
        let o = run(protoreg()
            .args(materialize_args(p, format, &cache, &out))
            .args(["--source", url]));
        assert!(o.status.success(), "{}", text(&o));
        let fresh = tmp.path().join(format!("fresh-{format}"));
        let o = run(protoreg()
            .args(materialize_args(
                p,
                format,
                &tmp.path().join("fresh-cache"),
                &fresh,
            ))
            .args(["--source", url]));
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(tree_listing(&out), tree_listing(&fresh));
    }
    assert!(started.elapsed() < Duration::from_secs(120));
    // Every tree the kills left has the manifest it was installed with, and matches it.
    let v = cache_verify(&cache, &["--json"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(
        report["unverifiable"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
}
