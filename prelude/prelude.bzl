# This repository's prelude. Buck2 loads it implicitly: its public symbols are globals in
# every BUCK file and in every .bzl outside this cell, and the fields of `native` are BUCK
# globals too. It replaces Meta's prelude entirely, so it defines the few configuration
# rules and targets (prelude//os, prelude//cpu, prelude//platforms) a build needs, and the
# protobuf rules. To keep Meta's prelude instead, add this directory as a `protobuf` cell
# and load the rules from `@protobuf//proto:defs.bzl` (see proto/README.md).

load("//configurations:rules.bzl", _config_setting = "config_setting", _constraint_setting = "constraint_setting", _constraint_value = "constraint_value", _platform = "platform")
load("//:export_file.bzl", _export_file = "export_file")
load(
    "//proto:defs.bzl",
    _buf_breaking_test = "buf_breaking_test",
    _buf_format_test = "buf_format_test",
    _buf_lint_test = "buf_lint_test",
    _es_proto_gen = "es_proto_gen",
    _go_proto_gen = "go_proto_gen",
    _node_protoc_plugin = "node_protoc_plugin",
    _proto_builtin_gen = "proto_builtin_gen",
    _proto_library = "proto_library",
    _proto_plugin_gen = "proto_plugin_gen",
    _registry_image = "registry_image",
)

buf_breaking_test = _buf_breaking_test
buf_format_test = _buf_format_test
buf_lint_test = _buf_lint_test
config_setting = _config_setting
constraint_setting = _constraint_setting
constraint_value = _constraint_value
es_proto_gen = _es_proto_gen
export_file = _export_file
go_proto_gen = _go_proto_gen
node_protoc_plugin = _node_protoc_plugin
platform = _platform
proto_builtin_gen = _proto_builtin_gen
proto_library = _proto_library
proto_plugin_gen = _proto_plugin_gen
registry_image = _registry_image

native = struct(
    buf_breaking_test = _buf_breaking_test,
    buf_format_test = _buf_format_test,
    buf_lint_test = _buf_lint_test,
    config_setting = _config_setting,
    constraint_setting = _constraint_setting,
    constraint_value = _constraint_value,
    es_proto_gen = _es_proto_gen,
    export_file = _export_file,
    go_proto_gen = _go_proto_gen,
    node_protoc_plugin = _node_protoc_plugin,
    platform = _platform,
    proto_builtin_gen = _proto_builtin_gen,
    proto_library = _proto_library,
    proto_plugin_gen = _proto_plugin_gen,
    registry_image = _registry_image,
)
