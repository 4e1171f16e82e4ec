//! `protoreg protoc`, the code-generation command line the rules run on every executor: the
//! real protoc 36.2 (the fixture release, unpacked by `protoreg extract`) and node.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;

fn protoreg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_protoreg"))
}

/// protoc 36.2 for this machine, unpacked into `dir`.
fn protoc(dir: &Path) -> PathBuf {
    let zip = common::buck2::repo_root().join(".fixtures/upstream/protoc-36.2-linux-x86_64.zip");
    let sha = common::pin(&zip).sha256.hex().to_string();
    let out = protoreg()
        .arg("extract")
        .arg(&zip)
        .args([
            "--sha256",
            &sha,
            "--format",
            "zip",
            "--executable",
            "bin/protoc",
            "--out",
        ])
        .arg(dir.join("protoc"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    dir.join("protoc/bin/protoc")
}

/// A directory with `a/v1/m.proto`, and protoc in it.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src/a/v1")).unwrap();
    std::fs::write(
        dir.path().join("src/a/v1/m.proto"),
        "syntax = \"proto3\";\npackage a.v1;\nmessage M { string s = 1; }\n",
    )
    .unwrap();
    let protoc = protoc(dir.path());
    (dir, protoc)
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    protoreg().current_dir(dir).args(args).output().unwrap()
}

#[test]
fn it_makes_each_output_directory_then_runs_protoc_and_passes_its_status_on() {
    let (dir, protoc) = workspace();
    let protoc = protoc.to_str().unwrap();
    let out = run_in(
        dir.path(),
        &[
            "protoc",
            "--",
            protoc,
            "--proto_path=src",
            "--cpp_out=gen/deep/cpp",
            "--python_out=gen/py",
            "--descriptor_set_out=gen/set.binpb",
            "a/v1/m.proto",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    for file in [
        "gen/deep/cpp/a/v1/m.pb.cc",
        "gen/py/a/v1/m_pb2.py",
        "gen/set.binpb",
    ] {
        assert!(dir.path().join(file).is_file(), "no {file}");
    }

    // protoc's own failure: its message, its status.
    let out = run_in(
        dir.path(),
        &[
            "protoc",
            "--",
            protoc,
            "--proto_path=src",
            "--cpp_out=gen/x",
            "a/v1/missing.proto",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("missing.proto"), "{}", text(&out));
}

#[test]
fn a_script_plugin_runs_on_its_interpreter_through_protoreg() {
    let (dir, protoc) = workspace();
    // A CodeGeneratorResponse with one file, `NAME.txt` holding its argument, written by
    // hand: field 15 (`file`), inside it field 1 (`name`) and field 15 (`content`).
    std::fs::write(
        dir.path().join("plugin.js"),
        "process.stdin.resume();\n\
         process.stdin.on('end', () => {\n\
         \x20 const name = Buffer.from('out.txt'), content = Buffer.from(process.argv[2]);\n\
         \x20 const file = Buffer.concat([Buffer.from([0x0a, name.length]), name, Buffer.from([0x7a, content.length]), content]);\n\
         \x20 process.stdout.write(Buffer.concat([Buffer.from([0x7a, file.length]), file]));\n\
         });\n",
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &[
            "protoc",
            "--plugin-command",
            "js=node",
            "--plugin-arg",
            "plugin.js",
            "--plugin-arg",
            "--hello",
            "--",
            protoc.to_str().unwrap(),
            "--proto_path=src",
            "--js_out=gen/js",
            "a/v1/m.proto",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("gen/js/out.txt")).unwrap(),
        "--hello"
    );
}

#[test]
fn bad_plugin_commands_are_exit_2_with_a_hint() {
    let (dir, protoc) = workspace();
    let out = run_in(
        dir.path(),
        &[
            "protoc",
            "--plugin-command",
            "js",
            "--",
            protoc.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not NAME=PROGRAM") && text(&out).contains("hint:"));

    // Started as a plugin with a command line that is not one.
    let out = protoreg()
        .env("PROTOREG_PLUGIN_COMMAND", "node plugin.js")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
