//! `protoreg init` on new and existing repositories: what it writes, that a re-run changes
//! nothing, that what the user wrote is kept, and that bad input changes nothing (exit 2).
//! (tests/buck2_real.rs builds and tests a repository it made, with real Buck2.)

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::text;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn init(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_protoreg"))
        .arg("init")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

#[test]
fn a_new_repository_gets_the_cell_the_toolchains_and_its_own_pins_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(
        dir.path(),
        &["--commit", COMMIT, "--tool", "protoc", "--tool", "buf"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    for file in [".buckconfig", "toolchains/BUCK", "toolchains/pins.bzl"] {
        assert!(
            said.contains(&format!("created: {}", dir.path().join(file).display())),
            "{said}"
        );
    }
    let config = read(dir.path(), ".buckconfig");
    for want in [
        "prelude = bundled",
        "protobuf = git",
        "git_origin = https://github.com/birbparty/buck2-protobuf",
        &format!("commit_hash = {COMMIT}"),
        "[protobuf]",
        "protoreg = protoreg",
    ] {
        assert!(config.contains(want), "no `{want}` in:\n{config}");
    }
    let buck = read(dir.path(), "toolchains/BUCK");
    assert!(buck.contains("merge_pins({t: v for t, v in PROTOBUF_SHIPPED_PINS.items() if t in [\"protoc\", \"buf\"]}, PROTOBUF_PINS)"), "{buck}");
    // The own pins file is one protoreg reads (and `protoreg bump` moves).
    protoreg::maintain::pins::Pins::load(&dir.path().join("toolchains/pins.bzl")).unwrap();

    // Again: nothing changes.
    let before: Vec<String> = [".buckconfig", "toolchains/BUCK", "toolchains/pins.bzl"]
        .iter()
        .map(|f| read(dir.path(), f))
        .collect();
    let again = init(
        dir.path(),
        &["--commit", COMMIT, "--tool", "protoc", "--tool", "buf"],
    );
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches("up to date: ")
            .count(),
        3,
        "{}",
        text(&again)
    );
    let after: Vec<String> = [".buckconfig", "toolchains/BUCK", "toolchains/pins.bzl"]
        .iter()
        .map(|f| read(dir.path(), f))
        .collect();
    assert_eq!(before, after);

    // A new commit moves only the block.
    let other = "4567456789abcdef0123456789abcdef01234567";
    assert!(init(dir.path(), &["--commit", other]).status.success());
    let config = read(dir.path(), ".buckconfig");
    assert!(
        config.contains(other) && !config.contains(COMMIT) && config.contains("prelude = bundled"),
        "{config}"
    );
}

#[test]
fn an_existing_repository_keeps_what_its_user_wrote() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("toolchains")).unwrap();
    let config = "[cells]\n  root = .\n  prelude = prelude\n  toolchains = toolchains\n\n[external_cells]\n  prelude = bundled\n\n[protobuf]\n  protoreg = pinned\n";
    let buck = "load(\"@prelude//toolchains:demo.bzl\", \"system_demo_toolchains\")\n\nsystem_demo_toolchains()\n";
    std::fs::write(dir.path().join(".buckconfig"), config).unwrap();
    std::fs::write(dir.path().join("toolchains/BUCK"), buck).unwrap();
    let out = init(dir.path(), &["--commit", COMMIT]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("added the buck2-protobuf block to"));
    let new_config = read(dir.path(), ".buckconfig");
    assert!(new_config.starts_with(config), "{new_config}");
    // Their [protobuf] section is theirs: no second one.
    assert_eq!(new_config.matches("[protobuf]").count(), 1, "{new_config}");
    assert!(new_config.contains("protobuf = git"), "{new_config}");
    let new_buck = read(dir.path(), "toolchains/BUCK");
    assert!(
        new_buck.starts_with(buck) && new_buck.contains("protobuf_toolchains("),
        "{new_buck}"
    );
}

#[test]
fn bad_input_is_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("toolchains")).unwrap();
    std::fs::write(dir.path().join("toolchains/pins.bzl"), "not a pins file\n").unwrap();
    for (args, want) in [
        (
            vec!["--commit", COMMIT],
            "is not a pins file protoreg reads",
        ),
        (vec!["--commit", "abc"], "is not a 40-digit git commit"),
        (
            vec!["--commit", COMMIT, "--tool", "../x"],
            "is not a tool name",
        ),
        (
            vec!["--commit", COMMIT, "--registry", "a b"],
            "is empty or has spaces",
        ),
    ] {
        let out = init(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(want) && text(&out).contains("hint:"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(
            !dir.path().join(".buckconfig").exists(),
            "{args:?} wrote .buckconfig"
        );
        assert!(
            !dir.path().join("toolchains/BUCK").exists(),
            "{args:?} wrote toolchains/BUCK"
        );
    }
    // A block whose last line was deleted by hand.
    std::fs::remove_file(dir.path().join("toolchains/pins.bzl")).unwrap();
    let half = "# >>> buck2-protobuf: written by `protoreg init`; re-run it to update this block\n[protobuf]\n";
    std::fs::write(dir.path().join(".buckconfig"), half).unwrap();
    let out = init(dir.path(), &["--commit", COMMIT]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(read(dir.path(), ".buckconfig"), half);
}

/// The shell of the workflow step with `id: ID`: its `run: |` block, unindented.
fn step_script(workflow: &str, id: &str) -> String {
    let lines: Vec<&str> = workflow.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == format!("id: {id}"))
        .unwrap();
    let run = at
        + lines[at..]
            .iter()
            .position(|l| l.trim() == "run: |")
            .unwrap();
    let indent = lines[run].len() - lines[run].trim_start().len();
    let mut script = String::new();
    for line in &lines[run + 1..] {
        if !line.trim().is_empty() && line.len() - line.trim_start().len() <= indent {
            break;
        }
        script.push_str(line.get(indent + 2..).unwrap_or(""));
        script.push('\n');
    }
    script
}

#[test]
fn the_weekly_workflow_is_written_whole_and_its_steps_bump_the_repository_s_own_pins() {
    use common::github::{protoc_assets, Asset, FakeGitHub};
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("buck2-protobuf.git");
    let head = common::buck2::rules_origin(&origin);
    let repo = dir.path().join("consumer");
    std::fs::create_dir(&repo).unwrap();
    let file = ".github/workflows/protobuf-bumps.yml";
    let args = [
        "--commit",
        &head,
        "--origin",
        &format!("file://{}", origin.display()),
        "--workflow",
    ];
    let out = init(&repo, &args);
    assert!(out.status.success(), "{}", text(&out));
    let workflow = read(&repo, file);
    assert_eq!(
        workflow,
        read(
            Path::new(env!("CARGO_MANIFEST_DIR")),
            ".github/workflow-templates/protobuf-bumps.yml"
        )
    );
    let again = init(&repo, &args);
    assert!(
        text(&again).contains(&format!("up to date: {}", repo.join(file).display())),
        "{}",
        text(&again)
    );

    // The repository's own pins: protoc 36.1 (the 36.2 zip's values under an older version).
    let protoc = common::pin(&common::fixture(common::PROTOC_ZIP));
    let pins = repo.join("toolchains/pins.bzl");
    std::fs::write(
        &pins,
        format!(
            "DEFAULTS = {{\"protoc\": \"36.1\"}}\nPINS = {{\"protoc\": {{\"36.1\": {{\"linux-x86_64\": (\"zip\", {}, \"{}\", \"https://example.invalid/protoc-36.1-linux-x86_64.zip\")}}}}}}\nPROVENANCE = {{\"protoc\": {{\"36.1\": \"test seed\"}}}}\n",
            protoc.size, protoc.sha256
        ),
    )
    .unwrap();

    // Step `rules`: the rules at the commit .buckconfig names, fetched from the origin.
    let runner = tempfile::tempdir().unwrap();
    let outputs = runner.path().join("github-output");
    let step = |id: &str, env: &[(&str, &std::ffi::OsStr)]| {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &step_script(&workflow, id)])
            .current_dir(&repo)
            .env("RUNNER_TEMP", runner.path())
            .env("GITHUB_OUTPUT", &outputs)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let rules = step("rules", &[]);
    assert!(rules.status.success(), "{}", text(&rules));
    let said = std::fs::read_to_string(&outputs).unwrap();
    let checkout = runner.path().join("buck2-protobuf");
    assert!(
        said.contains(&format!("dir={}\n", checkout.display()))
            && said.contains(&format!("commit={head}\n")),
        "{said}"
    );
    let at = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&checkout)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&at.stdout).trim(), head);

    // Step `bump`: that checkout's propose-bumps moves the own pins to upstream's 36.2.
    let gh = FakeGitHub::start();
    let list = protoc_assets();
    let assets: Vec<Asset> = list.iter().map(|(n, p)| Asset::new(n, p)).collect();
    gh.release("protocolbuffers/protobuf", "v36.2", &assets, false, false);
    std::fs::remove_file(&outputs).unwrap();
    let api = gh.api_url();
    let bump = step(
        "bump",
        &[
            ("RULES", checkout.as_os_str()),
            ("PROTOREG", env!("CARGO_BIN_EXE_protoreg").as_ref()),
            ("PINS", "toolchains/pins.bzl".as_ref()),
            (
                "BODY",
                runner.path().join("proposal/bump-pr.md").as_os_str(),
            ),
            ("GITHUB_API_URL", api.as_ref()),
            ("DOCKER_CONFIG", "/nonexistent-docker-config".as_ref()),
        ],
    );
    assert!(bump.status.success(), "{}", text(&bump));
    assert!(std::fs::read_to_string(&outputs)
        .unwrap()
        .contains("changed=true"));
    let proposed =
        std::fs::read_to_string(runner.path().join("proposal/toolchains/pins.bzl")).unwrap();
    let moved = protoreg::maintain::pins::Pins::load(&pins).unwrap();
    assert_eq!(moved.defaults["protoc"], "36.2", "{proposed}");
    assert_eq!(proposed, read(&repo, "toolchains/pins.bzl"));
    let body = std::fs::read_to_string(runner.path().join("proposal/bump-pr.md")).unwrap();
    assert!(body.contains("`36.1` → `36.2`"), "{body}");
}

#[test]
fn a_workflow_file_it_did_not_write_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
    let theirs = "name: protobuf-bumps\non: push\n";
    std::fs::write(
        dir.path().join(".github/workflows/protobuf-bumps.yml"),
        theirs,
    )
    .unwrap();
    let out = init(dir.path(), &["--commit", COMMIT, "--workflow"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("was not written by `protoreg init`"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join(".buckconfig").exists());
    assert!(!dir.path().join("toolchains").exists());
    assert_eq!(
        read(dir.path(), ".github/workflows/protobuf-bumps.yml"),
        theirs
    );
}
