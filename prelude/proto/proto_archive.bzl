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

load(":proto_library.bzl", "compile_library", "proto_library_providers")
load(":providers.bzl", "ProtoInfo", "ProtocToolchainInfo", "ToolDistributionInfo")

def _proto_archive_library_impl(ctx: AnalysisContext) -> list[Provider]:
    deps = [dep[ProtoInfo] for dep in ctx.attrs.deps]
    protoc = ctx.attrs._protoc[ProtocToolchainInfo]
    root = ctx.attrs.archive[ToolDistributionInfo].root
    return proto_library_providers(compile_library(ctx, protoc, ctx.attrs.srcs, root, deps))

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
