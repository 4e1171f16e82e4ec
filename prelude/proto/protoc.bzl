"""Building protoc command lines: shared by proto_library and the code generators."""

load(":providers.bzl", "ProtoDescriptorSetsTSet", "ProtoInfo", "ProtocToolchainInfo")

ProtocGenerator = record(
    # NAME in `--NAME_out`: a built-in generator (`cpp`, `python`, …) or a plugin's name.
    name = str,
    out = Artifact,
    options = list[str],
    # The plugin executable (or script, with `interpreter`); None for protoc's built-ins.
    plugin = RunInfo | None,
    # What runs a plugin that is a script (node); None: the plugin is an executable.
    interpreter = field(RunInfo | None, None),
    # With files declared one by one (`out` the first of them, `more` the rest): `out` is
    # `depth` directories below the `--NAME_out` directory. 0: `out` is that directory, or a
    # `.srcjar`/`.jar`/`.zip` protoc writes whole.
    depth = field(int, 0),
    more = field(list[Artifact], []),
)

def proto_path_flags(protoc: ProtocToolchainInfo, protos: list[ProtoInfo]) -> cmd_args:
    """`--proto_path` for the import roots of `protos` alone, then the well-known types: what
    they import from other libraries comes from descriptor sets ([`descriptor_set_in`])."""
    return cmd_args(
        [cmd_args(p.import_root, format = "--proto_path={}") for p in protos],
        cmd_args(protoc.include, format = "--proto_path={}"),
    )

def descriptor_set_in(ctx: AnalysisContext, protoc: ProtocToolchainInfo, sets: list[TransitiveSet]) -> cmd_args:
    """`--descriptor_set_in` with every descriptor set in `sets` (nothing when they hold
    none): protoc reads those files' descriptors instead of parsing their sources again.
    protoc looks in the `--proto_path` roots first, so a library named both ways is parsed."""
    merged = ctx.actions.tset(ProtoDescriptorSetsTSet, children = sets)
    if not merged.reduce("nonempty"):
        return cmd_args()
    return cmd_args(
        "--descriptor_set_in=",
        cmd_args(merged.project_as_args("files"), delimiter = protoc.path_list_separator),
        delimiter = "",
    )

def pruning_protoc(protoc: ProtocToolchainInfo, dep_file: typing.Any = None) -> cmd_args:
    """protoc, started by `protoreg protoc --prune-descriptor-sets`: of the descriptor sets,
    protoc reads only the files its inputs import, directly or not, instead of every file of
    every transitive dependency (most of a deep library's time, before). With `dep_file`
    (a tagged output), protoreg lists there the sets that hold those files."""
    return cmd_args(
        protoc.protoreg,
        "protoc",
        "--prune-descriptor-sets",
        ["--dep-file", dep_file] if dep_file else [],
        "--",
        protoc.protoc,
    )

def proto_input_files(protos: list[ProtoInfo]) -> cmd_args:
    """The direct sources of `protos`, each named by its place inside its import root.

    protoc maps such a path back to the import path through the matching `--proto_path`,
    which works whether or not the same relative path also exists under the project root.
    """
    files = cmd_args()
    seen = {}
    for proto in protos:
        for path in proto.import_paths:
            if path in seen:
                continue
            seen[path] = True
            files.add(cmd_args(proto.import_root, format = "{}/" + path))
    return files

def run_protoc_generators(
        ctx: AnalysisContext,
        protoc: ProtocToolchainInfo,
        protos: list[ProtoInfo],
        generators: list[ProtocGenerator],
        category: str,
        local_only: bool = False) -> None:
    """protoc actions that run every generator over the direct sources of `protos`: one for
    the executables and built-ins, and one per script plugin (protoreg stands in for one)."""
    if not protos:
        fail("{}: no proto_library to generate code for; set `protos`".format(ctx.label))
    executables = [g for g in generators if g.interpreter == None]
    scripts = [g for g in generators if g.interpreter != None]
    groups = ([executables] if executables else []) + [[g] for g in scripts]
    for group in groups:
        _run_protoc(ctx, protoc, protos, group, category, local_only, len(groups) > 1)

def _run_protoc(
        ctx: AnalysisContext,
        protoc: ProtocToolchainInfo,
        protos: list[ProtoInfo],
        generators: list[ProtocGenerator],
        category: str,
        local_only: bool,
        several: bool) -> None:
    args = cmd_args(
        proto_path_flags(protoc, protos),
        descriptor_set_in(ctx, protoc, [p.dep_descriptor_sets for p in protos]),
    )
    outs = cmd_args()

    # `protoreg protoc` makes each `--NAME_out` directory (protoc does not, and Buck2 makes
    # only its parent), so each output appears once on the command line, as Buck2 requires.
    driver = cmd_args(protoc.protoreg, "protoc", "--prune-descriptor-sets")
    for generator in generators:
        if generator.interpreter != None:
            # protoc gets protoreg as the plugin, which runs `INTERPRETER SCRIPT`.
            driver.add(
                "--plugin-command",
                cmd_args(generator.interpreter, format = generator.name + "={}"),
                "--plugin-arg",
                generator.plugin,
            )
        elif generator.plugin != None:
            args.add(cmd_args(generator.plugin, format = "--plugin=protoc-gen-" + generator.name + "={}"))
        for option in generator.options:
            args.add("--{}_opt={}".format(generator.name, option))
        outs.add(cmd_args(generator.out.as_output(), format = "--" + generator.name + "_out={}", **({"parent": generator.depth} if generator.depth else {})))
        outs.add(cmd_args(hidden = [f.as_output() for f in generator.more]))
    args.add(proto_input_files(protos))

    # protoc reads arguments from @FILE, one per line: the command line stays short (Windows
    # stops at 32767 characters) however many protos and import roots there are, and no
    # option passes through a shell.
    name = category + ("_" + generators[0].name if several else "")
    argfile, _ = ctx.actions.write(name + "_args.txt", args, allow_args = True)
    ctx.actions.run(
        cmd_args(driver, "--", protoc.protoc, cmd_args(argfile, format = "@{}"), outs, hidden = args),
        category = category,
        local_only = local_only,
        # Several actions of one category need names apart.
        **({"identifier": generators[0].name} if several else {})
    )
