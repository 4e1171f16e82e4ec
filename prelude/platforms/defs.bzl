"""Execution platforms, and the host's place among the five canonical platforms.

An execution platform says where actions run. This repository registers the machine running
Buck2 (`:execution`, local execution), and defines one remote execution platform per
canonical platform (`:execution-remote` registers them all) for a remote execution setup.
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

def _execution_platform_impl(ctx: AnalysisContext) -> list[Provider]:
    configuration = configuration_union([dep[ConfigurationInfo] for dep in ctx.attrs.constraint_values])
    label = ctx.label.raw_target()
    info = ExecutionPlatformInfo(
        label = label,
        configuration = configuration,
        executor_config = CommandExecutorConfig(
            local_enabled = ctx.attrs.local_enabled,
            remote_enabled = ctx.attrs.remote_enabled,
            remote_execution_properties = ctx.attrs.remote_execution_properties or None,
            # Buck2 refuses a remote-enabled executor without a use case.
            remote_execution_use_case = ctx.attrs.remote_execution_use_case if ctx.attrs.remote_enabled else None,
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
        "local_enabled": attrs.bool(doc = "Whether actions may run on the machine running Buck2."),
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
