//! Hostile archives are refused and leave nothing behind: not in --out, not in the cache,
//! not outside the extraction directory.

mod common;

use std::path::{Path, PathBuf};

use common::http::{HttpServer, Route};
use common::*;

fn assert_refused(archive: &Path, format: &str, expect: &str, env: &[(&str, &str)]) {
    let p = pin(archive);
    let server = HttpServer::start();
    let url = server.route("/a", Route::File(p.path.clone()));
    let tmp = scratch();
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

/// `protoreg extract` of `archive` (pinned by its own digest) into `out`.
fn extract(archive: &Path, format: &str, out: &Path) -> std::process::Output {
    let p = pin(archive);
    run(protoreg()
        .arg("extract")
        .arg(archive)
        .args(["--sha256", p.sha256.hex(), "--format", format, "--out"])
        .arg(out))
}

/// [`extract`] refuses `archive` (exit 1), saying `expect`, and writes nothing to `out`.
fn assert_extract_refused(archive: &Path, format: &str, expect: &str) -> std::process::Output {
    let out = archive.with_extension("out");
    let o = extract(archive, format, &out);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(expect),
        "{}",
        text(&o)
    );
    assert!(absent_or_empty(&out));
    o
}

/// [`assert_refused`] for a tar.gz and for the same tar recompressed by `xz`: both formats
/// walk one tar reader, and must refuse alike.
fn assert_tar_refused(tgz: &Path, expect: &str, env: &[(&str, &str)]) {
    assert_refused(tgz, "tar.gz", expect, env);
    assert_refused(&xz::xz_of(tgz), "tar.xz", expect, env);
}

#[test]
fn zip_slip_is_refused() {
    let t = scratch();
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
    let t = scratch();
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
    assert_tar_refused(&g, "absolute path", &[]);
    let g = tgz_with(
        t.path(),
        "dots.tgz",
        &[("a/../../evil.txt", tar::EntryType::Regular, "", b"x")],
    );
    assert_tar_refused(&g, "contains `..`", &[]);
}

#[test]
fn symlinks_leaving_the_tree_are_refused() {
    let t = scratch();
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
    assert_tar_refused(&g, "outside the tree", &[]);
    let g = tgz_with(
        t.path(),
        "abslink.tgz",
        &[("bin/protoc", tar::EntryType::Symlink, "/etc/passwd", b"")],
    );
    assert_tar_refused(&g, "outside the tree", &[]);
    let z = zip_with(
        t.path(),
        "link.zip",
        &[("lib/escape", b"../../..", 0o120777)],
    );
    assert_refused(&z, "zip", "outside the tree", &[]);
}

#[test]
fn devices_and_hardlinks_are_refused() {
    let t = scratch();
    let g = tgz_with(
        t.path(),
        "dev.tgz",
        &[("dev/null", tar::EntryType::Char, "", b"")],
    );
    assert_tar_refused(&g, "device", &[]);
    let g = tgz_with(
        t.path(),
        "hard.tgz",
        &[
            ("a", tar::EntryType::Regular, "", b"x"),
            ("b", tar::EntryType::Link, "/etc/passwd", b""),
        ],
    );
    assert_tar_refused(&g, "hardlink", &[]);
}

#[test]
fn bombs_past_the_cap_are_refused() {
    let t = scratch();
    let zeros = vec![0u8; 64 << 20];
    // 256 MiB of zeros in four members; the archive itself is a few hundred KiB (zip,
    // tar.gz) or some tens of KiB (tar.xz).
    let names: Vec<String> = (0..4).map(|i| format!("blob{i}")).collect();
    let cap = [("PROTOREG_MAX_EXTRACT_BYTES", "100000000")];
    let zip_members: Vec<(&str, &[u8], u32)> = names
        .iter()
        .map(|n| (n.as_str(), &zeros[..], 0o100644))
        .collect();
    let z = zip_with(t.path(), "bomb.zip", &zip_members);
    assert!(std::fs::metadata(&z).unwrap().len() < 2 << 20);
    assert_refused(&z, "zip", "expands past the cap", &cap);
    let tar_members: Vec<(&str, u32, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), 0o644, &zeros[..]))
        .collect();
    let g = tgz_files(t.path(), "bomb.tgz", &tar_members);
    assert!(std::fs::metadata(&g).unwrap().len() < 2 << 20);
    assert_tar_refused(&g, "expands past the cap", &cap);
}

/// `txz` with the dictionary size its first block header asks for set to `props` (the
/// LZMA2 property byte: 40 is 4 GiB - 1) and the header's CRC32 made right again, so only the
/// memory the decoder would need is wrong.
fn with_xz_dictionary(txz: &Path, props: u8) -> PathBuf {
    let mut b = std::fs::read(txz).unwrap();
    // Stream header (12 bytes), then the block header: its size, flags, the sizes the flags
    // announce (varints), then the filter: ID 0x21 (LZMA2), properties size 1, properties.
    let start = 12;
    let len = (b[start] as usize + 1) * 4;
    let flags = b[start + 1];
    let mut i = start + 2;
    for present in [flags & 0x40 != 0, flags & 0x80 != 0] {
        if present {
            while b[i] & 0x80 != 0 {
                i += 1;
            }
            i += 1;
        }
    }
    assert_eq!(&b[i..i + 2], &[0x21, 0x01], "not one LZMA2 filter");
    b[i + 2] = props;
    let mut crc = flate2::Crc::new();
    crc.update(&b[start..start + len - 4]);
    b[start + len - 4..start + len].copy_from_slice(&crc.sum().to_le_bytes());
    let out = txz.with_extension(format!("dict{props}.xz"));
    std::fs::write(&out, b).unwrap();
    out
}

#[test]
fn an_xz_dictionary_past_the_decoder_memory_cap_is_refused_before_it_is_allocated() {
    let t = scratch();
    let g = tgz_files(
        t.path(),
        "small.tgz",
        &[(
            "bin/tool",
            0o755,
            b"#!/bin/sh
",
        )],
    );
    let txz = xz::xz_of(&g);
    // The same archive asking for a 128 MiB dictionary (twice `xz -9`'s) still extracts...
    let fits = with_xz_dictionary(&txz, 30);
    let o = extract(&fits, "tar.xz", &t.path().join("fits"));
    assert!(o.status.success(), "{}", text(&o));
    // ...and asking for 4 GiB is refused, by name, both streamed and from the blob.
    let huge = with_xz_dictionary(&txz, 40);
    assert_refused(
        &huge,
        "tar.xz",
        "xz dictionary needs more than the 256 MiB",
        &[],
    );
    assert_extract_refused(&huge, "tar.xz", "xz dictionary needs more than");
}

#[test]
fn symlink_chains_that_escape_are_refused() {
    let t = scratch();
    // A member under an earlier symlink would be written through it.
    let g = tgz_with(
        t.path(),
        "chain.tgz",
        &[
            ("p/q", tar::EntryType::Symlink, "..", b""),
            ("p/q/r", tar::EntryType::Symlink, "../..", b""),
        ],
    );
    assert_tar_refused(&g, "lies under the symlink `p/q`", &[]);
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
    assert_tar_refused(&g, "points through the symlink `d/up`", &[]);
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
    let t = scratch();
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
    let planted = scratch();
    std::fs::create_dir_all(planted.path().join("bin")).unwrap();
    std::fs::write(
        planted.path().join("bin/protoc"),
        "#!/bin/sh\necho planted\n",
    )
    .unwrap();
    let protoc = pin(&fixture(PROTOC_ZIP));
    let artifact = protoreg::pipeline::resolve::Artifact {
        expected: protoreg::pipeline::verify::Expected {
            sha256: protoc.sha256.clone(),
            size: Some(protoc.size),
        },
        layout: protoreg::pipeline::extract::Layout {
            format: protoreg::pipeline::extract::Format::Zip,
            strip_prefix: None,
            executables: vec!["bin/protoc".into()],
        },
    };
    let tree = protoreg::pipeline::store::Store::new(cache.clone()).tree_path(&artifact.tree_key());
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
    let t = scratch();
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
    let o = assert_extract_refused(&g, "tar.gz", "outside the tree");
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

/// Bytes that do not compress: a gzip body that takes a while to send at a fixed pace.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What was seen under a directory while a process ran: the most bytes its regular files
/// held at once, the regular files that had an exec bit, and every file seen.
#[derive(Default, Debug)]
struct Watched {
    peak_bytes: u64,
    executable: std::collections::BTreeSet<PathBuf>,
    seen: std::collections::BTreeSet<PathBuf>,
    polls: usize,
}

fn watch(dir: &Path, w: &mut Watched) {
    use std::os::unix::fs::PermissionsExt;
    fn walk(p: &Path, w: &mut Watched, total: &mut u64) {
        let Ok(rd) = std::fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                walk(&e.path(), w, total);
            } else if meta.is_file() {
                *total += meta.len();
                w.seen.insert(e.path());
                if meta.permissions().mode() & 0o111 != 0 {
                    w.executable.insert(e.path());
                }
            }
        }
    }
    let mut total = 0;
    walk(dir, w, &mut total);
    w.peak_bytes = w.peak_bytes.max(total);
    w.polls += 1;
}

/// Run `materialize` of `archive` under a pin with its size but another sha256, served in
/// 64 KiB pieces with a pause after each, and watch `<cache>/tmp` until the process ends
/// (bounded: at most 3,000 polls and 60 s).
fn watch_a_wrong_body(
    archive: &Path,
    format: &str,
    pause: std::time::Duration,
) -> (Watched, Scratch, u64) {
    let size = std::fs::metadata(archive).unwrap().len();
    let server = HttpServer::start();
    let url = server.route("/wrong", Route::Slow(archive.to_path_buf(), pause));
    let t = scratch();
    let cache = t.path().join("cache");
    let wrong = protoreg::pipeline::verify::Sha256::of_bytes(b"not the archive that is served");
    let mut child = protoreg()
        .args(["materialize", "--sha256", wrong.hex(), "--size"])
        .arg(size.to_string())
        .args(["--format", format, "--cache-dir"])
        .arg(&cache)
        .arg("--out")
        .arg(t.path().join("out"))
        .args(["--source", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = Watched::default();
    let start = std::time::Instant::now();
    let status = loop {
        watch(&cache.join("tmp"), &mut w);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if w.polls >= 3000 || start.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("materialize still running after {} polls", w.polls);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("sha256"), "{err}");
    assert!(absent_or_empty(&cache.join("tmp")), "left in tmp/");
    assert!(cache_trees(&cache).is_empty());
    (w, t, size)
}

#[test]
fn a_wrong_body_writes_at_most_its_unverified_budget() {
    // A gzip bomb: 64 MiB of zeros (~64 KiB compressed), then 1 MiB of noise, so the body
    // (~1.1 MB) is still arriving long after the bomb went off.
    let t = scratch();
    let zeros = vec![0u8; 64 << 20];
    let pad = noise(1 << 20);
    let bomb = tgz_files(
        t.path(),
        "bomb.tgz",
        &[("zeros", 0o644, &zeros), ("pad", 0o644, &pad)],
    );
    for (archive, format) in [(bomb.clone(), "tar.gz"), (xz::xz_of(&bomb), "tar.xz")] {
        let pause = std::time::Duration::from_millis(60);
        let (w, _scratch, size) = watch_a_wrong_body(&archive, format, pause);
        let limit = protoreg::pipeline::extract::unverified_budget(Some(size));
        assert_eq!(limit, 16 * size);
        assert!(
            w.polls > 10,
            "{format}: too few polls to mean anything: {w:?}"
        );
        // The body itself (at most its pinned size) plus what was extracted for it.
        assert!(
            w.peak_bytes <= size + limit,
            "{format}: {} bytes in tmp/ before the body verified, over {size} + {limit}",
            w.peak_bytes
        );
    }
}

#[test]
fn nothing_unverified_gets_an_exec_bit() {
    // An executable member first, then noise that keeps the download going: the member is
    // written long before the body is known to be wrong.
    let t = scratch();
    let pad = noise(768 << 10);
    let g = tgz_files(
        t.path(),
        "exe.tgz",
        &[
            ("bin/tool", 0o755, b"#!/bin/sh\necho pwned\n"),
            ("pad", 0o644, &pad),
        ],
    );
    for (archive, format) in [(g.clone(), "tar.gz"), (xz::xz_of(&g), "tar.xz")] {
        let pause = std::time::Duration::from_millis(60);
        let (w, _scratch, _) = watch_a_wrong_body(&archive, format, pause);
        assert!(
            w.seen.iter().any(|p| p.ends_with("bin/tool")),
            "{format}: the member was never seen mid-download: {w:?}"
        );
        assert!(
            w.executable.is_empty(),
            "{format}: executable before verification: {:?}",
            w.executable
        );
    }
}

#[test]
fn archives_with_more_entries_than_the_cap_are_refused() {
    let t = scratch();
    let names: Vec<String> = (0..101).map(|i| format!("d/f{i}")).collect();
    let tar_members: Vec<(&str, u32, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), 0o644, &b""[..]))
        .collect();
    let g = tgz_files(t.path(), "many.tgz", &tar_members);
    let env = [("PROTOREG_MAX_EXTRACT_ENTRIES", "100")];
    assert_tar_refused(&g, "more than 100 entries", &env);
    let zip_members: Vec<(&str, &[u8], u32)> = names
        .iter()
        .map(|n| (n.as_str(), &b""[..], 0o100644))
        .collect();
    let z = zip_with(t.path(), "many.zip", &zip_members);
    assert_refused(&z, "zip", "more than 100 entries", &env);

    // A malformed cap is bad input, refused before any download.
    let p = pin(&g);
    let server = HttpServer::start();
    let url = server.route("/many.tgz", Route::File(g.clone()));
    for bad in ["0", "-1", "lots"] {
        for var in ["PROTOREG_MAX_EXTRACT_ENTRIES", "PROTOREG_MAX_EXTRACT_BYTES"] {
            let o = run(protoreg()
                .env(var, bad)
                .args([
                    "materialize",
                    "--sha256",
                    p.sha256.hex(),
                    "--format",
                    "tar.gz",
                ])
                .arg("--cache-dir")
                .arg(t.path().join("cache"))
                .arg("--out")
                .arg(t.path().join("out"))
                .args(["--source", &url]));
            assert_eq!(o.status.code(), Some(2), "{var}={bad}: {}", text(&o));
            assert!(
                String::from_utf8_lossy(&o.stderr).contains(var),
                "{}",
                text(&o)
            );
        }
    }
    assert_eq!(server.count("/many.tgz"), 0, "downloaded despite a bad cap");
}

#[test]
fn duplicate_zip_members_are_refused() {
    let t = scratch();
    let z = zip_with(
        t.path(),
        "dup.zip",
        &[
            ("bin/protoc", b"#!/bin/sh\necho first\n", 0o100755),
            ("bin/protoX", b"#!/bin/sh\necho second\n", 0o100755),
        ],
    );
    // The writer refuses a repeated name: rename the second member in its local header and
    // its central directory entry (the same length, so every offset holds).
    let mut bytes = std::fs::read(&z).unwrap();
    let (from, to) = (b"bin/protoX", b"bin/protoc");
    let mut renamed = 0;
    for i in 0..bytes.len() - from.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + to.len()].copy_from_slice(to);
            renamed += 1;
        }
    }
    assert_eq!(renamed, 2);
    std::fs::write(&z, &bytes).unwrap();
    assert_refused(&z, "zip", "appears twice", &[]);
}

#[test]
fn a_symlink_target_that_is_not_utf8_is_refused_not_rewritten() {
    let t = scratch();
    let path = t.path().join("latin1.tgz");
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..8].copy_from_slice(b"bin/link");
    h.as_old_mut().linkname[..5].copy_from_slice(b"caf\xe9x");
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap();
    assert_tar_refused(&path, "is not UTF-8", &[]);
    assert_extract_refused(&path, "tar.gz", "not UTF-8");
    assert_extract_refused(&xz::xz_of(&path), "tar.xz", "not UTF-8");
}

#[test]
fn an_executable_must_be_a_regular_file_of_the_tree() {
    let t = scratch();
    let g = tgz_with(
        t.path(),
        "tree.tgz",
        &[
            ("bin/", tar::EntryType::Directory, "", b""),
            ("bin/tool", tar::EntryType::Regular, "", b"#!/bin/sh\n"),
            ("bin/link", tar::EntryType::Symlink, "tool", b""),
        ],
    );
    let p = pin(&g);
    let server = HttpServer::start();
    let url = server.route("/tree.tgz", Route::File(g.clone()));
    let materialize = |exe: &str, out: &str| {
        run(protoreg()
            .args(["materialize", "--sha256", p.sha256.hex(), "--size"])
            .arg(p.size.to_string())
            .args(["--format", "tar.gz", "--executable", exe, "--cache-dir"])
            .arg(t.path().join("cache"))
            .arg("--out")
            .arg(t.path().join(out))
            .args(["--source", &url]))
    };
    // Malformed: exit 2 before any download.
    for bad in [".", "./", "bin/..", "/bin/tool", "../bin/tool"] {
        let o = materialize(bad, "out");
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("hint:"),
            "{}",
            text(&o)
        );
    }
    assert_eq!(server.count("/tree.tgz"), 0);
    // Well formed but not a regular file in the tree: refused by name, nothing left behind.
    for (exe, kind) in [("bin", "a directory"), ("bin/link", "a symlink")] {
        let out = format!("out-{}", exe.replace('/', "-"));
        let o = materialize(exe, &out);
        assert_ne!(o.status.code(), Some(0), "{exe}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(exe) && err.contains(kind), "{exe}: {err}");
        assert!(absent_or_empty(&t.path().join(out)));
        assert!(cache_trees(&t.path().join("cache")).is_empty());
    }
    // The file itself is fine.
    let o = materialize("bin/tool", "out-ok");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn damaged_tar_xz_bytes_are_refused_and_never_panic() {
    // The decoder is a library this project did not write: truncations and single byte
    // changes of a real tar.xz must end in a refusal (exit 1), or in a tree when the damage
    // is past the tar's end (the sha256 pin, checked first, is what vouches for the bytes),
    // never in a panic. Bounded: 600 variants of a ~200-byte archive.
    let t = scratch();
    let g = tgz_files(
        t.path(),
        "small.tgz",
        &[
            ("bin/tool", 0o755, b"#!/bin/sh\necho tool\n"),
            ("share/readme", 0o644, b"a small archive\n"),
        ],
    );
    let good = std::fs::read(xz::xz_of(&g)).unwrap();
    let layout = protoreg::pipeline::extract::Layout {
        format: protoreg::pipeline::extract::Format::TarXz,
        strip_prefix: None,
        executables: vec![],
    };
    for i in 0..600usize {
        let mut bytes = good.clone();
        let truncated = i < good.len();
        if truncated {
            bytes.truncate(i);
        } else {
            let at = (i * 7919) % good.len();
            bytes[at] ^= (i % 255) as u8 + 1;
        }
        let archive = t.path().join("damaged.tar.xz");
        std::fs::write(&archive, &bytes).unwrap();
        let dest = t.path().join(format!("d{i}"));
        std::fs::create_dir(&dest).unwrap();
        let got = std::panic::catch_unwind(|| {
            protoreg::pipeline::extract::extract(&archive, &layout, &dest)
        });
        match got {
            Err(_) => panic!("variant {i} made the decoder panic"),
            Ok(Err(e)) => assert_eq!(e.exit_code(), 1, "variant {i}: {e}"),
            // Cut before the second member's data: that cannot extract.
            Ok(Ok(())) => assert!(!truncated || i > good.len() / 2, "truncated to {i}"),
        }
    }
}
