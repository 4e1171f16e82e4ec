//! cleanup of the cache (unused for a duration, least recently used beyond a size, debris),
//! with --dry-run and for real; only ever in a directory marked as a protoreg cache, and
//! never a fresh or locked entry of tmp/; registry retention with --dry-run and for real,
//! never deleting what a pin or a bundle references.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::http::{HttpServer, Route};
use common::ops::*;
use common::*;

fn age(path: &Path, days: u32) {
    let o = Command::new("touch")
        .args(["-h", "-d", &format!("{days} days ago")])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success());
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v = cache_trees(cache);
    for fan in std::fs::read_dir(cache.join("blobs-v1/sha256"))
        .into_iter()
        .flatten()
        .flatten()
    {
        v.extend(
            std::fs::read_dir(fan.path())
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
    }
    v.sort();
    v
}

#[test]
fn cache_cleanup_by_age_then_by_size() {
    let http = HttpServer::start();
    let reg = RegistryServer::start();
    let ws = Workspace::new(
        &reg.host,
        "http://127.0.0.1:9",
        "cache:\n  cleanup_older_than_days: 7\n",
    );
    let protoc = pin(&fixture(PROTOC_ZIP));
    let buf = pin(&fixture(BUF_TGZ));
    let materialize = |p: &Pinned, format: &str, name: &str| {
        let url = http.route(&format!("/{name}"), Route::File(p.path.clone()));
        let out = scratch();
        let mut args = materialize_args(p, format, &ws.cache(), &out.path().join("t"));
        args.extend(["--source".into(), url]);
        let o = run(protoreg().args(&args));
        assert!(o.status.success(), "{}", text(&o));
    };
    materialize(&protoc, "zip", "p.zip");
    materialize(&buf, "tar.gz", "b.tgz");
    let all = entries(&ws.cache());
    assert_eq!(all.len(), 4, "{all:?}");
    // protoc's blob and tree were last used 10 days ago; leave debris in tmp/.
    let tree_of_protoc = cache_trees(&ws.cache())
        .into_iter()
        .find(|t| t.join("bin/protoc").exists())
        .unwrap();
    age(&tree_of_protoc, 10);
    age(
        &ws.cache()
            .join("blobs-v1/sha256")
            .join(&protoc.sha256.hex()[..2])
            .join(protoc.sha256.hex()),
        10,
    );
    // Debris of a killed run of an older protoreg (no owner lock), from ten days ago.
    let debris = ws.cache().join("tmp/blob-12345-000000001");
    std::fs::write(&debris, b"half a download").unwrap();
    age(&debris, 10);

    // The default age comes from registry.yaml (7 days): dry run lists, removes nothing.
    let dry = ws.json(&["cleanup", "--dry-run", "--json"]);
    let removed = dry["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 3, "{dry}");
    assert_eq!(
        removed.iter().filter(|r| r["reason"] == "unused").count(),
        2
    );
    assert_eq!(
        removed.iter().filter(|r| r["reason"] == "debris").count(),
        1
    );
    assert_eq!(entries(&ws.cache()).len(), 4);

    let done = ws.json(&["cleanup", "--json"]);
    assert_eq!(done["removed"].as_array().unwrap().len(), 3);
    let left = entries(&ws.cache());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|p| !p.ends_with(protoc.sha256.hex())));
    assert!(!tree_of_protoc.exists());
    assert!(cache_trees(&ws.cache())
        .iter()
        .any(|t| t.join("bin/buf").exists()));

    // Least recently used beyond a size: protoc comes back (newest use), buf is older.
    materialize(&protoc, "zip", "p2.zip");
    for e in entries(&ws.cache()) {
        if e.to_string_lossy().contains(buf.sha256.hex()) || e.join("bin/buf").exists() {
            age(&e, 2);
        }
    }
    // protoc's zip and tree (about 4x the zip) fit; buf's do not.
    let limit = (protoc.size * 5).to_string();
    let lru = ws.json(&[
        "cleanup",
        "--older-than",
        "30d",
        "--max-size",
        &limit,
        "--json",
    ]);
    let removed = lru["removed"].as_array().unwrap();
    assert_eq!(removed.len(), 2, "{lru}");
    assert!(removed.iter().all(|r| r["reason"] == "lru"));
    assert!(cache_trees(&ws.cache())
        .iter()
        .all(|t| !t.join("bin/buf").exists()));
    assert!(cache_trees(&ws.cache())
        .iter()
        .any(|t| t.join("bin/protoc").exists()));

    // The seed's "clear the cache": --older-than 0.
    ws.json(&["cleanup", "--older-than", "0", "--json"]);
    assert!(entries(&ws.cache()).is_empty());

    let bad = ws.run(&["cleanup", "--older-than", "soon"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn registry_retention_spares_pins_and_bundles() {
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    // Released 2025-07-01 (the fake upstream's date): older than one day.
    let ws = Workspace::new(
        &reg.host,
        &gh.api_url(),
        "repositories:\n  tools:\n    retention_days: 1\n",
    );
    ws.json(&["publish", "--tool", "protoc", "--version", "36.2", "--json"]);
    let repo = format!("{NS}/tools/protoc");
    assert_eq!(tag_digests(&reg, &repo).len(), 6);

    let dry = ws.json(&["cleanup", "--registry", "--no-pins", "--dry-run", "--json"]);
    let arts = dry["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 6, "{dry}");
    assert!(arts.iter().all(|a| a["action"] == "delete"), "{dry}");
    assert_eq!(
        tag_digests(&reg, &repo).len(),
        6,
        "a dry run deletes nothing"
    );

    // A bundle that names protoc 36.2 protects every artifact of that version.
    let ws_b = Workspace::new(
        &reg.host,
        &gh.api_url(),
        "repositories:\n  tools:\n    retention_days: 1\nbundles:\n  go-development:\n    tools: {protoc: \"36.2\"}\n",
    );
    let kept = ws_b.json(&["cleanup", "--registry", "--no-pins", "--json"]);
    assert!(
        kept["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["action"] != "delete"),
        "{kept}"
    );
    assert_eq!(tag_digests(&reg, &repo).len(), 6);

    // So does a pin of protoc 36.2 (any platform of the version).
    let p = pin(&fixture(PROTOC_ZIP));
    let mut pins = protoreg::maintain::pins::Pins::default();
    pins.defaults.insert("protoc".into(), "36.2".into());
    pins.pins
        .entry("protoc".into())
        .or_default()
        .entry("36.2".into())
        .or_default()
        .insert(
            "linux-x86_64".into(),
            protoreg::maintain::pins::Pin {
                format: protoreg::pipeline::extract::Format::Zip,
                size: Some(p.size),
                sha256: p.sha256,
                url: "https://example.invalid/p.zip".into(),
            },
        );
    let pins_path = ws.dir.path().join("pins.bzl");
    std::fs::write(&pins_path, pins.render()).unwrap();
    let kept = ws.json(&[
        "cleanup",
        "--registry",
        "--json",
        "--pins",
        &pins_path.display().to_string(),
    ]);
    assert_eq!(kept["deleted"], 0, "{kept}");
    assert_eq!(tag_digests(&reg, &repo).len(), 6);

    let done = ws.json(&["cleanup", "--registry", "--no-pins", "--json"]);
    assert_eq!(done["deleted"], 6, "{done}");
    let client = reg.client(None);
    for tag in ["v36.2", "v36.2-linux-x86_64", "v36.2-windows-x86_64"] {
        assert!(
            client.manifest(&repo, tag).unwrap().is_none(),
            "{tag} survived"
        );
    }
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("retention.delete"))
            .count(),
        6
    );
}

#[test]
fn registry_retention_refuses_to_run_without_pins() {
    let reg = RegistryServer::start();
    let repo = format!("{NS}/tools/protoc");
    // Created 2025-01-01: older than the one-day retention.
    reg.push(
        &repo,
        &pin(&fixture(PROTOC_ZIP)),
        protoreg::pipeline::extract::Format::Zip,
        "v36.2-linux-x86_64",
        None,
    );
    let ws = Workspace::new(
        &reg.host,
        "http://127.0.0.1:9",
        "repositories:\n  tools:\n    retention_days: 1\n",
    );
    // No pins file in reach (the workspace is outside any repository): refused, exit 2,
    // nothing deleted.
    let o = ws.run(&["cleanup", "--registry", "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--pins") && err.contains("--no-pins"), "{err}");
    assert_eq!(tag_digests(&reg, &repo).len(), 1);
    // A --pins file that does not exist: the same.
    let o = ws.run(&["cleanup", "--registry", "--pins", "/nonexistent/pins.bzl"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(tag_digests(&reg, &repo).len(), 1);
    // --no-pins only goes with --registry, and not with --pins.
    let o = ws.run(&["cleanup", "--no-pins"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = ws.run(&["cleanup", "--registry", "--no-pins", "--pins", "x.bzl"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(tag_digests(&reg, &repo).len(), 1);
    // Explicitly without pins: applied.
    let done = ws.json(&["cleanup", "--registry", "--no-pins", "--json"]);
    assert_eq!(done["deleted"], 1, "{done}");
    assert!(tag_digests(&reg, &repo).is_empty());
}

/// Everything about a directory tree that cleanup could change: each path's type, mode,
/// owner, size, mtime, and content or link target.
fn snapshot(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            "dir".to_string()
        } else {
            format!("{:?}", std::fs::read(&p).unwrap())
        };
        out.push(format!(
            "{} {:o} {} {} {}.{} {what}",
            p.strip_prefix(root).unwrap().display(),
            m.mode(),
            m.uid(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ));
    }
    out.sort();
    out
}

/// A directory that is not a cache but looks like one to a careless cleaner: a `tmp/` with
/// old files (one named as protoreg names its debris), old "blobs", a user's file.
fn not_a_cache(dir: &Path) {
    std::fs::create_dir_all(dir.join("tmp/project/src")).unwrap();
    std::fs::write(dir.join("tmp/project/src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(dir.join("tmp/blob-12345-000000001"), "not debris").unwrap();
    std::fs::write(dir.join("tmp/notes.txt"), "keep me").unwrap();
    let fan = dir.join("blobs-v1/sha256/ab");
    std::fs::create_dir_all(&fan).unwrap();
    std::fs::write(fan.join("ab".repeat(32)), "someone's data").unwrap();
    std::fs::write(dir.join("thesis.tex"), "\\documentclass{article}").unwrap();
    for p in [
        dir.join("tmp/project/src/main.rs"),
        dir.join("tmp/project/src"),
        dir.join("tmp/project"),
        dir.join("tmp/blob-12345-000000001"),
        dir.join("tmp/notes.txt"),
        fan.join("ab".repeat(32)),
        dir.join("thesis.tex"),
    ] {
        age(&p, 400);
    }
}

#[test]
fn cleanup_refuses_a_directory_that_is_not_a_cache() {
    let t = scratch();
    let home = t.path().join("home");
    not_a_cache(&home);
    // A working directory whose registry.yaml puts the cache in the home directory.
    let cwd = t.path().join("project");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(
        cwd.join("registry.yaml"),
        "primary_registry:\n  url: \"127.0.0.1:9\"\n  namespace: \"ns\"\ncache:\n  local_cache_dir: \"~/\"\n",
    )
    .unwrap();
    let empty = t.path().join("elsewhere");
    std::fs::create_dir_all(&empty).unwrap();
    let before = snapshot(&home);

    let cmd = |cwd: &Path| {
        let mut c = protoreg();
        c.current_dir(cwd)
            .env("HOME", &home)
            .env_remove("XDG_CACHE_HOME")
            .env_remove("PROTOREG_CONFIG")
            .env_remove("PROTOREG_AUDIT_LOG");
        c
    };
    // The three ways of naming the directory.
    let named = |named_by: &str| -> Command {
        match named_by {
            "--cache-dir" => {
                let mut c = cmd(&empty);
                c.arg("--cache-dir").arg(&home);
                c
            }
            "PROTOREG_CACHE_DIR" => {
                let mut c = cmd(&empty);
                c.env("PROTOREG_CACHE_DIR", &home);
                c
            }
            _ => cmd(&cwd),
        }
    };
    for named_by in ["--cache-dir", "PROTOREG_CACHE_DIR", "cache.local_cache_dir"] {
        for extra in [&["--older-than", "0"][..], &[], &["--dry-run"]] {
            let o = run(named(named_by).arg("cleanup").args(extra));
            assert_eq!(
                o.status.code(),
                Some(2),
                "{named_by} {extra:?}: {}",
                text(&o)
            );
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains(&home.display().to_string())
                    && err.contains("not a protoreg cache")
                    && err.contains("CACHEDIR.TAG")
                    && err.contains(named_by)
                    && err.contains("hint:"),
                "{named_by}: {err}"
            );
            assert_eq!(snapshot(&home), before, "{named_by} {extra:?} changed it");
        }
    }

    // Another tool's cache directory tag (Cargo's target/ has one, and a tmp/) is not ours.
    std::fs::write(
        home.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n\
         # This file is a cache directory tag created by cargo.\n\
         # For information about cache directory tags see https://bford.info/cachedir/\n",
    )
    .unwrap();
    let before = snapshot(&home);
    let o = run(cmd(&empty)
        .args(["cleanup", "--older-than", "0", "--cache-dir"])
        .arg(&home));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(snapshot(&home), before);

    // A cache directory that does not exist: nothing to clean, and nothing is created.
    let missing = t.path().join("no-cache-here");
    let o = run(cmd(&empty)
        .args(["cleanup", "--older-than", "0", "--cache-dir"])
        .arg(&missing));
    assert!(o.status.success(), "{}", text(&o));
    assert!(!missing.exists(), "cleanup created {}", missing.display());
}

/// A `tmp/` owner id as protoreg makes them (`<pid>-<nanos>`), for a process that is not
/// protoreg: the test itself holds or frees its lock.
fn owner_lock(cache: &Path, owner: &str) -> std::fs::File {
    let path = cache.join("locks").join(format!("tmp-{owner}.lock"));
    std::fs::File::create(&path).unwrap()
}

#[test]
fn cleanup_never_removes_a_fresh_or_locked_tmp_entry() {
    let http = HttpServer::start();
    let t = scratch();
    let cache = t.path().join("cache");
    let buf = pin(&fixture(BUF_TGZ));
    let url = http.route("/b.tgz", Route::File(buf.path.clone()));
    let o = run(protoreg()
        .args(materialize_args(
            &buf,
            "tar.gz",
            &cache,
            &t.path().join("out"),
        ))
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    let tmp = cache.join("tmp");
    assert!(absent_or_empty(&tmp));

    // Fresh debris of an older protoreg (no owner): only age protects it.
    let fresh = tmp.join("blob-99999-3-000000001");
    std::fs::write(&fresh, b"a download in progress").unwrap();
    // An old staging tree whose owner is alive (holds its lock).
    let live_owner = "4242-1700000000000000000";
    let live_lock = owner_lock(&cache, live_owner);
    live_lock.lock().unwrap();
    let locked = tmp.join(format!("tree.{live_owner}.0"));
    std::fs::create_dir_all(locked.join("bin")).unwrap();
    std::fs::write(locked.join("bin/buf"), b"half").unwrap();
    age(&locked, 10);
    // An old download whose owner is dead (its lock is free).
    let dead_owner = "4243-1700000000000000001";
    drop(owner_lock(&cache, dead_owner));
    let dead = tmp.join(format!("blob.{dead_owner}.1"));
    std::fs::write(&dead, b"half").unwrap();
    age(&dead, 10);
    // Not protoreg's at all.
    let foreign = tmp.join("notes.txt");
    std::fs::write(&foreign, b"mine").unwrap();
    age(&foreign, 10);

    let c = |args: &[&str]| {
        let o = run(protoreg()
            .args(["cleanup", "--json", "--cache-dir"])
            .arg(&cache)
            .args(args));
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let removed = |j: &serde_json::Value| -> Vec<String> {
        j["removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect()
    };
    let j = c(&["--older-than", "7d"]);
    assert_eq!(removed(&j), vec![dead.display().to_string()], "{j}");
    assert!(fresh.exists() && locked.join("bin/buf").exists() && foreign.exists());
    assert!(
        !cache.join(format!("locks/tmp-{dead_owner}.lock")).exists(),
        "a dead owner's lock is collected"
    );
    assert!(cache.join(format!("locks/tmp-{live_owner}.lock")).exists());

    // Everything is old at --older-than 0: the fresh debris goes, the locked tree stays.
    let j = c(&["--older-than", "0"]);
    assert!(!fresh.exists(), "{j}");
    assert!(locked.join("bin/buf").exists(), "{j}");
    assert!(foreign.exists());
    assert!(cache_trees(&cache).is_empty());

    // Its owner dies (the lock is released): now it goes.
    drop(live_lock);
    let j = c(&["--older-than", "0"]);
    assert_eq!(removed(&j), vec![locked.display().to_string()], "{j}");
    assert!(!locked.exists());
    assert!(foreign.exists());

    // A real protoreg holds its tmp/ entries' lock while it runs, and only then.
    let slow = http.route(
        "/slow.tgz",
        Route::Slow(buf.path.clone(), std::time::Duration::from_millis(20)),
    );
    let mut child = protoreg()
        .args(materialize_args(
            &buf,
            "tar.gz",
            &cache,
            &t.path().join("slow"),
        ))
        .args(["--source", &slow])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let entry = loop {
        let names: Vec<String> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "notes.txt")
            .collect();
        if let Some(n) = names.into_iter().next() {
            break n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no tmp/ entry appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let owner = entry.split('.').nth(1).unwrap().to_string();
    let lock = std::fs::File::open(cache.join(format!("locks/tmp-{owner}.lock"))).unwrap();
    assert!(
        matches!(lock.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        "{entry}: a running protoreg's tmp/ lock is free"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        lock.try_lock().is_ok(),
        "a killed protoreg's lock is released"
    );
}

#[test]
fn cleanup_durations_and_sizes_out_of_range_exit_2() {
    let t = scratch();
    let cache = t.path().join("cache");
    for args in [
        &["--older-than", "99999999999999999999"][..],
        &["--older-than", "99999999999999999999s"],
        &["--older-than", "60000000000000w"],
        &["--max-size", "99999999999999999999999T"],
        &["--max-size", "18446744073709551616"],
    ] {
        let o = run(protoreg()
            .current_dir(t.path())
            .args(["cleanup", "--cache-dir"])
            .arg(&cache)
            .args(args));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("out of range") && err.contains("hint:") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
        assert!(!cache.exists());
    }
}

/// Builds that overlap without a gap cannot starve cleanup: once cleanup waits for the
/// running builds, a new build waits behind it. A build that is running holds the cache's
/// lock (the test holds it here); cleanup starts and waits; a new `materialize`, a cache hit
/// that takes milliseconds on its own, must not finish before the old build lets go and
/// cleanup is done.
#[test]
fn a_waiting_cleanup_goes_before_builds_that_arrive_after_it() {
    let http = HttpServer::start();
    let t = scratch();
    let cache = t.path().join("cache");
    let protoc = pin(&fixture(PROTOC_ZIP));
    let url = http.route("/p.zip", Route::File(protoc.path.clone()));
    let materialize = |out: &str| {
        let mut c = protoreg();
        c.args(materialize_args(
            &protoc,
            "zip",
            &cache,
            &t.path().join(out),
        ))
        .args(["--link", "hardlink", "--source", &url]);
        c
    };
    assert!(run(&mut materialize("first")).status.success());

    // A build in progress.
    let running = std::fs::File::open(cache.join("locks/cache.lock")).unwrap();
    running.lock_shared().unwrap();
    let mut cleanup = protoreg()
        .args(["cleanup", "--older-than", "30d", "--json", "--cache-dir"])
        .arg(&cache)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait until cleanup holds the turnstile (it then waits for the cache's lock).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::File::open(cache.join("locks/cleanup.lock"))
        .is_ok_and(|f| matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock)))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "cleanup never took its turnstile"
        );
        assert!(cleanup.try_wait().unwrap().is_none(), "cleanup ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut late = materialize("late").spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(
        late.try_wait().unwrap().is_none(),
        "a build that came after a waiting cleanup went before it"
    );
    assert!(cleanup.try_wait().unwrap().is_none());

    // The old build ends: cleanup runs, then the late build.
    drop(running);
    let done = cleanup.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", text(&done));
    let late = late.wait_with_output().unwrap();
    assert!(late.status.success(), "{}", text(&late));
    assert_eq!(protoc_version(&t.path().join("late")), "libprotoc 36.2");
}
