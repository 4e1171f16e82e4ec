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

#[test]
fn symlink_chains_that_escape_are_refused() {
    let t = tempfile::tempdir().unwrap();
    // A member under an earlier symlink would be written through it.
    let g = tgz_with(
        t.path(),
        "chain.tgz",
        &[
            ("p/q", tar::EntryType::Symlink, "..", b""),
            ("p/q/r", tar::EntryType::Symlink, "../..", b""),
        ],
    );
    assert_refused(&g, "tar.gz", "lies under the symlink `p/q`", &[]);
    // Lexically inside, but through a link that climbs: d/up -> .. makes d/up/.. the parent
    // of the tree.
    let g = tgz_with(
        t.path(),
        "through.tgz",
        &[
            ("d/up", tar::EntryType::Symlink, "..", b""),
            ("t", tar::EntryType::Symlink, "d/up/..", b""),
        ],
    );
    assert_refused(&g, "tar.gz", "points through the symlink `d/up`", &[]);
    // Links that stay inside are fine: bin/tool -> ../libexec/tool.
    let ok = tgz_with(
        t.path(),
        "ok.tgz",
        &[
            ("libexec/tool", tar::EntryType::Regular, "", b"#!/bin/sh\n"),
            ("bin/tool", tar::EntryType::Symlink, "../libexec/tool", b""),
        ],
    );
    let p = pin(&ok);
    let server = HttpServer::start();
    let url = server.route("/ok", Route::File(p.path.clone()));
    let out = t.path().join("out");
    let o = run(protoreg()
        .args([
            "materialize",
            "--sha256",
            p.sha256.hex(),
            "--size",
            &p.size.to_string(),
        ])
        .args(["--format", "tar.gz", "--cache-dir"])
        .arg(t.path().join("cache"))
        .arg("--out")
        .arg(&out)
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_link(out.join("bin/tool")).unwrap(),
        PathBuf::from("../libexec/tool")
    );
}

#[test]
fn an_unverified_stream_creates_no_links_and_cannot_poison_the_cache() {
    // The first source serves a hostile tar.gz in place of the pinned one. It is streamed
    // into the same staging directory the next source uses, before its digest is known:
    // nothing of it may survive into the tree the good source then produces.
    let t = tempfile::tempdir().unwrap();
    let evil = tgz_with(
        t.path(),
        "evil.tgz",
        &[(
            "bin/buf",
            tar::EntryType::Symlink,
            "../../../../../tmp",
            b"",
        )],
    );
    let buf = pin(&fixture(BUF_TGZ));
    let server = HttpServer::start();
    let bad = server.route("/evil", Route::File(evil));
    let good = server.route("/good", Route::File(buf.path.clone()));
    let cache = t.path().join("cache");
    let out = t.path().join("out");
    let o = run(protoreg()
        .args(materialize_args(&buf, "tar.gz", &cache, &out))
        .args(["--json", "--source", &bad, "--source", &good]));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["source"], good.as_str());
    assert!(std::fs::symlink_metadata(out.join("bin/buf"))
        .unwrap()
        .is_file());

    // A link planted where a tree belongs is not a cache hit.
    let planted = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(planted.path().join("bin")).unwrap();
    std::fs::write(
        planted.path().join("bin/protoc"),
        "#!/bin/sh\necho planted\n",
    )
    .unwrap();
    let protoc = pin(&fixture(PROTOC_ZIP));
    let artifact = protoreg::resolve::Artifact {
        expected: protoreg::verify::Expected {
            sha256: protoc.sha256.clone(),
            size: Some(protoc.size),
        },
        layout: protoreg::extract::Layout {
            format: protoreg::extract::Format::Zip,
            strip_prefix: None,
            executables: vec!["bin/protoc".into()],
        },
    };
    let tree = protoreg::store::Store::new(cache.clone()).tree_path(&artifact.tree_key());
    std::fs::create_dir_all(tree.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(planted.path(), &tree).unwrap();
    let o = run(protoreg()
        .args(materialize_args(
            &protoc,
            "zip",
            &cache,
            &t.path().join("out2"),
        ))
        .arg("--offline"));
    assert_eq!(
        o.status.code(),
        Some(1),
        "a planted link was served: {}",
        text(&o)
    );
}

/// No raw control byte (other than the line breaks messages are laid out with) on stderr, and
/// the ESC that was sent shown as the escape `\u{1b}`.
fn assert_escaped(stderr: &[u8]) {
    let shown = String::from_utf8_lossy(stderr);
    let raw: Vec<u8> = stderr
        .iter()
        .copied()
        .filter(|b| (*b < 0x20 && *b != b'\n') || *b == 0x7f)
        .collect();
    assert!(raw.is_empty(), "raw control bytes {raw:?} in: {shown:?}");
    assert!(shown.contains("\\u{1b}"), "ESC not shown escaped: {shown}");
}

#[test]
fn control_characters_from_an_archive_or_a_registry_reach_stderr_escaped() {
    let t = tempfile::tempdir().unwrap();
    // An archive's symlink target: set the title, clear the screen, ring the bell.
    let g = tgz_with(
        t.path(),
        "esc.tgz",
        &[(
            "bin/protoc",
            tar::EntryType::Symlink,
            "/\x1b]0;pwned\x07\x1b[2J\r",
            b"",
        )],
    );
    let p = pin(&g);
    let o = run(protoreg()
        .arg("extract")
        .arg(&g)
        .args(["--sha256", p.sha256.hex(), "--format", "tar.gz", "--out"])
        .arg(t.path().join("out")));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("outside the tree"),
        "{}",
        text(&o)
    );
    assert_escaped(&o.stderr);

    // A registry's JSON error message (JSON escapes decode to raw control characters).
    let server = HttpServer::start();
    let envelope = r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"\u001b]0;pwned\u0007\u001b[31mblob unknown\r"}]}"#;
    server.route(
        &format!("/v2/ns/tools/x/blobs/{}", p.sha256.oci()),
        Route::Answer(404, "application/json", envelope.as_bytes().to_vec()),
    );
    let o = run(protoreg()
        .args(["materialize", "--sha256", p.sha256.hex(), "--size"])
        .arg(p.size.to_string())
        .args(["--format", "tar.gz", "--plain-http", "--cache-dir"])
        .arg(t.path().join("cache"))
        .arg("--out")
        .arg(t.path().join("out2"))
        .arg("--source")
        .arg(format!("oci://{}/ns/tools/x", server.addr)));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("every source failed") && err.contains("blob unknown"),
        "{err}"
    );
    assert_escaped(&o.stderr);
}
