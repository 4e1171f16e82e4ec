//! The language libraries (prelude/proto/languages.bzl) under real Buck2, in a repository
//! that is not this one: Meta's bundled prelude, these rules as the `protobuf` cell, the
//! language toolchains its own. Each language's program builds a message of the examples'
//! `acme.weather.v1.Observation` (which imports `acme.geo.v1` from another package and
//! `google.protobuf.Timestamp`), serializes it, parses it back and prints fields.

mod common;

use common::buck2::{
    buck2_errors, bundled_prelude_buckconfig, repo_root, vendor_rules, Loopback, Project,
};
use common::github::Asset;
use common::ops::{NS, PROTOC_REPO};
use common::{fixture, fixtures, pin};
use std::sync::Mutex;

// One Buck2 daemon and loopback registry at a time: the machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Debian's protoc 21.12 (pack_upstream.py), the release of Debian's C++ and Java runtimes.
const PROTOC_21: &str = "protoc-21.12-linux-x86_64.zip";
const PROTOBUF_WHEEL: &str = "protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl";
/// What every program prints: the notes, the latitude (from the other package's message) and
/// the seconds of the well-known type, after a round trip through bytes.
const ROUND_TRIP: &str = "sunny 52.5 1700000000";

const TOOLCHAINS_BUCK: &str = r#"load("@prelude//toolchains:cxx.bzl", "system_cxx_toolchain")
load("@prelude//toolchains:genrule.bzl", "system_genrule_toolchain")
load("@prelude//toolchains:python.bzl", "system_python_bootstrap_toolchain", "system_python_toolchain")
load("@protobuf//proto:toolchains.bzl", "protobuf_toolchains")
load(":pins.bzl", "DEFAULTS", "PINS", "PLATFORMS")
load(":tools.bzl", "TOOLS")

# The language toolchains, the repository's own (system_demo_toolchains() would download
# CPython; the prelude's C++ toolchain defaults to clang, not installed here).
system_cxx_toolchain(
    name = "cxx",
    compiler = "gcc",
    compiler_type = "gcc",
    cxx_compiler = "g++",
    linker = "g++",
    visibility = ["PUBLIC"],
)

system_python_toolchain(name = "python", interpreter = "PYTHON", visibility = ["PUBLIC"])

system_python_bootstrap_toolchain(name = "python_bootstrap", visibility = ["PUBLIC"])

system_genrule_toolchain(name = "genrule", visibility = ["PUBLIC"])

protobuf_toolchains(pins = PINS, tools = TOOLS, defaults = DEFAULTS, platforms = PLATFORMS)
"#;

const RUNTIMES_BUCK: &str = r#"load("@protobuf//proto:defs.bzl", "proto_runtime")

# Python: PyPI's protobuf, for protoc 36.2's code.
prebuilt_python_library(
    name = "protobuf-whl",
    binary_src = "WHEEL",
)

proto_runtime(
    name = "python",
    language = "python",
    version = "7.36.2",
    library = ":protobuf-whl",
    visibility = ["PUBLIC"],
)

# C++: Debian's libprotobuf-dev (headers in /usr/include), for protoc 21.12's code.
cxx_library(
    name = "libprotobuf",
    exported_linker_flags = ["-lprotobuf", "-pthread"],
)

proto_runtime(
    name = "cxx",
    language = "cxx",
    version = "3.21.12",
    library = ":libprotobuf",
    visibility = ["PUBLIC"],
)
"#;

const GEO_BUCK: &str = r#"load("@protobuf//proto:defs.bzl", "cxx_proto_library", "proto_library", "python_proto_library")

proto_library(
    name = "geo",
    srcs = ["geo.proto"],
    strip_import_prefix = "/",
    visibility = ["PUBLIC"],
)

python_proto_library(name = "geo_py", proto = ":geo", visibility = ["PUBLIC"])

cxx_proto_library(name = "geo_cc", proto = ":geo", protoc = "toolchains//:protoc-21.12", visibility = ["PUBLIC"])
"#;

const WEATHER_BUCK: &str = r#"load("@protobuf//proto:defs.bzl", "cxx_proto_library", "proto_library", "python_proto_library")

proto_library(
    name = "weather",
    srcs = ["weather.proto"],
    deps = ["//acme/geo/v1:geo"],
    strip_import_prefix = "/",
    visibility = ["PUBLIC"],
)

python_proto_library(
    name = "weather_py",
    proto = ":weather",
    deps = ["//acme/geo/v1:geo_py"],
    visibility = ["PUBLIC"],
)

cxx_proto_library(
    name = "weather_cc",
    proto = ":weather",
    deps = ["//acme/geo/v1:geo_cc"],
    protoc = "toolchains//:protoc-21.12",
    visibility = ["PUBLIC"],
)
"#;

const APPS_BUCK: &str = r#"python_binary(
    name = "weather_py",
    main = "weather.py",
    deps = ["//acme/weather/v1:weather_py"],
)

cxx_binary(
    name = "weather_cc",
    srcs = ["weather.cc"],
    deps = ["//acme/weather/v1:weather_cc"],
)
"#;

const WEATHER_PY: &str = r#"from acme.geo.v1 import geo_pb2
from acme.weather.v1 import weather_pb2

observation = weather_pb2.Observation(
    location=geo_pb2.LatLng(latitude=52.5, longitude=13.4),
    temperature_celsius=21.5,
    notes="sunny",
)
observation.observed_at.FromSeconds(1700000000)
data = observation.SerializeToString()
back = weather_pb2.Observation.FromString(data)
print("python:", back.notes, back.location.latitude, back.observed_at.seconds)
"#;

const WEATHER_CC: &str = r#"#include <iostream>
#include <string>

#include "acme/weather/v1/weather.pb.h"

int main() {
  acme::weather::v1::Observation observation;
  observation.mutable_location()->set_latitude(52.5);
  observation.mutable_location()->set_longitude(13.4);
  observation.mutable_observed_at()->set_seconds(1700000000);
  observation.set_temperature_celsius(21.5);
  observation.set_notes("sunny");
  std::string data;
  if (!observation.SerializeToString(&data)) return 1;
  acme::weather::v1::Observation back;
  if (!back.ParseFromString(data)) return 1;
  std::cout << "cxx: " << back.notes() << " " << back.location().latitude() << " "
            << back.observed_at().seconds() << std::endl;
  return 0;
}
"#;

/// The repository: the examples' geo and weather protos in two packages, a language library
/// of each per language, and a program per language.
fn consumer(up: &Loopback) -> Project {
    let p = Project::empty();
    vendor_rules(&p);
    p.write(
        ".buckconfig",
        &bundled_prelude_buckconfig(
            "prelude//platforms:default",
            &format!(
                "[protobuf]\n  registry = {}/{NS}\n  plain_http = true\n  cache_dir = {}\n  protoreg = {}\n  \
                 python_runtime = //third-party/protobuf:python\n  cxx_runtime = //third-party/protobuf:cxx\n",
                up.reg.host,
                p.path().join(".protoreg-cache").display(),
                env!("CARGO_BIN_EXE_protoreg"),
            ),
        ),
    );
    p.write("none/BUCK", "");
    let python = common::buck2::python();
    p.write(
        "toolchains/BUCK",
        &TOOLCHAINS_BUCK.replace("PYTHON", python.to_str().unwrap()),
    );
    p.write(
        "toolchains/tools.bzl",
        &std::fs::read_to_string(repo_root().join("toolchains/tools.bzl")).unwrap(),
    );
    p.write("toolchains/pins.bzl", &pins_with_protoc_21(up));
    p.write(
        "third-party/protobuf/BUCK",
        &RUNTIMES_BUCK.replace("WHEEL", PROTOBUF_WHEEL),
    );
    std::fs::copy(
        fixtures()
            .parent()
            .unwrap()
            .join("pypi")
            .join(PROTOBUF_WHEEL),
        p.path().join("third-party/protobuf").join(PROTOBUF_WHEEL),
    )
    .unwrap();
    for (package, buck) in [("acme/geo/v1", GEO_BUCK), ("acme/weather/v1", WEATHER_BUCK)] {
        let name = package.split('/').nth(1).unwrap();
        let proto = std::fs::read_to_string(
            repo_root().join(format!("examples/proto/{package}/{name}.proto")),
        )
        .unwrap();
        p.write(&format!("{package}/{name}.proto"), &proto);
        p.write(&format!("{package}/BUCK"), buck);
    }
    p.write("apps/BUCK", APPS_BUCK);
    p.write("apps/weather.py", WEATHER_PY);
    p.write("apps/weather.cc", WEATHER_CC);
    p
}

/// The loopback's fixture pins, and protoc 21.12 (Debian's, as an upstream release) beside
/// the default 36.2.
fn pins_with_protoc_21(up: &Loopback) -> String {
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
    pins.render()
}

fn run(p: &Project, target: &str) -> String {
    let out = p.buck2(&["run", target]);
    assert!(
        out.status.success(),
        "buck2 run {target}: {}",
        buck2_errors(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn python_and_cxx_programs_use_the_generated_libraries() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let up = Loopback::start();
    let p = consumer(&up);
    let python = run(&p, "//apps:weather_py");
    assert_eq!(python.trim(), format!("python: {ROUND_TRIP}"));
    let cxx = run(&p, "//apps:weather_cc");
    assert_eq!(cxx.trim(), format!("cxx: {ROUND_TRIP}"));
}
