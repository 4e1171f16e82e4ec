"""Building protoc command lines: shared by proto_library and the code generators."""

load(":providers.bzl", "ProtoImportsTSet", "ProtoInfo", "ProtocToolchainInfo")

ProtocGenerator = record(
    # NAME in `--NAME_out`: a built-in generator (`cpp`, `python`, …) or a plugin's name.
    name = str,
    out = Artifact,
    options = list[str],
    # The plugin executable; None for protoc's built-in generators.
    plugin = RunInfo | None,
)

# protoc writes into an output directory but does not create it, and Buck2 creates only its
# parent. The launcher makes the directory of every `--NAME_out=DIR` argument, then runs the
# command: each output then appears once on the command line, as Buck2 requires.
_POSIX_MAKE_OUT_DIRS = 'for a in "$@"; do case "$a" in --*_out=*) mkdir -p "${a#*=}" || exit 1;; esac; done; exec "$@"'

def proto_path_flags(ctx: AnalysisContext, protoc: ProtocToolchainInfo, protos: list[ProtoInfo]) -> cmd_args:
    """`--proto_path` for every import root the protos can reach, then the well-known types."""
    imports = ctx.actions.tset(ProtoImportsTSet, children = [p.transitive for p in protos])
    return cmd_args(
        imports.project_as_args("proto_path_flags"),
        cmd_args(protoc.include, format = "--proto_path={}"),
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

def make_out_dirs_then(exec_os: str, out_dirs: list[Artifact], cmd: cmd_args) -> cmd_args:
    """`cmd`, run after creating the directories its `--NAME_out=` arguments name."""
    if exec_os == "windows":
        # cmd.exe is every Windows executor's shell: `mkdir D1 && mkdir D2 && protoc @ARGS …`.
        # What it parses is Buck2's output paths (no spaces or metacharacters; Buck2 removes
        # outputs before an action runs, so each mkdir creates) and protoc's argument file.
        line = cmd_args("cmd.exe", "/d", "/c")
        for out in out_dirs:
            line.add("mkdir", cmd_args(out, ignore_artifacts = True), "&&")
        return cmd_args(line, cmd)
    return cmd_args("/bin/sh", "-c", _POSIX_MAKE_OUT_DIRS, "sh", cmd)

def run_protoc_generators(
        ctx: AnalysisContext,
        protoc: ProtocToolchainInfo,
        protos: list[ProtoInfo],
        generators: list[ProtocGenerator],
        category: str,
        local_only: bool = False) -> None:
    """One protoc action that runs every generator over the direct sources of `protos`."""
    if not protos:
        fail("{}: no proto_library to generate code for; set `protos`".format(ctx.label))
    args = cmd_args(proto_path_flags(ctx, protoc, protos))
    outs = cmd_args()
    for generator in generators:
        if generator.plugin != None:
            args.add(cmd_args(generator.plugin, format = "--plugin=protoc-gen-" + generator.name + "={}"))
        for option in generator.options:
            args.add("--{}_opt={}".format(generator.name, option))
        outs.add(cmd_args(generator.out.as_output(), format = "--" + generator.name + "_out={}"))
    args.add(proto_input_files(protos))

    # protoc reads arguments from @FILE, one per line: the command line stays short (cmd.exe
    # stops at 8191 characters) however many protos and import roots there are, and no
    # option passes through a shell.
    argfile, _ = ctx.actions.write(category + "_args.txt", args, allow_args = True)
    cmd = cmd_args(protoc.protoc, cmd_args(argfile, format = "@{}"), outs, hidden = args)
    ctx.actions.run(
        make_out_dirs_then(protoc.exec_os, [g.out for g in generators], cmd),
        category = category,
        local_only = local_only,
    )
