"""`proto_gencode`: one proto_library's code for one language, file by file, for the
language's own library rule to compile (the `*_proto_library` macros in languages.bzl).

Each generated file is its own output, named as the language's rules expect it (the C++
header `acme/geo/v1/geo.pb.h` is included by that path, the Python module
`acme/geo/v1/geo_pb2.py` imported as `acme.geo.v1.geo_pb2`); sub-target `[srcs]` holds what
compiles, `[headers]` the C++ headers. Analysis fails when the runtime cannot run the code
(runtime.bzl) or when an import's library has no generated code among `deps`.
"""

load(":compat.bzl", "requiring_toolchains")
load(":protoc.bzl", "ProtocGenerator", "run_protoc_generators")
load(":providers.bzl", "ProtoGencodeInfo", "ProtoInfo", "ProtocPluginToolchainInfo", "ProtocToolchainInfo")
load(":runtime.bzl", "LANGUAGE_NAMES", "check_runtime")

def _stem(path: str) -> str:
    return path.removesuffix(".proto")

def _depth(path: str) -> int:
    return len(path.split("/"))

def _files(ctx: AnalysisContext, names: list[str]) -> list[Artifact]:
    return [ctx.actions.declare_output(name) for name in names]

def _by_file(name: str, files: list[Artifact], options: list[str], plugin: ProtocPluginToolchainInfo | None, depth: int) -> ProtocGenerator:
    return ProtocGenerator(
        name = name,
        out = files[0],
        more = files[1:],
        depth = depth,
        options = options,
        plugin = plugin.plugin if plugin else None,
    )

def _cxx(ctx: AnalysisContext, paths: list[str], _plugins: list[ProtocPluginToolchainInfo]) -> (list[ProtocGenerator], dict[str, list[Artifact]]):
    headers = _files(ctx, [_stem(p) + ".pb.h" for p in paths])
    srcs = _files(ctx, [_stem(p) + ".pb.cc" for p in paths])
    generator = _by_file("cpp", headers + srcs, ctx.attrs.options, None, _depth(paths[0]))
    return [generator], {"headers": headers, "srcs": srcs}

def _python(ctx: AnalysisContext, paths: list[str], _plugins: list[ProtocPluginToolchainInfo]) -> (list[ProtocGenerator], dict[str, list[Artifact]]):
    srcs = _files(ctx, [_stem(p) + "_pb2.py" for p in paths])
    return [_by_file("python", srcs, ctx.attrs.options, None, _depth(paths[0]))], {"srcs": srcs}

def _java(ctx: AnalysisContext, _paths: list[str], plugins: list[ProtocPluginToolchainInfo]) -> (list[ProtocGenerator], dict[str, list[Artifact]]):
    # protoc writes a zip whole, whatever classes the files declare (named `.src.zip`, as
    # the prelude's java_library takes it).
    srcjar = ctx.actions.declare_output(ctx.label.name + ".src.zip")
    generators = [_by_file("java", [srcjar], ctx.attrs.options, None, 0)]
    srcs = [srcjar]
    for plugin in plugins:
        jar = ctx.actions.declare_output("{}-{}.src.zip".format(ctx.label.name, plugin.name))
        generators.append(_by_file(plugin.name, [jar], plugin.options, plugin, 0))
        srcs.append(jar)
    return generators, {"srcs": srcs}

def _go(ctx: AnalysisContext, paths: list[str], plugins: list[ProtocPluginToolchainInfo]) -> (list[ProtocGenerator], dict[str, list[Artifact]]):
    # protoc-gen-go writes FILE.pb.go beside each proto (paths=source_relative);
    # protoc-gen-go-grpc writes FILE_grpc.pb.go only for a file with a service, which
    # analysis cannot see: `grpc = True` says the library's files all have one.
    srcs = []
    generators = []
    for plugin in plugins:
        suffix = ".pb.go" if plugin.name == "go" else "_" + plugin.name.removeprefix("go-") + ".pb.go"
        files = _files(ctx, [_stem(p) + suffix for p in paths])
        options = plugin.options + ["paths=source_relative"]
        generators.append(_by_file(plugin.name, files, options, plugin, _depth(paths[0])))
        srcs.extend(files)
    return generators, {"srcs": srcs}

def _rust(ctx: AnalysisContext, paths: list[str], plugins: list[ProtocPluginToolchainInfo]) -> (list[ProtocGenerator], dict[str, list[Artifact]]):
    # protoc-gen-prost writes one file per proto package, PACKAGE.rs, which analysis cannot
    # see: the library names its packages (`packages`), and gets a `lib.rs` nesting them
    # as modules (`acme.geo.v1` is `acme::geo::v1`), so `super::` paths between packages
    # resolve as prost writes them.
    if not ctx.attrs.packages:
        fail("{}: a Rust proto library needs `packages`, the proto packages its files declare (e.g. [\"acme.geo.v1\"])".format(library_label(ctx)))
    files = _files(ctx, [p + ".rs" for p in ctx.attrs.packages])
    plugin = plugins[0]
    generator = _by_file(plugin.name, files, plugin.options + ctx.attrs.options, plugin, 1)
    return [generator], {"srcs": files}

_LANGUAGES = {
    "cxx": _cxx,
    "go": _go,
    "java": _java,
    "python": _python,
    "rust": _rust,
}

# What a language library of `acme/geo/v1:geo` is called in the suggestion to make one.
_SUFFIXES = {"cxx": "cc", "go": "go", "java": "java", "python": "py", "rust": "rs"}

def library_label(ctx: AnalysisContext) -> str:
    """The language library this `proto_gencode` is the generated half of."""
    return str(ctx.label.raw_target()).removesuffix("_gencode")

def _check_deps(ctx: AnalysisContext, proto: ProtoInfo) -> None:
    covered = {}
    for dep in ctx.attrs.deps:
        info = dep[ProtoGencodeInfo]
        if info.language != ctx.attrs.language:
            fail("{}: dep {} is {} code; this library is {}".format(
                library_label(ctx),
                dep.label.raw_target(),
                LANGUAGE_NAMES[info.language],
                LANGUAGE_NAMES[ctx.attrs.language],
            ))
        covered[str(info.proto.raw_target())] = True
    for imported in proto.dep_labels:
        if str(imported.raw_target()) not in covered:
            fail("{}: {} imports {}, and no library in `deps` has its {} code: add one to `deps`, e.g. `{}_proto_library(name = \"{}_{}\", proto = \"{}\")` beside it".format(
                library_label(ctx),
                proto.label.raw_target(),
                imported.raw_target(),
                LANGUAGE_NAMES[ctx.attrs.language],
                ctx.attrs.language,
                imported.name,
                _SUFFIXES[ctx.attrs.language],
                imported.raw_target(),
            ))

def _proto_gencode_impl(ctx: AnalysisContext) -> list[Provider]:
    proto = ctx.attrs.proto[ProtoInfo]
    language = ctx.attrs.language
    _check_deps(ctx, proto)
    protoc = ctx.attrs.protoc[ProtocToolchainInfo]
    plugins = [p[ProtocPluginToolchainInfo] for p in ctx.attrs.plugins]
    if language in ("go", "rust"):
        if not plugins:
            fail("{}: {} code needs its plugin in `plugins`".format(library_label(ctx), LANGUAGE_NAMES[language]))
        generator, gencode = "protoc-gen-" + plugins[0].name, plugins[0].version
    else:
        generator, gencode = "protoc", protoc.version
    check_runtime(library_label(ctx), language, generator, gencode, ctx.attrs.runtime)

    outputs = {}
    if proto.import_paths:
        generators, outputs = _LANGUAGES[language](ctx, proto.import_paths, plugins)
        run_protoc_generators(ctx, protoc, [proto], generators, category = "protoc_" + language)
    sub_targets = {name: [DefaultInfo(default_outputs = files)] for name, files in outputs.items()}
    for name in ("srcs", "headers"):
        sub_targets.setdefault(name, [DefaultInfo()])
    return [
        DefaultInfo(default_outputs = [f for files in outputs.values() for f in files], sub_targets = sub_targets),
        ProtoGencodeInfo(language = language, proto = proto.label),
    ]

proto_gencode = rule(
    impl = _proto_gencode_impl,
    attrs = {
        "deps": attrs.list(
            attrs.dep(providers = [ProtoGencodeInfo]),
            default = [],
            doc = "The generated code of the libraries `proto` imports (their `proto_gencode` targets).",
        ),
        "language": attrs.enum(list(_LANGUAGES.keys())),
        "options": attrs.list(attrs.string(), default = [], doc = "`--LANG_opt` values."),
        "packages": attrs.list(attrs.string(), default = [], doc = "Rust: the proto packages of `proto`'s files."),
        "plugins": attrs.list(
            attrs.toolchain_dep(providers = [ProtocPluginToolchainInfo]),
            default = [],
            doc = "The language's plugins (Go, Rust; gRPC), the first the code's generator.",
        ),
        "proto": attrs.dep(providers = [ProtoInfo], doc = "The proto_library to generate code for."),
        "runtime": attrs.dep(doc = "The language's `proto_runtime`, checked against the generator's version."),
        "protoc": attrs.toolchain_dep(
            default = "toolchains//:protoc",
            providers = [ProtocToolchainInfo],
            doc = "The protoc to generate with: the default one, or a pinned version's (`toolchains//:protoc-21.12`).",
        ),
    },
    doc = "One proto_library's code for one language, a file per output.",
)

def gencode_target(kwargs: dict, toolchains: list[str]) -> dict:
    """`kwargs` for a `proto_gencode` or its library: compatible where `toolchains` (protoc
    and the plugins) are pinned."""
    return requiring_toolchains(kwargs, toolchains)
