"""Code generation from proto_library targets.

```python
# protoc's built-in generators, one output directory per language (sub-targets [cpp], …)
proto_builtin_gen(name = "weather_cc_py", protos = [":weather"], languages = ["cpp", "python", "pyi"])

# any plugin toolchains, with options: a directory and sub-target per plugin
proto_plugin_gen(
    name = "weather_validate",
    protos = [":weather"],
    plugins = ["toolchains//:protoc-gen-validate"],
    options = {"validate": ["lang=go"]},
)

# Go (and gRPC) and ES
go_proto_gen(name = "weather_go", protos = [":weather"], grpc = True)
es_proto_gen(name = "weather_es", protos = [":weather"])
```

Code is generated for the direct sources of `protos`; their deps are only read, as imports.
"""

load(":compat.bzl", "requiring_toolchains")
load(":protoc.bzl", "ProtocGenerator", "run_protoc_generators")
load(":providers.bzl", "ProtoInfo", "ProtocPluginToolchainInfo", "ProtocToolchainInfo")

# protoc's own generators, each `--LANG_out`.
BUILTIN_LANGUAGES = ["cpp", "csharp", "java", "kotlin", "objc", "php", "pyi", "python", "ruby"]

def _check_option_keys(ctx: AnalysisContext, options: dict, known: list[str]) -> None:
    for key in options.keys():
        if key not in known:
            fail("{}: `options` has `{}`, which is none of this target's generators: {}".format(
                ctx.label,
                key,
                ", ".join(known),
            ))

def _proto_builtin_gen_impl(ctx: AnalysisContext) -> list[Provider]:
    _check_option_keys(ctx, ctx.attrs.options, ctx.attrs.languages)
    generators = [
        ProtocGenerator(
            name = language,
            out = ctx.actions.declare_output(language, dir = True),
            options = ctx.attrs.options.get(language, []),
            plugin = None,
        )
        for language in ctx.attrs.languages
    ]
    run_protoc_generators(
        ctx,
        ctx.attrs._protoc[ProtocToolchainInfo],
        [p[ProtoInfo] for p in ctx.attrs.protos],
        generators,
        category = "protoc_builtin_gen",
    )
    return [DefaultInfo(
        default_outputs = [g.out for g in generators],
        sub_targets = {g.name: [DefaultInfo(default_output = g.out)] for g in generators},
    )]

proto_builtin_gen = rule(
    impl = _proto_builtin_gen_impl,
    attrs = {
        "languages": attrs.list(
            attrs.enum(BUILTIN_LANGUAGES),
            doc = "protoc's generators to run; each gets its own directory and sub-target.",
        ),
        "options": attrs.dict(
            attrs.string(),
            attrs.list(attrs.string()),
            default = {},
            doc = "`--LANG_opt` values by language, e.g. `{\"cpp\": [\"lite\"]}`.",
        ),
        "protos": attrs.list(attrs.dep(providers = [ProtoInfo]), doc = "proto_library targets to generate for."),
        "_protoc": attrs.toolchain_dep(default = "toolchains//:protoc", providers = [ProtocToolchainInfo]),
    },
    doc = "Code from protoc's built-in generators (C++, Python, pyi, Java, Kotlin, C#, " +
          "Objective-C, PHP, Ruby).",
)

def _proto_plugin_gen_impl(ctx: AnalysisContext) -> list[Provider]:
    plugins = [p[ProtocPluginToolchainInfo] for p in ctx.attrs.plugins]
    if not plugins:
        fail("{}: `plugins` is empty".format(ctx.label))
    _check_option_keys(ctx, ctx.attrs.options, [p.name for p in plugins])

    # One directory per plugin: Buck2 lets an action bind each output once, so plugins that
    # belong together (go and go-grpc) write side by side, not into one directory.
    generators = [
        ProtocGenerator(
            name = plugin.name,
            out = ctx.actions.declare_output(plugin.name, dir = True),
            options = plugin.options + ctx.attrs.options.get(plugin.name, []),
            plugin = plugin.plugin,
            interpreter = plugin.interpreter,
        )
        for plugin in plugins
    ]
    local_only = False
    for plugin in plugins:
        local_only = local_only or plugin.local_only
    run_protoc_generators(
        ctx,
        ctx.attrs._protoc[ProtocToolchainInfo],
        [p[ProtoInfo] for p in ctx.attrs.protos],
        generators,
        category = "protoc_plugin_gen",
        local_only = local_only,
    )
    return [DefaultInfo(
        default_outputs = [g.out for g in generators],
        sub_targets = {g.name: [DefaultInfo(default_output = g.out)] for g in generators},
    )]

proto_plugin_gen = rule(
    impl = _proto_plugin_gen_impl,
    attrs = {
        "options": attrs.dict(
            attrs.string(),
            attrs.list(attrs.string()),
            default = {},
            doc = "`--NAME_opt` values by plugin name, after the toolchain's own.",
        ),
        "plugins": attrs.list(
            attrs.toolchain_dep(providers = [ProtocPluginToolchainInfo]),
            doc = "Plugin toolchains, e.g. `toolchains//:protoc-gen-go`.",
        ),
        "protos": attrs.list(attrs.dep(providers = [ProtoInfo]), doc = "proto_library targets to generate for."),
        "_protoc": attrs.toolchain_dep(default = "toolchains//:protoc", providers = [ProtocToolchainInfo]),
    },
    doc = "Code from protoc plugins: a directory and a sub-target per plugin name.",
)

def go_proto_gen(
        name: str,
        protos: list,
        grpc: bool = False,
        go_options: list[str] = ["paths=source_relative"],
        grpc_options: list[str] = ["paths=source_relative"],
        go_plugin: str = "toolchains//:protoc-gen-go",
        grpc_plugin: str = "toolchains//:protoc-gen-go-grpc",
        **kwargs) -> None:
    """Go messages (protoc-gen-go), and with `grpc = True` services (protoc-gen-go-grpc).

    Sub-targets `[go]` and `[go-grpc]` are the two output directories.

    `paths=source_relative` puts each `.pb.go` beside its import path, which needs no
    `go_package` mapping; pass `go_options = []` to lay files out by `go_package` instead.
    """
    plugins = [go_plugin]
    options = {"go": go_options}
    if grpc:
        plugins.append(grpc_plugin)
        options["go-grpc"] = grpc_options
    proto_plugin_gen(
        name = name,
        protos = protos,
        plugins = plugins,
        options = options,
        **requiring_toolchains(kwargs, ["toolchains//:protoc"] + plugins)
    )

def es_proto_gen(
        name: str,
        protos: list,
        target: str = "ts",
        options: list[str] = [],
        plugin: str = "toolchains//:protoc-gen-es",
        **kwargs) -> None:
    """TypeScript or JavaScript (protoc-gen-es): `target` is `ts`, `js`, `dts` or a `+` list."""
    proto_plugin_gen(
        name = name,
        protos = protos,
        plugins = [plugin],
        options = {"es": ["target=" + target] + options},
        **requiring_toolchains(kwargs, ["toolchains//:protoc", plugin])
    )
