//! The language libraries (prelude/proto/languages.bzl) under real Buck2, in a repository
//! that is not this one: Meta's bundled prelude, these rules as the `protobuf` cell, the
//! language toolchains its own. Each language's program builds a message of the examples'
//! `acme.weather.v1.Observation` (which imports `acme.geo.v1` from another package and
//! `google.protobuf.Timestamp`), serializes it, parses it back and prints fields.

mod common;

use common::buck2::{buck2_errors, bundled_prelude_project, repo_root, tree, Loopback, Project};
use common::github::Asset;
use common::http::Route;
use common::ops::PROTOC_REPO;
use common::{fixture, fixtures, pin};
use std::sync::Mutex;

// One Buck2 daemon and loopback registry at a time: the machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Debian's protoc 21.12 (pack_upstream.py), the release of Debian's C++ and Java runtimes.
const PROTOC_21: &str = "protoc-21.12-linux-x86_64.zip";
const PROTOBUF_WHEEL: &str = "protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl";
/// Debian's libprotobuf-java 3.21.12.
const JAVA_RUNTIME: &str = "/usr/share/java/protobuf.jar";
/// What every program prints: the notes, the latitude (from the other package's message) and
/// the seconds of the well-known type, after a round trip through bytes.
const ROUND_TRIP: &str = "sunny 52.5 1700000000";

/// The repository in tests/fixtures/languages (its toolchains, runtimes, language libraries
/// and programs), the examples' geo and weather protos in two packages, these rules vendored
/// as the `protobuf` cell, the loopback registry, protoc 36.2 and 21.12 pinned.
fn consumer(up: &Loopback) -> Project {
    let p = bundled_prelude_project(
        up,
        &format!(
            "  python_runtime = //third-party/protobuf:python\n  cxx_runtime = //third-party/protobuf:cxx\n  \
             java_runtime = //third-party/protobuf:java\n  go_runtime = //third-party/protobuf:go\n  \
             go_runtime_deps = {GO_PROTOREFLECT}, {GO_TIMESTAMPPB}\n  rust_runtime = //third-party/protobuf:rust\n  \
             rust_runtime_deps = //third-party/rust:prost-types\n"
        ),
    );
    p.write("none/BUCK", "");
    let template = repo_root().join("tests/fixtures/languages");
    for (rel, bytes) in tree(&template) {
        let text = String::from_utf8(bytes).unwrap();
        let text = text
            .replace("@PYTHON@", common::buck2::python().to_str().unwrap())
            .replace("@WHEEL@", PROTOBUF_WHEEL);
        p.write(&rel, &text);
    }
    // The shipped catalogue, and protoc-gen-prost declared as a user declares a plugin.
    let catalogue = std::fs::read_to_string(repo_root().join("toolchains/tools.bzl")).unwrap();
    p.write(
        "toolchains/tools.bzl",
        &format!(
            "{catalogue}\nTOOLS[\"protoc-gen-prost\"] = {{\n    \"upstream\": \"url\",\n    \"url\": \"{}/{{version}}/{{asset}}\",\n    \
             \"asset\": \"protoc-gen-prost-{{platform}}\",\n    \"platforms\": [\"linux-x86_64\"],\n    \
             \"binaries\": [\"protoc-gen-prost\"],\n    \"oci_repository\": \"plugins/protoc-gen-prost\",\n}}\n",
            up.gh.server.url("/protoc-gen-prost"),
        ),
    );
    p.write("toolchains/pins.bzl", &test_pins(up));
    let runtimes = p.path().join("third-party/protobuf");
    let wheel = fixtures()
        .parent()
        .unwrap()
        .join("pypi")
        .join(PROTOBUF_WHEEL);
    std::fs::copy(wheel, runtimes.join(PROTOBUF_WHEEL)).unwrap();
    std::fs::copy(JAVA_RUNTIME, runtimes.join("protobuf-java.jar")).unwrap();
    vendor_go_runtime(&p);
    let crates = fixtures().parent().unwrap().join("rust/crates");
    std::fs::create_dir_all(p.path().join("third-party/rust")).unwrap();
    for part in ["BUCK", "vendor"] {
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(crates.join(part))
            .arg(p.path().join("third-party/rust"))
            .status()
            .unwrap();
        assert!(
            copied.success(),
            "{} (scripts/install-deps)",
            crates.display()
        );
    }
    for package in ["acme/geo/v1/geo.proto", "acme/weather/v1/weather.proto"] {
        let proto = repo_root().join("examples/proto").join(package);
        p.write(package, &std::fs::read_to_string(proto).unwrap());
    }
    p
}

const GO_RUNTIME: &str = "google.golang.org/protobuf";
const GO_PROTOREFLECT: &str =
    "//third-party/go/google.golang.org/protobuf/reflect/protoreflect:protoreflect";
const GO_TIMESTAMPPB: &str =
    "//third-party/go/google.golang.org/protobuf/types/known/timestamppb:timestamppb";

/// Debian's Go protobuf runtime (golang-google-protobuf-dev) in `p`'s third-party/go, a
/// `go_library` per package: what generated code, `proto.Marshal` and the well-known
/// types import, and everything they import outside the standard library.
fn vendor_go_runtime(p: &Project) {
    let roots = ["proto", "runtime/protoimpl", "types/known/timestamppb"];
    let out = std::process::Command::new("go")
        .args(["list", "-deps", "-json"])
        .args(roots.iter().map(|r| format!("{GO_RUNTIME}/{r}")))
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOFLAGS", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "go list: {}", common::text(&out));
    let packages: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .map(Result::unwrap)
        .filter(|p: &serde_json::Value| p["Standard"] != true)
        .collect();
    let label = |path: &str| {
        format!(
            "//third-party/go/{path}:{}",
            path.rsplit('/').next().unwrap()
        )
    };
    let vendored: Vec<&str> = packages
        .iter()
        .map(|p| p["ImportPath"].as_str().unwrap())
        .collect();
    for package in &packages {
        let path = package["ImportPath"].as_str().unwrap();
        let dir = std::path::Path::new(package["Dir"].as_str().unwrap());
        // Every non-test file: the prelude applies build constraints itself.
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".go") && !name.ends_with("_test.go") {
                let text = std::fs::read_to_string(dir.join(&name)).unwrap();
                p.write(&format!("third-party/go/{path}/{name}"), &text);
            }
        }
        let deps: Vec<String> = package["Imports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str())
            .filter(|i| vendored.contains(i))
            .map(|i| format!("        \"{}\",\n", label(i)))
            .collect();
        p.write(
            &format!("third-party/go/{path}/BUCK"),
            &format!(
                "go_library(\n    name = \"{}\",\n    package_name = \"{path}\",\n    srcs = glob([\"*.go\"]),\n    deps = [\n{}    ],\n    visibility = [\"PUBLIC\"],\n)\n",
                path.rsplit('/').next().unwrap(),
                deps.concat(),
            ),
        );
    }
}

/// The loopback's fixture pins; protoc 21.12 (Debian's, as an upstream release) beside the
/// default 36.2; protoc-gen-prost 0.5.0 (built from crates.io by install-deps).
fn test_pins(up: &Loopback) -> String {
    use protoreg::maintain::pins::Pin;
    use protoreg::pipeline::extract::Format;
    let zip = fixture(PROTOC_21);
    up.gh.release(
        PROTOC_REPO,
        "v21.12",
        &[Asset::new(PROTOC_21, &zip)],
        false,
        false,
    );
    let mut pins = up.pins();
    let p = pin(&zip);
    pins.insert(
        "protoc",
        "21.12",
        "linux-x86_64",
        Pin {
            format: Format::Zip,
            size: Some(p.size),
            sha256: p.sha256,
            url: up.url(PROTOC_REPO, "v21.12", PROTOC_21),
        },
    );
    pins.provenance.entry("protoc".into()).or_default().insert(
        "21.12".into(),
        "test fixture: Debian's protobuf-compiler 3.21.12 in upstream's layout".into(),
    );
    let plugin = fixtures()
        .parent()
        .unwrap()
        .join("rust/plugin/bin/protoc-gen-prost");
    let path = "/protoc-gen-prost/0.5.0/protoc-gen-prost-linux-x86_64";
    up.gh.server.route(path, Route::File(plugin.clone()));
    let p = pin(&plugin);
    common::buck2::pin_as_default(
        &mut pins,
        "protoc-gen-prost",
        "0.5.0",
        "linux-x86_64",
        Pin {
            format: Format::Raw,
            size: Some(p.size),
            sha256: p.sha256,
            url: up.gh.server.url(path),
        },
        "test fixture: protoc-gen-prost 0.5.0 built from crates.io",
    );
    pins.render()
}

fn run(p: &Project, target: &str) -> String {
    let out = p.buck2(&["run", target]);
    assert!(
        out.status.success(),
        "buck2 run {target}: {}\n{}",
        buck2_errors(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_languages_program_round_trips_a_message_through_its_generated_library() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let p = consumer(&up);
    let python = run(&p, "//apps:weather_py");
    assert_eq!(python.trim(), format!("python: {ROUND_TRIP}"));
    let cxx = run(&p, "//apps:weather_cc");
    assert_eq!(cxx.trim(), format!("cxx: {ROUND_TRIP}"));
    let java = run(&p, "//apps:weather_java");
    assert_eq!(java.trim(), format!("java: {ROUND_TRIP}"));
    let go = run(&p, "//apps:weather_go");
    assert_eq!(go.trim(), format!("go: {ROUND_TRIP}"));
    let rust = run(&p, "//apps:weather_rs");
    assert_eq!(rust.trim(), format!("rust: {ROUND_TRIP}"));

    // gRPC code where the language has a pinned plugin: Go's and Java's stubs are generated
    // beside the messages (their gRPC runtimes are not on this machine to compile them).
    p.write("grpc/BUCK", GRPC_BUCK);
    let go = every_output(&p, "//grpc:weather_go_gencode");
    let names: Vec<_> = go
        .iter()
        .map(|f| f.file_name().unwrap_or_else(|| panic!("{go:?}")).to_owned())
        .collect();
    assert_eq!(names, ["weather.pb.go", "weather_grpc.pb.go"], "{go:?}");
    let grpc = std::fs::read_to_string(&go[1]).unwrap();
    assert!(
        grpc.contains("func RegisterWeatherServiceServer("),
        "{grpc}"
    );
    let java = every_output(&p, "//grpc:weather_java_gencode");
    assert_eq!(java.len(), 2, "{java:?}");
    let stubs = zip_entries(&java[0]);
    assert!(
        stubs.iter().any(|e| e.ends_with("WeatherServiceGrpc.java")),
        "{stubs:?}"
    );
}

const GRPC_BUCK: &str = r#"load("@protobuf//proto:languages.bzl", "go_proto_library", "java_proto_library")

go_proto_library(
    name = "weather_go",
    proto = "//acme/weather/v1:weather",
    importpath = "example.com/acme/gen/acme/weather/v1",
    deps = ["//acme/geo/v1:geo_go"],
    grpc = True,
    protoc = "toolchains//:protoc-21.12",
)

java_proto_library(
    name = "weather_java",
    proto = "//acme/weather/v1:weather",
    deps = ["//acme/geo/v1:geo_java"],
    grpc = True,
    protoc = "toolchains//:protoc-21.12",
)
"#;

/// Every file `target` (in package `//grpc`) wrote, once built, by path: Buck2 prints no
/// path for a target of several outputs, so they are read from its output directory.
fn every_output(p: &Project, target: &str) -> Vec<std::path::PathBuf> {
    p.ok(&["build", target]);
    let name = target
        .rsplit(':')
        .next()
        .unwrap()
        .split('[')
        .next()
        .unwrap();
    let mut found = vec![];
    let mut dirs = vec![p.path().join("buck-out/v2")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .to_string_lossy()
                .contains(&format!("/grpc/__{name}__/"))
                && !path.to_string_lossy().ends_with("_args.txt")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The entries of the zip at `path`.
fn zip_entries(path: &std::path::Path) -> Vec<String> {
    let zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    zip.file_names().map(|n| n.unwrap().into_owned()).collect()
}

const BAD_BUCK: &str = r#"load("@protobuf//proto:defs.bzl", "proto_runtime")
load("@protobuf//proto:languages.bzl", "cxx_proto_library", "python_proto_library")

# protoc 36.2's C++ code, and the C++ runtime of release 21.12.
cxx_proto_library(name = "geo_cc_36", proto = "//acme/geo/v1:geo")

# protoc 36.2's Python code, and a runtime of an older release.
proto_runtime(name = "python_6", language = "python", version = "6.33.0", library = "//third-party/protobuf:protobuf-whl")

python_proto_library(name = "geo_py_old", proto = "//acme/geo/v1:geo", runtime = ":python_6")

# Java's runtime for Python code.
python_proto_library(name = "geo_py_java", proto = "//acme/geo/v1:geo", runtime = "//third-party/protobuf:java")

# weather imports geo, whose Python code no dep has.
python_proto_library(name = "weather_py_alone", proto = "//acme/weather/v1:weather")

proto_runtime(name = "python_x", language = "python", version = "seven", library = "//third-party/protobuf:protobuf-whl")
"#;

/// What `buck2 build TARGET` prints when it fails, which it must.
fn analysis_error(p: &Project, target: &str, extra: &[&str]) -> String {
    let mut args = vec!["build", target];
    args.extend_from_slice(extra);
    let out = p.buck2(&args);
    assert!(!out.status.success(), "{target} built");
    buck2_errors(&out)
}

#[test]
fn a_runtime_that_cannot_run_the_code_or_a_missing_import_is_an_analysis_error() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let p = consumer(&up);
    p.write("bad/BUCK", BAD_BUCK);
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "//bad:geo_cc_36",
            &[],
            &[
                "root//bad:geo_cc_36: C++ code from protoc 36.2 cannot use the protobuf runtime root//third-party/protobuf:cxx 3.21.12",
                "needs runtime N.36.2 exactly, and 3.21.12 is release 21.12",
                "protoreg bump protoc VERSION",
                "[protobuf] cxx_runtime",
            ],
        ),
        (
            "//bad:geo_py_old",
            &[],
            &[
                "Python code from protoc 36.2 cannot use the protobuf runtime root//bad:python_6 6.33.0",
                "never runs on an older runtime: protoc 36.2 needs release 36.2 or later",
            ],
        ),
        (
            "//bad:geo_py_java",
            &[],
            &["root//third-party/protobuf:java is the Java runtime; a Python library needs the Python one"],
        ),
        (
            "//bad:weather_py_alone",
            &[],
            &[
                "root//bad:weather_py_alone: root//acme/weather/v1:weather imports root//acme/geo/v1:geo",
                "add one to `deps`",
                "python_proto_library(name = \"geo_py\", proto = \"root//acme/geo/v1:geo\")",
            ],
        ),
        (
            "//bad:python_x",
            &[],
            &["version `seven` is not the runtime's MAJOR.MINOR.PATCH (e.g. 7.36.2)"],
        ),
        (
            "//acme/geo/v1:geo_py",
            &["-c", "protobuf.python_runtime="],
            &[
                "geo_py: no Python protobuf runtime",
                "`[protobuf] python_runtime = //third-party/protobuf:python`",
            ],
        ),
    ];
    for (target, extra, wants) in cases {
        let error = analysis_error(&p, target, extra);
        for want in *wants {
            assert!(error.contains(want), "{target}: no `{want}` in:\n{error}");
        }
    }
}
