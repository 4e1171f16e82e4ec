"""The protobuf rules, in one load.

```python
load("@protobuf//proto:defs.bzl", "proto_library", "go_proto_gen", "buf_lint_test")
```

(With this repository's own prelude they are globals already.)
"""

load(":baseline.bzl", _registry_image = "registry_image")
load(":buf.bzl", _buf_breaking_test = "buf_breaking_test", _buf_format_test = "buf_format_test", _buf_lint_test = "buf_lint_test")
load(":compat.bzl", "requiring_toolchains")
load(":codegen.bzl", _es_proto_gen = "es_proto_gen", _go_proto_gen = "go_proto_gen", _proto_builtin_gen = "proto_builtin_gen", _proto_plugin_gen = "proto_plugin_gen")
load(":gencode.bzl", _proto_gencode = "proto_gencode")
load(":proto_library.bzl", _proto_library = "proto_library")
load(":runtime.bzl", _proto_runtime = "proto_runtime")
load(":toolchain.bzl", _node_protoc_plugin = "node_protoc_plugin")
load(":providers.bzl", _ProtoInfo = "ProtoInfo", _ProtocPluginToolchainInfo = "ProtocPluginToolchainInfo", _ProtocToolchainInfo = "ProtocToolchainInfo", _BufToolchainInfo = "BufToolchainInfo")

BufToolchainInfo = _BufToolchainInfo
ProtoInfo = _ProtoInfo
ProtocPluginToolchainInfo = _ProtocPluginToolchainInfo
ProtocToolchainInfo = _ProtocToolchainInfo
es_proto_gen = _es_proto_gen
go_proto_gen = _go_proto_gen
registry_image = _registry_image

# The language libraries' parts; the macros themselves (cxx_proto_library, …) call Meta's
# prelude's rules, so they are in languages.bzl, loaded beside it.
proto_gencode = _proto_gencode
proto_runtime = _proto_runtime

# The rules, each requiring the toolchains it uses by default to be pinned (compat.bzl).

def proto_library(**kwargs) -> None:
    # Libraries of the toolchains cell (`toolchains//:googleapis`) are pinned like tools.
    _proto_library(**requiring_toolchains(kwargs, ["toolchains//:protoc"] + kwargs.get("deps", [])))

def proto_builtin_gen(**kwargs) -> None:
    _proto_builtin_gen(**requiring_toolchains(kwargs, ["toolchains//:protoc"]))

def proto_plugin_gen(**kwargs) -> None:
    _proto_plugin_gen(**requiring_toolchains(kwargs, ["toolchains//:protoc"] + kwargs.get("plugins", [])))

def node_protoc_plugin(**kwargs) -> None:
    # Runs on the pinned node by default: skipped where node is not pinned.
    _node_protoc_plugin(**requiring_toolchains(kwargs, [kwargs.get("node", "toolchains//:node")]))

def buf_lint_test(**kwargs) -> None:
    _buf_lint_test(**requiring_toolchains(kwargs, ["toolchains//:buf"]))

def buf_format_test(**kwargs) -> None:
    _buf_format_test(**requiring_toolchains(kwargs, ["toolchains//:buf"]))

def buf_breaking_test(**kwargs) -> None:
    _buf_breaking_test(**requiring_toolchains(kwargs, ["toolchains//:buf"]))
