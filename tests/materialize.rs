//! Materialize real protoc and buf from a real registry, an HTTP server and an OCI image
//! layout, then run them.

mod common;

use std::fs;
use std::process::Command;

use common::http::{HttpServer, Route};
use common::*;
use protoreg::pipeline::extract::Format;

fn assert_protoc_works(out: &std::path::Path) {
    let protoc = out.join("bin/protoc");
    let v = Command::new(&protoc).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "libprotoc 36.2");
    assert!(out
        .join("include/google/protobuf/timestamp.proto")
        .is_file());

    let src = scratch();
    fs::write(
        src.path().join("event.proto"),
        "syntax = \"proto3\";\npackage demo;\nimport \"google/protobuf/timestamp.proto\";\n\
         message Event { string name = 1; google.protobuf.Timestamp at = 2; }\n",
    )
    .unwrap();
    let desc = src.path().join("out.pb");
    let r = Command::new(&protoc)
        .arg(format!("-I{}", src.path().display()))
        .arg(format!("-I{}", out.join("include").display()))
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", desc.display()))
        .arg("event.proto")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let bytes = fs::read(&desc).unwrap();
    // The set holds both files: ours and the imported well-known type.
    for needle in [
        &b"event.proto"[..],
        b"google/protobuf/timestamp.proto",
        b"Event",
    ] {
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
    }
}

fn assert_buf_works(out: &std::path::Path) {
    let v = Command::new(out.join("bin/buf"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "1.75.0");
}

#[test]
fn protoc_zip_from_registry_runs_and_compiles_wkt_import() {
    let (reg, protoc) = registry_with_protoc();
    let tmp = scratch();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    let o = run(protoreg()
        .args(materialize_args(&protoc, "zip", &cache, &out))
        .args(["--plain-http", "--json", "--source"])
        .arg(format!("oci://{}/ns/tools/protoc", reg.host)));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "miss");
    assert_eq!(
        json["source"],
        format!("oci://{}/ns/tools/protoc", reg.host)
    );
    assert_protoc_works(&out);

    // A second run is a cache hit, with no source at all, and gives the same tree.
    let out2 = tmp.path().join("out2");
    let o = run(protoreg()
        .args(materialize_args(&protoc, "zip", &cache, &out2))
        .args(["--json", "--offline", "--link", "hardlink"]));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "hit");
    assert_eq!(tree_listing(&out), tree_listing(&out2));
    assert_protoc_works(&out2);
}

#[test]
fn buf_targz_from_registry_runs() {
    let reg = RegistryServer::start();
    let buf = pin(&fixture(BUF_TGZ));
    reg.push(
        "ns/tools/buf",
        &buf,
        Format::TarGz,
        "v1.75.0-linux-x86_64",
        None,
    );
    let tmp = scratch();
    let (cache, out) = (tmp.path().join("cache"), tmp.path().join("out"));
    let o = run(protoreg()
        .args(materialize_args(&buf, "tar.gz", &cache, &out))
        .args(["--plain-http", "--source"])
        .arg(format!("oci://{}/ns/tools/buf", reg.host)));
    assert!(o.status.success(), "{}", text(&o));
    assert_buf_works(&out);
    // The cache tree is read-only; the copy in --out is the user's.
    use std::os::unix::fs::PermissionsExt;
    let tree = &cache_trees(&cache)[0];
    assert_eq!(
        fs::metadata(tree.join("bin/buf"))
            .unwrap()
            .permissions()
            .mode()
            & 0o222,
        0
    );
    assert_ne!(
        fs::metadata(out.join("bin/buf"))
            .unwrap()
            .permissions()
            .mode()
            & 0o200,
        0
    );
}

#[test]
fn http_source_serves_protoc_and_buf() {
    let server = HttpServer::start();
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let protoc = pin(&fixture(PROTOC_ZIP));
    let url = server.route("/protoc.zip", Route::File(protoc.path.clone()));
    let out = tmp.path().join("protoc");
    let o = run(protoreg()
        .args(materialize_args(&protoc, "zip", &cache, &out))
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    assert_protoc_works(&out);

    let buf = pin(&fixture(BUF_TGZ));
    let url = server.route("/buf.tar.gz", Route::File(buf.path.clone()));
    let out = tmp.path().join("buf");
    let o = run(protoreg()
        .args(materialize_args(&buf, "tar.gz", &cache, &out))
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    assert_buf_works(&out);
}

#[test]
fn oci_layout_written_by_skopeo_serves_protoc() {
    // The layout is made by a client this project did not write: skopeo copies the pushed
    // artifact from the registry into an OCI image-layout directory.
    let (reg, protoc) = registry_with_protoc();
    let tmp = scratch();
    let layout = tmp.path().join("layout");
    let s = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!(
            "docker://{}/ns/tools/protoc:v36.2-linux-x86_64",
            reg.host
        ))
        .arg(format!("oci:{}:v36.2-linux-x86_64", layout.display()))
        .output()
        .expect("skopeo missing: run scripts/install-deps");
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    drop(reg); // the registry is gone: only the layout can serve it

    let out = tmp.path().join("out");
    let o = run(protoreg()
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache"),
            &out,
        ))
        .arg("--source")
        .arg(format!("oci-layout:{}", layout.display())));
    assert!(o.status.success(), "{}", text(&o));
    assert_protoc_works(&out);
}

#[test]
fn extract_verifies_then_unpacks_without_network() {
    let buf = pin(&fixture(BUF_TGZ));
    let tmp = scratch();
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .arg("extract")
        .arg(&buf.path)
        .args([
            "--sha256",
            buf.sha256.hex(),
            "--format",
            "tar.gz",
            "--strip-prefix",
            "buf",
        ])
        .args(["--executable", "bin/buf", "--out"])
        .arg(&out));
    assert!(o.status.success(), "{}", text(&o));
    assert_buf_works(&out);

    // A wrong digest: exit 1, nothing written.
    let protoc = pin(&fixture(PROTOC_ZIP));
    let out = tmp.path().join("out2");
    let o = run(protoreg()
        .arg("extract")
        .arg(&buf.path)
        .args([
            "--sha256",
            protoc.sha256.hex(),
            "--format",
            "tar.gz",
            "--out",
        ])
        .arg(&out));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not match its pin"));
    assert!(absent_or_empty(&out));
}

#[test]
fn raw_format_materializes_a_single_binary() {
    let raw = pin(&fixture("buf-Linux-x86_64"));
    let server = HttpServer::start();
    let url = server.route("/buf", Route::File(raw.path.clone()));
    let tmp = scratch();
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .args(materialize_args(
            &raw,
            "raw",
            &tmp.path().join("cache"),
            &out,
        ))
        .args(["--executable", "bin/buf", "--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    assert_buf_works(&out);
}

#[test]
fn tls_is_the_default_for_registries() {
    // The loopback registry speaks plain HTTP: without --plain-http protoreg insists on TLS,
    // fails that source, and says so.
    let (reg, protoc) = registry_with_protoc();
    let tmp = scratch();
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache"),
            &out,
        ))
        .arg("--source")
        .arg(format!("oci://{}/ns/tools/protoc", reg.host)));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(absent_or_empty(&out));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        err.contains("tls") || err.contains("ssl") || err.contains("https"),
        "{err}"
    );
}

#[test]
fn cache_location_precedence_flag_env_config_default() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server.route("/p.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    let config = tmp.path().join("registry.yaml");
    std::fs::write(
        &config,
        format!(
            "primary_registry:\n  url: \"127.0.0.1:9\"\n  namespace: \"ns\"\ncache:\n  local_cache_dir: \"{}\"\n",
            tmp.path().join("from-config").display()
        ),
    )
    .unwrap();
    let args = |out: &str| {
        vec![
            "materialize".to_string(),
            "--sha256".into(),
            protoc.sha256.to_string(),
            "--size".into(),
            protoc.size.to_string(),
            "--format".into(),
            "zip".into(),
            "--source".into(),
            url.clone(),
            "--out".into(),
            tmp.path().join(out).display().to_string(),
        ]
    };
    let has_tree = |dir: &str| !cache_trees(&tmp.path().join(dir)).is_empty();
    // The file, when named.
    let o = run(protoreg().arg("--config").arg(&config).args(args("o1")));
    assert!(o.status.success(), "{}", text(&o));
    assert!(has_tree("from-config"));
    // The environment over the file.
    let o = run(protoreg()
        .env("PROTOREG_CACHE_DIR", tmp.path().join("from-env"))
        .arg("--config")
        .arg(&config)
        .args(args("o2")));
    assert!(o.status.success(), "{}", text(&o));
    assert!(has_tree("from-env"));
    // The flag over both.
    let o = run(protoreg()
        .env("PROTOREG_CACHE_DIR", tmp.path().join("from-env2"))
        .arg("--config")
        .arg(&config)
        .arg("--cache-dir")
        .arg(tmp.path().join("from-flag"))
        .args(args("o3")));
    assert!(o.status.success(), "{}", text(&o));
    assert!(has_tree("from-flag") && !has_tree("from-env2"));
    // The user cache directory when nothing says otherwise.
    let o = run(protoreg()
        .env("XDG_CACHE_HOME", tmp.path().join("xdg"))
        .args(args("o4")));
    assert!(o.status.success(), "{}", text(&o));
    assert!(has_tree("xdg/buck2-protobuf"));
}

#[test]
fn without_a_size_the_sha256_alone_verifies_from_registry_and_http() {
    // From the loopback registry, by digest.
    let (reg, protoc) = registry_with_protoc();
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("protoc");
    let o = run(protoreg()
        .args(without_size(materialize_args(&protoc, "zip", &cache, &out)))
        .args(["--plain-http", "--json", "--source"])
        .arg(format!("oci://{}/ns/tools/protoc", reg.host)));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "miss");
    assert_eq!(json["size"], protoc.size, "the bytes really fetched");
    assert_protoc_works(&out);

    // From a plain HTTP source; a tar.gz, which is extracted while it streams.
    let server = HttpServer::start();
    let buf = pin(&fixture(BUF_TGZ));
    let url = server.route("/buf.tar.gz", Route::File(buf.path.clone()));
    let buf_out = tmp.path().join("buf");
    let o = run(protoreg()
        .args(without_size(materialize_args(
            &buf, "tar.gz", &cache, &buf_out,
        )))
        .args(["--json", "--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["source"], url.as_str());
    assert_eq!(json["size"], buf.size);
    assert_buf_works(&buf_out);

    // Other bytes under the same digest are still refused, and nothing is left behind.
    let bad = server.route("/corrupt.tar.gz", Route::Corrupt(buf.path.clone()));
    let out = tmp.path().join("bad");
    let o = run(protoreg()
        .args(without_size(materialize_args(
            &buf,
            "tar.gz",
            &tmp.path().join("cache2"),
            &out,
        )))
        .args(["--source", &bad]));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sha256"),
        "{}",
        text(&o)
    );
    assert!(absent_or_empty(&out));

    // The tree is cached under its own key: a second unsized run is a hit (no bytes seen, so
    // no size to report) ...
    let again = tmp.path().join("buf-again");
    let o = run(protoreg()
        .args(without_size(materialize_args(
            &buf, "tar.gz", &cache, &again,
        )))
        .args(["--json", "--offline"]));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "hit");
    assert!(json["size"].is_null(), "{json}");
    assert_eq!(tree_listing(&buf_out), tree_listing(&again));
    // ... while the sized pin of the same bytes is another tree, made from the cached blob.
    let sized = tmp.path().join("buf-sized");
    let o = run(protoreg()
        .args(materialize_args(&buf, "tar.gz", &cache, &sized))
        .args(["--json", "--offline"]));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "miss");
    assert!(json["source"].is_null(), "{json}");
    assert_eq!(json["size"], buf.size);
    assert_eq!(server.count("/buf.tar.gz"), 1);
    assert_buf_works(&sized);
}

#[test]
fn raw_format_takes_at_most_one_executable() {
    // A raw artifact is one file: a second --executable could never exist. Refused before
    // any download.
    let raw = pin(&fixture("buf-Linux-x86_64"));
    let server = HttpServer::start();
    let url = server.route("/buf", Route::File(raw.path.clone()));
    let tmp = scratch();
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .args(materialize_args(
            &raw,
            "raw",
            &tmp.path().join("cache"),
            &out,
        ))
        .args([
            "--executable",
            "bin/buf",
            "--executable",
            "bin/protoc-gen-buf-lint",
            "--source",
            &url,
        ]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--format raw is a single file"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(server.count("/buf"), 0);
    assert!(absent_or_empty(&out));
    // The same for extract.
    let o = run(protoreg()
        .arg("extract")
        .arg(&raw.path)
        .args(["--sha256", raw.sha256.hex(), "--format", "raw"])
        .args(["--executable", "bin/buf", "--executable", "bin/x", "--out"])
        .arg(&out));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(absent_or_empty(&out));
    // One is the file's path; with no size, extract checks the sha256 alone.
    let o = run(protoreg()
        .arg("extract")
        .arg(&raw.path)
        .args(["--sha256", raw.sha256.hex(), "--format", "raw"])
        .args(["--executable", "bin/buf", "--out"])
        .arg(&out));
    assert!(o.status.success(), "{}", text(&o));
    assert_buf_works(&out);
}

/// One tar stream cut at a member boundary, each part compressed on its own by `compress`
/// and the parts concatenated: `extract` and the streaming path of `materialize` must both
/// read every part, as `tar xzf` / `tar xJf` do.
fn assert_concatenated_parts_extract_whole(format: &str, compress: impl Fn(&[u8]) -> Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("first/a.txt", &b"first\n"[..]),
        ("second/b.txt", b"second\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut body = Vec::new();
    for part in [&tar[..1024], &tar[1024..]] {
        body.extend(compress(part));
    }
    let tmp = scratch();
    let archive = tmp.path().join(format!("two.{format}"));
    fs::write(&archive, &body).unwrap();
    let p = pin(&archive);

    let out = tmp.path().join("out");
    let o = run(protoreg()
        .arg("extract")
        .arg(&archive)
        .args(["--sha256", p.sha256.hex(), "--format", format, "--out"])
        .arg(&out));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read(out.join("first/a.txt")).unwrap(), b"first\n");
    assert_eq!(fs::read(out.join("second/b.txt")).unwrap(), b"second\n");

    // The streaming path of materialize reads the same way.
    let server = HttpServer::start();
    let url = server.route("/two", Route::File(archive.clone()));
    let out = tmp.path().join("out2");
    let o = run(protoreg()
        .args(["materialize", "--sha256", p.sha256.hex(), "--size"])
        .arg(p.size.to_string())
        .args(["--format", format, "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .arg("--out")
        .arg(&out)
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(fs::read(out.join("second/b.txt")).unwrap(), b"second\n");
}

#[test]
fn a_multi_member_gzip_is_extracted_whole() {
    // `cat a.gz b.gz`, as pigz or bgzip write.
    use std::io::Write;
    assert_concatenated_parts_extract_whole("tar.gz", |part| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).unwrap();
        gz.finish().unwrap()
    });
}

#[test]
fn concatenated_xz_streams_are_extracted_whole() {
    // `cat a.xz b.xz`, each made by the system's xz.
    let tmp = scratch();
    assert_concatenated_parts_extract_whole("tar.xz", |part| {
        let path = tmp.path().join("part");
        fs::write(&path, part).unwrap();
        let o = run(Command::new("xz")
            .args(["--force", "--threads=1", "-1"])
            .arg(&path));
        assert!(o.status.success(), "{}", text(&o));
        fs::read(path.with_extension("xz")).unwrap()
    });
}

#[test]
fn an_out_that_is_a_symlink_is_refused_with_a_hint_and_never_written_through() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server.route("/p.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    // To an empty directory, and dangling (to a path that does not exist).
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    for (name, target) in [
        ("to-dir", real.clone()),
        ("dangling", tmp.path().join("nowhere")),
    ] {
        let out = tmp.path().join(name);
        std::os::unix::fs::symlink(&target, &out).unwrap();
        let o = run(protoreg()
            .args(materialize_args(&protoc, "zip", &cache, &out))
            .args(["--source", &url]));
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(err.contains(&out.display().to_string()), "{err}");
        assert!(err.contains("hint:"), "{err}");
        assert!(fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
        assert!(absent_or_empty(&real));
        assert!(!tmp.path().join("nowhere").exists());
        // extract refuses it the same way.
        let o = run(protoreg()
            .arg("extract")
            .arg(&protoc.path)
            .args(["--sha256", protoc.sha256.hex(), "--format", "zip", "--out"])
            .arg(&out));
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        assert!(absent_or_empty(&real));
    }
    assert_eq!(server.count("/p.zip"), 0, "refused before any download");
}

/// An --out inside the cache is refused before anything is written (root, whom read-only
/// trees do not stop, used to copy a tree into itself until ENAMETOOLONG), wherever it
/// points: into a cached tree, the cache's root, or there through `..` and a symlink.
#[test]
fn an_out_inside_the_cache_is_refused_and_the_cache_is_untouched() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server.route("/p.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    let cache = tmp.path().join("cache");
    let o = run(protoreg()
        .args(materialize_args(
            &protoc,
            "zip",
            &cache,
            &tmp.path().join("first"),
        ))
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    let trees = cache_trees(&cache);
    let tree = trees.first().expect("a cached tree");
    let trees_dir = cache.join("trees-v1");
    let before = tree_listing(&trees_dir);
    let link = tmp.path().join("to-cache");
    std::os::unix::fs::symlink(&cache, &link).unwrap();
    for out in [
        tree.join("include/out"),
        tree.join("new/deeper"),
        cache.join("out"),
        tmp.path().join("elsewhere/../cache/out"),
        link.join("out"),
    ] {
        let o = run(protoreg()
            .args(materialize_args(&protoc, "zip", &cache, &out))
            .args(["--source", &url]));
        assert_eq!(o.status.code(), Some(2), "{}: {}", out.display(), text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("is inside the cache") && err.contains("hint:"),
            "{err}"
        );
        assert!(
            tree_listing(&trees_dir) == before,
            "{} changed the cache",
            out.display()
        );
    }
    assert_eq!(server.count("/p.zip"), 1, "only the first run downloaded");
}

/// `materialize` arguments for [`xz::protoc_txz`]: Node's layout, one top directory.
fn protoc_txz_args(p: &Pinned, cache: &std::path::Path, out: &std::path::Path) -> Vec<String> {
    let mut a = materialize_args(p, "tar.xz", cache, out);
    a.extend(
        [
            "--strip-prefix",
            xz::PROTOC_TXZ_PREFIX,
            "--executable",
            "bin/protoc",
        ]
        .map(String::from),
    );
    a
}

#[test]
fn a_tar_xz_in_nodes_layout_comes_from_a_registry_an_http_source_and_extract() {
    let tmp = scratch();
    let txz = pin(&xz::protoc_txz(tmp.path()));
    let reg = RegistryServer::start();
    reg.push(
        "ns/tools/protoc-xz",
        &txz,
        Format::TarXz,
        "v36.2-linux-x86_64",
        None,
    );
    let from_registry = tmp.path().join("from-registry");
    let o = run(protoreg()
        .args(protoc_txz_args(
            &txz,
            &tmp.path().join("cache1"),
            &from_registry,
        ))
        .args(["--plain-http", "--json", "--source"])
        .arg(format!("oci://{}/ns/tools/protoc-xz", reg.host)));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["cache"], "miss");
    assert_protoc_works(&from_registry);
    assert_eq!(
        fs::read_link(from_registry.join("bin/protoc-link")).unwrap(),
        std::path::PathBuf::from("protoc")
    );

    let server = HttpServer::start();
    let url = server.route("/protoc.tar.xz", Route::File(txz.path.clone()));
    let from_http = tmp.path().join("from-http");
    let o = run(protoreg()
        .args(protoc_txz_args(
            &txz,
            &tmp.path().join("cache2"),
            &from_http,
        ))
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    assert_protoc_works(&from_http);

    // Buck2's native mode: `extract` of the file download_file fetched.
    let extracted = tmp.path().join("extracted");
    let o = run(protoreg()
        .arg("extract")
        .arg(&txz.path)
        .args(["--sha256", txz.sha256.hex(), "--format", "tar.xz"])
        .args(["--strip-prefix", xz::PROTOC_TXZ_PREFIX])
        .args(["--executable", "bin/protoc", "--out"])
        .arg(&extracted));
    assert!(o.status.success(), "{}", text(&o));
    assert_protoc_works(&extracted);
    let listing = tree_listing(&from_registry);
    assert!(listing.len() > 10, "{listing:?}");
    assert_eq!(listing, tree_listing(&from_http));
    assert_eq!(listing, tree_listing(&extracted));

    // The same tree as the upstream zip gives (less the link the repack added): nothing
    // lost or changed in the tar walk.
    let from_zip = tmp.path().join("from-zip");
    let protoc = pin(&fixture(PROTOC_ZIP));
    let o = run(protoreg()
        .arg("extract")
        .arg(&protoc.path)
        .args(["--sha256", protoc.sha256.hex(), "--format", "zip"])
        .args(["--executable", "bin/protoc", "--out"])
        .arg(&from_zip));
    assert!(o.status.success(), "{}", text(&o));
    let mut without_link = listing;
    without_link.retain(|(path, _, _)| path != "bin/protoc-link");
    assert_eq!(without_link, tree_listing(&from_zip));
}

#[test]
fn a_zip_made_on_windows_in_nodes_layout_materializes() {
    // Node's Windows release is a zip of `node-v<version>-win-x64/...` written on Windows:
    // MS-DOS attributes, no Unix modes, explicit directory entries. Python's zipfile writes
    // one the same way (a writer this project did not write).
    let tmp = scratch();
    let archive = tmp.path().join("node-win.zip");
    let script = r#"
import sys, zipfile
top = "node-v22.12.0-win-x64/"
members = [(top, None), (top + "node.exe", b"MZ not really node"),
           (top + "npm.cmd", b"@echo off\r\n"), (top + "node_modules/", None),
           (top + "node_modules/npm/bin/npm-cli.js", b"// npm\n")]
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, data in members:
        info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
        info.create_system = 0  # MS-DOS
        info.external_attr = 0x10 if data is None else 0x20
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data or b"")
"#;
    let o = run(Command::new("python3").arg("-c").arg(script).arg(&archive));
    assert!(o.status.success(), "{}", text(&o));
    let p = pin(&archive);
    let server = HttpServer::start();
    let url = server.route("/node.zip", Route::File(archive.clone()));
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .args(["materialize", "--sha256", p.sha256.hex(), "--format", "zip"])
        .args([
            "--strip-prefix",
            "node-v22.12.0-win-x64",
            "--executable",
            "node.exe",
        ])
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .arg("--out")
        .arg(&out)
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    // Every file, under the stripped top directory; the declared binary alone executable.
    let listing: Vec<(String, u32)> = tree_listing(&out)
        .into_iter()
        .map(|(path, _, exec)| (path, exec))
        .collect();
    let want = [
        ("node.exe", 0o111),
        ("node_modules/npm/bin/npm-cli.js", 0),
        ("npm.cmd", 0),
    ]
    .map(|(path, exec)| (path.to_string(), exec));
    assert_eq!(listing, want, "{}", text(&o));
}
