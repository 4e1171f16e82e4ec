//! protoreg's own release, end to end on loopback, for the targets this machine builds:
//! `scripts/release-build` (what `.github/workflows/release.yml` runs on each runner) makes
//! static Linux executables (x86_64, and aarch64 run under qemu-user) and a Windows one, and
//! `cargo install` puts the same Linux one on PATH; a GitHub-shaped release holds them with their
//! `sha256.txt`, `protoreg bump protoreg VERSION` pins them (checking the Linux one reports
//! that version, in the sandbox), `protoreg publish` pushes them to the registry. Then the
//! released protoreg's `init` makes a repository that is not this one (Meta's bundled
//! prelude, these rules as a git cell from a local bare origin at its HEAD, `protoreg =
//! pinned`), and real Buck2, as an unprivileged user, builds a `proto_library`, generates Go
//! and gRPC code and passes a buf test in both fetch modes: the protoreg every action runs is
//! the downloaded release, no cargo build and no `target/` in reach.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::buck2::*;
use common::github::Asset;
use common::user::User;
use common::{head_commit, text};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const REPO: &str = "birbparty/buck2-protobuf";

/// The Rust targets a Linux x86_64 machine builds releases for, with their platforms.
const BUILT_HERE: [(&str, &str); 3] = [
    ("x86_64-unknown-linux-musl", "linux-x86_64"),
    ("aarch64-unknown-linux-musl", "linux-aarch64"),
    ("x86_64-pc-windows-gnu", "windows-x86_64"),
];

/// `scripts/release-build OUT` for the Linux (musl, x86_64 and aarch64) and Windows (mingw)
/// targets.
fn release_build(out: &Path) {
    let run = Command::new(repo_root().join("scripts/release-build"))
        .arg(out)
        .args(BUILT_HERE.map(|(target, _)| target))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "scripts/release-build: {}",
        text(&run)
    );
}

/// The shipped catalogue with protoreg's platforms cut to those built here.
fn catalogue_for_this_release(dir: &Path) -> PathBuf {
    let shipped = std::fs::read_to_string(repo_root().join("toolchains/tools.bzl")).unwrap();
    let entry = shipped.find("    \"protoreg\": {").unwrap();
    let platforms = entry + shipped[entry..].find("\"platforms\": [").unwrap();
    let end = platforms + shipped[platforms..].find(']').unwrap() + 1;
    let cut = format!(
        "{}\"platforms\": [{}]{}",
        &shipped[..platforms],
        BUILT_HERE.map(|(_, p)| format!("\"{p}\"")).join(", "),
        &shipped[end..]
    );
    let path = dir.join("tools.bzl");
    std::fs::write(&path, cut).unwrap();
    path
}

#[test]
fn a_release_is_built_pinned_published_and_used_by_buck2_with_no_cargo_in_reach() {
    let dist = tempfile::tempdir().unwrap();
    release_build(dist.path());
    let linux = dist.path().join(format!("protoreg-{VERSION}-linux-x86_64"));
    let arm = dist
        .path()
        .join(format!("protoreg-{VERSION}-linux-aarch64"));
    let windows = dist
        .path()
        .join(format!("protoreg-{VERSION}-windows-x86_64.exe"));
    let sums = dist.path().join("sha256.txt");

    // Static: it runs on any Linux, whatever its glibc.
    let ldd = Command::new("ldd").arg(&linux).output().unwrap();
    let said = text(&ldd);
    assert!(
        said.contains("statically linked") || said.contains("not a dynamic executable"),
        "{said}"
    );
    let version = Command::new(&linux).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("protoreg {VERSION}")
    );
    // The aarch64 one, static too, runs under qemu-user.
    let arm_version = Command::new("qemu-aarch64")
        .arg(&arm)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&arm_version.stdout).trim(),
        format!("protoreg {VERSION}"),
        "{}",
        text(&arm_version)
    );
    assert!(std::fs::read(&windows).unwrap().starts_with(b"MZ"));
    let head = head_commit();
    // `cargo install` of this crate puts protoreg on PATH (built as the release is, into the
    // same target/, so it is only copied): `protoreg` is then a program to name.
    let root = tempfile::tempdir().unwrap();
    let install = Command::new("cargo")
        .args(["install", "--locked", "--offline", "--quiet", "--path"])
        .arg(repo_root())
        .args(["--target", "x86_64-unknown-linux-musl", "--root"])
        .arg(root.path())
        .env("PROTOREG_GIT_COMMIT", head_commit())
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "cargo install: {}",
        text(&install)
    );
    assert!(root.path().join("bin/protoreg").is_file());
    let on_path = format!(
        "{}:{}",
        root.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let named = Command::new("protoreg")
        .env("PATH", &on_path)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&named.stdout).trim(),
        format!("protoreg {VERSION}")
    );
    // A release knows the commit it was built from: `protoreg init` names it by default.
    let consumer = tempfile::tempdir().unwrap();
    let init = Command::new("protoreg")
        .env("PATH", &on_path)
        .arg("init")
        .arg(consumer.path())
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init));
    let config = std::fs::read_to_string(consumer.path().join(".buckconfig")).unwrap();
    assert!(
        config.contains(&format!("commit_hash = {head}")),
        "{config}"
    );
    let listed = std::fs::read_to_string(&sums).unwrap();
    for exe in [&linux, &arm, &windows] {
        let (sha, _) = protoreg::pipeline::verify::hash_file(exe).unwrap();
        let name = exe.file_name().unwrap().to_str().unwrap();
        assert!(
            listed.contains(&format!("{}  {name}", sha.hex())),
            "{listed}"
        );
    }

    // Released on the GitHub-shaped upstream, pinned by bump, published to the registry.
    let up = Loopback::start();
    let names = [
        format!("protoreg-{VERSION}-linux-x86_64"),
        format!("protoreg-{VERSION}-linux-aarch64"),
        format!("protoreg-{VERSION}-windows-x86_64.exe"),
        "sha256.txt".to_string(),
    ];
    let assets: Vec<Asset> = names
        .iter()
        .zip([&linux, &arm, &windows, &sums])
        .map(|(n, f)| Asset::new(n, f))
        .collect();
    up.gh
        .release(REPO, &format!("v{VERSION}"), &assets, false, false);
    // A consumer made by the released protoreg's `init`: these rules as a git cell at the
    // commit of a bare origin of this repository, protoreg pinned; its own pins are the
    // fixture pins and, bumped into them, the release.
    let mut p = consumer_by_init(&linux, &up, "pinned");
    let catalogue = catalogue_for_this_release(dist.path());
    let pins = p.path().join("toolchains/pins.bzl");
    let bump = up.ws.run(&[
        "bump",
        "protoreg",
        VERSION,
        "--pins",
        pins.to_str().unwrap(),
        "--catalogue",
        catalogue.to_str().unwrap(),
    ]);
    assert!(bump.status.success(), "bump: {}", text(&bump));
    let pinned = protoreg::maintain::pins::Pins::load(&pins).unwrap();
    for (platform, exe) in [("linux-x86_64", &linux), ("linux-aarch64", &arm)] {
        let pin = &pinned.pins["protoreg"][VERSION][platform];
        let (sha, _) = protoreg::pipeline::verify::hash_file(exe).unwrap();
        assert_eq!(pin.sha256.hex(), sha.hex(), "{platform}");
    }
    let publish = up.ws.run(&[
        "publish",
        "--tool",
        "protoreg",
        "--version",
        VERSION,
        "--catalogue",
        catalogue.to_str().unwrap(),
    ]);
    assert!(publish.status.success(), "publish: {}", text(&publish));

    // As an unprivileged user, nothing of this repository's build in reach: the consumer
    // builds and tests in both fetch modes, every action running the downloaded release.
    assert!(!p.path().join("target").exists());
    p.run_as(User::unprivileged());
    build_and_test_thing_api(&p);
    let ran = p.ok(&["log", "what-ran"]);
    assert!(
        !ran.contains("protoreg_copy"),
        "a protoreg was copied:\n{ran}"
    );
    for mode in ["helper", "native"] {
        let actions = p.ok(&[
            "aquery",
            "//api:api_go",
            "-c",
            &format!("protobuf.fetch_mode={mode}"),
            "--output-attribute",
            "cmd",
        ]);
        assert!(
            actions.contains(&format!("protoreg-{VERSION}-linux-x86_64/protoreg, protoc")),
            "{mode}: codegen does not run the pinned protoreg:\n{actions}"
        );
    }
}
