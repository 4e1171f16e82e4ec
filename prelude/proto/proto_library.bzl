"""`proto_library`: .proto sources, their import paths, and a descriptor set.

```python
proto_library(
    name = "weather",
    srcs = ["acme/weather/v1/weather.proto"],
    deps = ["//examples/proto/acme/geo/v1:geo"],
    strip_import_prefix = "/examples/proto",   # import "acme/weather/v1/weather.proto"
)
```

A source's import path is its path from the cell root, less `strip_import_prefix` (from the
cell root when it starts with `/`, else from the package), with `import_prefix` in front.
The default output is a FileDescriptorSet (`NAME.binpb`, with `--include_imports` and
source info: what buf and reflection tools read). The well-known types
(`google/protobuf/*.proto`) come from the pinned protoc's own `include/`, with no dep.
"""

load(":protoc.bzl", "proto_input_files", "proto_path_flags")
load(":providers.bzl", "ProtoImportRoot", "ProtoImportsTSet", "ProtoInfo", "ProtocToolchainInfo")

def _normalize(path: str) -> str:
    return "/".join([part for part in path.split("/") if part and part != "."])

def _join(*parts) -> str:
    return _normalize("/".join(parts))

def import_path(ctx: AnalysisContext, src: Artifact) -> str:
    """Where `import` statements find `src`."""

    # short_path is package-relative for a source file, and relative to the producing
    # target's output directory for a generated one: either way, under this package.
    path = _join(ctx.label.package, src.short_path)
    strip = ctx.attrs.strip_import_prefix
    if strip != None:
        prefix = _normalize(strip) if strip.startswith("/") else _join(ctx.label.package, strip)
        if prefix:
            if not path.startswith(prefix + "/"):
                fail("{}: `{}` is not under strip_import_prefix `{}` (that is `{}` from the cell root)".format(
                    ctx.label,
                    path,
                    strip,
                    prefix,
                ))
            path = path[len(prefix) + 1:]
    if ctx.attrs.import_prefix:
        path = _join(ctx.attrs.import_prefix, path)
    return path

def compile_descriptor_set(ctx: AnalysisContext, protoc: ProtocToolchainInfo, info: ProtoInfo, deps: list[ProtoInfo]) -> None:
    """protoc checks the library's sources and writes `info.descriptor_set`: the sources and
    everything they import, with source info (what buf and reflection tools read)."""

    # A library without sources stands for its deps: its descriptor set covers theirs.
    inputs = [info] if info.import_paths else deps
    ctx.actions.run(
        cmd_args(
            protoc.protoc,
            "--include_imports",
            "--include_source_info",
            cmd_args(info.descriptor_set.as_output(), format = "--descriptor_set_out={}"),
            proto_path_flags(ctx, protoc, [info]),
            proto_input_files(inputs),
        ),
        category = "protoc_descriptor_set",
    )

def _proto_library_impl(ctx: AnalysisContext) -> list[Provider]:
    if not ctx.attrs.srcs and not ctx.attrs.deps:
        fail("{}: a proto_library needs `srcs`, or `deps` to gather".format(ctx.label))
    protoc = ctx.attrs._protoc[ProtocToolchainInfo]

    import_paths = []
    by_import_path = {}
    for src in ctx.attrs.srcs:
        if src.extension != ".proto":
            fail("{}: `{}` in srcs is not a .proto file".format(ctx.label, src.short_path))
        path = import_path(ctx, src)
        if path in by_import_path:
            fail("{}: two sources have the import path `{}`".format(ctx.label, path))
        by_import_path[path] = src
        import_paths.append(path)

    # protoc finds files by import path under --proto_path roots: lay the sources out so.
    import_root = ctx.actions.symlinked_dir(ctx.label.name + "_imports", by_import_path)
    deps = [dep[ProtoInfo] for dep in ctx.attrs.deps]
    transitive = ctx.actions.tset(
        ProtoImportsTSet,
        value = ProtoImportRoot(
            label = str(ctx.label.raw_target()),
            root = import_root,
            import_paths = import_paths,
        ),
        children = [dep.transitive for dep in deps],
    )

    descriptor_set = ctx.actions.declare_output(ctx.label.name + ".binpb")
    self_info = ProtoInfo(
        descriptor_set = descriptor_set,
        import_paths = import_paths,
        import_root = import_root,
        transitive = transitive,
    )

    compile_descriptor_set(ctx, protoc, self_info, deps)

    return [
        DefaultInfo(
            default_output = descriptor_set,
            sub_targets = {"import_root": [DefaultInfo(default_output = import_root)]},
        ),
        self_info,
    ]

proto_library = rule(
    impl = _proto_library_impl,
    attrs = {
        "deps": attrs.list(
            attrs.dep(providers = [ProtoInfo]),
            default = [],
            doc = "proto_library targets whose files these sources import.",
        ),
        "import_prefix": attrs.option(
            attrs.string(),
            default = None,
            doc = "Prepended to each import path, after `strip_import_prefix`.",
        ),
        "srcs": attrs.list(attrs.source(), default = [], doc = "The .proto files."),
        "strip_import_prefix": attrs.option(
            attrs.string(),
            default = None,
            doc = "Removed from the front of each source's path: from the cell root when it " +
                  "starts with `/`, else from this package.",
        ),
        "_protoc": attrs.toolchain_dep(default = "toolchains//:protoc", providers = [ProtocToolchainInfo]),
    },
    doc = "Protocol buffer sources with their import paths, checked and compiled by protoc " +
          "into a descriptor set.",
)
