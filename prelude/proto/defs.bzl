"""The protobuf rules, in one load.

```python
load("@protobuf//proto:defs.bzl", "proto_library", "go_proto_gen", "buf_lint_test")
```

(With this repository's own prelude they are globals already.)
"""

load(":buf.bzl", _buf_breaking_test = "buf_breaking_test", _buf_format_test = "buf_format_test", _buf_lint_test = "buf_lint_test")
load(":codegen.bzl", _es_proto_gen = "es_proto_gen", _go_proto_gen = "go_proto_gen", _proto_builtin_gen = "proto_builtin_gen", _proto_plugin_gen = "proto_plugin_gen")
load(":proto_library.bzl", _proto_library = "proto_library")
load(":providers.bzl", _ProtoInfo = "ProtoInfo", _ProtocPluginToolchainInfo = "ProtocPluginToolchainInfo", _ProtocToolchainInfo = "ProtocToolchainInfo", _BufToolchainInfo = "BufToolchainInfo")

BufToolchainInfo = _BufToolchainInfo
ProtoInfo = _ProtoInfo
ProtocPluginToolchainInfo = _ProtocPluginToolchainInfo
ProtocToolchainInfo = _ProtocToolchainInfo
buf_breaking_test = _buf_breaking_test
buf_format_test = _buf_format_test
buf_lint_test = _buf_lint_test
es_proto_gen = _es_proto_gen
go_proto_gen = _go_proto_gen
proto_builtin_gen = _proto_builtin_gen
proto_library = _proto_library
proto_plugin_gen = _proto_plugin_gen
