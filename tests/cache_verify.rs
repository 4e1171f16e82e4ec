//! A cache that cannot be changed through its outputs and does not trust itself: `--link
//! auto` (clone, else copy) and `copy` outputs are the user's, a hardlinked one is the cache's
//! (and `cache verify` sees a change made through it); a replaced blob is refetched, never
//! extracted; a planted symlink is never served; `cache verify` names every problem and
//! `--repair` removes it so the next materialize restores a clean cache.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::http::{HttpServer, Route};
use common::*;

/// materialize `p` into `out` from `url`, with `extra` arguments.
fn materialize(p: &Pinned, format: &str, cache: &Path, out: &Path, extra: &[&str]) -> Output {
    run(protoreg()
        .args(materialize_args(p, format, cache, out))
        .args(extra))
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn append(path: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn protoc_tree(cache: &Path) -> PathBuf {
    cache_trees(cache)
        .into_iter()
        .find(|t| t.join("bin/protoc").is_file())
        .expect("protoc's tree")
}

#[test]
fn writing_into_an_auto_or_copy_output_never_changes_the_cache_but_hardlink_does() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server.route("/p.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    let cache = tmp.path().join("cache");

    // The default is auto: a clone where the file system can, else a copy (this says which).
    let first = tmp.path().join("first");
    let o = materialize(
        &protoc,
        "zip",
        &cache,
        &first,
        &["--json", "--source", &url],
    );
    assert!(o.status.success(), "{}", text(&o));
    let method = json(&o)["link"].as_str().unwrap().to_string();
    assert!(method == "clone" || method == "copy", "{method}");
    eprintln!("--link auto on this file system: {method}");
    let original = tree_listing(&first);
    assert_eq!(
        cache_manifests(&cache).len(),
        1,
        "a manifest beside the tree"
    );

    // Write into the auto output and into a copy output: the cache does not change.
    for (link, expect) in [("auto", method.as_str()), ("copy", "copy")] {
        let out = tmp.path().join(format!("out-{link}"));
        let o = materialize(
            &protoc,
            "zip",
            &cache,
            &out,
            &["--json", "--offline", "--link", link],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(json(&o)["link"], expect, "{link}");
        append(&out.join("bin/protoc"), b"tampered through the output");
        fs::write(out.join("include/google/protobuf/any.proto"), "changed").unwrap();
        let again = tmp.path().join(format!("again-{link}"));
        let o = materialize(&protoc, "zip", &cache, &again, &["--offline"]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(tree_listing(&again), original, "{link}");
        let v = cache_verify(&cache, &[]);
        assert_eq!(v.status.code(), Some(0), "{link}: {}", text(&v));
    }

    // A hardlinked output shares the cache's inodes: with its write bit back (root needs not
    // even that), writing to it changes the cache. The README says so; `cache verify` sees
    // it, and `--repair` plus a materialize restore the cache.
    let linked = tmp.path().join("linked");
    let o = materialize(
        &protoc,
        "zip",
        &cache,
        &linked,
        &["--json", "--offline", "--link", "hardlink"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["link"], "hardlink");
    make_writable(&linked, &linked.join("bin/protoc"));
    append(&linked.join("bin/protoc"), b"tampered through a hardlink");
    let tree = protoc_tree(&cache);
    assert_ne!(
        hash_of(&tree.join("bin/protoc")),
        hash_of(&first.join("bin/protoc"))
    );
    let v = cache_verify(&cache, &[]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(out.contains("`bin/protoc` changed size"), "{out}");
    let v = cache_verify(&cache, &["--repair"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(cache_trees(&cache).is_empty());
    let restored = tmp.path().join("restored");
    let o = materialize(&protoc, "zip", &cache, &restored, &["--offline"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree_listing(&restored), original);
    let v = cache_verify(&cache, &[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
}

fn hash_of(p: &Path) -> String {
    protoreg::pipeline::verify::hash_file(p)
        .unwrap()
        .0
        .to_string()
}

/// The arguments of a protoc materialize with no --executable: another tree of the same blob.
fn plain_args(p: &Pinned, cache: &Path, out: &Path) -> Vec<String> {
    let mut a = materialize_args(p, "zip", cache, out);
    let i = a.iter().position(|x| x == "--executable").unwrap();
    a.drain(i..i + 2);
    a
}

fn plain_tree_path(p: &Pinned, cache: &Path) -> PathBuf {
    use protoreg::pipeline::extract::{Format, Layout};
    let key = protoreg::pipeline::resolve::Artifact {
        expected: protoreg::pipeline::verify::Expected {
            sha256: p.sha256.clone(),
            size: Some(p.size),
        },
        layout: Layout {
            format: Format::Zip,
            strip_prefix: None,
            executables: vec![],
        },
    }
    .tree_key();
    let hex = key.hex();
    cache.join("trees-v1").join(&hex[..2]).join(hex)
}

#[test]
fn a_replaced_blob_is_refetched_never_extracted() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server.route("/p.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let o = materialize(
        &protoc,
        "zip",
        &cache,
        &tmp.path().join("o1"),
        &["--source", &url],
    );
    assert!(o.status.success(), "{}", text(&o));

    // Other bytes of the same size under the blob's name (the size alone cannot tell).
    let blob = cache_blob(&cache, &protoc);
    make_writable(&cache, &blob);
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();

    // A new tree of that blob (no --executable: another key) is not made from it: offline,
    // the run fails and says why; nothing reaches --out.
    let out = tmp.path().join("o2");
    let o = run(protoreg()
        .args(plain_args(&protoc, &cache, &out))
        .arg("--offline"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("does not match its pin"), "{err}");
    assert!(absent_or_empty(&out));
    assert!(!plain_tree_path(&protoc, &cache).exists());
    assert!(!blob.exists(), "the bad blob is gone from the cache");

    // With a source, it is fetched again and the tree is made from verified bytes.
    let o = run(protoreg()
        .args(plain_args(&protoc, &cache, &out))
        .args(["--json", "--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    let j = json(&o);
    assert_eq!(j["cache"], "miss");
    assert_eq!(j["source"], url.as_str());
    assert_eq!(server.count("/p.zip"), 2);
    assert_eq!(hash_of(&blob), protoc.sha256.to_string());
    assert_eq!(
        hash_of(&out.join("bin/protoc")),
        hash_of(&tmp.path().join("o1/bin/protoc"))
    );

    // A truncated blob, likewise.
    let blob_bytes = fs::read(&blob).unwrap();
    make_writable(&cache, &blob);
    fs::write(&blob, &blob_bytes[..1000]).unwrap();
    let mut args = materialize_args(&protoc, "zip", &cache, &tmp.path().join("o3"));
    let i = args.iter().position(|x| x == "bin/protoc").unwrap();
    args.insert(i + 1, "readme.txt".into());
    args.insert(i + 1, "--executable".into());
    let o = run(protoreg().args(&args).args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(server.count("/p.zip"), 3);
    let v = cache_verify(&cache, &[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
}

#[test]
fn a_planted_symlink_is_never_served() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server.route("/p.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let o = materialize(
        &protoc,
        "zip",
        &cache,
        &tmp.path().join("o1"),
        &["--source", &url],
    );
    assert!(o.status.success(), "{}", text(&o));

    // An attacker's tree, linked where the tree of another layout of the same blob belongs.
    let evil = tmp.path().join("evil");
    fs::create_dir_all(evil.join("bin")).unwrap();
    fs::write(evil.join("bin/protoc"), "#!/bin/sh\necho evil\n").unwrap();
    let planted = plain_tree_path(&protoc, &cache);
    fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&evil, &planted).unwrap();

    // The lookup refuses it, the tree is made from the blob, and the link is replaced by it
    // (the "another process finished first" branch no longer serves what it finds).
    let out = tmp.path().join("o2");
    let o = run(protoreg()
        .args(plain_args(&protoc, &cache, &out))
        .args(["--json", "--offline"]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        hash_of(&out.join("bin/protoc")),
        hash_of(&tmp.path().join("o1/bin/protoc"))
    );
    let m = fs::symlink_metadata(&planted).unwrap();
    assert!(m.is_dir() && !m.file_type().is_symlink());
    assert_eq!(
        fs::read_to_string(evil.join("bin/protoc")).unwrap(),
        "#!/bin/sh\necho evil\n"
    );
    // A hit now serves the real tree.
    let out3 = tmp.path().join("o3");
    let o = run(protoreg()
        .args(plain_args(&protoc, &cache, &out3))
        .args(["--json", "--offline"]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["cache"], "hit");
    assert_eq!(tree_listing(&out3), tree_listing(&out));

    // A planted link over a fan directory: never followed; verify names it, repair removes it.
    let tree = protoc_tree(&cache);
    let fan = tree.parent().unwrap().to_path_buf();
    let moved = tmp.path().join("fan-elsewhere");
    make_writable(&cache, &fan);
    fs::rename(&fan, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &fan).unwrap();
    let out4 = tmp.path().join("o4");
    let o = materialize(&protoc, "zip", &cache, &out4, &["--offline"]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("symbolic link"),
        "{}",
        text(&o)
    );
    assert!(absent_or_empty(&out4));
    let v = cache_verify(&cache, &[]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("symbolic link"),
        "{}",
        text(&v)
    );
    let v = cache_verify(&cache, &["--repair"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(
        moved.join(tree.file_name().unwrap()).is_dir(),
        "the link's target is not touched"
    );
    let o = materialize(&protoc, "zip", &cache, &out4, &["--offline"]);
    assert!(o.status.success(), "{}", text(&o));
    let v = cache_verify(&cache, &[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
}

#[test]
fn cache_verify_names_each_problem_and_repair_restores_a_clean_cache() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let buf = pin(&fixture(BUF_TGZ));
    let server = HttpServer::start();
    let purl = server.route("/p.zip", Route::File(protoc.path.clone()));
    let burl = server.route("/b.tgz", Route::File(buf.path.clone()));
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let get = |out: &str| {
        let (p, b) = (
            tmp.path().join(format!("{out}-p")),
            tmp.path().join(format!("{out}-b")),
        );
        let o = materialize(&protoc, "zip", &cache, &p, &["--source", &purl]);
        assert!(o.status.success(), "{}", text(&o));
        let o = materialize(&buf, "tar.gz", &cache, &b, &["--source", &burl]);
        assert!(o.status.success(), "{}", text(&o));
        (tree_listing(&p), tree_listing(&b))
    };
    let before = get("a");

    // Clean: exit 0, every blob and tree counted.
    let v = cache_verify(&cache, &["--json"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let j = json(&v);
    assert_eq!(j["clean"], true);
    assert_eq!(
        (j["blobs"].as_u64(), j["trees"].as_u64()),
        (Some(2), Some(2)),
        "{j}"
    );

    // Tamper: a changed file and an extra file in protoc's tree, a missing file in buf's, a
    // truncated blob.
    let ptree = protoc_tree(&cache);
    let btree = cache_trees(&cache)
        .into_iter()
        .find(|t| t.join("bin/buf").is_file())
        .unwrap();
    let changed = ptree.join("include/google/protobuf/any.proto");
    make_writable(&cache, &changed);
    append(&changed, b"// changed\n");
    fs::write(ptree.join("include/extra.txt"), "extra").unwrap();
    let lint = btree.join("bin/protoc-gen-buf-lint");
    assert!(lint.is_file());
    make_writable(&cache, &lint);
    fs::remove_file(&lint).unwrap();
    let bblob = cache_blob(&cache, &buf);
    make_writable(&cache, &bblob);
    let f = fs::OpenOptions::new().write(true).open(&bblob).unwrap();
    f.set_len(1234).unwrap();

    let v = cache_verify(&cache, &[]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    let report = String::from_utf8_lossy(&v.stdout).into_owned();
    for needle in [
        "`include/google/protobuf/any.proto` changed size",
        "`include/extra.txt` was added",
        "`bin/protoc-gen-buf-lint` is missing",
        "1234 bytes with sha256",
    ] {
        assert!(report.contains(needle), "{needle}:\n{report}");
    }
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("hint:"),
        "{}",
        text(&v)
    );
    let j = json(&cache_verify(&cache, &["--json"]));
    assert_eq!(j["clean"], false);
    let problems = j["problems"].as_array().unwrap();
    // Each wrong entry (making it writable to tamper shows as a mode change too).
    let mut wrong: Vec<String> = problems.iter().map(|p| p["path"].to_string()).collect();
    wrong.dedup();
    assert_eq!(wrong.len(), 3, "two trees and a blob: {j}");
    assert!(problems
        .iter()
        .any(|p| p["kind"] == "blob" && p["path"] == bblob.display().to_string()));

    // Repair removes exactly what is wrong; the next materialize restores it.
    let v = cache_verify(&cache, &["--repair", "--json"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    let removed = json(&v)["removed"].as_array().unwrap().len();
    assert_eq!(
        removed,
        5,
        "two trees, their manifests, a blob: {}",
        text(&v)
    );
    assert!(!ptree.exists() && !btree.exists() && !bblob.exists());
    assert!(
        cache_blob(&cache, &protoc).is_file(),
        "a sound blob is kept"
    );
    let v = cache_verify(&cache, &[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert_eq!(get("b"), before);
    let v = cache_verify(&cache, &["--json"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert_eq!(json(&v)["trees"], 2);

    // A tree installed before manifests existed: unverifiable, not wrong; --repair removes it.
    let manifests = cache_manifests(&cache);
    assert_eq!(manifests.len(), 2);
    fs::remove_file(&manifests[0]).unwrap();
    let v = cache_verify(&cache, &["--json"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert_eq!(json(&v)["unverifiable"].as_array().unwrap().len(), 1);
    let v = cache_verify(&cache, &["--repair"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert_eq!(cache_trees(&cache).len(), 1);
    let v = cache_verify(&cache, &["--json"]);
    assert!(json(&v)["unverifiable"].as_array().unwrap().is_empty());

    // Not a cache: refused (exit 2), nothing created there; no cache at all: exit 0.
    let not_cache = tmp.path().join("not-a-cache");
    fs::create_dir_all(&not_cache).unwrap();
    let v = cache_verify(&not_cache, &["--repair"]);
    assert_eq!(v.status.code(), Some(2), "{}", text(&v));
    assert!(absent_or_empty(&not_cache));
    let v = cache_verify(&tmp.path().join("absent"), &[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(!tmp.path().join("absent").exists());
}

#[test]
fn verify_and_repair_work_for_an_unprivileged_user() {
    let user = common::user::User::unprivileged();
    let home = user.tempdir();
    let cache = home.path().join("cache");
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server.route("/p.zip", Route::File(protoc.path.clone()));
    let as_user = |args: Vec<String>, extra: &[&str]| {
        run(user
            .protoreg()
            .current_dir(home.path())
            .args(args)
            .args(extra))
    };
    let verify = |extra: &[&str]| {
        let mut a: Vec<String> = vec!["cache".into(), "verify".into(), "--cache-dir".into()];
        a.push(cache.display().to_string());
        as_user(a, extra)
    };
    let out = home.path().join("o1");
    let o = as_user(
        materialize_args(&protoc, "zip", &cache, &out),
        &["--json", "--source", &url],
    );
    assert!(o.status.success(), "{}", text(&o));
    let original = tree_listing(&out);
    let v = verify(&[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));

    // The user owns the cache: a change through `chmod u+w` is found, and repaired, by them.
    let target = protoc_tree(&cache).join("readme.txt");
    let tamper = user
        .command("sh")
        .arg("-c")
        .arg("chmod u+w \"$1\" && echo changed >> \"$1\"")
        .arg("sh")
        .arg(&target)
        .output()
        .unwrap();
    assert!(tamper.status.success(), "{}", text(&tamper));
    let v = verify(&[]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(String::from_utf8_lossy(&v.stdout).contains("`readme.txt` changed"));
    let v = verify(&["--repair"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(cache_trees(&cache).is_empty(), "{}", text(&v));
    let again = home.path().join("o2");
    let o = as_user(
        materialize_args(&protoc, "zip", &cache, &again),
        &["--offline"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(tree_listing(&again), original);
    let v = verify(&[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
}
