"""Execution platforms, and the host's place among the five canonical platforms.

An execution platform says where actions run. This repository registers the machine running
Buck2 (`:execution`: local, hybrid or remote as `.buckconfig` `[protobuf_re] mode` says), and
defines one remote execution platform per canonical platform (`:execution-remote` registers
them all) for a remote execution setup.
Toolchains never look at the host: they `select()` on the execution platform their
`exec_dep`s are configured for, so a remote Linux executor gets a Linux protoc even when
Buck2 itself runs on a Mac.
"""

load("//configurations:rules.bzl", "configuration_union")

# The canonical platform names, with the constraint values that spell them in Buck2.
CANONICAL_PLATFORMS = {
    "darwin-arm64": struct(os = "macos", cpu = "arm64"),
    "darwin-x86_64": struct(os = "macos", cpu = "x86_64"),
    "linux-aarch64": struct(os = "linux", cpu = "arm64"),
    "linux-x86_64": struct(os = "linux", cpu = "x86_64"),
    "windows-x86_64": struct(os = "windows", cpu = "x86_64"),
}

def _host_platform_name() -> str:
    # host_info() is right here and only here: it names the machine that runs Buck2, which
    # is what local execution and the default target platform are about.
    os = "linux"
    if host_info().os.is_macos:
        os = "darwin"
    elif host_info().os.is_windows:
        os = "windows"
    arch = host_info().arch
    if arch.is_aarch64:
        cpu = "aarch64" if os == "linux" else "arm64"
    elif arch.is_x86_64:
        cpu = "x86_64"
    else:
        fail("Buck2 runs on a CPU this repository has no platform for; supported: {}".format(
            ", ".join(sorted(CANONICAL_PLATFORMS.keys())),
        ))
    name = "{}-{}".format(os, cpu)
    if name not in CANONICAL_PLATFORMS:
        fail("No canonical platform for the host `{}`; supported: {}".format(
            name,
            ", ".join(sorted(CANONICAL_PLATFORMS.keys())),
        ))
    return name

HOST_PLATFORM = _host_platform_name()

# Remote execution is configuration: `[protobuf_re]` in the root `.buckconfig` (read when a
# package loads, so a user points the repository at their executor without editing Starlark).
_RE = "protobuf_re"
_MODES = ["local", "hybrid", "remote"]

# Platform properties each canonical platform's executor is matched by, by default: the
# lowercase `OSFamily` NativeLink's default worker and BuildBuddy use, and BuildBuddy's `Arch`.
# Executors spell these differently (EngFlow: `OSFamily=Linux`); the README says how to set them.
DEFAULT_RE_PROPERTIES = {
    "darwin-arm64": "OSFamily=darwin,Arch=arm64",
    "darwin-x86_64": "OSFamily=darwin,Arch=amd64",
    "linux-aarch64": "OSFamily=linux,Arch=arm64",
    "linux-x86_64": "OSFamily=linux,Arch=amd64",
    "windows-x86_64": "OSFamily=windows,Arch=amd64",
}

def _re_key_hint(key: str, expected: str) -> str:
    return "hint: set `{}` in the `[{}]` section of .buckconfig to {} (prelude/proto/README.md, \"Remote execution\")".format(key, _RE, expected)

def _re_bool(key: str, default: bool) -> bool:
    value = read_root_config(_RE, key, "")
    if value == "":
        return default
    if value.lower() in ["true", "1", "yes"]:
        return True
    if value.lower() in ["false", "0", "no"]:
        return False
    fail(".buckconfig [{}] {} = `{}` is not a boolean\n{}".format(_RE, key, value, _re_key_hint(key, "true or false")))

def _re_properties(platform: str) -> dict[str, str]:
    key = "remote_execution_properties_" + platform.replace("-", "_")
    # Empty counts as unset, so `.buckconfig` can list the key for users to fill in.
    value = read_root_config(_RE, key, "") or DEFAULT_RE_PROPERTIES[platform]
    properties = {}
    for pair in value.split(","):
        pair = pair.strip()
        if not pair:
            continue
        name, eq, prop = pair.partition("=")
        if not eq or not name.strip():
            fail(".buckconfig [{}] {}: `{}` is not KEY=VALUE\n{}".format(
                _RE,
                key,
                pair,
                _re_key_hint(key, "comma-separated KEY=VALUE pairs, e.g. `OSFamily=linux,Arch=amd64`"),
            ))
        properties[name.strip()] = prop.strip()
    return properties

def _use_case() -> str:
    # `[protobuf] remote_execution_use_case`: the key's place before `[protobuf_re]` existed.
    return read_root_config(_RE, "remote_execution_use_case", read_root_config("protobuf", "remote_execution_use_case", "buck2-default"))

def _re_mode() -> str:
    mode = read_root_config(_RE, "mode", "local")
    if mode not in _MODES:
        fail(".buckconfig [{}] mode = `{}` is not a mode\n{}".format(_RE, mode, _re_key_hint("mode", " or ".join(_MODES))))
    return mode

def executor_settings(platform: str) -> dict[str, typing.Any]:
    """The `execution_platform` attributes of one canonical platform's executor.

    The host runs actions as `[protobuf_re] mode` says (`local` by default: no executor
    needed); every other canonical platform is another machine, so remote only.
    """
    mode = _re_mode() if platform == HOST_PLATFORM else "remote"
    remote = mode != "local"
    return {
        "allow_cache_uploads": _re_bool("allow_cache_uploads", False),
        "local_enabled": mode != "remote",
        "remote_cache_enabled": _re_bool("remote_cache_enabled", remote),
        "remote_enabled": remote,
        "remote_execution_properties": _re_properties(platform),
        "remote_execution_use_case": _use_case(),
        "use_limited_hybrid": _re_bool("use_limited_hybrid", True),
        "use_windows_path_separators": platform.startswith("windows"),
    }

def remote_only_host() -> bool:
    """`[protobuf_re] mode = remote`: the host's platform runs nothing here, so `:exec-local`
    is registered after it for the one action that must (copying a protoreg built here)."""
    return _re_mode() == "remote"

def local_executor_settings() -> dict[str, typing.Any]:
    """`:exec-local`: this machine, local only, with the remote cache as `[protobuf_re]` says,
    so that what helper mode fetched here is shared like the rest (the copy of a protoreg
    given as a path is never uploaded: its action says so)."""
    return {
        "allow_cache_uploads": _re_bool("allow_cache_uploads", False),
        "local_enabled": True,
        "remote_cache_enabled": _re_bool("remote_cache_enabled", True),
        "remote_enabled": False,
        "remote_execution_properties": _re_properties(HOST_PLATFORM),
        "remote_execution_use_case": _use_case(),
        "use_windows_path_separators": HOST_PLATFORM.startswith("windows"),
    }

def _execution_platform_impl(ctx: AnalysisContext) -> list[Provider]:
    configuration = configuration_union([dep[ConfigurationInfo] for dep in ctx.attrs.constraint_values])
    label = ctx.label.raw_target()
    info = ExecutionPlatformInfo(
        label = label,
        configuration = configuration,
        executor_config = CommandExecutorConfig(
            local_enabled = ctx.attrs.local_enabled,
            remote_enabled = ctx.attrs.remote_enabled,
            # Buck2 refuses a remote-enabled executor without properties (`{}` is fine) or a
            # use case; with remote execution off they only matter to the remote cache.
            remote_execution_properties = ctx.attrs.remote_execution_properties,
            remote_execution_use_case = ctx.attrs.remote_execution_use_case,
            remote_cache_enabled = ctx.attrs.remote_cache_enabled,
            allow_cache_uploads = ctx.attrs.allow_cache_uploads,
            # Only a hybrid executor reads it: local_only actions local, the rest remote.
            use_limited_hybrid = ctx.attrs.use_limited_hybrid,
            # REAPI v2.1 output paths, which NativeLink, BuildBuddy and EngFlow speak.
            remote_output_paths = "output_paths",
            use_windows_path_separators = ctx.attrs.use_windows_path_separators,
        ),
    )
    return [
        DefaultInfo(),
        info,
        PlatformInfo(label = str(label), configuration = configuration),
        ExecutionPlatformRegistrationInfo(platforms = [info]),
    ]

execution_platform = rule(
    impl = _execution_platform_impl,
    attrs = {
        "constraint_values": attrs.list(
            attrs.dep(providers = [ConfigurationInfo]),
            doc = "What the executor is, e.g. `prelude//os:linux` and `prelude//cpu:x86_64`.",
        ),
        "allow_cache_uploads": attrs.bool(default = False, doc = "Whether local results are uploaded to the remote action cache."),
        "local_enabled": attrs.bool(doc = "Whether actions may run on the machine running Buck2."),
        "remote_cache_enabled": attrs.bool(default = False, doc = "Whether the remote action cache is consulted."),
        "remote_enabled": attrs.bool(doc = "Whether actions may run on remote executors."),
        "remote_execution_properties": attrs.dict(
            attrs.string(),
            attrs.string(),
            default = {},
            doc = "Platform properties a remote execution service matches workers on.",
        ),
        "remote_execution_use_case": attrs.string(
            default = "buck2-default",
            doc = "The use case sent to the remote execution service (Buck2's conventional default).",
        ),
        "use_limited_hybrid": attrs.bool(default = True, doc = "Hybrid: local_only actions local, every other action remote (False: Buck2 races both)."),
        "use_windows_path_separators": attrs.bool(default = False),
    },
    doc = "One execution platform: where actions run, and what that machine is.",
)

def _execution_platforms_impl(ctx: AnalysisContext) -> list[Provider]:
    return [
        DefaultInfo(),
        ExecutionPlatformRegistrationInfo(
            platforms = [dep[ExecutionPlatformInfo] for dep in ctx.attrs.platforms],
        ),
    ]

execution_platforms = rule(
    impl = _execution_platforms_impl,
    attrs = {
        "platforms": attrs.list(
            attrs.dep(providers = [ExecutionPlatformInfo]),
            doc = "In order of preference: Buck2 takes the first one every exec dep accepts.",
        ),
    },
    doc = "The list `[build] execution_platforms` points at.",
)
