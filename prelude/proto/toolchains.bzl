"""`protobuf_toolchains`: every toolchain target, generated from the catalogue and the pins.

`toolchains/BUCK`:

```python
load("@prelude//proto:toolchains.bzl", "protobuf_toolchains")   # or "@protobuf//proto:…"
load(":pins.bzl", "DEFAULTS", "PINS", "PLATFORMS")
load(":tools.bzl", "TOOLS")

protobuf_toolchains(pins = PINS, tools = TOOLS, defaults = DEFAULTS, platforms = PLATFORMS)
```

`tools` is the catalogue (`tools.bzl`: each tool's layout, binaries and registry repository);
`defaults` the default version of each pinned tool. (Pins files written before the catalogue
kept each default in `TOOLS[tool]["default"]`; without `defaults`, that is read.)

For each tool and pinned version it defines one fetch target per platform
(`protoc-36.2-linux-x86_64`, sub-targets for each binary and for `include`), and toolchains
that `select()` among them for the execution platform: `protoc`, `buf`, one per plugin
(`protoc-gen-go`, …, any tool of the catalogue whose name starts with `protoc-gen-` or that
has a `plugin_name`) at the tool's default version, and the same suffixed with each pinned
version (`protoc-35.1`). A tool of the catalogue with no pins gets a toolchain target that
is skipped by patterns and, named, fails with the `protoreg bump` command that pins it. A platform without a pin gets a stand-in target that is
incompatible everywhere, and every toolchain gets the compatibility keys `compat.bzl`
describes, so what needs a tool that is not pinned for a platform is skipped there.

Read from `.buckconfig` `[protobuf]` (all optional):

| key | meaning |
|---|---|
| `fetch_mode` | `helper` (default: one local `protoreg materialize`) or `native` (`download_file`, then `protoreg extract`) |
| `registry` | primary OCI registry, `HOST[:PORT]/NAMESPACE` |
| `mirrors` | more registries, comma-separated, tried in order after it |
| `plain_http` | `true` for registries without TLS |
| `cache_dir` | protoreg's cache directory |
| `link` | how protoreg materializes from its cache: `copy` or `hardlink` |
| `offline` | `true`: only protoreg's cache, no network |
| `protoreg` | a path to a locally built protoreg (relative to the project root), a target, or `pinned` for the `protoreg` entry of the pins |
| `protoc_gen_es` | the label of a `node_protoc_plugin` target for protoc-gen-es (this repository: `root//examples/es:protoc-gen-es`) |
| `node` | read by that target's BUCK file here: the node target protoc-gen-es runs on (default `toolchains//:node`, the pinned Node.js) |
| `remote_execution_use_case` | read by `prelude//platforms`: the use case of the remote executors (default `buck2-default`) |
| `cxx_runtime`, `python_runtime`, `java_runtime`, `go_runtime`, `rust_runtime` | read by languages.bzl: each language's `proto_runtime` target |
| `go_runtime_deps`, `rust_runtime_deps` | read by languages.bzl: the runtime's other packages (Go) or crates (Rust) generated code names, comma-separated |
"""

load(":compat.bzl", "KEYED_PLATFORMS", "compatibility_key")
load(":config.bzl", "protobuf_config")
load(":fetch.bzl", "protoreg_binary", "tool_distribution", "tool_missing")
load(":platform_setting.bzl", "availability", "platform_setting")
load(":proto_archive.bzl", "library_unavailable", "proto_archive_library")
load(
    ":toolchain.bzl",
    "buf_toolchain",
    "exec_tool",
    "protoc_plugin_toolchain",
    "protoc_toolchain",
    "toolchain_unavailable",
)

_PLUGIN_PREFIX = "protoc-gen-"

# What must run on the machine running Buck2 (a local path, the helper's network and cache),
# when this repository's own platforms make the host's executor remote only
# (`[protobuf_re] mode = remote`): then `prelude//platforms:exec-local` is registered for it.
_HERE = ["prelude//platforms:local-executor"] if read_root_config("protobuf_re", "mode", "") == "remote" else []

def _check_spec(tool: str, spec: typing.Any) -> None:
    """What the rules read of a catalogue entry (`protoreg` checks the rest, naming the line)."""
    where = "toolchains/tools.bzl: TOOLS[\"{}\"]".format(tool)
    if type(spec) != "dict":
        fail("{} must be a dict of fields (the comment at the top of tools.bzl lists them)".format(where))
    if spec.get("kind") == "protos":
        srcs = spec.get("srcs")
        if type(srcs) != "list" or not srcs:
            fail("{} has no `srcs`: name the archive's .proto files, e.g. [\"google/api/annotations.proto\"]".format(where))
    else:
        binaries = spec.get("binaries")
        if type(binaries) != "list" or not binaries:
            fail("{} has no `binaries`: name the executables in the tree, e.g. [\"bin/protoc\"]".format(where))
    if type(spec.get("oci_repository")) != "string":
        fail("{} has no `oci_repository`: where it lives in the registry, e.g. \"plugins/{}\"".format(where, tool))

def _asset_stem(url: str) -> str:
    """The asset's file name without its archive extension (protoreg's `Format::stem`)."""
    name = url.split("/")[-1]
    for ext in [".zip", ".tar.gz", ".tgz", ".tar.xz", ".txz"]:
        if name.endswith(ext):
            return name[:-len(ext)]
    return name

def _fetch_args(
        tool: str,
        version: str,
        spec: dict[str, typing.Any],
        pin: tuple,
        config: struct,
        fetch_mode: str,
        protoreg: str | None,
        visibility: list[str]) -> dict[str, typing.Any]:
    """The `tool_distribution` arguments of one pin: what it is and where it comes from."""
    format, size, sha256, url = pin
    return dict(
        tool = tool,
        version = version,
        format = format,
        size = size,
        sha256 = sha256,
        url = url,
        strip_prefix = spec.get("strip_prefix", "").replace("{version}", version).replace("{asset_stem}", _asset_stem(url)),
        fetch_mode = fetch_mode,
        sources = ["oci://{}/{}".format(r, spec["oci_repository"]) for r in config.registries],
        plain_http = config.plain_http,
        cache_dir = config.cache_dir,
        link = config.link,
        offline = config.offline,
        protoreg = protoreg,
        # Helper mode fetches on this machine: with this repository's platforms in
        # `[protobuf_re] mode = remote`, on `prelude//platforms:exec-local`, whence the tree
        # reaches the executor as an input.
        exec_compatible_with = _HERE if fetch_mode == "helper" else [],
        visibility = visibility,
    )

def _proto_archives(
        tool: str,
        spec: dict[str, typing.Any],
        default: str | None,
        by_version: dict,
        config: struct,
        protoreg: str | None,
        visibility: list[str]) -> None:
    """An archive of .proto sources: per pinned version, the fetched archive and the library
    of its `srcs` (`<tool>-<version>`, and `<tool>` for the default)."""
    for version in sorted([v for v, p in by_version.items() if p]):
        pin = by_version[version].get("any")
        if pin == None:
            fail("toolchains/pins.bzl: {} {} is an archive of .proto sources, pinned for `any`, not per platform".format(tool, version))
        archive = "{}-{}-archive".format(tool, version)
        tool_distribution(
            name = archive,
            platform = "any",
            os = "any",
            **_fetch_args(tool, version, spec, pin, config, config.fetch_mode, protoreg, visibility)
        )
        names = [tool + "-" + version]
        if version == default:
            names.append(tool)
        for name in names:
            # Available wherever protoc is: what uses it needs nothing more.
            _keys(name, list(KEYED_PLATFORMS.keys()), visibility)
            proto_archive_library(
                name = name,
                archive = ":" + archive,
                srcs = spec["srcs"],
                target_compatible_with = compatibility_key("toolchains//:protoc"),
                visibility = visibility,
            )

def _distributions(
        tool: str,
        version: str,
        spec: dict[str, typing.Any],
        pins: dict,
        platforms: dict,
        config: struct,
        fetch_mode: str,
        protoreg: str | None,
        visibility: list[str]) -> dict:
    """Defines one target per platform for (tool, version); returns the select() over them."""
    by_platform = pins.get(tool, {}).get(version, {})
    choices = {}
    for platform_name in sorted(platforms.keys()):
        platform = platforms[platform_name]
        name = "{}-{}-{}".format(tool, version, platform_name)
        choices[":" + platform_name] = ":" + name
        pin = by_platform.get(platform_name)
        if pin == None:
            # Incompatible everywhere: `buck2 build toolchains//...` skips it, and an executor
            # that needs it is refused naming `<name>-pinned` (Buck2 then tries the next
            # registered execution platform).
            availability(name = name + "-pinned", available = False, visibility = visibility)
            tool_missing(
                name = name,
                tool = tool,
                version = version,
                platform = platform_name,
                pinned_platforms = sorted(by_platform.keys()),
                target_compatible_with = [":" + name + "-pinned"],
                visibility = visibility,
            )
            continue
        binaries = [b + platform.get("exe_suffix", "") for b in spec.get("platform_binaries", {}).get(platform_name, spec.get("binaries", []))]
        if pin[0] == "raw":
            # A raw pin is the one executable itself (buf's Windows release is a bare
            # buf.exe): the tool's first binary.
            binaries = binaries[:1]
        tool_distribution(
            name = name,
            platform = platform_name,
            os = platform["os"],
            binaries = binaries,
            directories = spec.get("directories", ["include"] if tool == "protoc" else []),
            target_compatible_with = [":" + platform_name],
            **_fetch_args(tool, version, spec, pin, config, fetch_mode, protoreg, visibility)
        )
    # No DEFAULT: on an execution platform that is none of these, Buck2's own error names
    # the toolchain and the conditions that did not match. A DEFAULT target would instead
    # fail every `buck2 build toolchains//...`.
    return choices

def _protoreg(tools: dict, defaults: dict[str, str], pins: dict, platforms: dict, config: struct, visibility: list[str]) -> str:
    """Defines `:protoreg` as `[protobuf] protoreg` says; returns its label."""
    if config.protoreg == "pinned":
        if "protoreg" not in tools or "protoreg" not in defaults:
            fail("`.buckconfig` [protobuf] protoreg = pinned, but the pins file has no `protoreg` tool")
        spec = tools["protoreg"]
        for version in pins.get("protoreg", {}).values():
            for platform_name, pin in version.items():
                if pin[0] != "raw":
                    fail("The protoreg pin for {} is a {} archive: a pinned protoreg must be a raw binary, since it cannot unpack itself".format(platform_name, pin[0]))
        # Native mode and raw pins: fetching protoreg must not need protoreg.
        choices = _distributions("protoreg", defaults["protoreg"], spec, pins, platforms, config, "native", None, visibility)
        protoreg_binary(name = "protoreg", binary = select(choices), visibility = visibility)
    elif "//" in config.protoreg:
        return config.protoreg
    else:
        protoreg_binary(
            name = "protoreg",
            path = config.protoreg,
            exe_suffix = ".exe" if host_info().os.is_windows else "",
            # Its copy runs on this machine (`_HERE`).
            exec_compatible_with = _HERE,
            visibility = visibility,
        )
    return ":protoreg"

# The toolchains the rules and macros name by default.
DEFAULT_TOOLCHAINS = ["buf", "protoc", "protoc-gen-go", "protoc-gen-go-grpc", "protoc-gen-validate"]

def _keys(name: str, platforms: list[str], visibility: list[str]) -> None:
    """The compatibility keys of one toolchain (compat.bzl): `<name>-on-<platform>` for each
    keyed platform, holding where `platforms` says, and `<name>-pinned`, holding if any."""
    for platform in KEYED_PLATFORMS:
        availability(name = "{}-on-{}".format(name, platform), available = platform in platforms, visibility = visibility)
    availability(name = name + "-pinned", available = len(platforms) > 0, visibility = visibility)

def _unavailable(name: str, message: str, visibility: list[str], toolchain: bool = True) -> None:
    """A toolchain (or archive library) that is not there: incompatible everywhere, so
    `buck2 build //...` skips what needs it, and its `message` says how to provide it."""
    _keys(name, [], visibility)
    (toolchain_unavailable if toolchain else library_unavailable)(
        name = name,
        message = message,
        target_compatible_with = [":" + name + "-pinned"],
        visibility = visibility,
    )

def merge_pins(shipped: dict, own: dict) -> dict:
    """Two pins files' `PINS` as one, `own` winning per tool and version: a repository
    loading this cell's shipped pins (`@protobuf//toolchains:pins.bzl`) adds its own tools and
    versions, or replaces a shipped version's pins, without copying the shipped file.

    ```python
    load("@protobuf//toolchains:pins.bzl", SHIPPED_DEFAULTS = "DEFAULTS", SHIPPED_PINS = "PINS", "PLATFORMS")
    load("@protobuf//toolchains:tools.bzl", SHIPPED_TOOLS = "TOOLS")
    load(":pins.bzl", "DEFAULTS", "PINS")  # this repository's own, moved by `protoreg bump`

    protobuf_toolchains(
        pins = merge_pins(SHIPPED_PINS, PINS),
        tools = SHIPPED_TOOLS,  # `| TOOLS` for tools of your own catalogue
        defaults = SHIPPED_DEFAULTS | DEFAULTS,
        platforms = PLATFORMS,
    )
    ```
    """
    merged = dict(shipped)
    for tool, versions in own.items():
        merged[tool] = shipped.get(tool, {}) | versions
    return merged

def protobuf_toolchains(
        pins: dict,
        tools: dict,
        platforms: dict,
        defaults: dict[str, str] | None = None,
        visibility: list[str] = ["PUBLIC"]) -> None:
    """Defines the protobuf toolchains of a `toolchains` package from the catalogue and pins."""
    config = protobuf_config()
    if defaults == None:
        defaults = {tool: spec["default"] for tool, spec in tools.items() if "default" in spec}

    # select() keys, one per platform, on the standard os/cpu labels: the pins file's, and
    # every platform compat.bzl keys compatibility on.
    settings = {name: (p["os"], p["cpu"]) for name, p in platforms.items()}
    for name, os_cpu in KEYED_PLATFORMS.items():
        settings.setdefault(name, os_cpu)
    for platform_name in sorted(settings.keys()):
        os, cpu = settings[platform_name]
        platform_setting(
            name = platform_name,
            settings = ["prelude//os:" + os, "prelude//cpu:" + cpu],
            visibility = visibility,
        )

    protoreg = _protoreg(tools, defaults, pins, platforms, config, visibility)

    for tool in sorted(tools.keys()):
        _check_spec(tool, tools[tool])
        if tool == "protoreg":
            continue
        spec = tools[tool]
        by_version = pins.get(tool, {})
        default = defaults.get(tool)
        # protoc, buf and plugins are toolchains; another tool (node) is a plain target, and so
        # is what stands in for it unpinned.
        toolchain = spec.get("kind") != "protos" and (
            tool in ["protoc", "buf"] or "plugin_name" in spec or tool.startswith(_PLUGIN_PREFIX)
        )
        if default == None:
            # Declared, never pinned.
            _unavailable(
                tool,
                "toolchains/pins.bzl has no pins for {tool}: run `protoreg bump {tool} VERSION` ".format(tool = tool) +
                "(`protoreg versions {tool} --upstream` lists the versions)".format(tool = tool),
                visibility,
                toolchain,
            )
        elif not by_version.get(default):
            _unavailable(
                tool,
                "toolchains/pins.bzl has no pins for {tool} {version}: run `protoreg bump {tool} {version}`".format(
                    tool = tool,
                    version = default,
                ),
                visibility,
                toolchain,
            )
        if spec.get("kind") == "protos":
            _proto_archives(tool, spec, default, by_version, config, protoreg, visibility)
            continue
        for version in sorted([v for v, p in by_version.items() if p]):
            choices = _distributions(tool, version, spec, pins, platforms, config, config.fetch_mode, protoreg, visibility)
            selected = "{}-{}-exec".format(tool, version)
            exec_tool(
                name = selected,
                actual = select(choices),
                # Any pinned platform: on an executor without a pin Buck2 tries the next
                # registered execution platform, and patterns skip this target.
                compatible_with = [":" + p for p in sorted(by_version[version].keys()) if p in platforms],
                visibility = visibility,
            )
            names = [tool + "-" + version]
            if version == default:
                names.append(tool)
            for name in names:
                _keys(name, [p for p in by_version[version].keys() if p in platforms], visibility)
                _toolchain(tool, spec, name, ":" + selected, protoreg, visibility)

    # A tool that has no pins yet still gets its toolchain target, which is skipped by
    # `buck2 build //...` and, named explicitly, fails with the command that fixes it.
    for tool in DEFAULT_TOOLCHAINS:
        if tool not in tools:
            _unavailable(
                tool,
                "toolchains/pins.bzl has no pins for {tool}: run `protoreg bump {tool} VERSION` ".format(tool = tool) +
                "(`protoreg versions {tool} --upstream` lists the versions)".format(tool = tool),
                visibility,
            )

    if config.protoc_gen_es:
        # A script, run by the pinned node (node_protoc_plugin): wherever node is pinned.
        node = defaults.get("node")
        _keys("protoc-gen-es", [p for p in pins.get("node", {}).get(node, {}).keys() if p in platforms] if node else [], visibility)
        protoc_plugin_toolchain(
            name = "protoc-gen-es",
            plugin = config.protoc_gen_es,
            plugin_name = "es",
            target_compatible_with = compatibility_key("toolchains//:protoc-gen-es"),
            visibility = visibility,
        )
    elif "protoc-gen-es" not in tools:
        _unavailable(
            "protoc-gen-es",
            "protoc-gen-es is a node program: define a `node_protoc_plugin` target for it " +
            "(examples/es/BUCK shows one) and name it in `[protobuf] protoc_gen_es` in .buckconfig",
            visibility,
        )

def _toolchain(tool: str, spec: dict[str, typing.Any], name: str, distribution: str, protoreg: str, visibility: list[str]) -> None:
    # Skipped where its tool has no pin, like what uses it.
    compatible = compatibility_key("toolchains//:" + name)
    plugin_name = spec.get("plugin_name")
    if plugin_name == None and tool.startswith(_PLUGIN_PREFIX):
        plugin_name = tool[len(_PLUGIN_PREFIX):]
    if tool == "protoc":
        protoc_toolchain(
            name = name,
            distribution = distribution,
            protoreg = protoreg,
            target_compatible_with = compatible,
            visibility = visibility,
        )
    elif tool == "buf":
        buf_toolchain(
            name = name,
            distribution = distribution,
            protoreg = protoreg,
            target_compatible_with = compatible,
            visibility = visibility,
        )
    elif plugin_name != None:
        protoc_plugin_toolchain(
            name = name,
            plugin = distribution,
            plugin_name = plugin_name,
            target_compatible_with = compatible,
            visibility = visibility,
        )
    else:
        # Any other tool (node): the binary for the execution platform, `toolchains//:node`.
        exec_tool(name = name, actual = distribution, target_compatible_with = compatible, visibility = visibility)
