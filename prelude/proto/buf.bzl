"""buf checks as Buck2 tests: `buck2 test` runs them, `buck2 run` shows the same output.

```python
buf_lint_test(name = "weather_lint", proto = ":weather", config = "buf.yaml")
buf_format_test(name = "weather_format", proto = ":weather")
buf_breaking_test(name = "weather_breaking", proto = ":weather", against = "weather-v1.binpb")
```

Lint and breaking read the library's image (`[image]`: its descriptor set with every
import, source info included)
limited with `--path` to the library's own files, so imports are compiled but not judged,
and nothing is fetched: no buf.yaml `deps`, no network. `config` is a buf.yaml whose `lint`
and `breaking` sections apply. Format reads the sources themselves.
"""

load(":providers.bzl", "BufToolchainInfo", "ProtoInfo")

_COMMON_ATTRS = {
    "contacts": attrs.list(attrs.string(), default = []),
    "env": attrs.dict(attrs.string(), attrs.string(), default = {}, doc = "Environment for buf."),
    "labels": attrs.list(attrs.string(), default = []),
    "proto": attrs.dep(providers = [ProtoInfo], doc = "The proto_library to check."),
    "_buf": attrs.toolchain_dep(default = "toolchains//:buf", providers = [BufToolchainInfo]),
}

_CONFIG_ATTR = attrs.option(
    attrs.source(),
    default = None,
    doc = "A buf.yaml (v1 or v2) with the `lint` / `breaking` rules; buf's defaults without it.",
)

def _with_common(attrs_: dict) -> dict:
    merged = dict(_COMMON_ATTRS)
    merged.update(attrs_)
    return merged

def _path_flags(proto: ProtoInfo) -> cmd_args:
    return cmd_args([cmd_args("--path", path) for path in proto.import_paths])

def _config_flags(config: Artifact | None) -> cmd_args:
    return cmd_args("--config", config) if config != None else cmd_args()

def _test_providers(ctx: AnalysisContext, command: cmd_args) -> list[Provider]:
    return [
        DefaultInfo(),
        RunInfo(args = command),
        ExternalRunnerTestInfo(
            type = "custom",
            command = [command],
            env = ctx.attrs.env,
            labels = ctx.attrs.labels,
            contacts = ctx.attrs.contacts,
            # buf's messages name files by import path; the paths in the command are
            # relative to the project root.
            run_from_project_root = True,
            use_project_relative_paths = True,
        ),
    ]

def _buf_lint_test_impl(ctx: AnalysisContext) -> list[Provider]:
    proto = ctx.attrs.proto[ProtoInfo]
    expect = ctx.attrs.expect_findings
    buf = ctx.attrs._buf[BufToolchainInfo]
    command = cmd_args(
        buf.buf,
        "lint",
        proto.image,
        _path_flags(proto),
        _config_flags(ctx.attrs.config),
        "--error-format",
        "json" if expect else ctx.attrs.error_format,
    )
    if expect:
        # Show buf's report, and pass only when buf exits 100 (findings) and the rules it
        # reports are exactly these: `protoreg expect-findings`, the same on every executor.
        command = cmd_args(
            buf.protoreg,
            "expect-findings",
            [cmd_args("--rule", rule) for rule in expect],
            "--",
            command,
        )
    return _test_providers(ctx, command)

buf_lint_test = rule(
    impl = _buf_lint_test_impl,
    attrs = _with_common({
        "config": _CONFIG_ATTR,
        "error_format": attrs.enum(["text", "json", "msvs", "junit", "github-actions"], default = "text"),
        "expect_findings": attrs.list(
            attrs.string(),
            default = [],
            doc = "buf rule IDs (e.g. `FIELD_LOWER_SNAKE_CASE`): the test then passes only when " +
                  "buf lint fails with exactly these rules among its findings (protoreg checks " +
                  "the report).",
        ),
    }),
    doc = "Passes when `buf lint` finds nothing in the library's own files, or, with " +
          "`expect_findings`, exactly when it reports those rules.",
)

def _buf_format_test_impl(ctx: AnalysisContext) -> list[Provider]:
    proto = ctx.attrs.proto[ProtoInfo]
    command = cmd_args(
        ctx.attrs._buf[BufToolchainInfo].buf,
        "format",
        proto.import_root,
        # Show what would change, and fail when anything would.
        "--diff",
        "--exit-code",
    )
    return _test_providers(ctx, command)

buf_format_test = rule(
    impl = _buf_format_test_impl,
    attrs = _COMMON_ATTRS,
    doc = "Passes when `buf format` would change nothing; the failure shows the diff.",
)

def _buf_breaking_test_impl(ctx: AnalysisContext) -> list[Provider]:
    proto = ctx.attrs.proto[ProtoInfo]
    command = cmd_args(
        ctx.attrs._buf[BufToolchainInfo].buf,
        "breaking",
        proto.image,
        "--against",
        ctx.attrs.against,
        _path_flags(proto),
        _config_flags(ctx.attrs.config),
        "--error-format",
        ctx.attrs.error_format,
    )
    return _test_providers(ctx, command)

buf_breaking_test = rule(
    impl = _buf_breaking_test_impl,
    attrs = _with_common({
        "against": attrs.source(
            doc = "The baseline: a buf image or FileDescriptorSet file (`.binpb`), the " +
                  "`[image]` of a proto_library of the previous version, or a " +
                  "`registry_image` (the released version's image, pinned in the registry). No git.",
        ),
        "config": _CONFIG_ATTR,
        "error_format": attrs.enum(["text", "json", "msvs", "junit", "github-actions"], default = "text"),
    }),
    doc = "Passes when the library makes no breaking change against a baseline.",
)
