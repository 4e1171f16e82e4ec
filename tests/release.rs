//! protoreg's own release, end to end on loopback, for the targets this machine builds:
//! `scripts/release-build` (what `.github/workflows/release.yml` runs on each runner) makes a
//! static Linux executable and a Windows one, a GitHub-shaped release holds them with their
//! `sha256.txt`, `protoreg bump protoreg VERSION` pins them (checking the Linux one reports
//! that version, in the sandbox), `protoreg publish` pushes them to the registry, and real
//! Buck2, as an unprivileged user, builds and tests the examples with `[protobuf] protoreg =
//! pinned` in both fetch modes: the protoreg every action runs is the downloaded release, no
//! cargo build and no `target/` in reach.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::buck2::*;
use common::github::Asset;
use common::text;
use common::user::User;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const REPO: &str = "birbparty/buck2-protobuf";

/// `scripts/release-build OUT` for the Linux (musl) and Windows (mingw) targets.
fn release_build(out: &Path) {
    let run = Command::new(repo_root().join("scripts/release-build"))
        .arg(out)
        .args(["x86_64-unknown-linux-musl", "x86_64-pc-windows-gnu"])
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
        "{}\"platforms\": [\"linux-x86_64\", \"windows-x86_64\"]{}",
        &shipped[..platforms],
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
    assert!(std::fs::read(&windows).unwrap().starts_with(b"MZ"));
    // A release knows the commit it was built from: `protoreg init` names it by default.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let consumer = tempfile::tempdir().unwrap();
    let init = Command::new(&linux)
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
    for exe in [&linux, &windows] {
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
        format!("protoreg-{VERSION}-windows-x86_64.exe"),
        "sha256.txt".to_string(),
    ];
    let assets: Vec<Asset> = names
        .iter()
        .zip([&linux, &windows, &sums])
        .map(|(n, f)| Asset::new(n, f))
        .collect();
    up.gh
        .release(REPO, &format!("v{VERSION}"), &assets, false, false);
    let mut p = Project::as_committed();
    up.configure(&p);
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
    let host_pin = &pinned.pins["protoreg"][VERSION]["linux-x86_64"];
    let (linux_sha, _) = protoreg::pipeline::verify::hash_file(&linux).unwrap();
    assert_eq!(host_pin.sha256.hex(), linux_sha.hex());
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

    // A consumer with the pinned protoreg, as an unprivileged user.
    p.edit(
        ".buckconfig",
        &format!("protoreg = {}", env!("CARGO_BIN_EXE_protoreg")),
        "protoreg = pinned",
    );
    assert!(!p.path().join("target").exists());
    p.run_as(User::unprivileged());
    let weather = "//examples/proto/acme/weather/v1";
    for mode in ["helper", "native"] {
        let fetch_mode = format!("protobuf.fetch_mode={mode}");
        let targets = [
            format!("{weather}:weather"),
            format!("{weather}:weather_builtin"),
            format!("{weather}:weather_grpc_java"),
        ];
        let mut args = vec!["build", "-c", fetch_mode.as_str()];
        args.extend(targets.iter().map(String::as_str));
        p.ok(&args);
        let ran = p.ok(&["log", "what-ran"]);
        assert!(
            !ran.contains("protoreg_copy"),
            "{mode}: a protoreg was copied:\n{ran}"
        );
        let tests = p.ok(&[
            "test",
            "-c",
            &fetch_mode,
            &format!("{weather}:weather_lint"),
        ]);
        assert!(!tests.contains("FAIL"), "{tests}");
        // Every protoreg on the command lines is the downloaded release.
        let actions = p.ok(&[
            "aquery",
            &format!("{weather}:weather_builtin"),
            "-c",
            &fetch_mode,
            "--output-attribute",
            "cmd",
        ]);
        assert!(
            actions.contains(&format!("protoreg-{VERSION}-linux-x86_64/protoreg, protoc")),
            "{mode}: codegen does not run the pinned protoreg:\n{actions}"
        );
    }
}
