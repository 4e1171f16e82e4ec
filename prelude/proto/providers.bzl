"""Providers of the protobuf rules: what a toolchain, a tool download and a proto_library
hand to the rules that use them."""

# One pinned tool archive, verified and unpacked for one platform.
ToolDistributionInfo = provider(fields = {
    # Each declared binary by its name without directory or `.exe`, e.g. `protoc`.
    "binaries": provider_field(dict[str, Artifact]),
    # The `prelude//os` value of the platform: linux, macos or windows.
    "os": provider_field(str),
    # The canonical platform name, e.g. `linux-x86_64`.
    "platform": provider_field(str),
    # The unpacked tree, after `strip_prefix`.
    "root": provider_field(Artifact),
    # The pin the tree was verified against.
    "sha256": provider_field(str),
    "tool": provider_field(str),
    "version": provider_field(str),
})

# protoc for the execution platform.
ProtocToolchainInfo = provider(fields = {
    # protoc's `include/` directory: the well-known types.
    "include": provider_field(Artifact),
    # What separates the files of `--descriptor_set_in` there: `:`, or `;` on Windows.
    "path_list_separator": provider_field(str),
    "protoc": provider_field(RunInfo),
    # protoreg, whose `protoreg protoc` runs code generation with no shell.
    "protoreg": provider_field(RunInfo),
    "version": provider_field(str),
})

# The buf CLI for the execution platform.
BufToolchainInfo = provider(fields = {
    "buf": provider_field(RunInfo),
    # protoreg, whose `protoreg expect-findings` checks a lint report with no shell.
    "protoreg": provider_field(RunInfo),
    "version": provider_field(str),
})

# A protoc plugin (`protoc-gen-NAME`) for the execution platform.
ProtocPluginToolchainInfo = provider(fields = {
    # What runs `plugin` when it is a script (node for protoc-gen-es); None: an executable.
    "interpreter": provider_field(RunInfo | None, default = None),
    # The plugin exists only on the machine running Buck2, so protoc must run there.
    "local_only": provider_field(bool, default = False),
    # NAME in `protoc-gen-NAME`, `--NAME_out` and `--NAME_opt`.
    "name": provider_field(str),
    # `--NAME_opt` values every use passes, before the target's own.
    "options": provider_field(list[str], default = []),
    # One executable, or with `interpreter` the script it runs.
    "plugin": provider_field(RunInfo),
    "version": provider_field(str),
})

# A protoc plugin that is a script: `interpreter` runs it (protoc-gen-es on node).
ScriptPluginInfo = provider(fields = {
    "interpreter": provider_field(RunInfo),
    # The script and everything it loads.
    "script": provider_field(RunInfo),
})

# A proto_library: its sources under their import paths, and what protoc made of them.
# protoc parses each library's own sources once: everything that imports them reads its
# descriptor set (`--descriptor_set_in`) instead of parsing them again.
ProtoInfo = provider(fields = {
    # FileDescriptorSet of the library's own sources (not their imports, no source info:
    # what its dependents read, kept small).
    "descriptor_set": provider_field(Artifact),
    # ProtoDescriptorSetsTSet over the deps' descriptor sets, transitively: the imports.
    "dep_descriptor_sets": provider_field(TransitiveSet),
    # The same with this library's own set: what a library depending on it reads.
    "descriptor_sets": provider_field(TransitiveSet),
    # FileDescriptorSet of the sources (with source info) and everything they import (the
    # well-known types included, without it): a buf image (sub-target `[image]`). Made only
    # when something reads it.
    "image": provider_field(Artifact),
    # The direct sources, as `import` statements name them.
    "import_paths": provider_field(list[str]),
    # A directory holding the direct sources at their import paths.
    "import_root": provider_field(Artifact),
    # The library, and the libraries its `deps` name: a language library checks that its
    # own deps generate code for each of those.
    "label": provider_field(Label),
    "dep_labels": provider_field(list[Label]),
})

def _descriptor_set_files(value: Artifact) -> cmd_args:
    return cmd_args(value)

def _holds_a_set(children: list[bool], value: Artifact | None) -> bool:
    return value != None or any(children)

# One library's own descriptor set per node (none for a library without sources); its deps'
# follow (pre-order).
ProtoDescriptorSetsTSet = transitive_set(
    args_projections = {"files": _descriptor_set_files},
    reductions = {"nonempty": _holds_a_set},
)

# A language's protobuf runtime, as `proto_runtime` declares it beside the library itself.
ProtoRuntimeInfo = provider(fields = {
    # `cxx`, `python`, `java`, `go` or `rust`.
    "language": provider_field(str),
    "version": provider_field(str),
})

# The code a language library was generated from: a `*_proto_library`'s generated half.
ProtoGencodeInfo = provider(fields = {
    # Rust: the crate, and the proto packages it holds as modules (what a library importing
    # them names with prost's `extern_path`).
    "crate": provider_field(str | None, default = None),
    "language": provider_field(str),
    "packages": provider_field(list[str], default = []),
    # The proto_library it generated code for.
    "proto": provider_field(Label),
})
