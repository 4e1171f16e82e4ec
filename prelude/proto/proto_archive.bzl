"""`proto_archive_library`: the .proto files of a pinned archive (googleapis at a commit) as a
library with upstream's import paths. `protobuf_toolchains` defines one per `protos` entry of
the catalogue (`toolchains//:googleapis`); a `proto_library` lists it in `deps`:

```python
proto_library(
    name = "alerts",
    srcs = ["acme/alerts/v1/alerts.proto"],   # import "google/api/annotations.proto";
    deps = ["toolchains//:googleapis"],
)
```

The archive is fetched like any pin (its sha256 checked before protoc reads it); its whole
tree is the import root, so what the listed files import from it is found too.
"""

load(":proto_library.bzl", "compile_descriptor_set")
load(":providers.bzl", "ProtoImportRoot", "ProtoImportsTSet", "ProtoInfo", "ProtocToolchainInfo", "ToolDistributionInfo")

def _proto_archive_library_impl(ctx: AnalysisContext) -> list[Provider]:
    root = ctx.attrs.archive[ToolDistributionInfo].root
    deps = [dep[ProtoInfo] for dep in ctx.attrs.deps]
    info = ProtoInfo(
        descriptor_set = ctx.actions.declare_output(ctx.label.name + ".binpb"),
        import_paths = ctx.attrs.srcs,
        import_root = root,
        transitive = ctx.actions.tset(
            ProtoImportsTSet,
            value = ProtoImportRoot(
                label = str(ctx.label.raw_target()),
                root = root,
                import_paths = ctx.attrs.srcs,
            ),
            children = [dep.transitive for dep in deps],
        ),
    )
    compile_descriptor_set(ctx, ctx.attrs._protoc[ProtocToolchainInfo], info, deps)
    return [
        DefaultInfo(
            default_output = info.descriptor_set,
            sub_targets = {"import_root": [DefaultInfo(default_output = root)]},
        ),
        info,
    ]

proto_archive_library = rule(
    impl = _proto_archive_library_impl,
    attrs = {
        "archive": attrs.dep(providers = [ToolDistributionInfo], doc = "The fetched archive (`tool_distribution`)."),
        "deps": attrs.list(attrs.dep(providers = [ProtoInfo]), default = [], doc = "Libraries its files import."),
        "srcs": attrs.list(attrs.string(), doc = "The library's .proto files, by their paths in the archive (their import paths)."),
        "_protoc": attrs.toolchain_dep(default = "toolchains//:protoc", providers = [ProtocToolchainInfo]),
    },
    doc = "The .proto files of a pinned archive, as a library with upstream's import paths.",
)

def _library_unavailable_impl(ctx: AnalysisContext) -> list[Provider]:
    fail("{}: {}".format(ctx.label, ctx.attrs.message))

library_unavailable = rule(
    impl = _library_unavailable_impl,
    attrs = {"message": attrs.string(doc = "What is missing and how to provide it.")},
    doc = "An archive library that is not pinned: fails the analysis of whatever uses it.",
)
