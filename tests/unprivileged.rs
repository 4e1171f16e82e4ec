//! The cache as an ordinary user sees it. Buck2 users are not root, and root skips exactly
//! the permission checks a read-only cache meets: renaming a directory into a new parent
//! needs write permission on it, removing a read-only tree needs its directories made
//! writable first. These tests run protoreg as `nobody` when the suite runs as root (CI), as
//! the current user otherwise: cold materialize from HTTP and from a registry, a cache hit, a
//! hardlinked output, a retry after a killed run, cleanup of old entries, and eight cold
//! materializes of one pin at once.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::http::{HttpServer, Route};
use common::user::User;
use common::*;

fn run_as(user: &User, args: &[String], extra: &[&str], cwd: &Path) -> Output {
    run(user.protoreg().current_dir(cwd).args(args).args(extra))
}

/// Every file and directory under `root` is owned by `user`; returns how many there are.
fn owned_by(user: &User, root: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        assert_eq!(m.uid(), user.uid, "{} is not the user's", p.display());
        n += 1;
        if m.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    n
}

/// The cache's tree is read-only throughout, its top directory included.
fn assert_read_only_tree(tree: &Path) {
    let mut stack = vec![tree.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        if m.file_type().is_symlink() {
            continue;
        }
        assert_eq!(
            m.permissions().mode() & 0o222,
            0,
            "{} is writable in the cache",
            p.display()
        );
        if m.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
}

fn version(user: &User, exe: &Path) -> String {
    let o = user.command(exe).arg("--version").output().unwrap();
    assert!(o.status.success(), "{}: {}", exe.display(), text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn age(path: &Path, days: u32) {
    let o = Command::new("touch")
        .args(["-h", "-d", &format!("{days} days ago")])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn cold_materialize_hit_and_hardlink_as_an_unprivileged_user() {
    let user = User::unprivileged();
    let home = user.tempdir();
    let cache = home.path().join("cache");
    let server = HttpServer::start();
    let buf = pin(&fixture(BUF_TGZ));
    let url = server.route("/buf.tar.gz", Route::File(buf.path.clone()));

    // Cold, from HTTP.
    let out = home.path().join("buf");
    let o = run_as(
        &user,
        &materialize_args(&buf, "tar.gz", &cache, &out),
        &["--json", "--source", &url],
        home.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "miss");
    assert_eq!(version(&user, &out.join("bin/buf")), "1.75.0");
    assert!(owned_by(&user, &cache) > 5);
    let trees = cache_trees(&cache);
    assert_eq!(trees.len(), 1, "{trees:?}");
    assert_read_only_tree(&trees[0]);

    // A hit: no source at all.
    let hit = home.path().join("buf-hit");
    let o = run_as(
        &user,
        &materialize_args(&buf, "tar.gz", &cache, &hit),
        &["--json", "--offline"],
        home.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "hit");
    assert_eq!(tree_listing(&hit), tree_listing(&out));

    // Hardlinked: the output's file is the cache's (read-only) inode.
    let linked = home.path().join("buf-linked");
    let o = run_as(
        &user,
        &materialize_args(&buf, "tar.gz", &cache, &linked),
        &["--offline", "--link", "hardlink"],
        home.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        fs::metadata(linked.join("bin/buf")).unwrap().ino(),
        fs::metadata(trees[0].join("bin/buf")).unwrap().ino()
    );
    assert_eq!(version(&user, &linked.join("bin/buf")), "1.75.0");

    // Copies and hardlinked outputs alike are the user's to remove.
    for o in [&out, &hit, &linked] {
        let rm = user.command("rm").arg("-rf").arg(o).output().unwrap();
        assert!(rm.status.success() && !o.exists(), "{}", text(&rm));
    }
    assert_eq!(cache_trees(&cache).len(), 1);

    // Cold, from the registry (a zip this time), into the same cache.
    let (reg, protoc) = registry_with_protoc();
    let out = home.path().join("protoc");
    let source = format!("oci://{}/ns/tools/protoc", reg.host);
    let o = run_as(
        &user,
        &materialize_args(&protoc, "zip", &cache, &out),
        &["--plain-http", "--json", "--source", &source],
        home.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "miss");
    assert_eq!(version(&user, &out.join("bin/protoc")), "libprotoc 36.2");
    assert_eq!(cache_trees(&cache).len(), 2);
    for tree in cache_trees(&cache) {
        assert_read_only_tree(&tree);
    }
    owned_by(&user, &cache);
}

/// Entries of `tmp/` (an unfinished download or extraction).
fn tmp_entries(cache: &Path) -> Vec<PathBuf> {
    fs::read_dir(cache.join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_killed_run_is_retried_and_its_debris_cleaned_up() {
    let user = User::unprivileged();
    let home = user.tempdir();
    let cache = home.path().join("cache");
    let server = HttpServer::start();
    let buf = pin(&fixture(BUF_TGZ));
    let slow = server.route(
        "/slow.tar.gz",
        Route::Slow(buf.path.clone(), Duration::from_millis(20)),
    );
    let url = server.route("/buf.tar.gz", Route::File(buf.path.clone()));

    // Killed mid-download (its staging tree and blob are in tmp/ by then).
    let mut child = user
        .protoreg()
        .current_dir(home.path())
        .args(materialize_args(
            &buf,
            "tar.gz",
            &cache,
            &home.path().join("killed"),
        ))
        .args(["--source", &slow])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tmp_entries(&cache).is_empty() {
        assert!(Instant::now() < deadline, "the download never started");
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "finished too soon");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(cache_trees(&cache).is_empty());
    assert!(absent_or_empty(&home.path().join("killed")));
    let debris = tmp_entries(&cache);
    assert!(!debris.is_empty());

    // The retry succeeds.
    let out = home.path().join("out");
    let o = run_as(
        &user,
        &materialize_args(&buf, "tar.gz", &cache, &out),
        &["--source", &url],
        home.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(version(&user, &out.join("bin/buf")), "1.75.0");
    assert_eq!(cache_trees(&cache).len(), 1);

    // The killed run's debris is fresh: cleanup keeps it (and the new entries).
    let o = run(user
        .protoreg()
        .current_dir(home.path())
        .args(["cleanup", "--json", "--cache-dir"])
        .arg(&cache));
    assert!(o.status.success(), "{}", text(&o));
    for d in &debris {
        assert!(d.exists(), "fresh debris removed: {}", d.display());
    }
    // A day later, it goes (its owner is dead); the entries, used now, stay.
    for d in &debris {
        age(d, 1);
    }
    let o = run(user
        .protoreg()
        .current_dir(home.path())
        .args(["cleanup", "--older-than", "12h", "--json", "--cache-dir"])
        .arg(&cache));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let removed = json["removed"].as_array().unwrap();
    assert_eq!(removed.len(), debris.len(), "{json}");
    assert!(removed.iter().all(|r| r["reason"] == "debris"), "{json}");
    assert!(tmp_entries(&cache).is_empty(), "{:?}", tmp_entries(&cache));
    assert_eq!(cache_trees(&cache).len(), 1);
}

#[test]
fn cleanup_removes_old_read_only_entries_as_an_unprivileged_user() {
    let user = User::unprivileged();
    let home = user.tempdir();
    let cache = home.path().join("cache");
    let server = HttpServer::start();
    let protoc = pin(&fixture(PROTOC_ZIP));
    let buf = pin(&fixture(BUF_TGZ));
    let p_url = server.route("/p.zip", Route::File(protoc.path.clone()));
    let b_url = server.route("/b.tgz", Route::File(buf.path.clone()));
    for (p, format, url) in [(&protoc, "zip", &p_url), (&buf, "tar.gz", &b_url)] {
        let out = home.path().join(format);
        let o = run_as(
            &user,
            &materialize_args(p, format, &cache, &out),
            &["--source", url],
            home.path(),
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_eq!(cache_trees(&cache).len(), 2);

    // protoc's tree and blob were last used ten days ago.
    let protoc_tree = cache_trees(&cache)
        .into_iter()
        .find(|t| t.join("bin/protoc").exists())
        .unwrap();
    let protoc_blob = cache
        .join("blobs-v1/sha256")
        .join(&protoc.sha256.hex()[..2])
        .join(protoc.sha256.hex());
    age(&protoc_tree, 10);
    age(&protoc_blob, 10);
    let o = run(user
        .protoreg()
        .current_dir(home.path())
        .args(["cleanup", "--older-than", "7d", "--json", "--cache-dir"])
        .arg(&cache));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["removed"].as_array().unwrap().len(), 2, "{json}");
    assert!(!protoc_tree.exists() && !protoc_blob.exists());
    assert_eq!(cache_trees(&cache).len(), 1);
    assert!(tmp_entries(&cache).is_empty());

    // Everything: the read-only trees go too, and leave nothing in tmp/.
    let o = run(user
        .protoreg()
        .current_dir(home.path())
        .args(["cleanup", "--older-than", "0", "--json", "--cache-dir"])
        .arg(&cache));
    assert!(o.status.success(), "{}", text(&o));
    assert!(cache_trees(&cache).is_empty());
    assert!(absent_or_empty(
        &cache.join("blobs-v1/sha256/").join(&buf.sha256.hex()[..2])
    ));
    assert!(tmp_entries(&cache).is_empty());

    // And the cache works again afterwards.
    let out = home.path().join("again");
    let o = run_as(
        &user,
        &materialize_args(&protoc, "zip", &cache, &out),
        &["--source", &p_url],
        home.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(version(&user, &out.join("bin/protoc")), "libprotoc 36.2");
}

#[test]
fn eight_concurrent_cold_materializes_as_an_unprivileged_user() {
    let user = User::unprivileged();
    let home = user.tempdir();
    let cache = home.path().join("cache");
    let server = HttpServer::start();
    let buf = pin(&fixture(BUF_TGZ));
    // Slow enough that the others are waiting while the first one downloads.
    let url = server.route(
        "/buf.tar.gz",
        Route::Slow(buf.path.clone(), Duration::from_millis(1)),
    );
    let children: Vec<_> = (0..8)
        .map(|i| {
            user.protoreg()
                .current_dir(home.path())
                .args(materialize_args(
                    &buf,
                    "tar.gz",
                    &cache,
                    &home.path().join(format!("out{i}")),
                ))
                .args(["--source", &url])
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
    assert_eq!(server.count("/buf.tar.gz"), 1, "one download for all eight");
    let first = tree_listing(&home.path().join("out0"));
    assert!(first.iter().any(|(p, _, x)| p == "bin/buf" && *x != 0));
    for i in 1..8 {
        assert_eq!(
            tree_listing(&home.path().join(format!("out{i}"))),
            first,
            "out{i}"
        );
    }
    let trees = cache_trees(&cache);
    assert_eq!(trees.len(), 1);
    assert_read_only_tree(&trees[0]);
    assert!(tmp_entries(&cache).is_empty(), "{:?}", tmp_entries(&cache));
    owned_by(&user, &cache);
}
