"""Language libraries of a proto_library, built by Meta's prelude: what `deps` of a
`cxx_binary`, `python_binary`, `java_binary`, `go_binary` or `rust_binary` name.

```python
load("@protobuf//proto:languages.bzl", "cxx_proto_library", "python_proto_library")

cxx_proto_library(name = "weather_cc", proto = ":weather", deps = ["//acme/geo/v1:geo_cc"])
python_proto_library(name = "weather_py", proto = ":weather", deps = ["//acme/geo/v1:geo_py"])
```

Each macro makes two targets: `NAME_gencode` (a `proto_gencode`: the code, checked against
the runtime) and `NAME`, the language's own library of it, exporting the runtime. A library
names, in `deps`, the language libraries of the proto_libraries its proto imports (analysis
says which is missing); the well-known types' code is the runtime's. The runtime is a
`proto_runtime` target (runtime.bzl), named once per language in `.buckconfig`:

```ini
[protobuf]
  cxx_runtime = //third-party/protobuf:cxx
  python_runtime = //third-party/protobuf:python
```

or per library with `runtime = …`. Everything a language needs from the host (a C++
compiler, Python, a JDK, Go, rustc) comes from that language's toolchain in the user's
repository; the prelude's rules are used as they are (`native`), so these macros need
Meta's prelude, and are loaded from this file, not defs.bzl (which this repository's own
prelude loads, where there is no `native`).
"""

load(":compat.bzl", "requiring_toolchains")
load(":config.bzl", "language_runtime", "language_runtime_deps")
load(":gencode.bzl", "proto_gencode")
load(":runtime.bzl", "LANGUAGE_NAMES")

GENCODE_SUFFIX = "_gencode"

def _gencode_label(library: str) -> str:
    """The `proto_gencode` beside the language library `library`."""
    if "[" in library:
        fail("`{}`: name a language library, not a sub-target".format(library))
    _, _, target = library.rpartition("//")
    if ":" in target:
        return library + GENCODE_SUFFIX
    return "{}:{}{}".format(library, target.rpartition("/")[2], GENCODE_SUFFIX)

def _runtime(language: str, runtime: str | None, name: str) -> str:
    if runtime:
        return runtime
    key = language + "_runtime"
    configured = language_runtime(language)
    if not configured:
        fail("{}: no {} protobuf runtime. Declare one with `proto_runtime(language = \"{}\", version = …, library = …)` and name it in `.buckconfig` (`[protobuf] {} = //third-party/protobuf:{}`) or pass `runtime = …`".format(
            name,
            LANGUAGE_NAMES[language],
            language,
            key,
            language,
        ))
    return configured

def _runtime_deps(language: str, runtime_deps: list[str] | None) -> list[str]:
    """The runtime's other libraries generated code names (Go packages, Rust crates): as
    given, else `[protobuf] LANGUAGE_runtime_deps`."""
    return runtime_deps if runtime_deps != None else language_runtime_deps(language)

def _gencode(
        name: str,
        language: str,
        proto: str,
        deps: list[str],
        runtime: str,
        protoc: str,
        plugins: list[str] = [],
        options: list[str] = [],
        visibility: list[str] = [],
        **rust) -> str:
    gencode = name + GENCODE_SUFFIX
    proto_gencode(**requiring_toolchains(
        dict(
            name = gencode,
            language = language,
            proto = proto,
            deps = [_gencode_label(d) for d in deps],
            runtime = runtime,
            protoc = protoc,
            plugins = plugins,
            options = options,
            visibility = visibility,
            **rust
        ),
        [protoc] + plugins,
    ))
    return ":" + gencode

def cxx_proto_library(
        name: str,
        proto: str,
        deps: list[str] = [],
        runtime: str | None = None,
        options: list[str] = [],
        protoc: str = "toolchains//:protoc",
        visibility: list[str] = [],
        **kwargs) -> None:
    """A `cxx_library` of `proto`'s C++ code (`#include "acme/geo/v1/geo.pb.h"`), exporting
    the runtime. `options`: `--cpp_opt` values (e.g. `lite`)."""
    runtime = _runtime("cxx", runtime, name)
    gencode = _gencode(name, "cxx", proto, deps, runtime, protoc, options = options, visibility = visibility)
    native.cxx_library(**requiring_toolchains(
        dict(
            name = name,
            srcs = [gencode + "[srcs]"],
            exported_headers = [gencode + "[headers]"],
            header_namespace = "",
            exported_deps = [runtime] + deps,
            visibility = visibility,
            **kwargs
        ),
        [protoc],
    ))

def python_proto_library(
        name: str,
        proto: str,
        deps: list[str] = [],
        runtime: str | None = None,
        protoc: str = "toolchains//:protoc",
        visibility: list[str] = [],
        **kwargs) -> None:
    """A `python_library` of `proto`'s modules, by import path (`acme/geo/v1/geo.proto` is
    `acme.geo.v1.geo_pb2`), depending on the runtime."""
    runtime = _runtime("python", runtime, name)
    gencode = _gencode(name, "python", proto, deps, runtime, protoc, visibility = visibility)
    native.python_library(**requiring_toolchains(
        dict(
            name = name,
            srcs = [gencode + "[srcs]"],
            base_module = "",
            deps = [runtime] + deps,
            visibility = visibility,
            **kwargs
        ),
        [protoc],
    ))

def java_proto_library(
        name: str,
        proto: str,
        deps: list[str] = [],
        runtime: str | None = None,
        grpc: bool = False,
        grpc_plugin: str = "toolchains//:protoc-gen-grpc-java",
        grpc_runtime: list[str] = [],
        protoc: str = "toolchains//:protoc",
        visibility: list[str] = [],
        **kwargs) -> None:
    """A `java_library` of `proto`'s classes, exporting the runtime; with `grpc = True` also
    the service stubs (protoc-gen-grpc-java), compiled against `grpc_runtime` (grpc-java's
    jars, the user's to name)."""
    runtime = _runtime("java", runtime, name)
    plugins = [grpc_plugin] if grpc else []
    gencode = _gencode(name, "java", proto, deps, runtime, protoc, plugins = plugins, visibility = visibility)
    native.java_library(**requiring_toolchains(
        dict(
            name = name,
            srcs = [gencode + "[srcs]"],
            exported_deps = [runtime] + deps + grpc_runtime,
            visibility = visibility,
            **kwargs
        ),
        [protoc] + plugins,
    ))

def go_proto_library(
        name: str,
        proto: str,
        importpath: str,
        deps: list[str] = [],
        runtime: str | None = None,
        runtime_deps: list[str] | None = None,
        grpc: bool = False,
        grpc_runtime: list[str] = [],
        go_plugin: str = "toolchains//:protoc-gen-go",
        grpc_plugin: str = "toolchains//:protoc-gen-go-grpc",
        protoc: str = "toolchains//:protoc",
        visibility: list[str] = [],
        **kwargs) -> None:
    """A `go_library` of `proto`'s Go package `importpath` (its files' `go_package`), from
    protoc-gen-go; with `grpc = True` also the services (protoc-gen-go-grpc: every file of
    `proto` must then declare one), compiled against `grpc_runtime` (google.golang.org/grpc).

    Go compiles against the packages a file imports, not their dependencies: `runtime` is
    the `proto_runtime` of google.golang.org/protobuf/runtime/protoimpl, and `runtime_deps`
    (by default `[protobuf] go_runtime_deps`, comma-separated) the other runtime packages
    generated code imports: reflect/protoreflect, and the well-known types' (types/known/…)
    that `proto` imports."""
    runtime = _runtime("go", runtime, name)
    runtime_deps = _runtime_deps("go", runtime_deps)
    plugins = [go_plugin] + ([grpc_plugin] if grpc else [])
    gencode = _gencode(name, "go", proto, deps, runtime, protoc, plugins = plugins, visibility = visibility)
    native.go_library(**requiring_toolchains(
        dict(
            name = name,
            package_name = importpath,
            srcs = [gencode + "[srcs]"],
            deps = [runtime] + runtime_deps + deps + (grpc_runtime if grpc else []),
            visibility = visibility,
            **kwargs
        ),
        [protoc] + plugins,
    ))

def rust_proto_library(
        name: str,
        proto: str,
        packages: list[str],
        deps: list[str] = [],
        runtime: str | None = None,
        runtime_deps: list[str] | None = None,
        plugin: str = "toolchains//:protoc-gen-prost",
        options: list[str] = [],
        protoc: str = "toolchains//:protoc",
        visibility: list[str] = [],
        **kwargs) -> None:
    """A `rust_library` (crate `name`) of `proto`'s messages, from protoc-gen-prost: each of
    `packages` (the proto packages its files declare) a module, `acme.geo.v1` as
    `acme::geo::v1`. `runtime` is the `proto_runtime` of the `prost` crate; `runtime_deps`
    (by default `[protobuf] rust_runtime_deps`, comma-separated) the other crates generated
    code names: `prost-types` for the well-known types. `options`: `--prost_opt` values."""
    runtime = _runtime("rust", runtime, name)
    runtime_deps = _runtime_deps("rust", runtime_deps)
    gencode = _gencode(
        name,
        "rust",
        proto,
        deps,
        runtime,
        protoc,
        plugins = [plugin],
        options = options,
        visibility = visibility,
        packages = packages,
        crate = name.replace("-", "_"),
    )
    native.rust_library(**requiring_toolchains(
        dict(
            name = name,
            srcs = [gencode + "[srcs]"],
            crate_root = "lib.rs",
            deps = [runtime] + runtime_deps + deps,
            visibility = visibility,
            **kwargs
        ),
        [protoc, plugin],
    ))
