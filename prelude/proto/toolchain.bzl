"""Toolchain rules for protoc, buf and protoc plugins.

Each reaches its tool through an `exec_dep`, so the tool is configured for the execution
platform: put the `select()` over platforms on that attribute (as `protobuf_toolchains`
does) and a Linux executor gets a Linux binary whatever the target platform or the host.

```python
protoc_toolchain(
    name = "protoc",
    distribution = select({":linux-x86_64": ":protoc-36.2-linux-x86_64", ...}),
)
```
"""

load(
    ":providers.bzl",
    "BufToolchainInfo",
    "ProtocPluginToolchainInfo",
    "ProtocToolchainInfo",
    "ScriptPluginInfo",
    "ToolDistributionInfo",
)

def _binary(ctx: AnalysisContext, dist: ToolDistributionInfo, name: str) -> Artifact:
    if name not in dist.binaries:
        fail("{}: {} {} for {} has no `{}` binary; it has: {}".format(
            ctx.label,
            dist.tool,
            dist.version,
            dist.platform,
            name,
            ", ".join(sorted(dist.binaries.keys())) or "none",
        ))
    return dist.binaries[name]

def _protoc_toolchain_impl(ctx: AnalysisContext) -> list[Provider]:
    dist = ctx.attrs.distribution[ToolDistributionInfo]
    protoc = RunInfo(args = cmd_args(_binary(ctx, dist, "protoc")))
    return [
        ctx.attrs.distribution[DefaultInfo],
        protoc,
        ProtocToolchainInfo(
            include = dist.root.project("include"),
            # protoc splits `--descriptor_set_in` as its OS splits paths.
            path_list_separator = ";" if dist.os == "windows" else ":",
            protoc = protoc,
            protoreg = ctx.attrs.protoreg[RunInfo],
            version = dist.version,
        ),
    ]

protoc_toolchain = rule(
    impl = _protoc_toolchain_impl,
    attrs = {
        "distribution": attrs.exec_dep(
            providers = [ToolDistributionInfo],
            doc = "The protoc release for the execution platform: `bin/protoc` and `include/`.",
        ),
        "protoreg": attrs.exec_dep(
            providers = [RunInfo],
            doc = "protoreg for the execution platform: code generation runs protoc through it, with no shell.",
        ),
    },
    is_toolchain_rule = True,
    doc = "protoc, with the well-known types from its own release.",
)

def _buf_toolchain_impl(ctx: AnalysisContext) -> list[Provider]:
    dist = ctx.attrs.distribution[ToolDistributionInfo]
    buf = RunInfo(args = cmd_args(_binary(ctx, dist, "buf")))
    return [
        ctx.attrs.distribution[DefaultInfo],
        buf,
        BufToolchainInfo(buf = buf, protoreg = ctx.attrs.protoreg[RunInfo], version = dist.version),
    ]

buf_toolchain = rule(
    impl = _buf_toolchain_impl,
    attrs = {
        "distribution": attrs.exec_dep(
            providers = [ToolDistributionInfo],
            doc = "The buf release for the execution platform.",
        ),
        "protoreg": attrs.exec_dep(
            providers = [RunInfo],
            doc = "protoreg for the execution platform: `expect_findings` checks buf's report with it.",
        ),
    },
    is_toolchain_rule = True,
    doc = "The buf CLI, for lint, format and breaking-change tests.",
)

def _protoc_plugin_toolchain_impl(ctx: AnalysisContext) -> list[Provider]:
    plugin = ctx.attrs.plugin[RunInfo]
    interpreter = None
    script = ctx.attrs.plugin.get(ScriptPluginInfo)
    if script != None:
        plugin = script.script
        interpreter = script.interpreter
    dist = ctx.attrs.plugin.get(ToolDistributionInfo)
    if dist != None:
        # A whole distribution: the binary named after the plugin, or its only binary.
        name = "protoc-gen-" + ctx.attrs.plugin_name
        if name not in dist.binaries and len(dist.binaries) == 1:
            name = dist.binaries.keys()[0]
        plugin = RunInfo(args = cmd_args(_binary(ctx, dist, name)))
    version = ctx.attrs.version or (dist.version if dist != None else "")
    return [
        DefaultInfo(default_outputs = ctx.attrs.plugin[DefaultInfo].default_outputs),
        plugin,
        ProtocPluginToolchainInfo(
            interpreter = interpreter,
            local_only = ctx.attrs.local_only,
            name = ctx.attrs.plugin_name,
            options = ctx.attrs.options,
            plugin = plugin,
            version = version,
        ),
    ]

protoc_plugin_toolchain = rule(
    impl = _protoc_plugin_toolchain_impl,
    attrs = {
        "local_only": attrs.bool(
            default = False,
            doc = "The plugin only runs on the machine running Buck2 (e.g. node_protoc_plugin).",
        ),
        "options": attrs.list(attrs.string(), default = [], doc = "`--NAME_opt` values every use passes."),
        "plugin": attrs.exec_dep(
            providers = [RunInfo],
            doc = "The plugin executable for the execution platform (a tool distribution, or " +
                  "any target whose RunInfo is one executable).",
        ),
        "plugin_name": attrs.string(doc = "NAME in protoc-gen-NAME, e.g. `go`, `go-grpc`, `es`."),
        "version": attrs.string(default = "", doc = "Defaults to the distribution's version."),
    },
    is_toolchain_rule = True,
    doc = "A protoc plugin, for `proto_plugin_gen` and the Go and ES convenience macros.",
)

def _node_protoc_plugin_impl(ctx: AnalysisContext) -> list[Provider]:
    # protoc starts a plugin from one path with no arguments, so protoreg stands in for this
    # one and runs `node SCRIPT` (`protoreg protoc --plugin-command`): no launcher script,
    # no shell, and node is the pinned one, an input like the script.
    if len(ctx.attrs.entry) > 1:
        fail("{}: `entry` is one script; got {}".format(ctx.label, ctx.attrs.entry))
    if ctx.attrs.entry:
        script = ctx.attrs.entry[0]
    else:
        # Not installed: analysis still works (so `buck2 build //...` analyzes everything on a
        # fresh checkout); running the plugin says what to do.
        script = ctx.actions.write(
            "protoc-gen-{}-missing.js".format(ctx.attrs.plugin_name),
            "process.stderr.write({}); process.exit(1);".format(json.encode("{}: {}\n".format(ctx.label, ctx.attrs.missing_hint))),
        )

    # The script and what it loads (the package's node_modules, and the lock files that say
    # which versions are installed) are inputs of every action that runs the plugin: moving
    # the pinned version reruns them, and an executor gets all of it.
    script_args = cmd_args(script, hidden = ctx.attrs.srcs)
    node = ctx.attrs.node[RunInfo]
    return [
        DefaultInfo(default_output = script, other_outputs = ctx.attrs.srcs),
        RunInfo(args = cmd_args(node, script_args)),
        ScriptPluginInfo(interpreter = node, script = RunInfo(args = script_args)),
    ]

node_protoc_plugin = rule(
    impl = _node_protoc_plugin_impl,
    attrs = {
        "entry": attrs.list(
            attrs.source(),
            doc = "The plugin's script, as `glob([\"node_modules/@bufbuild/protoc-gen-es/bin/protoc-gen-es\"])`: " +
                  "empty until `npm ci` has run, and then the plugin says so when it is run.",
        ),
        "missing_hint": attrs.string(
            default = "the plugin's npm package is not installed: run `npm ci` in this package",
            doc = "What running the plugin prints while `entry` is empty.",
        ),
        # A plain dep: this target is reached through the plugin toolchain's exec_dep, so it
        # is already configured for the execution platform, and so is node.
        "node": attrs.dep(
            providers = [RunInfo],
            default = "toolchains//:node",
            doc = "Node.js for the execution platform: the pinned one by default.",
        ),
        "plugin_name": attrs.string(doc = "NAME in protoc-gen-NAME."),
        "srcs": attrs.list(
            attrs.source(),
            default = [],
            doc = "Everything the script loads: `glob([\"node_modules/**\"])` and the lock file.",
        ),
    },
    doc = "A protoc plugin written in JavaScript (protoc-gen-es), run by the pinned Node.js " +
          "through protoreg: remote executors run it like any other plugin.",
)

def _exec_tool_impl(ctx: AnalysisContext) -> list[Provider]:
    actual = ctx.attrs.actual
    providers = [actual[DefaultInfo]]
    for provider in [RunInfo, ToolDistributionInfo]:
        if actual.get(provider) != None:
            providers.append(actual[provider])
    return providers

exec_tool = rule(
    impl = _exec_tool_impl,
    attrs = {
        "actual": attrs.dep(
            providers = [DefaultInfo],
            doc = "Usually a select() over platforms, resolved in this target's configuration.",
        ),
    },
    doc = "Forwards a tool chosen by select(). A toolchain reaches it through an exec_dep, so " +
          "this target, and with it the select(), is configured for the execution platform. " +
          "(A select() written on the toolchain's own attribute would be resolved for the " +
          "target platform instead: buck2 issue 254.)",
)

def _toolchain_unavailable_impl(ctx: AnalysisContext) -> list[Provider]:
    fail("{}: {}".format(ctx.label, ctx.attrs.message))

toolchain_unavailable = rule(
    impl = _toolchain_unavailable_impl,
    attrs = {"message": attrs.string(doc = "What is missing and how to provide it.")},
    is_toolchain_rule = True,
    doc = "A toolchain that is not configured: fails the analysis of whatever uses it.",
)
