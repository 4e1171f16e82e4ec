//! Hostile archives are refused and leave nothing behind: not in --out, not in the cache,
//! not outside the extraction directory.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::http::{HttpServer, Route};
use common::*;

fn zip_with(dir: &Path, name: &str, members: &[(&str, &[u8], u32)]) -> PathBuf {
    let path = dir.join(name);
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (member, data, mode) in members {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        if mode & 0o170000 == 0o120000 {
            z.add_symlink(*member, std::str::from_utf8(data).unwrap(), opts)
                .unwrap();
        } else {
            z.start_file(*member, opts).unwrap();
            z.write_all(data).unwrap();
        }
    }
    z.finish().unwrap();
    path
}

/// A tar.gz whose headers are written by hand, so names the tar crate would refuse to
/// build (absolute paths, `..`) can be made.
fn tgz_with(dir: &Path, name: &str, members: &[(&str, tar::EntryType, &str, &[u8])]) -> PathBuf {
    let path = dir.join(name);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    for (member, kind, link, data) in members {
        let mut h = tar::Header::new_gnu();
        let raw = h.as_old_mut();
        raw.name[..member.len()].copy_from_slice(member.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
    path
}

fn assert_refused(archive: &Path, format: &str, expect: &str, env: &[(&str, &str)]) {
    let p = pin(archive);
    let server = HttpServer::start();
    let url = server.route("/a", Route::File(p.path.clone()));
    let tmp = tempfile::tempdir().unwrap();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    let mut cmd = protoreg();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = run(cmd
        .args([
            "materialize",
            "--sha256",
            p.sha256.hex(),
            "--size",
            &p.size.to_string(),
        ])
        .args(["--format", format, "--cache-dir"])
        .arg(&cache)
        .arg("--out")
        .arg(&out)
        .args(["--source", &url]));
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}: {}",
        archive.display(),
        text(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refusing to extract") && err.contains(expect),
        "{err}"
    );
    assert!(absent_or_empty(&out), "output left behind");
    assert!(cache_trees(&cache).is_empty(), "tree left in the cache");
    assert!(
        absent_or_empty(&cache.join("blobs-v1/sha256")),
        "blob left in the cache"
    );
    assert!(absent_or_empty(&cache.join("tmp")), "staging left in tmp/");
    // Nothing escaped next to the extraction directory or the output.
    for escaped in [
        cache.join("evil.txt"),
        tmp.path().join("evil.txt"),
        PathBuf::from("/tmp/protoreg-abs-evil"),
    ] {
        assert!(!escaped.exists(), "{} was written", escaped.display());
    }
}

#[test]
fn zip_slip_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let z = zip_with(
        t.path(),
        "slip.zip",
        &[
            ("bin/ok", b"ok", 0o100755),
            ("../../evil.txt", b"x", 0o100644),
        ],
    );
    assert_refused(&z, "zip", "contains `..`", &[]);
}

#[test]
fn absolute_paths_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let z = zip_with(
        t.path(),
        "abs.zip",
        &[("/tmp/protoreg-abs-evil", b"x", 0o100644)],
    );
    assert_refused(&z, "zip", "absolute path", &[]);
    let g = tgz_with(
        t.path(),
        "abs.tgz",
        &[("/tmp/protoreg-abs-evil", tar::EntryType::Regular, "", b"x")],
    );
    assert_refused(&g, "tar.gz", "absolute path", &[]);
    let g = tgz_with(
        t.path(),
        "dots.tgz",
        &[("a/../../evil.txt", tar::EntryType::Regular, "", b"x")],
    );
    assert_refused(&g, "tar.gz", "contains `..`", &[]);
}

#[test]
fn symlinks_leaving_the_tree_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let g = tgz_with(
        t.path(),
        "link.tgz",
        &[(
            "bin/protoc",
            tar::EntryType::Symlink,
            "../../../../etc/passwd",
            b"",
        )],
    );
    assert_refused(&g, "tar.gz", "outside the tree", &[]);
    let g = tgz_with(
        t.path(),
        "abslink.tgz",
        &[("bin/protoc", tar::EntryType::Symlink, "/etc/passwd", b"")],
    );
    assert_refused(&g, "tar.gz", "outside the tree", &[]);
    let z = zip_with(
        t.path(),
        "link.zip",
        &[("lib/escape", b"../../..", 0o120777)],
    );
    assert_refused(&z, "zip", "outside the tree", &[]);
}

#[test]
fn devices_and_hardlinks_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let g = tgz_with(
        t.path(),
        "dev.tgz",
        &[("dev/null", tar::EntryType::Char, "", b"")],
    );
    assert_refused(&g, "tar.gz", "device", &[]);
    let g = tgz_with(
        t.path(),
        "hard.tgz",
        &[
            ("a", tar::EntryType::Regular, "", b"x"),
            ("b", tar::EntryType::Link, "/etc/passwd", b""),
        ],
    );
    assert_refused(&g, "tar.gz", "hardlink", &[]);
}

#[test]
fn zip_bomb_past_the_cap_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 64 << 20];
    // 256 MiB of zeros in four members; the archive itself is a few hundred KiB.
    let members: Vec<(String, &[u8], u32)> = (0..4)
        .map(|i| (format!("blob{i}"), &zeros[..], 0o100644))
        .collect();
    let refs: Vec<(&str, &[u8], u32)> = members
        .iter()
        .map(|(n, d, m)| (n.as_str(), *d, *m))
        .collect();
    let z = zip_with(t.path(), "bomb.zip", &refs);
    assert!(std::fs::metadata(&z).unwrap().len() < 2 << 20);
    assert_refused(
        &z,
        "zip",
        "expands past the cap",
        &[("PROTOREG_MAX_EXTRACT_BYTES", "100000000")],
    );
}
