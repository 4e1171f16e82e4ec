//! The repository's own Buck2 rules (prelude/, toolchains/BUCK, examples/, BUCK) through the
//! harness: every file loads, every target analyzes for the five platforms with the pin of the
//! execution platform, and on the host the example graph is built for real in both fetch modes.
//!
//! toolchains/pins.bzl is only ever written by `protoreg bump`, so these tests work on a scratch
//! copy of the repository whose pins are computed here from the fixture archives that
//! `scripts/install-deps` builds (real upstream binaries in upstream's archive layouts), served
//! from a loopback HTTP server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use buck2_harness::{ActionKind, Harness, TestRun};
use sha2::{Digest, Sha256};

const PLATFORMS: [&str; 5] = [
    "darwin-arm64",
    "darwin-x86_64",
    "linux-aarch64",
    "linux-x86_64",
    "windows-x86_64",
];

/// Upstream asset suffix of each protoc release archive.
const PROTOC_ASSETS: [(&str, &str); 5] = [
    ("darwin-arm64", "osx-aarch_64"),
    ("darwin-x86_64", "osx-x86_64"),
    ("linux-aarch64", "linux-aarch_64"),
    ("linux-x86_64", "linux-x86_64"),
    ("windows-x86_64", "win64"),
];

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("PROTOREG_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join(".fixtures"));
    assert!(
        dir.join("upstream").is_dir(),
        "no fixture archives in `{}`: run scripts/install-deps (or set PROTOREG_FIXTURES)",
        dir.display()
    );
    dir
}

fn sha256_hex(path: &Path) -> (String, u64) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read `{}`: {e}", path.display()));
    let digest = Sha256::digest(&bytes);
    (
        digest.iter().map(|b| format!("{b:02x}")).collect(),
        bytes.len() as u64,
    )
}

/// Files the loopback server serves besides the fixtures, by name (see [`serve_file`]).
static EXTRA_FILES: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

/// Serves `path` as `GET /NAME` from [`file_server`] too.
fn serve_file(name: &str, path: &Path) {
    EXTRA_FILES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_owned(), path.to_owned());
}

/// A loopback HTTP server for the fixture archives: `GET /NAME` serves `upstream/NAME` (or a
/// file given to [`serve_file`]).
fn file_server() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = fixtures().join("upstream");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let dir = dir.clone();
                std::thread::spawn(move || {
                    // Read the whole request head before answering: closing a socket with
                    // unread request bytes resets it, and the client can lose the response.
                    let mut reader = BufReader::new(&stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    let name = line.split_whitespace().nth(1).unwrap_or("/").rsplit('/').next().unwrap_or("").to_owned();
                    let extra = EXTRA_FILES.lock().unwrap_or_else(|e| e.into_inner()).get(&name).cloned();
                    match std::fs::read(extra.unwrap_or_else(|| dir.join(&name))) {
                        Ok(body) => {
                            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                            let _ = stream.write_all(head.as_bytes());
                            let _ = stream.write_all(&body);
                        }
                        Err(_) => {
                            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        }
                    }
                    let mut rest = [0u8; 1024];
                    let _ = stream.read(&mut rest);
                });
            }
        });
        base
    })
}

/// One version's pins, by canonical platform.
type PlatformPins = Vec<(&'static str, Pin)>;

struct Pin {
    format: &'static str,
    file: String,
    url: String,
}

/// pins.bzl in the contract's shape: PINS[tool][version][platform] = (format, size, sha256, url).
/// protoc is pinned for every platform; buf and the Go plugins only for linux-x86_64 (the
/// fixtures have nothing else), which is what the missing-pin tests rely on.
fn pins_bzl() -> String {
    let upstream = fixtures().join("upstream");
    let mut pins: BTreeMap<&str, (&str, PlatformPins)> = BTreeMap::new();
    let gh = "https://github.com";
    pins.insert(
        "protoc",
        (
            "36.2",
            PROTOC_ASSETS
                .iter()
                .map(|(p, asset)| {
                    let file = format!("protoc-36.2-{asset}.zip");
                    let url =
                        format!("{gh}/protocolbuffers/protobuf/releases/download/v36.2/{file}");
                    (
                        *p,
                        Pin {
                            format: "zip",
                            file,
                            url,
                        },
                    )
                })
                .collect(),
        ),
    );
    let linux = |format: &'static str, file: &str, url: String| {
        vec![(
            "linux-x86_64",
            Pin {
                format,
                file: file.to_owned(),
                url,
            },
        )]
    };
    pins.insert(
        "buf",
        (
            "1.75.0",
            linux(
                "tar.gz",
                "buf-Linux-x86_64.tar.gz",
                format!("{gh}/bufbuild/buf/releases/download/v1.75.0/buf-Linux-x86_64.tar.gz"),
            ),
        ),
    );
    // googleapis as GitHub serves a commit's archive (the fixture of PyPI's protos), named by
    // its file so the fixture server finds it.
    let googleapis = "googleapis-common-protos-1.76.0.zip";
    pins.insert(
        "googleapis",
        (
            "common-protos-1.76.0",
            vec![(
                "any",
                Pin {
                    format: "zip",
                    file: googleapis.to_owned(),
                    url: format!("{gh}/googleapis/googleapis/archive/{googleapis}"),
                },
            )],
        ),
    );
    let go = "protoc-gen-go.v1.28.1.linux.amd64.tar.gz";
    pins.insert(
        "protoc-gen-go",
        (
            "1.28.1",
            linux(
                "tar.gz",
                go,
                format!("{gh}/protocolbuffers/protobuf-go/releases/download/v1.28.1/{go}"),
            ),
        ),
    );
    // Debian's protoc-gen-go-grpc, which reports 1.0, in upstream's archive layout.
    let grpc = "protoc-gen-go-grpc.v1.0.0.linux.amd64.tar.gz";
    pins.insert(
        "protoc-gen-go-grpc",
        (
            "1.0.0",
            linux(
                "tar.gz",
                grpc,
                format!(
                    "{gh}/grpc/grpc-go/releases/download/cmd%2Fprotoc-gen-go-grpc%2Fv1.0.0/{grpc}"
                ),
            ),
        ),
    );

    // This machine's node, in Node.js's archive layout (protoc-gen-es runs on it).
    let node = "node-v20.20.2-linux-x64.tar.xz";
    pins.insert(
        "node",
        (
            "20.20.2",
            linux(
                "tar.xz",
                node,
                format!("https://nodejs.org/dist/v20.20.2/{node}"),
            ),
        ),
    );

    let mut out = String::from("# Test pins, computed from the fixture archives by tests/buck2_harness/tests/repo_rules.rs.\n\n");
    out.push_str(
        "PLATFORMS = {\n    \"darwin-arm64\": {\"os\": \"macos\", \"cpu\": \"arm64\", \"exe_suffix\": \"\"},\n    \"darwin-x86_64\": {\"os\": \"macos\", \"cpu\": \"x86_64\", \"exe_suffix\": \"\"},\n    \"linux-aarch64\": {\"os\": \"linux\", \"cpu\": \"arm64\", \"exe_suffix\": \"\"},\n    \"linux-x86_64\": {\"os\": \"linux\", \"cpu\": \"x86_64\", \"exe_suffix\": \"\"},\n    \"windows-x86_64\": {\"os\": \"windows\", \"cpu\": \"x86_64\", \"exe_suffix\": \".exe\"},\n}\n\n",
    );
    out.push_str(
        "DEFAULTS = {\n    \"buf\": \"1.75.0\",\n    \"googleapis\": \"common-protos-1.76.0\",\n    \"node\": \"20.20.2\",\n    \"protoc\": \"36.2\",\n    \"protoc-gen-go\": \"1.28.1\",\n    \"protoc-gen-go-grpc\": \"1.0.0\",\n}\n\n",
    );
    out.push_str("PINS = {\n");
    for (tool, (version, by_platform)) in &pins {
        out.push_str(&format!("    \"{tool}\": {{\n        \"{version}\": {{\n"));
        for (platform, pin) in by_platform {
            let (sha, size) = sha256_hex(&upstream.join(&pin.file));
            out.push_str(&format!(
                "            \"{platform}\": (\"{}\", {size}, \"{sha}\", \"{}\"),\n",
                pin.format, pin.url
            ));
        }
        out.push_str("        },\n    },\n");
    }
    out.push_str("}\n");
    out
}

fn pin_sha(file: &str) -> String {
    sha256_hex(&fixtures().join("upstream").join(file)).0
}

/// protoreg for the helper mode and `protoreg extract`: `PROTOREG_BIN` if set, else this
/// workspace's own `protoreg`, brought up to date by `cargo build` in the target directory and
/// profile this test was built with. Under `cargo test --workspace` that binary is already
/// fresh (the root package's tests need it), so the build is a no-op; under
/// `cargo test -p buck2-harness` from a clean checkout it is built once here. `--workspace`
/// resolves dependency features as `cargo test --workspace` does, so neither rebuilds the
/// other's protoreg.
fn protoreg() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("PROTOREG_BIN") {
            return PathBuf::from(p);
        }
        // This test is `<target-dir>[/<triple>]/<profile-dir>/deps/repo_rules-<hash>`.
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("a test binary lives in <profile>/deps/")
            .to_owned();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_owned(),
            Some(other) => other.to_owned(),
            None => panic!("no profile directory in `{}`", exe.display()),
        };
        let mut target_dir = profile_dir.parent().unwrap().to_owned();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "--workspace", "--bin", "protoreg"])
            .args(["--profile", &profile]);
        // Cargo tags the target directory itself; a directory without the tag is a
        // `--target <triple>` subdirectory.
        if !target_dir.join("CACHEDIR.TAG").is_file() {
            let triple = target_dir.file_name().unwrap().to_str().unwrap().to_owned();
            cmd.args(["--target", &triple]);
            target_dir = target_dir.parent().unwrap().to_owned();
        }
        let status = cmd
            .current_dir(project_root())
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("run cargo build for protoreg");
        assert!(status.success(), "building protoreg failed");
        let bin = profile_dir.join("protoreg");
        assert!(bin.is_file(), "cargo built no `{}`", bin.display());
        bin
    })
    .clone()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_symlink() {
            continue;
        } else if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// A scratch copy of the repository's Buck2 files with test pins and `[protobuf]` overrides.
fn scratch_repo(overrides: &[(&str, &str)]) -> tempfile::TempDir {
    let root = project_root();
    let dir = tempfile::Builder::new()
        .prefix("repo-rules-")
        .tempdir()
        .unwrap();
    for sub in ["prelude", "examples"] {
        copy_tree(&root.join(sub), &dir.path().join(sub));
    }
    std::fs::create_dir_all(dir.path().join("toolchains")).unwrap();
    for file in ["BUCK", "tools.bzl"] {
        std::fs::copy(
            root.join("toolchains").join(file),
            dir.path().join("toolchains").join(file),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("toolchains/pins.bzl"), pins_bzl()).unwrap();
    std::fs::copy(root.join("BUCK"), dir.path().join("BUCK")).unwrap();
    std::fs::copy(root.join(".buckconfig"), dir.path().join(".buckconfig")).unwrap();
    override_config(dir.path(), overrides);
    dir
}

/// Sets `[protobuf]` keys of the scratch repository's `.buckconfig`; each must exist there.
fn override_config(repo: &Path, overrides: &[(&str, &str)]) {
    let mut config = std::fs::read_to_string(repo.join(".buckconfig")).unwrap();
    for (key, value) in overrides {
        let prefix = format!("  {key} =");
        let lines: Vec<String> = config
            .lines()
            .map(|l| {
                if l.starts_with(&prefix) {
                    format!("  {key} = {value}")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        config = lines.join("\n") + "\n";
        assert!(
            config.contains(&format!("  {key} = {value}")),
            "no `{key}` in .buckconfig [protobuf]"
        );
    }
    std::fs::write(repo.join(".buckconfig"), config).unwrap();
}

fn platform(name: &str) -> String {
    format!("prelude//platforms:{name}")
}

fn run_argvs(h: &Harness, target: &str, tp: &str, ep: &str, category: &str) -> Vec<Vec<String>> {
    let r = h
        .analyze(target, &platform(tp), &platform(ep))
        .unwrap_or_else(|e| panic!("{target} for {tp} on {ep}: {e:?}"));
    // protoc's `@FILE` arguments, expanded from the write action that makes the file.
    let written = |arg: &str| {
        let path = arg.strip_prefix('@')?;
        r.actions.iter().find_map(|a| match &a.kind {
            ActionKind::Write { content, .. } if a.outputs.iter().any(|o| o.path == path) => {
                Some(content.lines().map(str::to_owned).collect::<Vec<_>>())
            }
            _ => None,
        })
    };
    r.actions
        .iter()
        .filter(|a| a.category == category)
        .map(|a| match &a.kind {
            ActionKind::Run { argv, .. } => argv
                .iter()
                .flat_map(|arg| written(arg).unwrap_or_else(|| vec![arg.clone()]))
                .collect(),
            k => panic!("{category} is not a run: {k:?}"),
        })
        .collect()
}

fn flag_value(argv: &[String], flag: &str) -> String {
    let i = argv
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag} in {argv:?}"));
    argv[i + 1].clone()
}

fn host_platform() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux-x86_64",
        ("linux", "aarch64") => "linux-aarch64",
        ("macos", "aarch64") => "darwin-arm64",
        ("macos", "x86_64") => "darwin-x86_64",
        other => panic!("no canonical platform for host {other:?}"),
    }
}

#[test]
fn every_package_loads() {
    let repo = scratch_repo(&[]);
    let h = Harness::open(repo.path()).unwrap();
    let mut packages = Vec::new();
    for entry in walk(repo.path()) {
        if entry.file_name().and_then(|n| n.to_str()) == Some("BUCK") {
            let rel = entry
                .parent()
                .unwrap()
                .strip_prefix(repo.path())
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let (cell, package) = match rel.split_once('/') {
                Some(("prelude", rest)) => ("prelude".to_owned(), rest.to_owned()),
                _ if rel == "prelude" => ("prelude".to_owned(), String::new()),
                Some(("toolchains", rest)) => ("toolchains".to_owned(), rest.to_owned()),
                _ if rel == "toolchains" => ("toolchains".to_owned(), String::new()),
                _ => ("root".to_owned(), rel.clone()),
            };
            let pkg = h
                .loader()
                .load_package(&cell, &package)
                .unwrap_or_else(|e| panic!("{cell}//{package}: {e:?}"));
            packages.push((format!("{cell}//{package}"), pkg.targets.len()));
        }
    }
    let names: Vec<_> = packages.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "prelude//os",
        "prelude//cpu",
        "prelude//platforms",
        "toolchains//",
        "root//",
        "root//examples/proto/acme/weather/v1",
    ] {
        assert!(names.contains(&want), "{want} not among {names:?}");
    }
    assert!(packages.iter().all(|(_, n)| *n > 0), "{packages:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "node_modules") {
            continue;
        }
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn protoc_pin_follows_the_execution_platform() {
    let repo = scratch_repo(&[
        ("protoreg", "/opt/protoreg"),
        ("registry", "127.0.0.1:5000/buck2-protobuf"),
    ]);
    let h = Harness::open(repo.path()).unwrap();
    for (p, asset) in PROTOC_ASSETS {
        let sha = pin_sha(&format!("protoc-36.2-{asset}.zip"));
        // The distribution for platform p, as an exec dep configures it: fetched with p's pin.
        let fetch = run_argvs(
            &h,
            &format!("toolchains//:protoc-36.2-{p}"),
            p,
            host_platform(),
            "protoreg_materialize",
        );
        assert_eq!(fetch.len(), 1, "{p}: {fetch:?}");
        let argv = &fetch[0];
        // The configured path, copied into an artifact that reaches any executor.
        assert!(argv[0].ends_with("/__protoreg__/protoreg"), "{argv:?}");
        assert_eq!(argv[1], "materialize");
        assert_eq!(flag_value(argv, "--sha256"), sha, "{p}");
        let sources: Vec<_> = argv
            .windows(2)
            .filter(|w| w[0] == "--source")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(
            sources,
            [
                "oci://127.0.0.1:5000/buck2-protobuf/tools/protoc",
                &format!("https://github.com/protocolbuffers/protobuf/releases/download/v36.2/protoc-36.2-{asset}.zip"),
            ]
        );
        let exe = if p.starts_with("windows") {
            "bin/protoc.exe"
        } else {
            "bin/protoc"
        };
        assert_eq!(flag_value(argv, "--executable"), exe);
    }

    // Building for linux-x86_64 on a darwin-arm64 executor runs the darwin-arm64 protoc, and
    // the reverse; the target platform only decides where outputs go.
    for (tp, ep) in [
        ("linux-x86_64", "darwin-arm64"),
        ("darwin-arm64", "linux-x86_64"),
    ] {
        let descriptor = run_argvs(
            &h,
            "//examples/proto/acme/weather/v1:weather",
            tp,
            ep,
            "protoc_descriptor_set",
        );
        assert_eq!(descriptor.len(), 1);
        let argv = &descriptor[0];
        // `protoreg protoc --prune-descriptor-sets -- PROTOC …`
        let protoc = argv.iter().position(|a| a == "--").map(|i| &argv[i + 1]);
        assert!(
            argv[0].ends_with("/protoreg")
                && protoc.is_some_and(|p| p.ends_with(&format!("/protoc-36.2-{ep}/bin/protoc"))),
            "{tp} on {ep}: {argv:?}"
        );
        assert!(
            argv.iter().any(|a| a.starts_with("--proto_path=")
                && a.ends_with(&format!("/protoc-36.2-{ep}/include"))),
            "{argv:?}"
        );
        // Its own file alone: geo, which it imports, is read from geo's descriptor set.
        assert!(
            !argv.contains(&"--include_imports".to_owned())
                && argv
                    .iter()
                    .any(|a| a.starts_with("--descriptor_set_in=") && a.ends_with("/geo.binpb"))
        );
        let dist = run_argvs(
            &h,
            &format!("toolchains//:protoc-36.2-{ep}"),
            ep,
            ep,
            "protoreg_materialize",
        );
        let asset = PROTOC_ASSETS.iter().find(|(p, _)| *p == ep).unwrap().1;
        assert_eq!(
            flag_value(&dist[0], "--sha256"),
            pin_sha(&format!("protoc-36.2-{asset}.zip"))
        );
    }
}

#[test]
fn every_example_analyzes_for_each_platform() {
    let repo = scratch_repo(&[("protoreg", "/opt/protoreg")]);
    let h = Harness::open(repo.path()).unwrap();
    let targets = [
        "//:examples",
        "//:lint_broken_example",
        "//examples/baseline:weather",
        "//examples/broken:broken",
        "//examples/proto/acme/geo/v1:geo",
        "//examples/proto/acme/weather/v1:weather",
        "//examples/proto/acme/weather/v1:weather_builtin",
        "//examples/proto/acme/weather/v1:weather_es",
        "//examples/proto/acme/weather/v1:weather_go",
        "//examples/proto/acme/weather/v1:weather_lint",
        "//examples/proto/acme/weather/v1:weather_format",
        "//examples/proto/acme/weather/v1:weather_breaking",
    ];
    for p in PLATFORMS {
        // Only linux-x86_64 has buf, node and Go plugin pins in the test pins; protoc has all
        // five.
        let pinned_everywhere = [
            "//:examples",
            "//examples/baseline:weather",
            "//examples/broken:broken",
            "//examples/proto/acme/geo/v1:geo",
            "//examples/proto/acme/weather/v1:weather",
            "//examples/proto/acme/weather/v1:weather_builtin",
        ];
        for t in targets {
            let result = h.analyze(t, &platform(p), &platform("linux-x86_64"));
            assert!(
                result.is_ok(),
                "{t} for {p} on linux-x86_64: {:?}",
                result.err()
            );
            if pinned_everywhere.contains(&t) {
                let result = h.analyze(t, &platform(p), &platform(p));
                // Code generation is the same `protoreg protoc` on every executor.
                assert!(result.is_ok(), "{t} for {p} on {p}: {:?}", result.err());
            }
        }
    }
}

#[test]
fn builtin_generators_and_plugins_get_their_flags() {
    let repo = scratch_repo(&[("protoreg", "/opt/protoreg")]);
    let h = Harness::open(repo.path()).unwrap();
    let p = "linux-x86_64";
    let gen = run_argvs(
        &h,
        "//examples/proto/acme/weather/v1:weather_builtin",
        p,
        p,
        "protoc_builtin_gen",
    );
    let argv = &gen[0];
    // `protoreg protoc -- PROTOC …`: no shell.
    assert!(argv[0].ends_with("/__protoreg__/protoreg"), "{argv:?}");
    assert_eq!(&argv[1..4], ["protoc", "--prune-descriptor-sets", "--"]);
    for lang in ["cpp", "python", "pyi"] {
        assert!(
            argv.iter()
                .any(|a| a.starts_with(&format!("--{lang}_out=buck-out/"))),
            "{lang}: {argv:?}"
        );
    }
    assert!(
        argv.last()
            .unwrap()
            .ends_with("weather_imports/acme/weather/v1/weather.proto")
            || argv
                .iter()
                .any(|a| a.ends_with("acme/weather/v1/weather.proto"))
    );

    let go = &run_argvs(
        &h,
        "//examples/proto/acme/weather/v1:weather_go",
        p,
        p,
        "protoc_plugin_gen",
    )[0];
    assert!(
        go.iter()
            .any(|a| a.starts_with("--plugin=protoc-gen-go=") && a.ends_with("/protoc-gen-go")),
        "{go:?}"
    );
    assert!(
        go.iter()
            .any(|a| a.starts_with("--plugin=protoc-gen-go-grpc=")
                && a.ends_with("/protoc-gen-go-grpc")),
        "{go:?}"
    );
    assert!(
        go.contains(&"--go_opt=paths=source_relative".to_owned())
            && go.contains(&"--go-grpc_opt=paths=source_relative".to_owned())
    );

    let es = &run_argvs(
        &h,
        "//examples/proto/acme/weather/v1:weather_es",
        p,
        p,
        "protoc_plugin_gen",
    )[0];
    assert!(es.contains(&"--es_opt=target=ts".to_owned()), "{es:?}");
}

#[test]
fn native_mode_downloads_then_extracts() {
    let repo = scratch_repo(&[("protoreg", "/opt/protoreg"), ("fetch_mode", "native")]);
    let h = Harness::open(repo.path()).unwrap();
    let r = h
        .analyze(
            "toolchains//:buf-1.75.0-linux-x86_64",
            &platform("linux-x86_64"),
            &platform("linux-x86_64"),
        )
        .unwrap();
    let cats: Vec<_> = r.actions.iter().map(|a| a.category.as_str()).collect();
    assert_eq!(cats, ["download_file", "protoreg_extract"]);
    let extract = match &r.actions[1].kind {
        ActionKind::Run { argv, .. } => argv.clone(),
        k => panic!("{k:?}"),
    };
    assert!(
        extract[0].ends_with("/__protoreg__/protoreg"),
        "{extract:?}"
    );
    assert_eq!(extract[1], "extract");
    assert_eq!(
        flag_value(&extract, "--sha256"),
        pin_sha("buf-Linux-x86_64.tar.gz")
    );
    assert_eq!(flag_value(&extract, "--strip-prefix"), "buf");
    assert_eq!(flag_value(&extract, "--format"), "tar.gz");
}

#[test]
fn missing_pins_and_toolchains_name_what_is_missing() {
    let repo = scratch_repo(&[("protoreg", "/opt/protoreg")]);
    let h = Harness::open(repo.path()).unwrap();
    let e = h
        .analyze(
            "//examples/proto/acme/weather/v1:weather_lint",
            &platform("linux-x86_64"),
            &platform("darwin-arm64"),
        )
        .err()
        .expect("buf has no darwin-arm64 pin");
    let msg = format!("{e:?}");
    assert!(
        msg.contains("No pin for buf 1.75.0 on the execution platform darwin-arm64"),
        "{msg}"
    );
    assert!(msg.contains("pins it for linux-x86_64"), "{msg}");

    let e = h
        .analyze(
            "//examples/proto/acme/weather/v1:weather_go",
            &platform("linux-x86_64"),
            &platform("windows-x86_64"),
        )
        .err()
        .expect("protoc-gen-go has no windows pin");
    assert!(
        format!("{e:?}")
            .contains("No pin for protoc-gen-go 1.28.1 on the execution platform windows-x86_64"),
        "{e:?}"
    );

    let repo = scratch_repo(&[("protoreg", "/opt/protoreg"), ("protoc_gen_es", "")]);
    let h = Harness::open(repo.path()).unwrap();
    let e = h
        .analyze(
            "//examples/proto/acme/weather/v1:weather_es",
            &platform("linux-x86_64"),
            &platform("linux-x86_64"),
        )
        .err()
        .expect("no protoc-gen-es configured");
    assert!(
        format!("{e:?}")
            .contains("protoc-gen-es is a node program: define a `node_protoc_plugin` target"),
        "{e:?}"
    );
}

/// Builds for the host in `mode`, against the loopback file server.
fn host_harness(mode: &str) -> (tempfile::TempDir, Harness) {
    let protoreg = protoreg();
    let repo = scratch_repo(&[
        ("fetch_mode", mode),
        ("protoreg", protoreg.to_str().unwrap()),
        ("registry", ""),
    ]);
    // protoreg's cache, private to this test and removed with its repository.
    let cache = repo.path().join("protoreg-cache");
    override_config(repo.path(), &[("cache_dir", cache.to_str().unwrap())]);
    // The pins name the real upstream URLs; the fixtures stand in for them on loopback.
    let pins = std::fs::read_to_string(repo.path().join("toolchains/pins.bzl")).unwrap();
    let server = file_server();
    let mut local = String::new();
    for line in pins.lines() {
        if let Some((head, url)) = line.rsplit_once(", \"https://") {
            let file = url.trim_end_matches("\"),").rsplit('/').next().unwrap();
            local.push_str(&format!("{head}, \"{server}/{file}\"),\n"));
        } else {
            local.push_str(line);
            local.push('\n');
        }
    }
    if mode == "helper" {
        // protoreg itself fetches in helper mode: give it loopback URLs.
        std::fs::write(repo.path().join("toolchains/pins.bzl"), local).unwrap();
    }
    let mut h = Harness::open(repo.path()).unwrap();
    h.rewrite_url("https://github.com", &format!("{server}/github"));
    h.rewrite_url("https://nodejs.org", &format!("{server}/nodejs"));
    (repo, h)
}

fn build_outputs(h: &Harness, target: &str) -> (buck2_harness::Build, Vec<PathBuf>) {
    let b = h
        .build(target, &platform(host_platform()))
        .unwrap_or_else(|e| panic!("build {target}: {e:?}"));
    let outputs = b.outputs.clone();
    (b, outputs)
}

fn python() -> PathBuf {
    fixtures().join("venv/bin/python")
}

fn check_example_graph(h: &Harness) {
    // Image: decodes, holds the library, its dep and the well-known type it imports.
    let (_b, out) = build_outputs(h, "//examples/proto/acme/weather/v1:weather[image]");
    let script = "import sys\nfrom google.protobuf import descriptor_pb2\ns = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], 'rb').read())\nfor f in s.file:\n    print(f.name, ' '.join(m.name for m in f.message_type), ' '.join(x.name for x in f.service))\n";
    let listing = Command::new(python())
        .args(["-c", script])
        .arg(&out[0])
        .output()
        .unwrap();
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(
        listing.contains("acme/geo/v1/geo.proto LatLng"),
        "{listing}"
    );
    assert!(
        listing.contains("google/protobuf/timestamp.proto Timestamp"),
        "{listing}"
    );
    assert!(
        listing.contains("acme/weather/v1/weather.proto Observation GetObservationRequest GetObservationResponse WeatherService"),
        "{listing}"
    );

    // protoc's own generators: C++, Python and stubs, and the Python imports and round-trips.
    let (_b, out) = build_outputs(h, "//examples/proto/acme/weather/v1:weather_builtin");
    let cpp = out.iter().find(|p| p.ends_with("cpp")).unwrap();
    let header = std::fs::read_to_string(cpp.join("acme/weather/v1/weather.pb.h")).unwrap();
    assert!(
        header.contains("Observation final : public ::google::protobuf::Message"),
        "weather.pb.h"
    );
    assert!(cpp.join("acme/geo/v1/geo.pb.cc").is_file());
    let py = out.iter().find(|p| p.ends_with("python")).unwrap();
    let pyi = out.iter().find(|p| p.ends_with("pyi")).unwrap();
    assert!(
        std::fs::read_to_string(pyi.join("acme/weather/v1/weather_pb2.pyi"))
            .unwrap()
            .contains("class Observation")
    );
    let roundtrip = "from acme.weather.v1 import weather_pb2\nfrom acme.geo.v1 import geo_pb2\no = weather_pb2.Observation(location=geo_pb2.LatLng(latitude=52.5, longitude=13.4), temperature_celsius=21.5)\no.observed_at.FromSeconds(1700000000)\nb = o.SerializeToString()\nassert weather_pb2.Observation.FromString(b) == o\nprint(weather_pb2.Observation.FromString(b).location.latitude)\n";
    let run = Command::new(python())
        .args(["-c", roundtrip])
        .env("PYTHONPATH", py)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "52.5");

    assert_matches_golden("cpp", cpp);

    // Go and gRPC.
    let (_b, out) = build_outputs(h, "//examples/proto/acme/weather/v1:weather_go");
    let go = std::fs::read_to_string(out[0].join("acme/weather/v1/weather.pb.go")).unwrap();
    assert!(
        go.contains("// \tprotoc-gen-go v1.28.1")
            && go.contains("package weatherv1")
            && go.contains("type Observation struct"),
        "{go}"
    );
    // One directory per plugin: [go] and [go-grpc].
    assert!(
        out[0].ends_with("go") && out[1].ends_with("go-grpc"),
        "{out:?}"
    );
    let grpc = std::fs::read_to_string(out[1].join("acme/weather/v1/weather_grpc.pb.go")).unwrap();
    assert!(
        grpc.contains("type WeatherServiceClient interface"),
        "{grpc}"
    );
    assert_matches_golden("go", &out[0]);
    assert_matches_golden("go-grpc", &out[1]);

    // ES: protoc-gen-es from `npm ci --prefix examples/es`, which scripts/install-deps runs.
    assert!(
        project_root()
            .join("examples/es/node_modules/@bufbuild/protoc-gen-es")
            .is_dir(),
        "protoc-gen-es is not installed in examples/es/node_modules: run scripts/install-deps"
    );
    let (_b, out) = build_outputs(h, "//examples/proto/acme/weather/v1:weather_es");
    let ts = std::fs::read_to_string(out[0].join("acme/weather/v1/weather_pb.ts")).unwrap();
    assert!(
        ts.contains("export type Observation = Message<\"acme.weather.v1.Observation\">"),
        "{ts}"
    );
}

/// Every file under `root`, by path relative to it.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walk(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Generated code must equal its golden copy under `fixtures/golden/<set>/`, file for file.
/// `BUCK2_HARNESS_UPDATE_GOLDEN=1` rewrites the golden copy from the real tools' output
/// instead (fixtures/golden/README.md says when that is right).
fn assert_matches_golden(set: &str, generated: &Path) {
    // Both fetch modes check the same goldens, possibly at once.
    static GOLDEN: Mutex<()> = Mutex::new(());
    let _lock = GOLDEN.lock().unwrap_or_else(|e| e.into_inner());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/golden")
        .join(set);
    let got = tree(generated);
    assert!(
        !got.is_empty(),
        "{set}: nothing in `{}`",
        generated.display()
    );
    if std::env::var_os("BUCK2_HARNESS_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        let _ = std::fs::remove_dir_all(&golden);
        for (rel, bytes) in &got {
            let path = golden.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        return;
    }
    assert!(
        golden.is_dir(),
        "no golden `{}`: see fixtures/golden/README.md",
        golden.display()
    );
    let want = tree(&golden);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{set}: the generated files differ from the golden ones"
    );
    for (rel, bytes) in &got {
        if *bytes != want[rel] {
            let (got, want) = (
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&want[rel]),
            );
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
            panic!(
                "{set}/{rel} differs from its golden copy from line {}:\n  generated: {:?}\n  golden:    {:?}\n(fixtures/golden/README.md: regenerate only for a deliberate tool or example change)",
                line + 1,
                got.lines().nth(line).unwrap_or("<end of file>"),
                want.lines().nth(line).unwrap_or("<end of file>"),
            );
        }
    }
}

#[test]
fn example_graph_builds_in_helper_mode() {
    let (_repo, h) = host_harness("helper");
    check_example_graph(&h);
}

#[test]
fn example_graph_builds_in_native_mode() {
    let (_repo, h) = host_harness("native");
    check_example_graph(&h);
}

/// Adds a `protoreg` tool to the scratch repository's pins, pinned for the host only with
/// (format, size, sha256) of `binary` at its release URL, and selects it with
/// `[protobuf] protoreg = pinned`.
fn pin_protoreg(repo: &Path, version: &str, format: &str, binary: &Path) {
    let host = host_platform();
    let (sha, size) = sha256_hex(binary);
    let url = format!(
        "https://github.com/birbparty/buck2-protobuf/releases/download/v{version}/protoreg-{version}-{host}"
    );
    let path = repo.join("toolchains/pins.bzl");
    let pins = std::fs::read_to_string(&path).unwrap();
    let tool = format!("DEFAULTS = {{\n    \"protoreg\": \"{version}\",\n");
    let pin = format!(
        "PINS = {{\n    \"protoreg\": {{\n        \"{version}\": {{\n            \"{host}\": (\"{format}\", {size}, \"{sha}\", \"{url}\"),\n        }},\n    }},\n"
    );
    assert!(pins.contains("DEFAULTS = {\n") && pins.contains("PINS = {\n"));
    let pins = pins
        .replacen("DEFAULTS = {\n", &tool, 1)
        .replacen("PINS = {\n", &pin, 1);
    std::fs::write(&path, pins).unwrap();
    override_config(repo, &[("protoreg", "pinned")]);
}

#[test]
fn protoreg_itself_can_be_pinned() {
    let host = host_platform();
    let built = protoreg();
    let out = Command::new(&built).arg("--version").output().unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    // What the catalogue's `version_output` for protoreg expects: `protoreg {version}`.
    let version = printed
        .trim()
        .strip_prefix("protoreg ")
        .unwrap_or_else(|| panic!("protoreg --version printed {printed:?}"))
        .to_owned();
    serve_file(&format!("protoreg-{version}-{host}"), &built);

    // Helper mode, except that protoreg is the raw pin, which Buck2 downloads itself.
    let (repo, _) = host_harness("helper");
    pin_protoreg(repo.path(), &version, "raw", &built);
    let mut h = Harness::open(repo.path()).unwrap();
    h.rewrite_url("https://github.com", &format!("{}/github", file_server()));
    let fetch = h
        .analyze(
            &format!("toolchains//:protoreg-{version}-{host}"),
            &platform(host),
            &platform(host),
        )
        .unwrap();
    let cats: Vec<_> = fetch.actions.iter().map(|a| a.category.as_str()).collect();
    assert_eq!(
        cats,
        ["download_file", "symlinked_dir"],
        "no protoreg needed to fetch protoreg"
    );

    let target = format!("toolchains//:protoc-36.2-{host}");
    let (b, out) = build_outputs(&h, &target);
    let materialize: Vec<_> = b
        .executed
        .iter()
        .filter(|argv| argv.get(1).is_some_and(|a| a == "materialize"))
        .collect();
    assert_eq!(materialize.len(), 1, "{:?}", b.executed);
    // (a) The protoreg that ran is the downloaded pin, a Buck2 output, not the cargo build.
    let used = &materialize[0][0];
    assert!(
        used.starts_with("buck-out/")
            && used.ends_with(&format!("/protoreg-{version}-{host}/protoreg")),
        "{used}"
    );
    assert_eq!(
        sha256_hex(&b.workspace.path().join(used)),
        sha256_hex(&built)
    );
    // (b) What it materialized runs.
    let protoc = Command::new(out[0].join("bin/protoc"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        protoc.status.success()
            && String::from_utf8_lossy(&protoc.stdout).starts_with("libprotoc "),
        "{protoc:?}"
    );

    // A pinned protoreg in an archive would need a protoreg to unpack it.
    let repo = scratch_repo(&[]);
    pin_protoreg(repo.path(), &version, "tar.gz", &built);
    let h = Harness::open(repo.path()).unwrap();
    let e = h
        .analyze(&target, &platform(host), &platform(host))
        .err()
        .expect("a tar.gz protoreg pin");
    assert!(
        format!("{e:?}").contains(&format!("The protoreg pin for {host} is a tar.gz archive: a pinned protoreg must be a raw binary, since it cannot unpack itself")),
        "{e:?}"
    );
}

/// Runs a test target as `buck2 test` would, on the host.
fn run_test(h: &Harness, target: &str) -> TestRun {
    h.test(target, &platform(host_platform()))
        .unwrap_or_else(|e| panic!("test {target}: {e:?}"))
}

/// Rewrites one line of a source in the scratch repository.
fn edit(repo: &Path, file: &str, from: &str, to: &str) {
    let path = repo.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "no `{from}` in {file}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

const WEATHER_PROTO: &str = "examples/proto/acme/weather/v1/weather.proto";

#[test]
fn buf_lint_passes_on_the_example_and_finds_what_the_broken_one_expects() {
    let (repo, h) = host_harness("native");
    let clean = run_test(&h, "//examples/proto/acme/weather/v1:weather_lint");
    assert!(clean.passed(), "{}{}", clean.stdout, clean.stderr);
    assert!(
        clean.command[0].ends_with("/bin/buf") && clean.command[1] == "lint",
        "{:?}",
        clean.command
    );

    // The broken example's test passes because buf reports exactly its deliberate findings.
    let broken = run_test(&h, "//:lint_broken_example");
    assert!(
        broken.passed(),
        "{:?}\n{}{}",
        broken.command,
        broken.stdout,
        broken.stderr
    );
    for finding in [
        "\"path\":\"acme/broken/v1/broken.proto\",\"start_line\":11",
        "\"type\":\"FIELD_LOWER_SNAKE_CASE\"",
        "\"type\":\"ENUM_ZERO_VALUE_SUFFIX\"",
        "buf lint reported exactly the expected findings: ENUM_ZERO_VALUE_SUFFIX FIELD_LOWER_SNAKE_CASE",
    ] {
        assert!(
            broken.stdout.contains(finding),
            "{finding}\n{}{}",
            broken.stdout,
            broken.stderr
        );
    }
    // And fails when buf finds nothing: the clean example with the same expectation.
    edit(
        repo.path(),
        "BUCK",
        "proto = \"//examples/broken:broken\",",
        "proto = \"//examples/proto/acme/weather/v1:weather\",",
    );
    let mut h = Harness::open(repo.path()).unwrap();
    h.rewrite_url("https://github.com", &format!("{}/github", file_server()));
    let wrong = run_test(&h, "//:lint_broken_example");
    assert!(!wrong.passed(), "{}{}", wrong.stdout, wrong.stderr);
    assert!(
        wrong
            .stderr
            .contains("buf lint exited 0, not 100 (findings)"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn buf_format_passes_on_the_example_and_shows_the_diff_of_a_misformatted_file() {
    let (repo, h) = host_harness("native");
    let target = "//examples/proto/acme/weather/v1:weather_format";
    let clean = run_test(&h, target);
    assert!(clean.passed(), "{}{}", clean.stdout, clean.stderr);
    assert_eq!(clean.stdout, "");

    edit(
        repo.path(),
        WEATHER_PROTO,
        "  double temperature_celsius = 3;",
        "      double temperature_celsius=3;",
    );
    let messy = run_test(&h, target);
    assert!(!messy.passed(), "{:?}", messy.command);
    assert!(
        messy.stdout.contains("acme/weather/v1/weather.proto")
            && messy
                .stdout
                .contains("-      double temperature_celsius=3;")
            && messy.stdout.contains("+  double temperature_celsius = 3;"),
        "{}{}",
        messy.stdout,
        messy.stderr
    );
}

#[test]
fn buf_breaking_passes_against_the_baseline_and_fails_on_a_breaking_change() {
    let (repo, h) = host_harness("native");
    let target = "//examples/proto/acme/weather/v1:weather_breaking";
    // The example only adds a field to the baseline's messages.
    let compatible = run_test(&h, target);
    assert!(
        compatible.passed(),
        "{}{}",
        compatible.stdout,
        compatible.stderr
    );

    edit(
        repo.path(),
        WEATHER_PROTO,
        "  double temperature_celsius = 3;",
        "  float temperature_celsius = 3;",
    );
    let breaking = run_test(&h, target);
    assert!(!breaking.passed(), "{:?}", breaking.command);
    assert!(
        breaking.stdout.contains("acme/weather/v1/weather.proto:")
            && breaking.stdout.contains(
                "Field \"3\" with name \"temperature_celsius\" on message \"Observation\" changed type from \"double\" to \"float\"."
            ),
        "{}{}",
        breaking.stdout,
        breaking.stderr
    );
}

#[test]
fn an_import_no_dep_provides_fails_with_protocs_message() {
    let (repo, h) = host_harness("native");
    let pkg = repo.path().join("examples/orphan");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("orphan.proto"),
        "syntax = \"proto3\";\npackage orphan;\nimport \"acme/geo/v1/geo.proto\";\nmessage Orphan { acme.geo.v1.LatLng at = 1; }\n",
    )
    .unwrap();
    // No dep on //examples/proto/acme/geo/v1:geo, so protoc cannot find the import.
    std::fs::write(
        pkg.join("BUCK"),
        "proto_library(name = \"orphan\", srcs = [\"orphan.proto\"])\n",
    )
    .unwrap();
    let e = h
        .build("//examples/orphan:orphan", &platform(host_platform()))
        .err()
        .expect("a missing import");
    let msg = format!("{e:?}");
    // Buck2's report names the target and the action, then shows protoc's stderr.
    assert!(
        msg.contains("Action failed: root//examples/orphan:orphan (")
            && msg.contains(") (protoc_descriptor_set)"),
        "{msg}"
    );
    assert!(
        msg.contains("acme/geo/v1/geo.proto: File not found.")
            && msg.contains("Import \"acme/geo/v1/geo.proto\" was not found or had errors."),
        "{msg}"
    );
}
