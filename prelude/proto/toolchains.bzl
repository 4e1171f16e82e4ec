"""`protobuf_toolchains`: every toolchain target, generated from the pins file.

`toolchains/BUCK`:

```python
load("@prelude//proto:toolchains.bzl", "protobuf_toolchains")   # or "@protobuf//proto:…"
load(":pins.bzl", "PINS", "PLATFORMS", "TOOLS")

protobuf_toolchains(pins = PINS, tools = TOOLS, platforms = PLATFORMS)
```

For each tool and pinned version it defines one fetch target per platform
(`protoc-36.2-linux-x86_64`, sub-targets for each binary and for `include`), and toolchains
that `select()` among them for the execution platform: `protoc`, `buf`, one per plugin
(`protoc-gen-go`, …) at the tool's default version, and the same suffixed with each pinned
version (`protoc-31.1`). A platform without a pin gets a target that fails analysis naming
tool, version and platform, so only builds that need it fail.

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
| `protoc_gen_es` | path to protoc-gen-es's script from `npm install @bufbuild/protoc-gen-es` |
| `node` | the node executable protoc-gen-es runs on (default `node`) |
"""

load(":fetch.bzl", "protoreg_binary", "tool_distribution", "tool_missing")
load(":platform_setting.bzl", "platform_setting")
load(
    ":toolchain.bzl",
    "buf_toolchain",
    "exec_tool",
    "node_protoc_plugin",
    "protoc_plugin_toolchain",
    "protoc_toolchain",
    "toolchain_unavailable",
)

_PLUGIN_PREFIX = "protoc-gen-"

def _config_bool(key: str) -> bool:
    value = read_root_config("protobuf", key, "false").lower()
    if value not in ("true", "false"):
        fail("`.buckconfig` [protobuf] {} = {}: expected true or false".format(key, value))
    return value == "true"

def _config() -> struct:
    fetch_mode = read_root_config("protobuf", "fetch_mode", "helper")
    if fetch_mode not in ("helper", "native"):
        fail("`.buckconfig` [protobuf] fetch_mode = {}: expected helper or native".format(fetch_mode))
    registries = [read_root_config("protobuf", "registry", "")]
    registries.extend(read_root_config("protobuf", "mirrors", "").split(","))
    registries = [r.strip().rstrip("/") for r in registries if r.strip()]
    for registry in registries:
        if "://" in registry:
            fail("`.buckconfig` [protobuf]: registry `{}` must be HOST[:PORT]/NAMESPACE, without a scheme".format(registry))
    link = read_root_config("protobuf", "link", "")
    if link not in ("", "copy", "hardlink"):
        fail("`.buckconfig` [protobuf] link = {}: expected copy or hardlink".format(link))
    return struct(
        cache_dir = read_root_config("protobuf", "cache_dir", ""),
        fetch_mode = fetch_mode,
        link = link,
        node = read_root_config("protobuf", "node", "node"),
        offline = _config_bool("offline"),
        plain_http = _config_bool("plain_http"),
        protoc_gen_es = read_root_config("protobuf", "protoc_gen_es", ""),
        protoreg = read_root_config("protobuf", "protoreg", "target/release/protoreg"),
        registries = registries,
    )

def _distributions(
        tool: str,
        version: str,
        spec: dict,
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
            tool_missing(
                name = name,
                tool = tool,
                version = version,
                platform = platform_name,
                pinned_platforms = sorted(by_platform.keys()),
                # Outside a build that needs it (e.g. `buck2 build toolchains//...` on another
                # platform), this target is skipped rather than failed.
                target_compatible_with = [":" + platform_name],
                visibility = visibility,
            )
            continue
        format, size, sha256, url = pin
        tool_distribution(
            name = name,
            tool = tool,
            version = version,
            platform = platform_name,
            os = platform["os"],
            format = format,
            size = size,
            sha256 = sha256,
            url = url,
            strip_prefix = spec.get("strip_prefix", ""),
            binaries = [b + platform.get("exe_suffix", "") for b in spec.get("binaries", [])],
            directories = ["include"] if tool == "protoc" else [],
            fetch_mode = fetch_mode,
            sources = ["oci://{}/{}".format(r, spec["oci_repository"]) for r in config.registries],
            plain_http = config.plain_http,
            cache_dir = config.cache_dir,
            link = config.link,
            offline = config.offline,
            protoreg = protoreg,
            target_compatible_with = [":" + platform_name],
            visibility = visibility,
        )
    # No DEFAULT: on an execution platform that is none of these, Buck2's own error names
    # the toolchain and the conditions that did not match. A DEFAULT target would instead
    # fail every `buck2 build toolchains//...`.
    return choices

def _protoreg(tools: dict, pins: dict, platforms: dict, config: struct, visibility: list[str]) -> str:
    """Defines `:protoreg` as `[protobuf] protoreg` says; returns its label."""
    if config.protoreg == "pinned":
        if "protoreg" not in tools:
            fail("`.buckconfig` [protobuf] protoreg = pinned, but the pins file has no `protoreg` tool")
        spec = tools["protoreg"]
        for version in pins.get("protoreg", {}).values():
            for platform_name, pin in version.items():
                if pin[0] != "raw":
                    fail("The protoreg pin for {} is a {} archive: a pinned protoreg must be a raw binary, since it cannot unpack itself".format(platform_name, pin[0]))
        # Native mode and raw pins: fetching protoreg must not need protoreg.
        choices = _distributions("protoreg", spec["default"], spec, pins, platforms, config, "native", None, visibility)
        protoreg_binary(name = "protoreg", binary = select(choices), visibility = visibility)
    elif "//" in config.protoreg:
        return config.protoreg
    else:
        protoreg_binary(name = "protoreg", path = config.protoreg, visibility = visibility)
    return ":protoreg"

def protobuf_toolchains(
        pins: dict,
        tools: dict,
        platforms: dict,
        visibility: list[str] = ["PUBLIC"]) -> None:
    """Defines the protobuf toolchains of a `toolchains` package from the pins file."""
    config = _config()

    # select() keys, one per canonical platform, on the standard os/cpu labels.
    for platform_name in sorted(platforms.keys()):
        platform = platforms[platform_name]
        platform_setting(
            name = platform_name,
            settings = ["prelude//os:" + platform["os"], "prelude//cpu:" + platform["cpu"]],
            visibility = visibility,
        )

    protoreg = _protoreg(tools, pins, platforms, config, visibility)

    for tool in sorted(tools.keys()):
        if tool == "protoreg":
            continue
        spec = tools[tool]
        versions = {v: None for v in pins.get(tool, {}).keys()}
        versions[spec["default"]] = None
        for version in sorted(versions.keys()):
            choices = _distributions(tool, version, spec, pins, platforms, config, config.fetch_mode, protoreg, visibility)
            selected = "{}-{}-exec".format(tool, version)
            exec_tool(name = selected, actual = select(choices), visibility = visibility)
            names = [tool + "-" + version]
            if version == spec["default"]:
                names.append(tool)
            for name in names:
                _toolchain(tool, name, ":" + selected, visibility)

    # The toolchains the rules and macros name by default: a tool that has no pins yet still
    # gets a target, which fails the analysis of what uses it with the command that fixes it.
    for tool in ["buf", "protoc", "protoc-gen-go", "protoc-gen-go-grpc", "protoc-gen-validate"]:
        if tool not in tools:
            toolchain_unavailable(
                name = tool,
                message = "toolchains/pins.bzl has no pins for {}: run `protoreg bump {} VERSION`".format(tool, tool),
                visibility = visibility,
            )

    if config.protoc_gen_es:
        node_protoc_plugin(
            name = "protoc-gen-es-launcher",
            entry = config.protoc_gen_es,
            node = config.node,
            plugin_name = "es",
            visibility = visibility,
        )
        protoc_plugin_toolchain(
            name = "protoc-gen-es",
            plugin = ":protoc-gen-es-launcher",
            plugin_name = "es",
            local_only = True,
            visibility = visibility,
        )
    elif "protoc-gen-es" not in tools:
        toolchain_unavailable(
            name = "protoc-gen-es",
            message = "protoc-gen-es is a node program: `npm install @bufbuild/protoc-gen-es` and set " +
                      "`[protobuf] protoc_gen_es` in .buckconfig to its `bin/protoc-gen-es` " +
                      "(and `[protobuf] node` if node is not on PATH)",
            visibility = visibility,
        )

def _toolchain(tool: str, name: str, distribution: str, visibility: list[str]) -> None:
    if tool == "protoc":
        protoc_toolchain(name = name, distribution = distribution, visibility = visibility)
    elif tool == "buf":
        buf_toolchain(name = name, distribution = distribution, visibility = visibility)
    elif tool.startswith(_PLUGIN_PREFIX):
        protoc_plugin_toolchain(
            name = name,
            plugin = distribution,
            plugin_name = tool[len(_PLUGIN_PREFIX):],
            visibility = visibility,
        )
