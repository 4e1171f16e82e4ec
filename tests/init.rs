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
