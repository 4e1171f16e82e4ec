"""Getting one pinned tool for one platform: verified, unpacked, ready to run.

Two ways, chosen by `[protobuf] fetch_mode` in `.buckconfig`:

- `helper` (default): one `protoreg materialize` action with the pin and every source in
  order (the OCI registries, then the upstream URL). It uses the network and protoreg's
  shared content-addressed cache, so it runs locally (`local_only`).
- `native`: Buck2 downloads the upstream URL itself (`download_file` with the sha256, and the
  size when the pin knows it, so the download can be deferred and works with remote
  execution), then a hermetic
  `protoreg extract` unpacks it (a `raw` file too, so that its tree is an action's output and
  cached like one; only a pinned protoreg itself is used as downloaded).

`toolchains.bzl` instantiates these from the pins; users rarely write them by hand.
"""

load(":providers.bzl", "ToolDistributionInfo")

_ARCHIVE_EXTENSIONS = {"raw": "", "tar.gz": ".tar.gz", "tar.xz": ".tar.xz", "zip": ".zip"}

def binary_key(path: str) -> str:
    """`bin/protoc.exe` -> `protoc`: the sub-target and dict key naming a binary."""
    name = path.split("/")[-1]
    if name.endswith(".exe"):
        name = name[:-len(".exe")]
    return name

def _protoreg_args(ctx: AnalysisContext) -> RunInfo:
    if ctx.attrs.protoreg == None:
        fail("{}: fetching a `{}` pin needs protoreg; set `[protobuf] protoreg` in .buckconfig".format(
            ctx.label,
            ctx.attrs.format,
        ))
    return ctx.attrs.protoreg[RunInfo]

def _extraction_flags(ctx: AnalysisContext) -> cmd_args:
    flags = cmd_args()
    if ctx.attrs.strip_prefix:
        flags.add("--strip-prefix", ctx.attrs.strip_prefix)
    for binary in ctx.attrs.binaries:
        flags.add("--executable", binary)
    return flags

def _materialize(ctx: AnalysisContext, out: Artifact) -> None:
    protoreg = _protoreg_args(ctx)
    cmd = cmd_args(
        protoreg,
        "materialize",
        "--sha256",
        ctx.attrs.sha256,
        "--format",
        ctx.attrs.format,
        "--out",
        out.as_output(),
    )
    if ctx.attrs.size != None:
        cmd.add("--size", str(ctx.attrs.size))
    for source in ctx.attrs.sources:
        cmd.add("--source", source)

    # Upstream last: the registries exist so that builds do not depend on it.
    cmd.add("--source", ctx.attrs.url)
    cmd.add(_extraction_flags(ctx))
    if ctx.attrs.cache_dir:
        cmd.add("--cache-dir", ctx.attrs.cache_dir)
    if ctx.attrs.plain_http:
        cmd.add("--plain-http")
    if ctx.attrs.offline:
        cmd.add("--offline")
    if ctx.attrs.link:
        cmd.add("--link", ctx.attrs.link)
    ctx.actions.run(
        cmd,
        category = "protoreg_materialize",
        identifier = ctx.label.name,
        # The network and a cache shared across actions: neither exists in a sandbox or on a
        # remote executor.
        local_only = True,
        # The tree is verified and content-addressed: with `[protobuf_re] allow_cache_uploads`
        # another checkout on the same executor gets it from the action cache, unfetched.
        allow_cache_upload = True,
    )

def _download_and_extract(ctx: AnalysisContext) -> Artifact:
    name = "{}-{}-{}".format(ctx.attrs.tool, ctx.attrs.version, ctx.attrs.platform)
    archive = ctx.actions.declare_output("download", name + _ARCHIVE_EXTENSIONS[ctx.attrs.format])
    ctx.actions.download_file(
        archive.as_output(),
        ctx.attrs.url,
        sha256 = ctx.attrs.sha256,
        # Only a known size: Buck2 checks it, and with it can defer the download.
        size_bytes = ctx.attrs.size,
        is_executable = ctx.attrs.format == "raw",
    )
    if ctx.attrs.format == "raw":
        if len(ctx.attrs.binaries) != 1:
            fail("{}: a raw pin is one file, so it declares one binary; got {}".format(ctx.label, ctx.attrs.binaries))
        if ctx.attrs.protoreg == None:
            # The pinned protoreg itself: fetched without a protoreg.
            return ctx.actions.symlinked_dir(ctx.label.name, {ctx.attrs.binaries[0]: archive})

    # A raw file too goes through `protoreg extract`: its tree is then an action's output,
    # which a cached build takes from the action cache, where a download Buck2 materializes
    # (as `buck2 build toolchains//...` does) is fetched from upstream again.

    protoreg = _protoreg_args(ctx)
    out = ctx.actions.declare_output(ctx.label.name, dir = True)
    ctx.actions.run(
        cmd_args(
            protoreg,
            "extract",
            archive,
            "--sha256",
            ctx.attrs.sha256,
            "--format",
            ctx.attrs.format,
            "--out",
            out.as_output(),
            _extraction_flags(ctx),
        ),
        category = "protoreg_extract",
        identifier = ctx.label.name,
        # Hermetic, from a verified archive: with `[protobuf_re] allow_cache_uploads` a local
        # extraction is shared through the action cache like a remote one.
        allow_cache_upload = True,
    )
    return out

def _tool_distribution_impl(ctx: AnalysisContext) -> list[Provider]:
    if ctx.attrs.fetch_mode == "helper":
        root = ctx.actions.declare_output(ctx.label.name, dir = True)
        _materialize(ctx, root)
    else:
        root = _download_and_extract(ctx)

    binaries = {binary_key(path): root.project(path) for path in ctx.attrs.binaries}
    sub_targets = {
        key: [DefaultInfo(default_output = binary), RunInfo(args = cmd_args(binary))]
        for key, binary in binaries.items()
    }
    for directory in ctx.attrs.directories:
        sub_targets[directory] = [DefaultInfo(default_output = root.project(directory))]

    providers = [
        DefaultInfo(default_output = root, sub_targets = sub_targets),
        ToolDistributionInfo(
            binaries = binaries,
            os = ctx.attrs.os,
            platform = ctx.attrs.platform,
            root = root,
            sha256 = ctx.attrs.sha256,
            tool = ctx.attrs.tool,
            version = ctx.attrs.version,
        ),
    ]
    if binaries:
        providers.append(RunInfo(args = cmd_args(binaries[binary_key(ctx.attrs.binaries[0])])))
    return providers

tool_distribution = rule(
    impl = _tool_distribution_impl,
    attrs = {
        "binaries": attrs.list(attrs.string(), default = [], doc = "Executables in the tree, with the platform's `.exe`."),
        "cache_dir": attrs.string(default = "", doc = "protoreg's cache; empty for its default."),
        "directories": attrs.list(attrs.string(), default = [], doc = "Directories to expose as sub-targets, e.g. `include`."),
        "fetch_mode": attrs.enum(["helper", "native"], default = "helper"),
        "format": attrs.enum(["zip", "tar.gz", "tar.xz", "raw"]),
        "link": attrs.string(default = "", doc = "protoreg's `--link` (copy or hardlink); empty for its default."),
        "offline": attrs.bool(default = False, doc = "Helper mode: use only protoreg's cache."),
        "os": attrs.string(doc = "The platform's `prelude//os` value."),
        "plain_http": attrs.bool(default = False, doc = "Helper mode: talk to the registries without TLS."),
        "platform": attrs.string(doc = "Canonical platform name, e.g. `darwin-arm64`."),
        "protoreg": attrs.option(
            attrs.exec_dep(providers = [RunInfo]),
            default = None,
            doc = "The protoreg helper; only a raw pin fetched natively does without it.",
        ),
        "sha256": attrs.string(),
        "size": attrs.option(
            attrs.int(),
            default = None,
            doc = "Bytes, when upstream states it; None: verified by sha256 alone.",
        ),
        "sources": attrs.list(
            attrs.string(),
            default = [],
            doc = "Helper mode: `oci://HOST[:PORT]/REPOSITORY` sources tried before the URL.",
        ),
        "strip_prefix": attrs.string(default = ""),
        "tool": attrs.string(),
        "url": attrs.string(doc = "The upstream URL; its bytes are what sha256 and size pin."),
        "version": attrs.string(),
    },
    doc = "One pinned tool for one platform, fetched and unpacked.",
)

def _tool_missing_impl(ctx: AnalysisContext) -> list[Provider]:
    where = "the execution platform {}".format(ctx.attrs.platform)
    pinned = ", ".join(ctx.attrs.pinned_platforms) or "no platform"
    fail((
        "No pin for {tool} {version} on {where}: toolchains/pins.bzl pins it for {pinned}. " +
        "Run `protoreg bump {tool} {version}` where upstream is reachable, or build on a " +
        "pinned execution platform."
    ).format(
        tool = ctx.attrs.tool,
        version = ctx.attrs.version,
        where = where,
        pinned = pinned,
    ))

tool_missing = rule(
    impl = _tool_missing_impl,
    attrs = {
        "pinned_platforms": attrs.list(attrs.string(), default = []),
        "platform": attrs.string(doc = "The canonical platform that has no pin."),
        "tool": attrs.string(),
        "version": attrs.string(),
    },
    doc = "Stands in for a pin that does not exist, and fails analysis saying which.",
)

def _protoreg_binary_impl(ctx: AnalysisContext) -> list[Provider]:
    if ctx.attrs.path:
        # Into an artifact once, here: every action then gets protoreg as an input, which
        # reaches a remote executor like any other (no path on that machine is assumed).
        # The key is the path, not the bytes: after rebuilding protoreg, `buck2 clean`.
        exe = ctx.actions.declare_output("protoreg" + ctx.attrs.exe_suffix)
        ctx.actions.run(
            cmd_args(ctx.attrs.path, "copy-self", "--out", exe.as_output()),
            category = "protoreg_copy",
            # The path exists only on the machine running Buck2; not shared through the
            # action cache, since another machine's file at that path is another protoreg.
            local_only = True,
            allow_cache_upload = False,
        )
        return [DefaultInfo(default_output = exe), RunInfo(args = cmd_args(exe))]
    if ctx.attrs.binary:
        binary = ctx.attrs.binary
        return [DefaultInfo(default_outputs = binary[DefaultInfo].default_outputs), binary[RunInfo]]
    fail("{}: give protoreg_binary a `path` or a `binary`".format(ctx.label))

protoreg_binary = rule(
    impl = _protoreg_binary_impl,
    attrs = {
        "binary": attrs.option(
            attrs.dep(providers = [RunInfo]),
            default = None,
            doc = "A pinned protoreg, usually a select() over platforms; a plain dep, because " +
                  "this target is itself configured for the execution platform.",
        ),
        "exe_suffix": attrs.string(default = "", doc = "`.exe` when the machine running Buck2 is Windows."),
        "path": attrs.option(
            attrs.string(),
            default = None,
            doc = "A protoreg built on this machine, relative to the project root (or on PATH).",
        ),
    },
    doc = "The protoreg helper, as actions on the execution platform run it.",
)
