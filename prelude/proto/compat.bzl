"""Which targets can be built: a target requires the toolchains it uses to be pinned.

For every toolchain, `protobuf_toolchains` defines two kinds of `target_compatible_with`
keys: `toolchains//:<toolchain>-on-<platform>` holds when the pins file pins that tool for
that platform (and nowhere otherwise), and `toolchains//:<toolchain>-pinned` holds when it
pins the tool at all. The macros in `defs.bzl` require, for each `toolchains//` toolchain a
target uses, the key of the target platform (`-pinned` on a platform outside the table), so
`buck2 build //...` skips what needs a tool that is not pinned there (Buck2 requires a
target to declare its own incompatibility) and naming such a target says which key is
unsatisfied.

The key follows the target platform, which for a local build is the executor too: a cross
build whose executor has the pin but whose target platform does not is skipped as well.
"""

# The platforms `protobuf_toolchains` defines keys for, with their `prelude//os` and
# `prelude//cpu` values (protoreg's platform table; a pins file may name more).
KEYED_PLATFORMS = {
    "darwin-arm64": ("macos", "arm64"),
    "darwin-x86_64": ("macos", "x86_64"),
    "linux-aarch64": ("linux", "arm64"),
    "linux-x86_64": ("linux", "x86_64"),
    "windows-arm64": ("windows", "arm64"),
    "windows-x86_64": ("windows", "x86_64"),
}

def compatibility_key(toolchain: str) -> Select:
    """The key of `toolchain` for the target platform."""
    keys = {"toolchains//:" + p: [toolchain + "-on-" + p] for p in KEYED_PLATFORMS}
    keys["DEFAULT"] = [toolchain + "-pinned"]
    return select(keys)

def requiring_toolchains(kwargs: dict, toolchains: list) -> dict:
    """`kwargs` with `target_compatible_with` extended by the toolchains' keys.

    Only toolchains of the `toolchains` cell have those keys; any other label (a user's own
    plugin toolchain) is the user's to make compatible.
    """
    keys = [t for t in toolchains if t.startswith("toolchains//:")]
    if not keys:
        return kwargs
    kwargs = dict(kwargs)
    compatible = kwargs.get("target_compatible_with", [])
    for toolchain in keys:
        compatible = compatible + compatibility_key(toolchain)
    kwargs["target_compatible_with"] = compatible
    return kwargs
