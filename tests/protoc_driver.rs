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

/// Three libraries as the rules compile them (`base` <- `mid` <- `top`), each to a descriptor
/// set of its own files, and an unrelated set: `top` imports `mid`'s file, which imports one
/// of `base`'s two.
fn libraries(dir: &Path, protoc: &Path) {
    let files = [
        ("base/b/v1/x.proto", "syntax = \"proto3\";\npackage b.v1;\nmessage X {}\n"),
        ("base/b/v1/unused.proto", "syntax = \"proto3\";\npackage b.v1;\nmessage Unused {}\n"),
        ("other/o/v1/o.proto", "syntax = \"proto3\";\npackage o.v1;\nmessage O {}\n"),
        (
            "mid/m/v1/y.proto",
            "syntax = \"proto3\";\npackage m.v1;\nimport \"b/v1/x.proto\";\nmessage Y { b.v1.X x = 1; }\n",
        ),
        (
            "top/t/v1/z.proto",
            "syntax = \"proto3\";\npackage t.v1;\n// import \"b/v1/unused.proto\";\n\
             import \"m/v1/y.proto\";\nimport \"google/protobuf/timestamp.proto\";\n\
             // Z, with comments for the source info.\n\
             message Z { m.v1.Y y = 1; google.protobuf.Timestamp at = 2; }\n",
        ),
    ];
    for (path, text) in files {
        std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
        std::fs::write(dir.join(path), text).unwrap();
    }
    std::fs::create_dir_all(dir.join("sets")).unwrap();
    for args in [
        &[
            "--proto_path=base",
            "--descriptor_set_out=sets/base.binpb",
            "b/v1/x.proto",
            "b/v1/unused.proto",
        ][..],
        &[
            "--proto_path=other",
            "--descriptor_set_out=sets/other.binpb",
            "o/v1/o.proto",
        ],
        &[
            "--proto_path=mid",
            "--descriptor_set_in=sets/base.binpb",
            "--descriptor_set_out=sets/mid.binpb",
            "m/v1/y.proto",
        ],
    ] {
        let out = Command::new(protoc)
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
}

/// `top`'s protoc arguments as the rules write them: its file mapped to its import path,
/// every transitive set, and the image and C++ code as outputs under `out`.
fn top_args(protoc: &Path, out: &str) -> Vec<String> {
    let include = protoc.parent().unwrap().parent().unwrap().join("include");
    vec![
        "--include_imports".into(),
        "--include_source_info".into(),
        format!("--descriptor_set_out={out}/image.binpb"),
        "--descriptor_set_in=sets/other.binpb:sets/base.binpb:sets/mid.binpb".into(),
        "--proto_path=t/v1/z.proto=top/t/v1/z.proto".into(),
        format!("--proto_path={}", include.display()),
        format!("--cpp_out={out}"),
        "top/t/v1/z.proto".into(),
    ]
}

#[test]
fn pruned_protoc_reads_only_what_the_sources_import_and_writes_the_same_bytes() {
    let (dir, protoc) = workspace();
    let d = dir.path();
    libraries(d, &protoc);
    let protoc_str = protoc.to_str().unwrap();
    std::fs::create_dir_all(d.join("direct")).unwrap();
    let out = Command::new(&protoc)
        .current_dir(d)
        .args(top_args(&protoc, "direct"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Through the driver, with the arguments on the command line and in an @FILE: the same
    // image (every import, source info) and the same generated code, byte for byte.
    std::fs::write(
        d.join("args.txt"),
        top_args(&protoc, "viafile").join("\n") + "\n",
    )
    .unwrap();
    let inline = top_args(&protoc, "inline");
    for (name, args) in [
        (
            "inline",
            inline.iter().map(String::as_str).collect::<Vec<_>>(),
        ),
        ("viafile", vec!["@args.txt"]),
    ] {
        std::fs::create_dir_all(d.join(name)).unwrap();
        let mut argv = vec!["protoc", "--prune-descriptor-sets", "--", protoc_str];
        argv.extend(args);
        let out = run_in(d, &argv);
        assert!(out.status.success(), "{name}: {}", text(&out));
        for file in ["image.binpb", "t/v1/z.pb.h", "t/v1/z.pb.cc"] {
            let want = std::fs::read(d.join("direct").join(file)).unwrap();
            let got = std::fs::read(d.join(name).join(file)).unwrap();
            assert!(want == got, "{name}/{file} differs from protoc's own");
        }
    }

    // What protoc was given: a program in its place records its arguments and the set.
    std::fs::write(
        d.join("record.sh"),
        "for a in \"$@\"; do echo \"$a\"; case \"$a\" in --descriptor_set_in=*) cp \"${a#*=}\" given.binpb;; esac; done > given.txt\n",
    )
    .unwrap();
    let given = |args: &[String]| {
        let _ = std::fs::remove_file(d.join("given.binpb"));
        let mut argv = vec![
            "protoc",
            "--prune-descriptor-sets",
            "--dep-file",
            "used.txt",
            "--",
            "/bin/sh",
            "record.sh",
        ];
        argv.extend(args.iter().map(String::as_str));
        let out = run_in(d, &argv);
        assert!(out.status.success(), "{}", text(&out));
        let set = d.join("given.binpb");
        let names = if set.is_file() {
            let decoded = Command::new(&protoc)
                .current_dir(d)
                .arg(format!(
                    "--proto_path={}",
                    protoc
                        .parent()
                        .unwrap()
                        .parent()
                        .unwrap()
                        .join("include")
                        .display()
                ))
                .args([
                    "--decode=google.protobuf.FileDescriptorSet",
                    "google/protobuf/descriptor.proto",
                ])
                .stdin(std::fs::File::open(&set).unwrap())
                .output()
                .unwrap();
            assert!(decoded.status.success(), "{}", text(&decoded));
            String::from_utf8(decoded.stdout)
                .unwrap()
                .lines()
                .filter_map(|l| {
                    l.trim()
                        .strip_prefix("name: \"")?
                        .strip_suffix(".proto\"")
                        .map(String::from)
                })
                .collect::<Vec<_>>()
        } else {
            Vec::new()
        };
        (std::fs::read_to_string(d.join("given.txt")).unwrap(), names)
    };
    let (argv, names) = given(&top_args(&protoc, "recorded"));
    // `mid`'s file and the one of `base`'s it imports; not `unused`, not the other library.
    assert_eq!(names, ["b/v1/x", "m/v1/y"], "{argv}");
    assert!(!argv.contains("sets/"), "{argv}");
    // Buck2's dep file: the sets that hold them, so a change to the other does not rerun it.
    let used = || std::fs::read_to_string(d.join("used.txt")).unwrap();
    assert_eq!(used(), "sets/base.binpb\nsets/mid.binpb\n");

    // A source it cannot read for sure (an escape in a string): protoc gets every set.
    std::fs::write(
        d.join("top/t/v1/z.proto"),
        "syntax = \"proto3\";\npackage t.v1;\nimport \"m/v1/y.proto\";\noption java_package = \"a\\x62\";\n",
    )
    .unwrap();
    let (argv, _) = given(&top_args(&protoc, "recorded"));
    assert!(
        argv.contains("--descriptor_set_in=sets/other.binpb:sets/base.binpb:sets/mid.binpb\n"),
        "{argv}"
    );
    assert_eq!(
        used(),
        "sets/other.binpb\nsets/base.binpb\nsets/mid.binpb\n"
    );
}

#[test]
fn a_dep_file_of_sets_it_cannot_tell_is_refused_with_a_hint() {
    let (dir, protoc) = workspace();
    // `--descriptor_set_in FILE` (two arguments): protoreg does not follow that spelling,
    // and a dep file that left the set out would let Buck2 skip a run it needs.
    let out = run_in(
        dir.path(),
        &[
            "protoc",
            "--dep-file",
            "used.txt",
            "--",
            protoc.to_str().unwrap(),
            "--descriptor_set_in",
            "sets/a.binpb",
            "--proto_path=src",
            "a/v1/m.proto",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--dep-file") && text(&out).contains("hint:"));
    assert!(!dir.path().join("used.txt").exists());
}
