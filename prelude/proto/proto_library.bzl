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
protoc parses each library's own sources once. The default output is their FileDescriptorSet
(`NAME.binpb`, without imports or source info); whatever imports them (a library that
depends on this one, code generation) reads it with `--descriptor_set_in` instead of parsing
them again, and reads of those sets only the files its sources import, directly or not
(`protoreg protoc --prune-descriptor-sets`). The sub-target `[image]` is the
FileDescriptorSet with every import and the library's own source info (what buf and
reflection tools read), made only when something asks for it. The well-known types
(`google/protobuf/*.proto`) come from the pinned protoc's own `include/`, with no dep.
"""

load(":protoc.bzl", "descriptor_set_in", "pruning_protoc")
load(":providers.bzl", "ProtoDescriptorSetsTSet", "ProtoInfo", "ProtocToolchainInfo")

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

def _sources_args(protoc: ProtocToolchainInfo, import_paths: list[str], import_root: Artifact, sources: dict[str, Artifact] | None) -> cmd_args:
    """The `--proto_path` roots and input files of a library's own sources, then the
    well-known types' root.

    With `sources` (import path to file), each file is its own root, `--proto_path=PATH=FILE`:
    protoc reads the sources where they are, and nothing else is under those roots, so an
    import no dep provides still fails. The import root (the same files, symlinked at their
    import paths) is then made only for the consumers that need a directory (code
    generation, buf): one action and its links fewer per library."""
    if sources != None:
        return cmd_args(
            [cmd_args(src, format = "--proto_path=" + path + "={}") for path, src in sources.items()],
            cmd_args(protoc.include, format = "--proto_path={}"),
            sources.values(),
        )
    return cmd_args(
        cmd_args(import_root, format = "--proto_path={}"),
        cmd_args(protoc.include, format = "--proto_path={}"),
        [cmd_args(import_root, format = "{}/" + path) for path in import_paths],
    )

def compile_library(
        ctx: AnalysisContext,
        protoc: ProtocToolchainInfo,
        import_paths: list[str],
        import_root: Artifact,
        deps: list[ProtoInfo],
        sources: dict[str, Artifact] | None = None) -> ProtoInfo:
    """protoc checks the library's own sources and writes its descriptor set (them alone,
    without source info: dependents read it, so it is kept small), reading what they import
    from the deps' descriptor sets; and, when something asks for it, its image (them again
    with source info, for buf's comments and positions, and everything they import)."""
    descriptor_set = ctx.actions.declare_output(ctx.label.name + ".binpb")
    dep_descriptor_sets = ctx.actions.tset(
        ProtoDescriptorSetsTSet,
        children = [d.descriptor_sets for d in deps],
    )
    if import_paths:
        # A dep file: the deps' sets that hold a file these sources reach. When another of
        # them changes, Buck2 does not run this again (its output could not change).
        sets_tag = ctx.actions.artifact_tag()
        used_sets = ctx.actions.declare_output(ctx.label.name + ".sets_used")
        ctx.actions.run(
            cmd_args(
                pruning_protoc(protoc, sets_tag.tag_artifacts(cmd_args(used_sets.as_output()))),
                cmd_args(descriptor_set.as_output(), format = "--descriptor_set_out={}"),
                sets_tag.tag_artifacts(descriptor_set_in(ctx, protoc, [dep_descriptor_sets])),
                _sources_args(protoc, import_paths, import_root, sources),
            ),
            category = "protoc_descriptor_set",
            dep_files = {"descriptor_sets": sets_tag},
        )
        descriptor_sets = ctx.actions.tset(
            ProtoDescriptorSetsTSet,
            value = descriptor_set,
            children = [dep_descriptor_sets],
        )
    else:
        # No sources: an empty FileDescriptorSet (zero bytes is one).
        ctx.actions.write(descriptor_set, "")
        descriptor_sets = dep_descriptor_sets

    # The image: the sources parsed with source info, what they import read from the
    # descriptor sets (the well-known types parsed from protoc's include/), all written. A
    # library without sources stands for its deps: its image covers theirs (read from their
    # sets, so without source info).
    image = ctx.actions.declare_output(ctx.label.name + ".image.binpb")
    if import_paths:
        inputs = _sources_args(protoc, import_paths, import_root, sources)
    else:
        inputs = cmd_args(
            cmd_args(protoc.include, format = "--proto_path={}"),
            [p for d in deps for p in d.import_paths],
        )
    ctx.actions.run(
        cmd_args(
            pruning_protoc(protoc),
            "--include_imports",
            "--include_source_info",
            cmd_args(image.as_output(), format = "--descriptor_set_out={}"),
            descriptor_set_in(ctx, protoc, [dep_descriptor_sets]),
            inputs,
        ),
        category = "protoc_image",
    )
    return ProtoInfo(
        descriptor_set = descriptor_set,
        dep_descriptor_sets = dep_descriptor_sets,
        descriptor_sets = descriptor_sets,
        image = image,
        import_paths = import_paths,
        import_root = import_root,
        label = ctx.label,
        dep_labels = [d.label for d in deps],
    )

def proto_library_providers(info: ProtoInfo) -> list[Provider]:
    return [
        DefaultInfo(
            default_output = info.descriptor_set,
            sub_targets = {
                "image": [DefaultInfo(default_output = info.image)],
                "import_root": [DefaultInfo(default_output = info.import_root)],
            },
        ),
        info,
    ]

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

    # Code generation and buf find files by import path under one root: lay them out so.
    import_root = ctx.actions.symlinked_dir(ctx.label.name + "_imports", by_import_path)
    deps = [dep[ProtoInfo] for dep in ctx.attrs.deps]
    return proto_library_providers(compile_library(ctx, protoc, import_paths, import_root, deps, by_import_path))

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
