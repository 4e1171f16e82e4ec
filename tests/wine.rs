//! protoreg's Windows build, run for real under Wine (tests/common/wine.rs), as an
//! unprivileged user, with the Windows protoc and buf from upstream's archives.
//!
//! What each test exercises of src/sys.rs's Windows branches:
//! - extract: `open_nonblocking_with` (the archive, opened as checked), `create_new`,
//!   `set_mode` and `mode` (read-only attribute), drive-letter, `\\?\` and spaced paths; the
//!   refusals of a wrong digest and a traversal entry.
//! - materialize: `home_dir` and `NETRC` (`_netrc` in the profile), `sync_dir`, `create_new`,
//!   `rename_noreplace` (MoveFileExW), `clone_file` and `clone_unsupported` (no clones: a
//!   copy), `same_file`, `grow_pipe`; `cache verify`; a registry source.
//! - racing materializes: `rename_noreplace`'s AlreadyExists (the losers drop their copies,
//!   read-only files included), then `cleanup` removing read-only entries.
//! - bump: `Contained`, `close_inherited_on_exec`, `unprivileged_if_root`,
//!   `own_process_group` and `kill_group` (protoc.exe run for its version).
//! - expect-findings: `process` reading buf.exe's report while it runs, and `kill_group` on
//!   a program that writes past the cap.
//! - a tar with a symbolic link: `symlink`, checked after the call (Wine makes none).
//! - a Windows executor (NativeLink whose worker runs commands under Wine), driven by real
//!   Buck2: `exec` in `protoreg.exe protoc` (protoc.exe run to its end, its status passed
//!   on), and the generated C++ byte-identical to the Linux goldens.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::github::{protoc_assets, Asset, FakeGitHub};
use common::http::{HttpServer, Route};
use common::wine::{win, Wine};
use common::*;
use protoreg::pipeline::extract::Format;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const WIN_ZIP: &str = "protoc-36.2-win64.zip";

/// `name` of the fixtures copied where the user can read it, with its pin.
fn readable(w: &Wine, dir: &Path, name: &str) -> (PathBuf, Pinned) {
    let to = dir.join(name);
    fs::copy(fixture(name), &to).unwrap();
    if w.user.dropped() {
        std::os::unix::fs::chown(&to, Some(w.user.uid), Some(w.user.gid)).unwrap();
    }
    let p = pin(&to);
    (to, p)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `protoc.exe --version` of the protoc in `tree`.
fn protoc_exe_version(w: &Wine, tree: &Path) -> String {
    stdout(&w.run(w.command(&tree.join("bin/protoc.exe")).arg("--version")))
}

/// A directory the user owns at `path` (its parents the test's).
fn owned(w: &Wine, path: &Path) -> PathBuf {
    w.user.own(path);
    path.to_path_buf()
}

/// No write bit anywhere in `path` (a file, or a tree's files): the read-only attribute,
/// as Wine shows it to Linux.
fn assert_read_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            assert_read_only(&e.unwrap().path());
        }
    } else {
        assert_eq!(
            meta.permissions().mode() & 0o222,
            0,
            "{} is writable",
            path.display()
        );
    }
}

#[test]
fn extract_writes_windows_protoc_at_drive_letter_verbatim_and_spaced_paths_and_refuses_bad_archives(
) {
    let w = Wine::get();
    let v = w.run(w.protoreg().arg("--version"));
    assert_eq!(stdout(&v), format!("protoreg {VERSION}"), "{}", text(&v));
    let dir = w.user.tempdir();
    let (zip, p) = readable(w, dir.path(), WIN_ZIP);
    let sha = p.sha256.to_string();
    let spaced = owned(w, &dir.path().join("Program Files")).join("protoc 36.2");
    // Past MAX_PATH (260), named as Windows programs name long paths.
    let deep = owned(
        w,
        &dir.path()
            .join("a".repeat(100))
            .join("b".repeat(100))
            .join("c".repeat(60)),
    )
    .join("protoc");
    let plain = dir.path().join("plain");
    let slashed = dir.path().join("slashed");
    for (out, named) in [
        (plain.clone(), win(&plain)),
        (spaced.clone(), win(&spaced)),
        (deep.clone(), format!(r"\\?\{}", win(&deep))),
        (slashed.clone(), format!("Z:{}", slashed.display())),
    ] {
        let o = w.run(
            w.protoreg()
                .args(["extract", "--sha256", &sha, "--format", "zip"])
                .args(["--executable", "bin/protoc.exe", "--out", &named])
                .arg(win(&zip)),
        );
        assert!(o.status.success(), "{named}: {}", text(&o));
        assert_eq!(protoc_exe_version(w, &out), "libprotoc 36.2", "{named}");
        assert!(out
            .join("include/google/protobuf/timestamp.proto")
            .is_file());
    }

    // A wrong digest: refused before anything is written.
    let wrong = dir.path().join("wrong");
    let o = w.run(
        w.protoreg()
            .args(["extract", "--sha256", &"0".repeat(64), "--format", "zip"])
            .args(["--out", &win(&wrong)])
            .arg(win(&zip)),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&sha), "{}", text(&o));
    assert!(absent_or_empty(&wrong));

    // An entry that climbs out of the tree: refused, nothing written inside or outside.
    let evil = zip_with(
        dir.path(),
        "evil.zip",
        &[
            (r"ok.txt", b"fine", 0o644),
            (r"..\escaped.txt", b"out", 0o644),
        ],
    );
    let e = pin(&evil);
    let boxed = owned(w, &dir.path().join("box"));
    let out = boxed.join("tree");
    let o = w.run(
        w.protoreg()
            .args([
                "extract",
                "--sha256",
                &e.sha256.to_string(),
                "--format",
                "zip",
            ])
            .args(["--out", &win(&out)])
            .arg(win(&evil)),
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("escaped.txt"), "{}", text(&o));
    assert!(!boxed.join("escaped.txt").exists() && absent_or_empty(&out));
}

/// `materialize` of the win64 protoc zip into `out` with the cache at `cache`.
fn materialize(w: &Wine, p: &Pinned, cache: &Path, out: &Path) -> Command {
    let mut c = w.protoreg();
    c.args(["materialize", "--sha256", &p.sha256.to_string()])
        .args(["--size", &p.size.to_string(), "--format", "zip"])
        .args(["--executable", "bin/protoc.exe"])
        .args(["--cache-dir", &win(cache), "--out", &win(out)]);
    c
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn materialize_fetches_over_http_and_from_a_registry_then_hits_its_cache_and_verify_finds_a_change()
{
    use base64::Engine;
    let w = Wine::get();
    let dir = w.user.tempdir();
    let (zip, p) = readable(w, dir.path(), WIN_ZIP);
    let http = HttpServer::start();
    let url = http.route("/protoc-36.2-win64.zip", Route::File(zip));
    // `_netrc` in the Windows profile: its credentials go to that host, as curl's would.
    let netrc = w.profile().join("_netrc");
    fs::write(&netrc, "machine 127.0.0.1 login win password s3cret\n").unwrap();
    let cache = dir.path().join("cache dir");
    let first = dir.path().join("first");
    let o = w.run(materialize(w, &p, &cache, &first).args(["--json", "--source", &url]));
    let _ = fs::remove_file(&netrc);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["cache"], "miss");
    assert_eq!(protoc_exe_version(w, &first), "libprotoc 36.2");
    let basic = base64::engine::general_purpose::STANDARD.encode("win:s3cret");
    assert_eq!(
        http.authorizations("/protoc-36.2-win64.zip"),
        vec![Some(format!("Basic {basic}"))]
    );

    // Offline, from the cache: the same tree.
    let second = dir.path().join("second");
    let o = w.run(materialize(w, &p, &cache, &second).args(["--json", "--offline"]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["cache"], "hit");
    assert_eq!(tree_listing(&first), tree_listing(&second));
    assert_eq!(protoc_exe_version(w, &second), "libprotoc 36.2");
    // Read-only in the cache, as Windows keeps it.
    assert_read_only(&cache_blob(&cache, &p));
    let trees = cache_trees(&cache);
    assert_eq!(trees.len(), 1);
    assert_read_only(&trees[0]);
    let verify = |extra: &[&str]| {
        w.run(
            w.protoreg()
                .args(["cache", "verify", "--cache-dir", &win(&cache)])
                .args(extra),
        )
    };
    let v = verify(&[]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));

    // A registry source, into a cache of its own.
    let reg = RegistryServer::start();
    reg.push(
        "ns/tools/protoc",
        &p,
        Format::Zip,
        "v36.2-windows-x86_64",
        None,
    );
    let other = dir.path().join("other cache");
    let third = dir.path().join("third");
    let o = w.run(
        materialize(w, &p, &other, &third)
            .args(["--json", "--plain-http", "--source"])
            .arg(format!("oci://{}/ns/tools/protoc", reg.host)),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["cache"], "miss");
    assert_eq!(protoc_exe_version(w, &third), "libprotoc 36.2");

    // A tar.gz, extracted while it downloads (through a pipe), verified before it is used.
    let (tgz, b) = readable(w, dir.path(), "buf-Linux-x86_64.tar.gz");
    let url = http.route("/buf.tar.gz", Route::File(tgz));
    let buf = dir.path().join("buf");
    let o = w.run(
        w.protoreg()
            .args(["materialize", "--sha256", &b.sha256.to_string()])
            .args(["--size", &b.size.to_string(), "--format", "tar.gz"])
            .args(["--strip-prefix", "buf", "--executable", "bin/buf"])
            .args(["--cache-dir", &win(&cache), "--out", &win(&buf)])
            .args(["--source", &url]),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        fs::read(buf.join("bin/buf")).unwrap() == fs::read(fixture("buf-Linux-x86_64")).unwrap(),
        "bin/buf is not upstream's"
    );

    // A file of the cached tree changed behind protoreg's back: verify names it.
    let changed = trees[0].join("include/google/protobuf/any.proto");
    make_writable(&trees[0], &changed);
    fs::write(&changed, "changed").unwrap();
    let v = verify(&[]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    // Named as Windows names it.
    assert!(
        stdout(&v).contains(r"`include\google\protobuf\any.proto` changed size"),
        "{}",
        text(&v)
    );
    let v = verify(&["--repair"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(!trees[0].exists() && cache_trees(&cache).len() == 1);
}

#[test]
fn racing_materializes_share_one_install_and_cleanup_removes_read_only_entries() {
    let w = Wine::get();
    let dir = w.user.tempdir();
    let (zip, p) = readable(w, dir.path(), WIN_ZIP);
    let http = HttpServer::start();
    let url = http.route("/protoc-36.2-win64.zip", Route::File(zip));
    let cache = dir.path().join("cache");
    let outs: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("out{i}"))).collect();
    let children: Vec<_> = outs
        .iter()
        .map(|out| {
            materialize(w, &p, &cache, out)
                .args(["--source", &url])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, out) in children.into_iter().zip(&outs) {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}: {}", out.display(), text(&o));
        assert!(out.join("bin/protoc.exe").is_file());
    }
    assert_eq!(protoc_exe_version(w, &outs[2]), "libprotoc 36.2");
    // One entry each, the losers' copies gone (tmp/ holds nothing of theirs).
    assert_eq!(cache_trees(&cache).len(), 1);
    let tmp: Vec<_> = fs::read_dir(cache.join("tmp"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "left in tmp/: {tmp:?}");

    // cleanup removes the read-only blob and tree.
    let o = w.run(
        w.protoreg()
            .args(["cleanup", "--cache-dir", &win(&cache), "--older-than", "0"]),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(cache_trees(&cache).is_empty());
    assert!(!cache_blob(&cache, &p).exists());
}

#[test]
fn bump_runs_the_windows_protoc_it_pins_for_its_version() {
    let w = Wine::get();
    let dir = w.user.tempdir();
    let gh = FakeGitHub::start();
    let list = protoc_assets();
    let assets: Vec<Asset> = list.iter().map(|(n, p)| Asset::new(n, p)).collect();
    gh.release("protocolbuffers/protobuf", "v36.2", &assets, false, false);
    let pins = dir.path().join("pins.bzl");
    fs::write(&pins, "DEFAULTS = {}\nPINS = {}\nPROVENANCE = {}\n").unwrap();
    std::os::unix::fs::chown(&pins, Some(w.user.uid), Some(w.user.gid)).unwrap();
    let o = w.run(
        w.protoreg()
            .args(["bump", "protoc", "36.2", "--pins", &win(&pins)])
            .env("GITHUB_API_URL", gh.api_url()),
    );
    assert!(o.status.success(), "{}", text(&o));
    // The host's binary (Windows, here) was run, and said its version.
    assert!(text(&o).contains("libprotoc 36.2"), "{}", text(&o));
    let pinned = protoreg::maintain::pins::Pins::load(&pins).unwrap();
    let win64 = pin(&fixture(WIN_ZIP));
    assert_eq!(
        pinned.pins["protoc"]["36.2"]["windows-x86_64"].sha256.hex(),
        win64.sha256.hex()
    );
}

#[test]
fn expect_findings_reads_the_windows_buf_report() {
    let w = Wine::get();
    let dir = w.user.tempdir();
    let (buf, _) = readable(w, dir.path(), "buf-Windows-x86_64.exe");
    let ws = owned(w, &dir.path().join("ws"));
    fs::write(
        ws.join("bad.proto"),
        "syntax = \"proto3\";\npackage Bad;\nmessage m {}\n",
    )
    .unwrap();
    let lint = |rules: &[&str]| {
        let mut c = w.protoreg();
        c.arg("expect-findings");
        for r in rules {
            c.args(["--rule", r]);
        }
        w.run(
            c.arg("--")
                .arg(win(&buf))
                .args(["lint", "--error-format", "json"])
                .arg(win(&ws)),
        )
    };
    let all = [
        "PACKAGE_DIRECTORY_MATCH",
        "PACKAGE_LOWER_SNAKE_CASE",
        "PACKAGE_VERSION_SUFFIX",
        "MESSAGE_PASCAL_CASE",
    ];
    let o = lint(&all);
    assert!(o.status.success(), "{}", text(&o));
    // Every finding must be named: leaving one out fails, naming it.
    let o = lint(&all[..3]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("MESSAGE_PASCAL_CASE"), "{}", text(&o));

    // A report past the 16 MiB cap: the program is killed (TerminateProcess), not waited on.
    let flood = dir.path().join("flood.txt");
    fs::write(&flood, vec![b'x'; 17 << 20]).unwrap();
    let o = w.run(
        w.protoreg()
            .args([
                "expect-findings",
                "--rule",
                "ANY",
                "--",
                "cmd.exe",
                "/c",
                "type",
            ])
            .arg(win(&flood)),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("wrote more than 16777216 bytes on stdout"),
        "{}",
        text(&o)
    );
}

/// Code generation as a Windows executor runs it: real Buck2 on this machine, the target and
/// execution platform `windows-x86_64`, remote execution on a NativeLink worker that declares
/// itself Windows and runs every command under Wine. protoreg is pinned (the Windows build,
/// released on the loopback upstream), protoc is the win64 zip; Buck2 downloads both (native
/// fetch mode), and the worker runs `protoreg.exe extract` for protoc and then the one
/// code-generation command line analysis gives every OS, `protoreg.exe protoc
/// --prune-descriptor-sets -- protoc.exe …`, with Windows path separators; likewise with a Windows plugin, protoc-gen-go.exe (from
/// upstream's Windows zip layout). What they write equals the Linux goldens, C++ and Go.
#[test]
fn a_windows_executor_runs_the_code_generation_command_line_under_wine_and_writes_the_goldens() {
    use common::buck2::*;
    use protoreg::maintain::pins::{Pin, Pins};
    let w = Wine::get();
    let up = Loopback::start();
    let p = Project::as_committed();
    up.configure(&p);
    // protoreg for Windows, released and pinned like any tool.
    let name = format!("protoreg-{VERSION}-windows-x86_64.exe");
    let exe = pin(&w.protoreg_exe);
    let url = up.gh.server.url(&format!(
        "/download/birbparty/buck2-protobuf/v{VERSION}/{name}"
    ));
    up.gh.server.route(
        &format!("/download/birbparty/buck2-protobuf/v{VERSION}/{name}"),
        Route::File(w.protoreg_exe.clone()),
    );
    let pins_path = p.path().join("toolchains/pins.bzl");
    let mut pins = Pins::load(&pins_path).unwrap();
    let windows_build = Pin {
        format: Format::of_file_name(&name),
        size: Some(exe.size),
        sha256: exe.sha256.clone(),
        url,
    };
    pin_as_default(
        &mut pins,
        "protoreg",
        VERSION,
        "windows-x86_64",
        windows_build,
        "test: this checkout's Windows build",
    );
    // A Windows plugin: protoc-gen-go 1.28.1 (the Linux fixture's version) built for Windows
    // (scripts/install-deps), in upstream's Windows zip.
    let go_zip = "protoc-gen-go.v1.28.1.windows.amd64.zip";
    let go = pin(&fixture(go_zip));
    let go_url = up.url(GO_REPO, "v1.28.1", go_zip);
    up.gh.server.route(
        &format!("/download/{GO_REPO}/v1.28.1/{go_zip}"),
        Route::File(fixture(go_zip)),
    );
    pins.insert(
        "protoc-gen-go",
        "1.28.1",
        "windows-x86_64",
        Pin {
            format: Format::Zip,
            size: Some(go.size),
            sha256: go.sha256.clone(),
            url: go_url,
        },
    );
    fs::write(&pins_path, pins.render()).unwrap();
    // The examples' Go, without gRPC (no Windows protoc-gen-go-grpc here).
    p.write(
        "windows/BUCK",
        "go_proto_gen(\n    name = \"weather_go\",\n    protos = [\n        \"//examples/proto/acme/weather/v1:weather\",\n        \"//examples/proto/acme/geo/v1:geo\",\n    ],\n)\n",
    );
    p.edit(
        ".buckconfig",
        &format!("protoreg = {}", env!("CARGO_BIN_EXE_protoreg")),
        "protoreg = pinned",
    );
    p.edit(".buckconfig", "fetch_mode = helper", "fetch_mode = native");
    p.edit(".buckconfig", "  mode = local\n", "  mode = remote\n");
    let nl = common::nativelink::NativeLink::start_windows(&w.user, &w.launcher());
    let mut config = fs::read_to_string(p.path().join(".buckconfig")).unwrap();
    config.push_str(&nl.buckconfig());
    p.write(".buckconfig", &config);

    let target = "root//examples/proto/acme/weather/v1:weather_builtin[cpp]";
    let windows = [
        "--target-platforms",
        "prelude//platforms:windows-x86_64",
        "-c",
        "build.execution_platforms=prelude//platforms:exec-windows-x86_64",
    ];
    let generated = outputs(&p, target, &windows);
    assert_eq!(generated.len(), 1, "{generated:?}");
    assert_matches_golden("cpp", &generated[0]);
    let mut ran = p.ok(&["log", "what-ran"]);
    let go = outputs(&p, "root//windows:weather_go[go]", &windows);
    assert_eq!(go.len(), 1, "{go:?}");
    assert_matches_golden("go", &go[0]);
    ran.push_str(&p.ok(&["log", "what-ran"]));
    // Every action ran there: the extracts, the generations and what they read, as Windows command
    // lines (backslashes; the log escapes each), the plugin's Windows executable marked.
    for action in [
        "(protoreg_extract protoc-36.2-windows-x86_64)",
        "(protoc_builtin_gen)",
        "(protoreg_extract protoc-gen-go-1.28.1-windows-x86_64)",
        "(protoc_plugin_gen)",
        // geo's descriptor set, which weather's generation reads (`--descriptor_set_in`).
        "(protoc_descriptor_set)",
    ] {
        assert!(
            ran.contains(&format!("{action}\tre(Arch=amd64,OSFamily=windows)")),
            "{action} did not run on the Windows executor:\n{ran}"
        );
    }
    assert_eq!(
        nl.executed(),
        ran.matches("\tre(Arch=amd64,OSFamily=windows)").count(),
        "{ran}"
    );
    let log = nl.log();
    assert!(
        log.contains(
            r#"\\protoreg.exe", "protoc", "--prune-descriptor-sets", "--", "buck-out\\v2\\"#
        ) && log.contains(r"\\bin\\protoc.exe")
            && log.contains(r"--cpp_out=buck-out\\v2\\")
            && log.contains(r#""--executable", "protoc-gen-go.exe""#),
        "{log}"
    );
}

/// A tool archive with symbolic links (tar, as some releases ship): Windows makes them only
/// with the privilege or Developer Mode, and Wine 8.0 reports them made while making none.
/// Either way protoreg checks each link it made, so a tree missing one is an error naming
/// it, never a tree that passes for complete.
#[test]
fn a_symbolic_link_the_system_did_not_make_is_an_error_naming_it() {
    let w = Wine::get();
    let dir = w.user.tempdir();
    let archive = tgz_with(
        dir.path(),
        "links.tar.gz",
        &[
            ("pkg/bin/real.txt", tar::EntryType::Regular, "", b"hello"),
            (
                "pkg/bin/alias.txt",
                tar::EntryType::Symlink,
                "real.txt",
                b"",
            ),
        ],
    );
    let a = pin(&archive);
    let out = dir.path().join("tree");
    let o = w.run(
        w.protoreg()
            .args([
                "extract",
                "--sha256",
                &a.sha256.to_string(),
                "--format",
                "tar.gz",
            ])
            .args(["--out", &win(&out)])
            .arg(win(&archive)),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("create symlink") && text(&o).contains(r"pkg\bin\alias.txt"),
        "{}",
        text(&o)
    );
    assert!(absent_or_empty(&out), "a partial tree was left");
}
