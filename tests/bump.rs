//! The maintainer's flow against a GitHub-shaped loopback upstream serving real protoc
//! binaries: bump, refusals that leave the pins untouched, outdated, and materialize by pin.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::github::{protoc_assets, Asset, FakeGitHub};
use common::http::{HttpServer, Route};
use common::*;

const REPO: &str = "protocolbuffers/protobuf";

/// A pins file holding protoc 36.1 for one platform (values are the 36.2 linux zip's, only
/// the version label differs) so a bump has something to move.
fn seed_pins(dir: &Path) -> PathBuf {
    let p = pin(&fixture(PROTOC_ZIP));
    let path = dir.join("pins.bzl");
    let text = format!(
        "TOOLS = {{\n    \"protoc\": {{\"default\": \"36.1\"}},\n}}\n\
         PINS = {{\n    \"protoc\": {{\n        \"36.1\": {{\n            \"linux-x86_64\": (\"zip\", {}, \"{}\", \"https://example.invalid/protoc-36.1-linux-x86_64.zip\"),\n        }},\n    }},\n}}\n\
         PROVENANCE = {{\n    \"protoc\": {{\n        \"36.1\": \"test seed\",\n    }},\n}}\n",
        p.size, p.sha256
    );
    std::fs::write(&path, text).unwrap();
    // Normalize through protoreg's own writer by a no-op parse/render round trip.
    let pins = protoreg::maintain::pins::Pins::load(&path).unwrap();
    std::fs::write(&path, pins.render()).unwrap();
    path
}

fn github_with_protoc(tag: &str) -> (FakeGitHub, Vec<(String, PathBuf)>) {
    let gh = FakeGitHub::start();
    let files = protoc_assets();
    let assets: Vec<(String, PathBuf)> = files
        .iter()
        .map(|(n, p)| (n.replace("36.2", tag.trim_start_matches('v')), p.clone()))
        .collect();
    let list: Vec<Asset> = assets.iter().map(|(n, p)| Asset::new(n, p)).collect();
    gh.release(REPO, tag, &list, false, false);
    (gh, assets)
}

fn bump(gh: &FakeGitHub, pins: &Path, args: &[&str]) -> std::process::Output {
    run(protoreg()
        .env("GITHUB_API_URL", gh.api_url())
        .env_remove("GITHUB_TOKEN")
        .arg("bump")
        .args(args)
        .arg("--pins")
        .arg(pins))
}

#[test]
fn bump_rewrites_exactly_the_expected_lines() {
    let (gh, assets) = github_with_protoc("v36.2");
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    let before = std::fs::read_to_string(&pins).unwrap();

    // --dry-run prints the diff and writes nothing.
    let o = bump(&gh, &pins, &["protoc", "36.2", "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let diff = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(std::fs::read_to_string(&pins).unwrap(), before);

    let o = bump(&gh, &pins, &["protoc", "36.2"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = std::fs::read_to_string(&pins).unwrap();
    assert_eq!(
        protoreg::maintain::bump::diff(&before, &after),
        diff,
        "dry run showed another change"
    );

    // Exactly: the default line, the version key, five platform lines (one removed), the
    // provenance lines. Every other line is untouched.
    let added: Vec<&str> = diff.lines().filter(|l| l.starts_with('+')).collect();
    let removed: Vec<&str> = diff.lines().filter(|l| l.starts_with('-')).collect();
    let platform_lines: Vec<&&str> = added
        .iter()
        .filter(|l| l.contains("releases/download") || l.contains("/download/"))
        .collect();
    assert_eq!(platform_lines.len(), 5, "{diff}");
    for (name, path) in &assets {
        let p = pin(path);
        assert!(
            platform_lines.iter().any(|l| l.contains(name.as_str())
                && l.contains(p.sha256.hex())
                && l.contains(&format!(", {}, ", p.size))),
            "{name} missing from {diff}"
        );
    }
    assert!(added.iter().any(|l| l.contains("\"protoc\": \"36.2\",")));
    assert!(removed.iter().any(|l| l.contains("\"protoc\": \"36.1\",")));
    assert!(removed
        .iter()
        .any(|l| l.contains("protoc-36.1-linux-x86_64.zip")));
    assert_eq!(added.len(), 5 + 1 + 1 + 1, "{diff}"); // platforms, default, version key, provenance
    assert_eq!(removed.len(), 1 + 1 + 1 + 1, "{diff}");
    assert!(
        added
            .iter()
            .any(|l| l.contains("reported `libprotoc 36.2`")),
        "{diff}"
    );
    // Only the host asset was downloaded (once per run: the dry run and the bump); the
    // others had API digests.
    assert_eq!(
        gh.downloads(REPO, "v36.2", "protoc-36.2-linux-x86_64.zip"),
        2
    );
    assert_eq!(gh.downloads(REPO, "v36.2", "protoc-36.2-win64.zip"), 0);

    // Bumping again is a no-op.
    let o = bump(&gh, &pins, &["protoc", "36.2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&pins).unwrap(), after);
}

#[test]
fn a_binary_reporting_another_version_is_refused() {
    // Release v36.3 whose binaries are really 36.2.
    let (gh, _) = github_with_protoc("v36.3");
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    let before = std::fs::read_to_string(&pins).unwrap();
    let o = bump(&gh, &pins, &["protoc", "36.3"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("expected libprotoc 36.3, got libprotoc 36.2"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&pins).unwrap(), before);
}

#[test]
fn missing_asset_mismatch_and_unknown_tool_leave_the_pins_untouched() {
    let gh = FakeGitHub::start();
    let files = protoc_assets();
    // v36.2 without its win64 asset.
    let partial: Vec<Asset> = files
        .iter()
        .filter(|(n, _)| !n.contains("win64"))
        .map(|(n, p)| Asset::new(n, p))
        .collect();
    gh.release(REPO, "v36.2", &partial, false, false);
    // v36.4: the API reports a digest the file does not have.
    let renamed: Vec<(String, PathBuf)> = files
        .iter()
        .map(|(n, p)| (n.replace("36.2", "36.4"), p.clone()))
        .collect();
    let mut lying: Vec<Asset> = renamed.iter().map(|(n, p)| Asset::new(n, p)).collect();
    lying[0].digest = Some(format!("sha256:{}", "ab".repeat(32)));
    gh.release(REPO, "v36.4", &lying, false, false);

    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    let before = std::fs::read_to_string(&pins).unwrap();

    let o = bump(&gh, &pins, &["protoc", "36.2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("no asset `protoc-36.2-win64.zip` for windows-x86_64"),
        "{}",
        text(&o)
    );

    let o = bump(&gh, &pins, &["protoc", "36.4"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sha256 of protoc-36.4-linux-x86_64.zip"),
        "{}",
        text(&o)
    );

    let o = bump(&gh, &pins, &["protoc-gen-nope", "1.0.0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown tool `protoc-gen-nope`"));

    let o = bump(&gh, &pins, &["protoc", "99.0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no release `v99.0`"));

    assert_eq!(std::fs::read_to_string(&pins).unwrap(), before);
}

#[test]
fn an_interrupted_bump_leaves_the_file_intact() {
    let (gh, _) = github_with_protoc("v36.2");
    // The host asset trickles in, so the kill lands mid-download.
    gh.replace_asset(
        REPO,
        "v36.2",
        "protoc-36.2-linux-x86_64.zip",
        Route::Slow(fixture(PROTOC_ZIP), Duration::from_millis(20)),
    );
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    let before = std::fs::read_to_string(&pins).unwrap();
    for delay in [50u64, 300, 700] {
        let mut child = protoreg()
            .env("GITHUB_API_URL", gh.api_url())
            .args(["bump", "protoc", "36.2", "--pins"])
            .arg(&pins)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            std::fs::read_to_string(&pins).unwrap(),
            before,
            "after a kill at {delay} ms"
        );
        let stray: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != "pins.bzl")
            .collect();
        assert!(
            stray.is_empty(),
            "temporary files left beside the pins: {stray:?}"
        );
    }
}

#[test]
fn outdated_reports_pinned_and_newest_release() {
    let (gh, _) = github_with_protoc("v36.2");
    // Newer, but a pre-release and a draft: neither counts.
    gh.release(REPO, "v37.0-rc1", &[], true, false);
    gh.release(REPO, "v38.0", &[], false, true);
    // Older release, and a tag of another component.
    gh.release(REPO, "v36.1", &[], false, false);
    gh.release(REPO, "v36.10", &[], false, false);
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    let o = run(protoreg()
        .env("GITHUB_API_URL", gh.api_url())
        .args(["outdated", "--json", "--pins"])
        .arg(&pins));
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["tool"], "protoc");
    assert_eq!(v[0]["pinned"], "36.1");
    assert_eq!(v[0]["latest"], "36.10", "version order, not string order");
    assert_eq!(v[0]["outdated"], true);
    let o = run(protoreg()
        .env("GITHUB_API_URL", gh.api_url())
        .args(["outdated", "--check", "--pins"])
        .arg(&pins));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("protoreg bump protoc 36.10"));
}

#[test]
fn outdated_says_when_upstream_lists_no_release() {
    // Only a draft and a pre-release: nothing says 36.1 is current.
    let gh = FakeGitHub::start();
    gh.release(REPO, "v37.0-rc1", &[], true, false);
    gh.release(REPO, "v38.0", &[], false, true);
    // And a GitHub that does not know the repository at all (404).
    let empty = FakeGitHub::start();
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    for api in [gh.api_url(), empty.api_url()] {
        let outdated = |args: &[&str]| {
            run(protoreg()
                .env("GITHUB_API_URL", &api)
                .env_remove("GITHUB_TOKEN")
                .arg("outdated")
                .args(args)
                .arg("--pins")
                .arg(&pins))
        };
        let o = outdated(&[]);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("upstream (protocolbuffers/protobuf) lists no release"),
            "{api}: {}",
            text(&o)
        );
        assert!(!out.contains("current"), "{api}: {}", text(&o));
        let o = outdated(&["--json"]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v[0]["latest"], serde_json::Value::Null, "{v}");
        assert_eq!(v[0]["outdated"], false, "{v}");
        assert_eq!(v[0]["status"], "no-release", "{v}");
        let o = outdated(&["--check"]);
        assert_eq!(o.status.code(), Some(1), "{api}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains("upstream lists no release of protoc (protocolbuffers/protobuf)"),
            "{api}: {}",
            text(&o)
        );
    }
    // A release upstream at the pinned version: current, and --check passes.
    gh.release(REPO, "v36.1", &[], false, false);
    let o = run(protoreg()
        .env("GITHUB_API_URL", gh.api_url())
        .args(["outdated", "--check", "--json", "--pins"])
        .arg(&pins));
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["status"], "current", "{v}");
}

#[test]
fn protoc_from_a_bumped_pin_runs() {
    // Materialize by pin: the pins file written by bump, the bytes from the pin's URL.
    let (gh, _) = github_with_protoc("v36.2");
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    let o = bump(&gh, &pins, &["protoc", "36.2"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = tmp.path().join("protoc");
    let o = run(protoreg()
        .current_dir(tmp.path())
        .args(["materialize", "protoc", "--pins"])
        .arg(&pins)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .arg("--out")
        .arg(&out));
    assert!(o.status.success(), "{}", text(&o));
    let v = Command::new(out.join("bin/protoc"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "libprotoc 36.2");
}

#[test]
fn materialize_protoc_by_pin_from_the_configured_registry() {
    // The maintainer's whole flow: bump writes the pins against the upstream, publish puts
    // the release in the registry, and then, with the upstream gone, `materialize protoc`
    // with no other argument gets the host's protoc from the registry registry.yaml names.
    let reg = RegistryServer::start();
    let gh = common::ops::github_with_protoc_and_buf();
    let ws = common::ops::Workspace::new(&reg.host, &gh.api_url(), "");
    let pins = ws.dir.path().join("toolchains/pins.bzl");
    std::fs::create_dir_all(pins.parent().unwrap()).unwrap();
    std::fs::write(&pins, "PINS = {}\n").unwrap();
    let o = ws.run(&["bump", "protoc", "36.2"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = ws.run(&["publish", "--tool", "protoc", "--version", "36.2"]);
    assert!(o.status.success(), "{}", text(&o));
    drop(gh);
    // publish keeps the blobs it verified in the cache; start from a cold one.
    let _ = std::process::Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(ws.cache())
        .status();
    std::fs::remove_dir_all(ws.cache()).unwrap();

    let out = ws.dir.path().join("protoc");
    let json = ws.json(&[
        "materialize",
        "protoc",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(json["cache"], "miss");
    assert_eq!(
        json["source"],
        format!("oci://{}/buck2-protobuf/tools/protoc", reg.host)
    );
    let v = Command::new(out.join("bin/protoc"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "libprotoc 36.2");

    // A warm cache needs no credentials, even from a registry that requires them.
    let yaml = std::fs::read_to_string(ws.config()).unwrap();
    std::fs::write(
        ws.config(),
        yaml.replace("auth_required: false", "auth_required: true"),
    )
    .unwrap();
    let again = ws.dir.path().join("protoc-again");
    let json = ws.json(&[
        "materialize",
        "protoc",
        "--offline",
        "--json",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(json["cache"], "hit");
    std::fs::write(ws.config(), yaml).unwrap();

    // Another platform's pin resolves the same way (not run: it is not this machine's).
    let mac = ws.dir.path().join("protoc-mac");
    let json = ws.json(&[
        "materialize",
        "protoc@36.2",
        "--platform",
        "darwin-arm64",
        "--json",
        "--out",
        mac.to_str().unwrap(),
    ]);
    assert!(json["source"].as_str().unwrap().starts_with("oci://"));
    assert!(mac.join("bin/protoc").is_file());
}

#[test]
fn bump_buf_takes_sha256_from_its_checksum_file() {
    let gh = common::ops::github_with_protoc_and_buf();
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    let o = bump(&gh, &pins, &["buf", "1.75.0"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = protoreg::maintain::pins::Pins::load(&pins).unwrap();
    let platforms = &after.pins["buf"]["1.75.0"];
    assert_eq!(platforms.len(), 6, "every platform buf ships");
    let sums = protoreg::maintain::upstream::parse_checksums(
        &std::fs::read_to_string(fixture("sha256.txt")).unwrap(),
    );
    for (platform, pin) in platforms {
        let name = pin.url.rsplit('/').next().unwrap();
        assert_eq!(&pin.sha256, &sums[name], "{platform}");
    }
    assert_eq!(after.defaults["buf"], "1.75.0");
    assert_eq!(after.defaults["protoc"], "36.1", "other tools untouched");
    assert!(after.provenance["buf"]["1.75.0"].contains("sha256.txt"));

    // Windows is the bare buf.exe upstream ships (a raw pin); elsewhere the tarball.
    for (platform, pin) in platforms {
        let name = pin.url.rsplit('/').next().unwrap();
        let windows = platform.starts_with("windows");
        assert_eq!(
            pin.format,
            if windows {
                protoreg::pipeline::extract::Format::Raw
            } else {
                protoreg::pipeline::extract::Format::TarGz
            },
            "{platform}"
        );
        assert_eq!(name.ends_with(".exe"), windows, "{name}");
        assert_eq!(
            pin.size,
            Some(std::fs::metadata(fixture(name)).unwrap().len()),
            "{platform}: the exact size"
        );
    }
    // Materialized by pin, a raw pin's tree is its one binary, made executable.
    let out = tmp.path().join("buf-windows");
    let o = run(protoreg()
        .current_dir(tmp.path())
        .args([
            "materialize",
            "buf",
            "--platform",
            "windows-x86_64",
            "--pins",
        ])
        .arg(&pins)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .arg("--out")
        .arg(&out));
    assert!(o.status.success(), "{}", text(&o));
    let listing = tree_listing(&out);
    assert_eq!(listing.len(), 1, "{listing:?}");
    assert_eq!(listing[0].0, "bin/buf.exe");
    assert_eq!(
        listing[0].1,
        pin(&fixture("buf-Windows-x86_64.exe")).sha256.to_string()
    );
    assert_ne!(listing[0].2, 0, "not executable");
}

#[test]
fn a_pin_of_unknown_size_materializes_and_a_bump_records_exact_sizes() {
    let (gh, assets) = github_with_protoc("v36.2");
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    // The seed's 36.1 pin with its size unknown, fetched from the loopback upstream.
    let p = pin(&fixture(PROTOC_ZIP));
    let url = gh.server.url(&format!(
        "/download/{REPO}/v36.2/protoc-36.2-linux-x86_64.zip"
    ));
    let unsized_text = std::fs::read_to_string(&pins)
        .unwrap()
        .replace(&format!("(\"zip\", {}, ", p.size), "(\"zip\", None, ")
        .replace("https://example.invalid/protoc-36.1-linux-x86_64.zip", &url);
    std::fs::write(&pins, &unsized_text).unwrap();
    let loaded = protoreg::maintain::pins::Pins::load(&pins).unwrap();
    assert_eq!(loaded.pins["protoc"]["36.1"]["linux-x86_64"].size, None);
    assert_eq!(loaded.render(), unsized_text, "the writer writes None back");

    // materialize TOOL@VERSION: the sha256 alone verifies ...
    let materialize = |cache: &str, out: &str| {
        let mut c = protoreg();
        c.current_dir(tmp.path())
            .args(["materialize", "protoc@36.1", "--json", "--pins"])
            .arg(&pins)
            .arg("--cache-dir")
            .arg(tmp.path().join(cache))
            .arg("--out")
            .arg(tmp.path().join(out));
        c
    };
    let o = run(&mut materialize("cache", "protoc"));
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["source"], url.as_str());
    assert_eq!(json["size"], p.size);
    let v = Command::new(tmp.path().join("protoc/bin/protoc"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "libprotoc 36.2");
    // ... under the cap.
    let o = run(materialize("cache2", "protoc2")
        .env("PROTOREG_MAX_UNSIZED_BYTES", (p.size - 1).to_string()));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("PROTOREG_MAX_UNSIZED_BYTES"),
        "{}",
        text(&o)
    );

    // A bump records every new pin's exact size; the kept old pin stays unknown.
    let o = bump(&gh, &pins, &["protoc", "36.2", "--keep-old"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = protoreg::maintain::pins::Pins::load(&pins).unwrap();
    let new = &after.pins["protoc"]["36.2"];
    assert_eq!(new.len(), assets.len());
    for (name, path) in &assets {
        let (_, got) = new
            .iter()
            .find(|(_, pin)| pin.url.ends_with(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not pinned"));
        assert_eq!(
            got.size,
            Some(std::fs::metadata(path).unwrap().len()),
            "{name}"
        );
    }
    assert_eq!(after.pins["protoc"]["36.1"]["linux-x86_64"].size, None);
    assert!(std::fs::read_to_string(&pins)
        .unwrap()
        .contains("\"linux-x86_64\": (\"zip\", None, "));
}

/// A workspace in `dir` whose catalogue (beside its empty pins) declares `fake`, released on
/// `gh` as v1.0.0: a tar.gz for this machine's platform holding `script` as `bin/fake`, the
/// binary a bump runs. Returns the pins file.
fn fake_release(gh: &FakeGitHub, dir: &Path, script: &str) -> PathBuf {
    fake_release_as(
        gh,
        dir,
        script,
        "\"asset\": \"fake-{version}-{platform}.tar.gz\",",
    )
}

/// The same with the entry's `asset` (or `assets`) fields as given; the release's one asset
/// is named as `asset` expands for this machine.
fn fake_release_as(gh: &FakeGitHub, dir: &Path, script: &str, asset_fields: &str) -> PathBuf {
    let host = protoreg::platform::host().unwrap().name;
    let toolchains = dir.join("toolchains");
    std::fs::create_dir_all(&toolchains).unwrap();
    std::fs::write(
        toolchains.join("tools.bzl"),
        format!(
            "TOOLS = {{\n    \"fake\": {{\n        \"upstream\": \"github\",\n        \"repository\": \"acme/fake\",\n        \"tag\": \"v{{version}}\",\n        {asset_fields}\n        \"platforms\": [\"{host}\"],\n        \"binaries\": [\"bin/fake\"],\n        \"oci_repository\": \"plugins/fake\",\n        \"version_output\": \"fake {{version}}\",\n    }},\n}}\n"
        ),
    )
    .unwrap();
    let pins = toolchains.join("pins.bzl");
    std::fs::write(&pins, "PINS = {}\n").unwrap();
    let files = dir.join("release");
    std::fs::create_dir_all(&files).unwrap();
    let tgz = tgz_files(
        &files,
        "fake.tar.gz",
        &[("bin/fake", 0o755, script.as_bytes())],
    );
    // What the template says, as the bump would expand it (Starlark's `\\` is one `\`).
    let template = asset_fields
        .split('"')
        .nth(3)
        .unwrap_or_default()
        .replace("\\\\", "\\");
    let name = template
        .replace("{version}", "1.0.0")
        .replace("{platform}", host);
    gh.release(
        "acme/fake",
        "v1.0.0",
        &[Asset::new(&name, &tgz)],
        false,
        false,
    );
    pins
}

#[test]
fn the_upstream_binary_runs_with_nothing_of_the_callers() {
    // A compromised release: its binary looks at its environment and writes where it stands
    // and into HOME, then answers its version as if nothing happened. It can leave nothing
    // where the test could read it (in the sandbox nothing of ours is visible), so it answers
    // with what it found instead of its version when anything of the caller's reached it.
    let gh = FakeGitHub::start();
    let tmp = scratch();
    let (caller, home) = (tmp.path().join("caller"), tmp.path().join("home"));
    for d in [&caller, &home] {
        std::fs::create_dir_all(d).unwrap();
    }
    let script = format!(
        "#!/bin/sh\n\
         leaked=$(env | grep -e GITHUB_ -e PROTOREG_ -e DOCKER_CONFIG -e NETRC -e hunter2 -e ghs_ -e '{home}' | tr '\\n' ' ')\n\
         echo x > dropped-in-cwd\necho x > \"$HOME/dropped-in-home\"\n\
         if [ -n \"$leaked\" ]; then echo \"leaked: $leaked\"; exit 0; fi\n\
         printf 'fake 1.0.0\\033]0;pwned\\007\\n'\n",
        home = home.display()
    );
    let pins = fake_release(&gh, tmp.path(), &script);
    for dry_run in [true, false] {
        let mut cmd = protoreg();
        cmd.current_dir(&caller)
            .env("HOME", &home)
            .env("PROTOREG_SANDBOX", "bwrap")
            .env("GITHUB_API_URL", gh.api_url())
            .env("GITHUB_TOKEN", "ghs_caller_token_with_write_access")
            .env("PROTOREG_REGISTRY_PASSWORD", "registry-secret-hunter2")
            .args(["bump", "fake", "1.0.0", "--pins"])
            .arg(&pins);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let o = run(&mut cmd);
        assert!(o.status.success(), "{}", text(&o));
        // What it printed is shown (and recorded) escaped.
        assert!(!text(&o).contains(['\u{1b}', '\u{7}']), "{:?}", text(&o));
        assert_eq!(
            std::fs::read_dir(&caller).unwrap().count(),
            0,
            "it wrote into the caller's directory"
        );
        assert_eq!(
            std::fs::read_dir(&home).unwrap().count(),
            0,
            "it wrote into the caller's HOME"
        );
    }
    // (Read as text: this process's catalogue is the built-in one, without `fake`.)
    let after = std::fs::read_to_string(&pins).unwrap();
    assert!(after.contains("\"fake\": \"1.0.0\""), "{after}");
    assert!(after.contains("reported `fake 1.0.0"), "{after}");
    assert!(!after.contains(['\u{1b}', '\u{7}']), "{after:?}");
}

/// How far a hostile release binary got, as it answers `--version` with it.
const PROBE: &str = "probe token=none pins=refused net=refused sys=refused fd=closed";

#[test]
fn a_hostile_upstream_binary_reaches_no_secret_no_file_no_network_and_nothing_outlives_the_bump() {
    // The security review's attack: the binary reads protoreg's environ (and every one it can
    // see) for the caller's token, writes the pins file by absolute path, connects to a port
    // on the caller's loopback, and leaves a setsid'd child behind that writes into the
    // caller's directory once the bump is over. Then it reports how far it got.
    let gh = FakeGitHub::start();
    let tmp = scratch();
    let caller = tmp.path().join("caller");
    std::fs::create_dir_all(&caller).unwrap();
    let marker = caller.join("escaped");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let pins_path = tmp.path().join("toolchains/pins.bzl");
    let script = format!(
        "#!/bin/sh\n\
         token=none\n\
         for f in /proc/$PPID/environ /proc/[0-9]*/environ; do\n\
           if tr '\\000' '\\n' < \"$f\" 2>/dev/null | grep -q ghs_hostile_probe; then token=\"$f\"; fi\n\
         done\n\
         setsid sh -c 'exec >/dev/null 2>&1 </dev/null; sleep 2; echo escaped > \"{marker}\"; echo \"# tampered later\" >> \"{pins}\"' &\n\
         if echo '# tampered' >> '{pins}' 2>/dev/null; then pins=written; else pins=refused; fi\n\
         if bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null; then net=connected; else net=refused; fi\n\
         v=$(cat /proc/sys/kernel/core_pattern 2>/dev/null)\n\
         if [ -n \"$v\" ] && printf '%s\\n' \"$v\" 2>/dev/null > /proc/sys/kernel/core_pattern; then sys=written; else sys=refused; fi\n\
         if cat /proc/self/fd/7/secret 2>/dev/null | grep -q inherited; then fd=open; else fd=closed; fi\n\
         echo \"probe token=$token pins=$pins net=$net sys=$sys fd=$fd\"\n",
        marker = marker.display(),
        pins = pins_path.display(),
    );
    // A directory protoreg's caller left open as fd 7: the binary must not inherit it. (The
    // kernel setting it tries is written back unchanged, so the probe itself harms nothing.)
    let open_dir = tmp.path().join("open");
    std::fs::create_dir_all(&open_dir).unwrap();
    std::fs::write(open_dir.join("secret"), "inherited\n").unwrap();
    let pins = fake_release(&gh, tmp.path(), &script);
    assert_eq!(pins, pins_path);
    let before = std::fs::read_to_string(&pins).unwrap();
    let bin = protoreg().get_program().to_owned();
    let o = run(protoreg()
        .current_dir(&caller)
        .env("PROTOREG_SANDBOX", "bwrap")
        .env("GITHUB_API_URL", gh.api_url())
        .env("GITHUB_TOKEN", "ghs_hostile_probe_token_with_write_access")
        .env("OPEN_DIR", &open_dir)
        .env("PROTOREG_BIN", &bin)
        .env("PINS", &pins)
        .args(["bump", "fake", "1.0.0", "--pins"])
        .arg(&pins));
    // The same through a shell that leaves fd 7 open for protoreg.
    let o2 = run(Command::new("/bin/sh")
        .current_dir(&caller)
        .env("PROTOREG_SANDBOX", "bwrap")
        .env("GITHUB_API_URL", gh.api_url())
        .env("GITHUB_TOKEN", "ghs_hostile_probe_token_with_write_access")
        .env("OPEN_DIR", &open_dir)
        .env("PROTOREG_BIN", &bin)
        .env("PINS", &pins)
        .args([
            "-c",
            "exec 7<\"$OPEN_DIR\"; exec \"$PROTOREG_BIN\" bump fake 1.0.0 --pins \"$PINS\"",
        ]));
    let out2 = text(&o2);
    assert!(
        !o2.status.success() && out2.contains(PROBE),
        "with fd 7 open:\n{out2}"
    );
    let out = text(&o);
    // Every way it got out, collected, so a failure names them all.
    let mut escaped = Vec::new();
    // Its answer is not a version, so the bump fails, quoting it.
    if o.status.success() || !out.contains(PROBE) {
        escaped.push(format!("it reports more than `{PROBE}`:\n{out}"));
    }
    if out.contains("ghs_hostile_probe_token") {
        escaped.push(format!("the token is in the output:\n{out}"));
    }
    if !matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
        escaped.push("it connected to the caller's loopback".into());
    }
    // Its child would write 2 s after it started: give it 5 s after the bump returned.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !marker.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if marker.exists() {
        escaped
            .push("a process it started outlived the bump and wrote the caller's directory".into());
    }
    if std::fs::read_to_string(&pins).unwrap() != before {
        escaped.push("the pins file was written, by it or by what it left behind".into());
    }
    assert!(escaped.is_empty(), "{}", escaped.join("\n"));
}

#[test]
fn a_sandbox_setting_protoreg_does_not_offer_is_exit_2_before_anything_runs() {
    let gh = FakeGitHub::start();
    let tmp = scratch();
    let ran = tmp.path().join("ran");
    let pins = fake_release(
        &gh,
        tmp.path(),
        &format!("#!/bin/sh\ntouch '{}'\necho fake 1.0.0\n", ran.display()),
    );
    let before = std::fs::read_to_string(&pins).unwrap();
    for bad in ["none", "off", "docker"] {
        let o = run(protoreg()
            .current_dir(tmp.path())
            .env("PROTOREG_SANDBOX", bad)
            .env("GITHUB_API_URL", gh.api_url())
            .env_remove("GITHUB_TOKEN")
            .args(["bump", "fake", "1.0.0", "--pins"])
            .arg(&pins));
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
        let out = text(&o);
        assert!(
            out.contains(&format!("PROTOREG_SANDBOX=`{bad}`")) && out.contains("hint:"),
            "{out}"
        );
        assert_eq!(std::fs::read_to_string(&pins).unwrap(), before);
        assert!(!ran.exists(), "the binary ran");
    }
}

#[test]
fn an_upstream_binary_that_hangs_fails_the_bump_within_the_time_limit() {
    let gh = FakeGitHub::start();
    let tmp = scratch();
    // It also leaves a child behind that holds its output open.
    let pins = fake_release(&gh, tmp.path(), "#!/bin/sh\nsleep 120 &\nsleep 120\n");
    let before = std::fs::read_to_string(&pins).unwrap();
    let started = std::time::Instant::now();
    let o = common::bounded::run_within(
        protoreg()
            .current_dir(tmp.path())
            .env("GITHUB_API_URL", gh.api_url())
            .env_remove("GITHUB_TOKEN")
            .args(["bump", "fake", "1.0.0", "--pins"])
            .arg(&pins),
        Duration::from_secs(60),
    )
    .expect("bump still running after 60 s: the binary's hang is not bounded");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the version fake") && err.contains("no answer within 10 s"),
        "{err}"
    );
    assert!(err.contains("hint: the release's binary hangs"), "{err}");
    assert_eq!(std::fs::read_to_string(&pins).unwrap(), before);
}

#[test]
fn an_asset_that_is_not_one_plain_file_name_is_refused_before_anything_is_fetched() {
    let host = protoreg::platform::host().unwrap().name;
    let tmp = scratch();
    // Where a bump's scratch directory is made, and a directory outside everything.
    let (tmpdir, outside) = (tmp.path().join("tmp"), tmp.path().join("outside"));
    for d in [&tmpdir, &outside] {
        std::fs::create_dir_all(d).unwrap();
    }
    let absolute = format!(
        "\"asset\": \"{}/abs-{{version}}.tar.gz\",",
        outside.display()
    );
    let cases = [
        absolute.as_str(),
        "\"asset\": \"../up-{version}.tar.gz\",",
        "\"asset\": \"sub/../../x-{version}.tar.gz\",",
        "\"asset\": \"a\\\\b-{version}.tar.gz\",",
        "\"asset\": \"nul-{version}\u{0}.tar.gz\",",
        "\"asset\": \"..\",",
    ];
    let overriding = format!(
        "\"asset\": \"fake-{{version}}.tar.gz\", \"assets\": {{\"{host}\": \"../../o-{{version}}.tar.gz\"}},"
    );
    for (i, fields) in cases
        .iter()
        .copied()
        .chain(std::iter::once(overriding.as_str()))
        .enumerate()
    {
        let gh = FakeGitHub::start();
        let ws = tmp.path().join(format!("ws{i}"));
        let pins = fake_release_as(&gh, &ws, "#!/bin/sh\necho 'fake 1.0.0'\n", fields);
        let catalogue = std::fs::read_to_string(ws.join("toolchains/tools.bzl")).unwrap();
        let line = catalogue
            .lines()
            .position(|l| l.contains("\"asset"))
            .unwrap()
            + 1;
        let key = if i == cases.len() {
            format!("TOOLS[\"fake\"][\"assets\"][\"{host}\"]")
        } else {
            "TOOLS[\"fake\"][\"asset\"]".to_string()
        };
        for dry_run in [true, false] {
            let mut cmd = protoreg();
            cmd.current_dir(&ws)
                .env("TMPDIR", &tmpdir)
                .env("GITHUB_API_URL", gh.api_url())
                .env_remove("GITHUB_TOKEN")
                .args(["bump", "fake", "1.0.0", "--pins"])
                .arg(&pins);
            if dry_run {
                cmd.arg("--dry-run");
            }
            let o = run(&mut cmd);
            assert_eq!(o.status.code(), Some(2), "{fields}: {}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains(&format!("toolchains/tools.bzl:{line}: `{key}`: "))
                    && err.contains("is not one plain file name"),
                "{fields}: {err}"
            );
            assert!(err.contains("hint:"), "{err}");
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{fields}");
            assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0, "{fields}");
            assert_eq!(std::fs::read_to_string(&pins).unwrap(), "PINS = {}\n");
        }
    }
    // A version is one plain name too: it is part of the asset's name and the tag.
    let gh = FakeGitHub::start();
    let ws = tmp.path().join("version");
    let pins = fake_release(&gh, &ws, "#!/bin/sh\necho 'fake 1.0.0'\n");
    for version in ["1.0.0/../../x", "1.0.0\u{1b}[31m", "1 0"] {
        let o = run(protoreg()
            .current_dir(&ws)
            .env("TMPDIR", &tmpdir)
            .env("GITHUB_API_URL", gh.api_url())
            .args(["bump", "fake", version, "--dry-run", "--pins"])
            .arg(&pins));
        assert_eq!(o.status.code(), Some(2), "{version:?}: {}", text(&o));
        assert!(text(&o).contains("is not a version"), "{}", text(&o));
    }
    assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0);
}

#[test]
fn terminal_controls_in_upstream_tags_and_dates_never_reach_the_output() {
    // A hostile releases API: a newest "version" whose tag carries ESC and BEL, and a date
    // carrying a C1 control (CSI, U+009B, which JSON does not escape).
    let (gh, _) = github_with_protoc("v36.2");
    let evil_tag = "v99.0-\u{1b}]0;pwned\u{7}\u{1b}[2J";
    gh.raw_release(
        REPO,
        serde_json::json!({
            "tag_name": evil_tag, "draft": false, "prerelease": false,
            "published_at": "2025-07-01\u{9b}31m", "assets": [],
        }),
    );
    gh.raw_release(
        REPO,
        serde_json::json!({
            "tag_name": "v36.3", "draft": false, "prerelease": false,
            "published_at": "2025-07-02\u{9b}31m\u{1b}[2J", "assets": [],
        }),
    );
    let clean = |what: &str, out: &[u8]| {
        let out = String::from_utf8_lossy(out);
        assert!(
            !out.contains(|c: char| c.is_control() && c != '\n'),
            "{what}: a control character reached stdout: {out:?}"
        );
    };
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    for json in [false, true] {
        let mut cmd = protoreg();
        cmd.current_dir(tmp.path())
            .env("GITHUB_API_URL", gh.api_url())
            .env_remove("GITHUB_TOKEN")
            .args(["outdated", "--pins"])
            .arg(&pins);
        if json {
            cmd.arg("--json");
        }
        let o = run(&mut cmd);
        assert!(o.status.success(), "{}", text(&o));
        clean("outdated", &o.stdout);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("36.3"),
            "the newest real release: {}",
            text(&o)
        );
    }

    let reg = RegistryServer::start();
    let ws = common::ops::Workspace::new(&reg.host, &gh.api_url(), "");
    for args in [
        &["versions", "protoc", "--upstream"][..],
        &["versions", "protoc", "--upstream", "--json"][..],
    ] {
        let o = ws.run(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        clean(&format!("{args:?}"), &o.stdout);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("36.3") && !out.contains("99.0"), "{out}");
    }
    // The release a bump reads is the one asked for: another tag (here one carrying ESC,
    // bound for the provenance) is refused.
    let body = serde_json::json!({
        "tag_name": "v36.9\u{1b}[2J", "draft": false, "prerelease": false, "assets": [],
    });
    gh.server.route(
        &format!("/repos/{REPO}/releases/tags/v36.9"),
        Route::Body("application/json", serde_json::to_vec(&body).unwrap()),
    );
    let o = bump(&gh, &pins, &["protoc", "36.9", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("asked for tag `v36.9`"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    // The date is recorded in the provenance a bump writes: only one that looks like a date.
    let o = ws.json(&["versions", "protoc", "--upstream", "--json"]);
    let dated: Vec<_> = o["upstream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["version"].clone(), r["published_at"].clone()))
        .collect();
    assert!(
        dated.contains(&(serde_json::json!("36.3"), serde_json::Value::Null)),
        "{dated:?}"
    );
}

/// The releases API's download URLs go into pins.bzl, where every build downloads from them:
/// one that is not a plain http(s) URL (another scheme, credentials, a control character) is
/// refused by name, and the pins stay as they were.
#[test]
fn a_download_url_that_is_not_plain_http_is_never_pinned() {
    let (gh, assets) = github_with_protoc("v36.2");
    let tmp = scratch();
    let pins = seed_pins(tmp.path());
    let before = std::fs::read_to_string(&pins).unwrap();
    for (i, url) in [
        "file:///etc/passwd",
        "http://user:secret@127.0.0.1:9/protoc.zip",
        "https://127.0.0.1:9/protoc.zip\u{1b}[2J",
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("v36.{}", 3 + i);
        let list: Vec<serde_json::Value> = assets
            .iter()
            .map(|(name, path)| {
                serde_json::json!({
                    "name": name.replace("36.2", tag.trim_start_matches('v')),
                    "size": std::fs::metadata(path).unwrap().len(),
                    "browser_download_url": url,
                })
            })
            .collect();
        gh.raw_release(
            REPO,
            serde_json::json!({
                "tag_name": tag, "draft": false, "prerelease": false,
                "published_at": "2025-07-01T00:00:00Z", "assets": list,
            }),
        );
        let o = bump(&gh, &pins, &["protoc", tag.trim_start_matches('v')]);
        assert_eq!(o.status.code(), Some(1), "{url}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("not a plain http(s) URL"), "{url}: {err}");
        assert!(!err.contains("secret") && !err.contains('\u{1b}'), "{err}");
        assert_eq!(std::fs::read_to_string(&pins).unwrap(), before, "{url}");
    }
}

/// `protoreg sizes` records the exact size of every pin that has none, as the byte count of
/// bytes that matched the pin's sha256 (fetched from the pin's URL, or found in the cache);
/// bytes that do not match leave the file as it was; a second run changes nothing.
#[test]
fn sizes_records_verified_byte_counts_for_pins_without_one() {
    let zip = pin(&fixture(PROTOC_ZIP));
    let tgz = pin(&fixture(BUF_TGZ));
    let server = HttpServer::start();
    let zip_url = server.route("/protoc.zip", Route::File(zip.path.clone()));
    let tgz_url = server.route("/buf.tar.gz", Route::File(tgz.path.clone()));
    let tmp = scratch();
    let pins_path = tmp.path().join("pins.bzl");
    let write = |buf_url: &str| {
        std::fs::write(
            &pins_path,
            format!(
                "TOOLS = {{\n    \"protoc\": {{\"default\": \"36.2\"}},\n    \"buf\": {{\"default\": \"1.75.0\"}},\n}}\n\
                 PINS = {{\n    \"protoc\": {{\n        \"36.2\": {{\n            \"linux-x86_64\": (\"zip\", None, \"{}\", \"{zip_url}\"),\n        }},\n    }},\n\
                 \"buf\": {{\n        \"1.75.0\": {{\n            \"linux-x86_64\": (\"tar.gz\", None, \"{}\", \"{buf_url}\"),\n        }},\n    }},\n}}\n\
                 PROVENANCE = {{\n    \"protoc\": {{\n        \"36.2\": \"test\",\n    }},\n    \"buf\": {{\n        \"1.75.0\": \"test\",\n    }},\n}}\n",
                zip.sha256.hex(),
                tgz.sha256.hex()
            ),
        )
        .unwrap();
    };
    let sizes = |extra: &[&str]| {
        run(protoreg()
            .current_dir(tmp.path())
            .env_remove("PROTOREG_CONFIG")
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .arg("sizes")
            .args(extra)
            .arg("--pins")
            .arg(&pins_path))
    };
    // buf's URL serves protoc's bytes: not the pinned sha256, so nothing is written.
    write(&zip_url);
    let before = std::fs::read_to_string(&pins_path).unwrap();
    let o = sizes(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&pins_path).unwrap(), before);
    // Right bytes: --dry-run shows the two lines and writes nothing; then both are recorded.
    write(&tgz_url);
    let before = std::fs::read_to_string(&pins_path).unwrap();
    let o = sizes(&["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    let diff = String::from_utf8_lossy(&o.stdout);
    assert!(
        diff.contains(&format!("(\"zip\", {}, ", zip.size))
            && diff.contains(&format!("(\"tar.gz\", {}, ", tgz.size)),
        "{diff}"
    );
    assert_eq!(std::fs::read_to_string(&pins_path).unwrap(), before);
    let o = sizes(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let pins = protoreg::maintain::pins::Pins::load(&pins_path).unwrap();
    assert_eq!(
        pins.pins["protoc"]["36.2"]["linux-x86_64"].size,
        Some(zip.size)
    );
    assert_eq!(
        pins.pins["buf"]["1.75.0"]["linux-x86_64"].size,
        Some(tgz.size)
    );
    assert!(pins.provenance["buf"]["1.75.0"].contains("protoreg sizes"));
    // Idempotent: nothing left to record, nothing fetched again.
    let fetched = server.count("/protoc.zip") + server.count("/buf.tar.gz");
    let after = std::fs::read_to_string(&pins_path).unwrap();
    let o = sizes(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&pins_path).unwrap(), after);
    assert_eq!(
        server.count("/protoc.zip") + server.count("/buf.tar.gz"),
        fetched
    );
    // An unknown tool is bad input.
    let o = sizes(&["protoc-gen-nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
