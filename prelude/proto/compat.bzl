"""Which targets can be built: a target requires the toolchains it uses to be pinned.

`protobuf_toolchains` defines `toolchains//:<toolchain>-pinned` for every toolchain: a key
that holds everywhere when the pins file pins the tool, and nowhere when it does not. The
macros in `defs.bzl` add it to `target_compatible_with`, so `buck2 build //...` skips what
needs an unpinned tool (Buck2 requires a target to declare its own incompatibility), and
naming such a target says which `-pinned` key is unsatisfied.
"""

def requiring_toolchains(kwargs: dict, toolchains: list) -> dict:
    """`kwargs` with `target_compatible_with` extended by the toolchains' `-pinned` keys.

    Only toolchains of the `toolchains` cell have those keys; any other label (a user's own
    plugin toolchain) is the user's to make compatible.
    """
    keys = [t + "-pinned" for t in toolchains if t.startswith("toolchains//:")]
    if not keys:
        return kwargs
    kwargs = dict(kwargs)
    kwargs["target_compatible_with"] = kwargs.get("target_compatible_with", []) + keys
    return kwargs
