//! Real Buck2 (`../shared/tools/buck2/buck2`, or `$BUCK2`) on this repository.
//!
//! - The repository as committed (nothing downloaded, nothing built): every package loads,
//!   and everything `//...` and `toolchains//...` name is analyzed for each of the five
//!   target platforms with the host's executor, then with each canonical platform as the
//!   preferred executor (so its pins and command lines are Buck2's own analysis).
//! - A scratch copy with fixture pins (the real protoc, buf and Go plugins, repacked as
//!   upstream ships them, on a loopback upstream) published to a loopback `docker-registry`:
//!   `buck2 build //...` and `buck2 test //...` pass in both fetch modes, and the outputs are
//!   the real tools' (descriptor sets decoded, Python round-tripped, Go, gRPC, C++ and ES).
//! - The rules as a `protobuf` cell beside Buck2's bundled prelude.
//!
//! Each project runs its own Buck2 daemon, killed when the test ends (pass or fail).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Mutex;

use common::buck2::*;
use common::*;

/// One Buck2 project at a time: each daemon takes a core and a few hundred MiB.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const PLATFORMS: [&str; 5] = [
    "linux-x86_64",
    "linux-aarch64",
    "darwin-x86_64",
    "darwin-arm64",
    "windows-x86_64",
];

/// Analyzes (no action runs) every target `//...` and `toolchains//...` name that is
/// compatible with `platform`: `audit providers` takes literal targets, so `cquery` lists
/// them first (patterns skip incompatible targets there). Returns the targets analyzed.
fn analyze_everything(p: &Project, platform: &str, extra: &[&str]) -> BTreeSet<String> {
    let tp = format!("prelude//platforms:{platform}");
    let mut args = vec![
        "cquery",
        "set(//... toolchains//...)",
        "--target-platforms",
        &tp,
    ];
    args.extend_from_slice(extra);
    let listing = p.ok(&args);
    let marker = format!("({tp}#");
    let targets: BTreeSet<String> = listing
        .lines()
        .filter(|l| l.contains(&marker))
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect();
    let mut args = vec!["audit", "providers", "--target-platforms", &tp];
    args.extend_from_slice(extra);
    args.extend(targets.iter().map(String::as_str));
    p.ok(&args);
    targets
}

#[test]
fn the_repository_as_committed_loads_and_analyzes_for_every_platform_and_executor() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = Project::as_committed();

    // Every package loads (the harness's deliberately broken fixtures are ignored).
    let all = p.ok(&["uquery", "set(//... toolchains//...)"]);
    for t in [
        "root//:examples",
        "root//:lint_broken_example",
        "root//examples/proto/acme/weather/v1:weather_go",
        "toolchains//:protoc",
        "toolchains//:buf",
        "toolchains//:protoc-gen-go",
        "toolchains//:protoc-gen-go-grpc",
    ] {
        assert!(all.lines().any(|l| l == t), "uquery lacks {t}:\n{all}");
    }

    // What must be analyzed for every target platform, and what only off Windows (no Windows
    // pin for protoc-gen-go).
    let everywhere = [
        "root//:examples",
        "root//examples/proto/acme/weather/v1:weather_builtin",
        "root//examples/proto/acme/weather/v1:weather_lint",
        "root//examples/proto/acme/weather/v1:weather_breaking",
        "root//examples/proto/acme/weather/v1:weather_format",
        // The expected-findings test: protoreg checks buf's report, no shell.
        "root//:lint_broken_example",
        // ES on the pinned node: bin/node, and on Windows its zip's node.exe.
        "root//examples/proto/acme/weather/v1:weather_es",
        "toolchains//:protoc-gen-es",
        "toolchains//:node",
        "toolchains//:protoc",
        "toolchains//:buf",
    ];
    let off_windows = ["toolchains//:protoc-gen-go"];
    for platform in PLATFORMS {
        let analyzed = analyze_everything(&p, platform, &[]);
        for t in everywhere {
            assert!(
                analyzed.contains(t),
                "{t} was not analyzed for {platform}: {analyzed:?}"
            );
        }
        for t in off_windows {
            assert_eq!(
                analyzed.contains(t),
                !platform.starts_with("windows"),
                "{t} for {platform}: {analyzed:?}"
            );
        }
        // protoc-gen-go-grpc has no public digest, so no pin: what needs it is skipped.
        assert!(
            !analyzed.contains("root//examples/proto/acme/weather/v1:weather_go"),
            "weather_go needs the unpinned protoc-gen-go-grpc, yet was analyzed"
        );
    }

    // Named explicitly, a target needing the unpinned tool says which key is unsatisfied, and
    // the unpinned toolchain carries the command that pins it.
    let weather_go = p.buck2(&["build", "//examples/proto/acme/weather/v1:weather_go"]);
    let why = buck2_errors(&weather_go);
    assert!(
        !weather_go.status.success()
            && why.contains("toolchains//:protoc-gen-go-grpc-on-linux-x86_64 unsatisfied"),
        "{why}"
    );
    let message = p.ok(&[
        "uquery",
        "toolchains//:protoc-gen-go-grpc",
        "--output-attribute",
        "message",
    ]);
    assert!(
        message.contains("run `protoreg bump protoc-gen-go-grpc VERSION`"),
        "{message}"
    );

    // Each canonical platform as the machine running Buck2 would register it (its executor
    // alone, target platform itself): what has no pin there is skipped, nothing fails.
    for platform in PLATFORMS {
        let only = format!("build.execution_platforms=prelude//platforms:exec-{platform}");
        let analyzed = analyze_everything(&p, platform, &["-c", &only]);
        for t in [
            "root//:examples",
            "root//examples/proto/acme/weather/v1:weather_builtin",
            "toolchains//:protoc",
            "toolchains//:buf",
        ] {
            assert!(
                analyzed.contains(t),
                "{t} not analyzed on a {platform} machine"
            );
        }
        if platform.starts_with("windows") {
            // No Windows pin for protoc-gen-go.
            assert!(!analyzed.contains("toolchains//:protoc-gen-go"));
            // ES runs on Windows' own node.exe (its zip's layout: at the top); the
            // expected-findings test is checked by protoreg.
            for t in [
                "toolchains//:protoc-gen-es",
                "root//examples/proto/acme/weather/v1:weather_es",
                "root//:lint_broken_example",
            ] {
                assert!(analyzed.contains(t), "{t} not analyzed on Windows");
            }
        }
    }

    // Each canonical platform as the preferred executor: its own pins, its own command lines
    // (a tool it has no pin for falls back to the host).
    let pins = protoreg::maintain::pins::Pins::load(&p.path().join("toolchains/pins.bzl")).unwrap();
    let host = host_platform();
    for exec in PLATFORMS {
        let registration = format!("build.execution_platforms=prelude//platforms:execution-{exec}");
        let extra = ["-c", registration.as_str()];
        let analyzed = analyze_everything(&p, host, &extra);
        for t in everywhere.iter().chain(&off_windows) {
            assert!(
                analyzed.contains(*t),
                "{t} was not analyzed with executor {exec}"
            );
        }
        // The toolchain's protoc is that executor's, with that platform's pin.
        let version = &pins.defaults["protoc"];
        let deps = p.ok(&[
            "cquery",
            "deps(toolchains//:protoc)",
            "--target-platforms",
            &format!("prelude//platforms:{host}"),
            "-c",
            &registration,
        ]);
        let want = format!("toolchains//:protoc-{version}-{exec} (prelude//platforms:exec-{exec}#");
        assert!(
            deps.contains(&want),
            "executor {exec}: no {want} in\n{deps}"
        );
        let actions = p.ok(&[
            "aquery",
            &format!("toolchains//:protoc-{version}-{exec}"),
            "--target-platforms",
            &format!("prelude//platforms:{exec}"),
            "-c",
            &registration,
            "--output-attribute",
            "cmd",
        ]);
        let sha = pins.pins["protoc"][version.as_str()][exec]
            .sha256
            .to_string();
        assert!(
            actions.contains(&sha),
            "executor {exec}: the protoc fetch does not carry its pin {sha}:\n{actions}"
        );
        // Code generation: the same command line on every executor, `protoreg protoc`, with
        // no shell.
        let codegen = command_lines(
            &p,
            "root//examples/proto/acme/weather/v1:weather_builtin",
            host,
            &registration,
        );
        assert!(
            codegen.contains("__protoreg__")
                && codegen.contains("protoreg, protoc, --prune-descriptor-sets, --, ")
                && !codegen.contains("/bin/sh")
                && !codegen.contains("cmd.exe"),
            "executor {exec}: codegen is not run by `protoreg protoc`:\n{codegen}"
        );
        // ES: protoreg stands in for the script plugin, run by that executor's node.
        let es = command_lines(
            &p,
            "root//examples/proto/acme/weather/v1:weather_es",
            host,
            &registration,
        );
        let node = if exec.starts_with("windows") {
            "node.exe,"
        } else {
            "/bin/node,"
        };
        assert!(
            es.contains("--plugin-command")
                && es.contains(&format!("__node-{}-{exec}__", pins.defaults["node"]))
                && es.contains(node)
                && !es.contains("/bin/sh"),
            "executor {exec}: ES is not run by its node ({node}):\n{es}"
        );
    }

    // Remote executors take their use case from the root .buckconfig.
    p.edit(
        ".buckconfig",
        "remote_execution_use_case = buck2-default",
        "remote_execution_use_case = from-root-config",
    );
    let executor = p.ok(&[
        "audit",
        "providers",
        "prelude//platforms:exec-windows-x86_64",
    ]);
    assert!(executor.contains("from-root-config"), "{executor}");
}

#[test]
fn a_catalogue_entry_without_what_the_rules_need_is_an_analysis_error_naming_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = Project::as_committed();
    p.edit(
        "toolchains/tools.bzl",
        "        \"binaries\": [\"protoc-gen-grpc-java\"],\n",
        "",
    );
    let out = p.buck2(&["uquery", "toolchains//..."]);
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("toolchains/tools.bzl: TOOLS[\"protoc-gen-grpc-java\"] has no `binaries`"),
        "{err}"
    );
}

/// The files of a FileDescriptorSet, each with its messages, a line each.
fn set_listing(set: &std::path::Path) -> String {
    let script = "import sys\nfrom google.protobuf import descriptor_pb2\ns = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], 'rb').read())\nfor f in s.file:\n    print(f.name, ' '.join(m.name for m in f.message_type))\n";
    let listing = Command::new(python())
        .args(["-c", script])
        .arg(set)
        .output()
        .unwrap();
    assert!(listing.status.success(), "{}", text(&listing));
    String::from_utf8_lossy(&listing.stdout).to_string()
}

/// What the examples generate, checked as the harness checks it: the library's descriptor set
/// holds its own file, its image that and every import, the Python imports and round-trips,
/// Go, gRPC and C++ equal their goldens, and protoc-gen-es wrote TypeScript.
fn check_example_outputs(p: &Project, extra: &[&str]) {
    let weather = "//examples/proto/acme/weather/v1";
    let own = outputs(p, &format!("{weather}:weather"), extra);
    let listing = set_listing(&own[0]);
    assert!(
        listing.lines().count() == 1 && listing.starts_with("acme/weather/v1/weather.proto "),
        "the library's own set holds more than its file:\n{listing}"
    );
    let image = outputs(p, &format!("{weather}:weather[image]"), extra);
    let listing = set_listing(&image[0]);
    for want in [
        "acme/geo/v1/geo.proto LatLng",
        "google/protobuf/timestamp.proto Timestamp",
        "acme/weather/v1/weather.proto Observation",
    ] {
        assert!(
            listing.contains(want),
            "descriptor set lacks {want}:\n{listing}"
        );
    }

    // One directory per generator, each a sub-target.
    let dir = |sub: &str| {
        let target = format!("{weather}:{sub}");
        let out = outputs(p, &target, extra);
        assert!(out.len() == 1 && out[0].is_dir(), "{target}: {out:?}");
        out[0].clone()
    };
    assert_matches_golden("cpp", &dir("weather_builtin[cpp]"));
    let roundtrip = "from acme.weather.v1 import weather_pb2\nfrom acme.geo.v1 import geo_pb2\no = weather_pb2.Observation(location=geo_pb2.LatLng(latitude=52.5, longitude=13.4))\nassert weather_pb2.Observation.FromString(o.SerializeToString()) == o\nprint(o.location.latitude)\n";
    let run = Command::new(python())
        .args(["-c", roundtrip])
        .env("PYTHONPATH", dir("weather_builtin[python]"))
        .output()
        .unwrap();
    assert!(run.status.success(), "python round trip: {}", text(&run));
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "52.5");
    assert_matches_golden("go", &dir("weather_go[go]"));
    // The declared plugin: Java gRPC stubs from its real binary.
    let java = std::fs::read_to_string(
        dir("weather_grpc_java[grpc-java]").join("acme/weather/v1/WeatherServiceGrpc.java"),
    )
    .unwrap();
    assert!(
        java.contains("public final class WeatherServiceGrpc"),
        "{java}"
    );
    assert_matches_golden("go-grpc", &dir("weather_go[go-grpc]"));

    let ts = std::fs::read_to_string(dir("weather_es[es]").join("acme/weather/v1/weather_pb.ts"))
        .unwrap();
    assert!(
        ts.contains("export type Observation = Message<\"acme.weather.v1.Observation\">"),
        "{ts}"
    );
}

/// `buck2 test //...`: passes, and ran every test of the examples (none skipped).
fn run_tests(p: &Project, extra: &[&str]) -> String {
    let mut args = vec!["test", "//..."];
    args.extend_from_slice(extra);
    let out = p.buck2(&args);
    let report = strip_ansi(&buck2_errors(&out));
    assert!(out.status.success(), "buck2 test //... failed:\n{report}");
    // lint, format and breaking on both examples, and the broken example's expected findings.
    assert!(
        report.contains("Pass 7. Fail 0."),
        "expected the seven buf tests to pass:\n{report}"
    );
    report
}

#[test]
fn a_baseline_in_the_registry_fails_a_breaking_change_and_passes_once_reverted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let p = Project::as_committed();
    up.configure(&p);
    // Release v1.0.0: the library's image, pushed; protoreg prints the target.
    let weather = "//examples/proto/acme/weather/v1";
    let set = outputs(&p, &format!("{weather}:weather[image]"), &[]);
    let o = up.ws.run(&[
        "baseline",
        "push",
        set[0].to_str().unwrap(),
        "--repository",
        "images/acme-weather",
        "--tag",
        "v1.0.0",
        "--name",
        "weather_released",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let pinned = String::from_utf8(o.stdout).unwrap();
    let buck = p.path().join("examples/proto/acme/weather/v1/BUCK");
    let mut text_of_buck = std::fs::read_to_string(&buck).unwrap();
    text_of_buck.push('\n');
    text_of_buck.push_str(&pinned);
    text_of_buck.push_str(
        "\nbuf_breaking_test(\n    name = \"weather_breaking_released\",\n    proto = \":weather\",\n    against = \":weather_released\",\n    config = \"//examples/proto:buf.yaml\",\n)\n",
    );
    std::fs::write(&buck, text_of_buck).unwrap();
    let test = format!("{weather}:weather_breaking_released");
    let native = ["-c", "protobuf.fetch_mode=native"];
    for extra in [&[][..], &native[..]] {
        let mut args = vec!["test", test.as_str()];
        args.extend_from_slice(extra);
        let out = p.buck2(&args);
        assert!(out.status.success(), "{extra:?}: {}", text(&out));
    }
    // A field changes type: buf's message, from the registry's baseline.
    let proto = "examples/proto/acme/weather/v1/weather.proto";
    p.edit(
        proto,
        "double temperature_celsius = 3;",
        "string temperature_celsius = 3;",
    );
    let out = p.buck2(&["test", &test]);
    let report = strip_ansi(&text(&out));
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("changed type from \"double\" to \"string\""),
        "{report}"
    );
    // Reverted: the API is v1.0.0's again.
    p.edit(
        proto,
        "string temperature_celsius = 3;",
        "double temperature_celsius = 3;",
    );
    let out = p.buck2(&["test", &test]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn with_fixture_pins_everything_builds_and_tests_in_both_fetch_modes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let p = Project::as_committed();
    up.configure(&p);
    copy_node_modules(&p);

    // Helper mode: every tool comes from the registry by digest, none from upstream.
    let before = up.protoc_downloads();
    p.ok(&["build", "//...", "toolchains//..."]);
    let tests = run_tests(&p, &[]);
    assert_eq!(
        up.protoc_downloads(),
        before,
        "helper mode went upstream:\n{tests}"
    );
    check_example_outputs(&p, &[]);

    // A buf.yaml naming the BSR module googleapis: the buf tests read images, whose imports
    // the pinned archive already holds, so buf never resolves `deps` (buf.build is not
    // reachable here: a lookup would fail the tests).
    p.edit(
        "examples/proto/buf.yaml",
        "version: v2\n",
        "version: v2\ndeps:\n  - buf.build/googleapis/googleapis\n",
    );
    let out = p.buck2(&["test", "//examples/proto/acme/alerts/v1:"]);
    let report = strip_ansi(&text(&out));
    assert!(
        out.status.success() && report.contains("Pass 3. Fail 0."),
        "{report}"
    );
    p.edit(
        "examples/proto/buf.yaml",
        "version: v2\ndeps:\n  - buf.build/googleapis/googleapis\n",
        "version: v2\n",
    );

    // protoc-gen-es's lock file is an input of the ES action: moving the pin regenerates.
    let es = "//examples/proto/acme/weather/v1:weather_es";
    let lock = p.path().join("examples/es/package-lock.json");
    let mut lock_text = std::fs::read_to_string(&lock).unwrap();
    lock_text.push('\n');
    std::fs::write(&lock, lock_text).unwrap();
    p.ok(&["build", es]);
    let ran = p.ok(&["log", "what-ran"]);
    assert!(
        ran.contains("protoc_plugin_gen") && ran.contains("weather_es"),
        "changing the ES plugin's lock file did not rerun its action:\n{ran}"
    );

    // Native mode: Buck2 downloads the upstream URLs itself, protoreg only unpacks.
    let native = ["-c", "protobuf.fetch_mode=native"];
    let mut args = vec!["build", "//...", "toolchains//..."];
    args.extend_from_slice(&native);
    p.ok(&args);
    run_tests(&p, &native);
    assert!(
        up.protoc_downloads() > before,
        "native mode did not download protoc from the upstream URL"
    );
    check_example_outputs(&p, &native);
}

#[test]
fn the_rules_work_as_a_protobuf_cell_beside_the_bundled_prelude() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let p = bundled_prelude_project(&up, "");
    p.write(
        "toolchains/BUCK",
        "load(\"@prelude//toolchains:demo.bzl\", \"system_demo_toolchains\")\n\
         load(\"@protobuf//proto:toolchains.bzl\", \"protobuf_toolchains\")\n\
         load(\":pins.bzl\", \"DEFAULTS\", \"PINS\", \"PLATFORMS\")\n\
         load(\":tools.bzl\", \"TOOLS\")\n\n\
         system_demo_toolchains()\n\n\
         protobuf_toolchains(pins = PINS, tools = TOOLS, defaults = DEFAULTS, platforms = PLATFORMS)\n",
    );
    p.write("toolchains/pins.bzl", &up.pins_bzl());
    // The catalogue, copied as the README tells a user to.
    p.write(
        "toolchains/tools.bzl",
        &std::fs::read_to_string(repo_root().join("toolchains/tools.bzl")).unwrap(),
    );
    p.write(
        "api/BUCK",
        "load(\"@protobuf//proto:defs.bzl\", \"buf_lint_test\", \"proto_library\")\n\n\
         proto_library(\n    name = \"api\",\n    srcs = [\"acme/thing/v1/thing.proto\"],\n    strip_import_prefix = \"/api\",\n)\n\n\
         buf_lint_test(\n    name = \"lint\",\n    proto = \":api\",\n)\n",
    );
    p.write(
        "api/acme/thing/v1/thing.proto",
        "syntax = \"proto3\";\n\npackage acme.thing.v1;\n\nimport \"google/protobuf/timestamp.proto\";\n\n// A thing.\nmessage Thing {\n  // Its name.\n  string name = 1;\n  // When it was made.\n  google.protobuf.Timestamp made_at = 2;\n}\n",
    );
    let set = outputs(&p, "//api:api", &[]);
    assert!(std::fs::metadata(&set[0]).unwrap().len() > 0);
    let tests = p.ok(&["test", "//api:lint"]);
    assert!(!tests.contains("FAIL"), "{tests}");
}

#[test]
fn an_unprivileged_user_builds_and_tests_the_examples_in_helper_mode() {
    // Buck2 users are not root: Buck2, protoreg and protoreg's cache all run as `nobody`
    // when the suite runs as root (as the current user otherwise).
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let mut p = Project::as_committed();
    up.configure(&p);
    let user = common::user::User::unprivileged();
    p.edit(
        ".buckconfig",
        &format!("protoreg = {}", env!("CARGO_BIN_EXE_protoreg")),
        &format!("protoreg = {}", user.bin().display()),
    );
    copy_node_modules(&p);
    let uid = user.uid;
    p.run_as(user);

    p.ok(&["build", "//...", "toolchains//..."]);
    run_tests(&p, &[]);
    check_example_outputs(&p, &[]);
    // The cache is the user's: made by them, through every step of a cold materialize.
    use std::os::unix::fs::MetadataExt;
    let blobs = p.path().join(".protoreg-cache/blobs-v1");
    assert_eq!(std::fs::metadata(&blobs).unwrap().uid(), uid);
}

#[test]
fn protoreg_can_be_a_program_on_path_as_cargo_install_leaves_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let mut p = Project::as_committed();
    up.configure(&p);
    // `cargo install` puts `protoreg` in a directory on PATH: here, a directory of its own.
    let bin = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_protoreg"), bin.path().join("protoreg")).unwrap();
    p.path_first(bin.path());
    p.edit(
        ".buckconfig",
        &format!("protoreg = {}", env!("CARGO_BIN_EXE_protoreg")),
        "protoreg = protoreg",
    );
    let set = outputs(&p, "//examples/proto/acme/weather/v1:weather", &[]);
    assert!(std::fs::metadata(&set[0]).unwrap().len() > 0);
    let ran = p.ok(&["log", "what-ran"]);
    assert!(ran.contains("protoreg_copy"), "{ran}");
    // Copied from PATH into buck-out: the same bytes.
    let copies = p.ok(&["build", "toolchains//:protoreg", "--show-full-output"]);
    let copy = copies.split_whitespace().last().unwrap();
    assert_eq!(
        std::fs::read(copy).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_protoreg")).unwrap()
    );
}

#[test]
fn a_repository_made_with_protoreg_init_uses_the_shipped_pins_from_a_git_cell() {
    // A Buck2 user's new repository, made by `protoreg init`: Meta's bundled prelude, these
    // rules as a git cell (a bare origin made from the repository as committed, at its
    // HEAD), the cell's own pins.bzl and tools.bzl loaded as they are, and the user's pins
    // (here the fixture pins, as `protoreg bump` would write them) merged over them: no copy
    // of the shipped files.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let user = common::user::User::unprivileged();
    let mut p = consumer_by_init(
        std::path::Path::new(env!("CARGO_BIN_EXE_protoreg")),
        &up,
        user.bin().to_str().unwrap(),
    );
    p.run_as(user);

    // The shipped pins are there (a version only they have), the user's win where both have
    // a version (their protoc 36.2 is the fixture's bytes), and their defaults win.
    let protoc = p.ok(&[
        "uquery",
        "toolchains//:protoc-35.1-linux-x86_64",
        "--output-attribute",
        "sha256",
    ]);
    assert!(
        protoc.contains("6930ebf62bd4ea607b98fff052596c6ee564b9835b4ce172c75a3f53ae9d91b7"),
        "{protoc}"
    );
    let fixture = common::pin(&common::fixture("protoc-36.2-linux-x86_64.zip"))
        .sha256
        .hex()
        .to_string();
    let ours = p.ok(&[
        "uquery",
        "toolchains//:protoc-36.2-linux-x86_64",
        "--output-attribute",
        "sha256",
    ]);
    assert!(ours.contains(&fixture), "{ours}");
    build_and_test_thing_api(&p);
}

/// The command lines of `target`'s actions, for target platform `host` with `registration`
/// (a `build.execution_platforms=…` setting).
fn command_lines(p: &Project, target: &str, host: &str, registration: &str) -> String {
    p.ok(&[
        "aquery",
        target,
        "--target-platforms",
        &format!("prelude//platforms:{host}"),
        "-c",
        registration,
        "--output-attribute",
        "cmd",
    ])
}
