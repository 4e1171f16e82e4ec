//! scripts/propose-bumps, the logic of the weekly bump pull request, against a GitHub-shaped
//! loopback upstream with real protoc binaries: it bumps what upstream has moved past, writes
//! the body (evidence and diff), keeps the READMEs' tables in step, reports a bump it could
//! not make without losing the others, and changes nothing on a second run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::github::{protoc_assets, Asset, FakeGitHub};
use common::*;

const GO_TGZ: &str = "protoc-gen-go.v1.28.1.linux.amd64.tar.gz";

/// A repository with pins of protoc 36.1 (the 36.2 linux zip's values under an older
/// version) and protoc-gen-go 1.0.0, and a README carrying the table of pins.
fn repo(dir: &Path) {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let go = pin(&fixture(GO_TGZ));
    std::fs::create_dir_all(dir.join("toolchains")).unwrap();
    let text = format!(
        "DEFAULTS = {{\"protoc\": \"36.1\", \"protoc-gen-go\": \"1.0.0\"}}\n\
         PINS = {{\n\
         \x20   \"protoc\": {{\"36.1\": {{\"linux-x86_64\": (\"zip\", {}, \"{}\", \"https://example.invalid/protoc-36.1-linux-x86_64.zip\")}}}},\n\
         \x20   \"protoc-gen-go\": {{\"1.0.0\": {{\"linux-x86_64\": (\"tar.gz\", {}, \"{}\", \"https://example.invalid/protoc-gen-go.v1.0.0.linux.amd64.tar.gz\")}}}},\n\
         }}\n\
         PROVENANCE = {{\"protoc\": {{\"36.1\": \"test seed\"}}, \"protoc-gen-go\": {{\"1.0.0\": \"test seed\"}}}}\n",
        protoc.size, protoc.sha256, go.size, go.sha256
    );
    let path = dir.join("toolchains/pins.bzl");
    std::fs::write(&path, text).unwrap();
    let pins = protoreg::maintain::pins::Pins::load(&path).unwrap();
    std::fs::write(&path, pins.render()).unwrap();
    std::fs::write(
        dir.join("README.md"),
        format!(
            "# A project\n\n<!-- pins -->\n{}<!-- /pins -->\n\nMore text.\n",
            pins.markdown_table()
        ),
    )
    .unwrap();
}

/// protoc 36.2 released with its real zips; protoc-gen-go 1.28.1 released under an asset name
/// the catalogue does not expect, so its bump fails.
fn upstream() -> FakeGitHub {
    let gh = FakeGitHub::start();
    let list: Vec<(String, PathBuf)> = protoc_assets();
    let assets: Vec<Asset> = list.iter().map(|(n, p)| Asset::new(n, p)).collect();
    gh.release("protocolbuffers/protobuf", "v36.2", &assets, false, false);
    let go = fixture(GO_TGZ);
    gh.release(
        "protocolbuffers/protobuf-go",
        "v1.28.1",
        &[Asset::new("protoc-gen-go-renamed.tar.gz", &go)],
        false,
        false,
    );
    gh
}

fn propose(gh: &FakeGitHub, dir: &Path) -> (Output, String) {
    let body = dir.join("bump-pr.md");
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/propose-bumps"))
        .current_dir(dir)
        .env("PROTOREG", env!("CARGO_BIN_EXE_protoreg"))
        .env("GITHUB_API_URL", gh.api_url())
        .env("BODY", &body)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("PROTOREG_PINS")
        .env_remove("PROTOREG_CATALOGUE")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config")
        .output()
        .unwrap();
    let body = std::fs::read_to_string(&body).unwrap_or_default();
    (out, body)
}

#[test]
fn bumps_are_proposed_with_their_evidence_and_a_second_run_changes_nothing() {
    let gh = upstream();
    let tmp = scratch();
    let dir = tmp.path();
    repo(dir);
    let pins_path = dir.join("toolchains/pins.bzl");

    let (out, body) = propose(&gh, dir);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "changed=true");
    let pins = protoreg::maintain::pins::Pins::load(&pins_path).unwrap();
    assert_eq!(pins.defaults["protoc"], "36.2");
    assert_eq!(pins.pins["protoc"]["36.2"].len(), 5);
    // The failed bump left its tool as it was.
    assert_eq!(pins.defaults["protoc-gen-go"], "1.0.0");

    assert!(
        body.contains("- `protoc` `36.1` → `36.2`: `pinned protoc 36.2 for 5 platforms"),
        "{body}"
    );
    assert!(
        body.contains("libprotoc 36.2"),
        "the host binary's report:\n{body}"
    );
    assert!(body.contains("### Not bumped"), "{body}");
    assert!(
        body.contains("`protoc-gen-go` `1.0.0` → `1.28.1`"),
        "{body}"
    );
    assert!(body.contains("no asset `protoc-gen-go.v1.28.1."), "{body}");
    assert!(
        body.contains("```diff\n--- a/toolchains/pins.bzl\n+++ b/toolchains/pins.bzl\n"),
        "{body}"
    );
    assert!(body.contains("+    \"protoc\": \"36.2\",\n"), "{body}");
    assert!(body.contains("-    \"protoc\": \"36.1\",\n"), "{body}");
    assert!(
        body.contains("github.com/protocolbuffers/protobuf release v36.2"),
        "provenance:\n{body}"
    );

    // The README's table follows the pins, so the pull request passes tests/shipped_pins.rs.
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!(
            "<!-- pins -->\n{}<!-- /pins -->",
            pins.markdown_table()
        )),
        "{readme}"
    );
    assert!(readme.starts_with("# A project\n") && readme.ends_with("More text.\n"));

    // Again: protoc is current, protoc-gen-go still fails the same way; the pins and the
    // README are untouched, so the pull request would be the same.
    let before = std::fs::read(&pins_path).unwrap();
    let (out, body) = propose(&gh, dir);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "changed=false");
    assert_eq!(std::fs::read(&pins_path).unwrap(), before);
    assert!(!body.contains("```diff"), "{body}");
    assert!(body.contains("### Not bumped"), "{body}");
}

#[test]
fn with_everything_current_nothing_changes() {
    let gh = FakeGitHub::start();
    let list: Vec<(String, PathBuf)> = protoc_assets();
    let assets: Vec<Asset> = list.iter().map(|(n, p)| Asset::new(n, p)).collect();
    gh.release("protocolbuffers/protobuf", "v36.1", &assets, false, false);
    let go = fixture(GO_TGZ);
    gh.release(
        "protocolbuffers/protobuf-go",
        "v1.0.0",
        &[Asset::new(GO_TGZ, &go)],
        false,
        false,
    );
    let tmp = scratch();
    repo(tmp.path());
    let before = std::fs::read(tmp.path().join("toolchains/pins.bzl")).unwrap();
    let (out, body) = propose(&gh, tmp.path());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "changed=false");
    assert_eq!(
        std::fs::read(tmp.path().join("toolchains/pins.bzl")).unwrap(),
        before
    );
    assert!(
        body.contains("Every pinned tool is at its newest stable upstream release."),
        "{body}"
    );
}

#[test]
fn a_readme_without_the_table_markers_is_refused_before_anything_changes() {
    let gh = upstream();
    let tmp = scratch();
    repo(tmp.path());
    let pins = tmp.path().join("toolchains/pins.bzl");
    let before = std::fs::read(&pins).unwrap();
    let plain = tmp.path().join("PLAIN.md");
    std::fs::write(&plain, "# no table here\n").unwrap();
    let o = run(protoreg()
        .current_dir(tmp.path())
        .env("GITHUB_API_URL", gh.api_url())
        .env_remove("GITHUB_TOKEN")
        .args(["bump", "protoc", "36.2", "--readme"])
        .arg(&plain));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("has no table of pins"), "{}", text(&o));
    assert_eq!(std::fs::read(&pins).unwrap(), before);
}

#[test]
fn an_archive_of_protos_released_on_github_is_proposed_too() {
    // protovalidate's shape: a release asset holding the .proto files under a versioned
    // directory, declared in the repository's own catalogue beside its pins.
    let gh = FakeGitHub::start();
    let tmp = scratch();
    let dir = tmp.path();
    let files = scratch();
    let proto =
        b"syntax = \"proto3\";\npackage acme.common.v1;\nmessage Money { int64 units = 1; }\n";
    let mut assets = Vec::new();
    for version in ["1.0.0", "1.1.0"] {
        let name = format!("acme-protos-{version}.tar.gz");
        let member = format!("acme-protos-{version}/proto/acme/common/v1/common.proto");
        assets.push((
            version,
            name.clone(),
            tgz_files(files.path(), &name, &[(member.as_str(), 0o644, &proto[..])]),
        ));
    }
    for (version, name, path) in &assets {
        gh.release(
            "acme/protos",
            &format!("v{version}"),
            &[Asset::new(name, path)],
            false,
            false,
        );
    }
    std::fs::create_dir_all(dir.join("toolchains")).unwrap();
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("toolchains/tools.bzl"))
            .unwrap();
    let (head, tail) = shipped.rsplit_once("\n}\n").unwrap();
    std::fs::write(
        dir.join("toolchains/tools.bzl"),
        format!(
            "{head}\n    \"acme-protos\": {{\n        \"kind\": \"protos\",\n        \"upstream\": \"github\",\n        \"repository\": \"acme/protos\",\n        \"tag\": \"v{{version}}\",\n        \"asset\": \"acme-protos-{{version}}.tar.gz\",\n        \"strip_prefix\": \"acme-protos-{{version}}/proto\",\n        \"srcs\": [\"acme/common/v1/common.proto\"],\n        \"oci_repository\": \"protos/acme-protos\",\n    }},\n}}\n{tail}"
        ),
    )
    .unwrap();
    let old = pin(&assets[0].2);
    let pins = dir.join("toolchains/pins.bzl");
    std::fs::write(
        &pins,
        format!(
            "DEFAULTS = {{\"acme-protos\": \"1.0.0\"}}\n\
             PINS = {{\"acme-protos\": {{\"1.0.0\": {{\"any\": (\"tar.gz\", {}, \"{}\", \"https://example.invalid/acme-protos-1.0.0.tar.gz\")}}}}}}\n\
             PROVENANCE = {{\"acme-protos\": {{\"1.0.0\": \"test seed\"}}}}\n",
            old.size, old.sha256
        ),
    )
    .unwrap();
    let (out, body) = propose(&gh, dir);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "changed=true",
        "{body}"
    );
    assert!(
        body.contains(
            "- `acme-protos` `1.0.0` → `1.1.0`: `pinned acme-protos 1.1.0 for 1 platforms"
        ),
        "{body}"
    );
    assert!(body.contains("1 .proto files present"), "{body}");
    let text_after = std::fs::read_to_string(&pins).unwrap();
    assert!(
        text_after.contains(&pin(&assets[1].2).sha256.hex().to_string()),
        "{text_after}"
    );
}

/// The Markdown of `body` outside its fenced code blocks (CommonMark's rule: a block closes
/// at a line of at least as many backticks as opened it, and nothing else), and the
/// contents of those blocks.
fn outside_and_inside_code(body: &str) -> (String, Vec<String>) {
    let (mut outside, mut blocks) = (String::new(), Vec::new());
    let mut open: Option<(usize, String)> = None;
    for line in body.lines() {
        let ticks = line.len() - line.trim_start_matches('`').len();
        match &mut open {
            None if ticks >= 3 && !line[ticks..].contains('`') => {
                open = Some((ticks, String::new()))
            }
            None => {
                outside.push_str(line);
                outside.push('\n');
            }
            Some((n, _)) if ticks >= *n && line.trim_end().len() == ticks => {
                if let Some((_, text)) = open.take() {
                    blocks.push(text);
                }
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed:\n{body}");
    (outside, blocks)
}

#[test]
fn a_failed_bump_s_output_lands_in_the_body_only_as_code() {
    // A compromised release whose binary answers its version with Markdown and HTML meant
    // for the pull request (and a run of backticks to close a code block early).
    let host = protoreg::platform::host().unwrap().name;
    let gh = FakeGitHub::start();
    let tmp = scratch();
    let dir = tmp.path();
    let hostile =
        "fake 0.1 ``````\n</pre><img src=x> [link](http://x) @someone ![i](http://y) <!--";
    let script = format!(
        "#!/bin/sh\nprintf '%s' '{}'\nprintf 'padding%.0s' $(seq 1 600)\necho\n",
        hostile.replace('\n', " ")
    );
    let files = dir.join("release");
    std::fs::create_dir_all(&files).unwrap();
    let name = format!("fake-1.0.0-{host}.tar.gz");
    let tgz = tgz_files(&files, &name, &[("bin/fake", 0o755, script.as_bytes())]);
    gh.release(
        "acme/fake",
        "v1.0.0",
        &[Asset::new(&name, &tgz)],
        false,
        false,
    );
    std::fs::create_dir_all(dir.join("toolchains")).unwrap();
    std::fs::write(
        dir.join("toolchains/tools.bzl"),
        format!(
            "TOOLS = {{\"fake\": {{\"upstream\": \"github\", \"repository\": \"acme/fake\", \"tag\": \"v{{version}}\", \"asset\": \"fake-{{version}}-{{platform}}.tar.gz\", \"platforms\": [\"{host}\"], \"binaries\": [\"bin/fake\"], \"oci_repository\": \"plugins/fake\", \"version_output\": \"fake {{version}}\"}}}}\n"
        ),
    )
    .unwrap();
    let pins = dir.join("toolchains/pins.bzl");
    let seed = format!(
        "DEFAULTS = {{\"fake\": \"0.9.0\"}}\nPINS = {{\"fake\": {{\"0.9.0\": {{\"{host}\": (\"tar.gz\", 10, \"{}\", \"https://example.invalid/fake.tar.gz\")}}}}}}\nPROVENANCE = {{}}\n",
        "ab".repeat(32)
    );
    std::fs::write(&pins, &seed).unwrap();

    let (out, body) = propose(&gh, dir);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&pins).unwrap(), seed);
    assert!(body.contains("### Not bumped"), "{body}");
    let (outside, blocks) = outside_and_inside_code(&body);
    for markup in [
        "<img",
        "](http://",
        "@someone",
        "</pre>",
        "<!--",
        "``````",
        "padding",
    ] {
        assert!(
            !outside.contains(markup),
            "`{markup}` outside a code block:\n{outside}\n--- body:\n{body}"
        );
    }
    assert!(body.contains("- `fake` `0.9.0` → `1.0.0`:"), "{body}");
    let failure = blocks
        .iter()
        .find(|b| b.contains("expected fake 1.0.0"))
        .unwrap_or_else(|| panic!("the failure is not in a code block:\n{body}"));
    // All of it, inside the one block: nothing closed it early.
    for markup in ["<img src=x>", "[link](http://x)", "@someone", "``````"] {
        assert!(failure.contains(markup), "{markup}: {failure}");
    }
    // Bounded: the binary's 4 KiB of output is cut at 2 KiB, and says so.
    assert!(failure.len() <= 2048 + 1, "{} bytes", failure.len());
    assert!(outside.contains("(cut at 2048 bytes)"), "{body}");
    assert!(
        !body.contains(|c: char| c.is_control() && c != '\n'),
        "{body:?}"
    );
}
