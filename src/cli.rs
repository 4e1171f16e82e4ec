//! The command line (design.md's stable contract). Parsing only: each command's work lives
//! in its own module under `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "protoreg",
    version,
    about = "Pinned protobuf tools for Buck2: fetch, verify, cache, materialize; operate their OCI registry"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// registry.yaml to read (default: ./registry.yaml when present).
    #[arg(long, global = true, env = "PROTOREG_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Cache directory (default: $PROTOREG_CACHE_DIR, registry.yaml's cache.local_cache_dir,
    /// then ~/.cache/buck2-protobuf).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Talk to OCI registries over plain HTTP instead of TLS.
    #[arg(long, global = true)]
    pub plain_http: bool,
    /// The tool catalogue (default: $PROTOREG_CATALOGUE, else tools.bzl beside the pins
    /// file, else the copy built into protoreg).
    #[arg(long, global = true, value_name = "FILE")]
    pub catalogue: Option<PathBuf>,
    /// No progress bars or step lines on stderr (errors still print). Bars are drawn only
    /// on a terminal, never in CI (`CI` set) or with --json.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// A PEM file of CA certificates TLS trusts besides the system store's, for every
    /// registry and source (default: $PROTOREG_CA_BUNDLE).
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
}

impl Command {
    /// The command's `--pins`, if it takes one: the catalogue is looked for beside it.
    pub fn pins(&self) -> Option<&std::path::Path> {
        let arg = match self {
            Command::Bump(a) => &a.pins,
            Command::Outdated(a) => &a.pins,
            Command::Sizes(a) => &a.pins,
            Command::Materialize(a) => &a.pins,
            Command::Health(a) => &a.pins,
            Command::Cleanup(a) => &a.pins,
            _ => return None,
        };
        arg.pins.as_deref()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch (or find in the cache) a pinned artifact, verify it and materialize its tree.
    Materialize(MaterializeArgs),
    /// Verify a local archive and extract it, with no network (Buck2's download_file mode).
    Extract(ExtractArgs),
    /// Run protoc for a code-generation action, with no shell: make the directory of every
    /// `--NAME_out=DIR`, run a plugin that is a command line (node and its script) through
    /// protoreg, and exit with protoc's status.
    Protoc(ProtocArgs),
    /// Run buf lint and pass only when it reports exactly the expected rules (the
    /// `expect_findings` of `buf_lint_test`, with no shell).
    #[command(hide = true)]
    ExpectFindings(ExpectFindingsArgs),
    /// Copy this protoreg executable to FILE: how the rules make a protoreg built on this
    /// machine (`[protobuf] protoreg = PATH`) an input that reaches remote executors.
    #[command(hide = true)]
    CopySelf(CopySelfArgs),
    /// Add these rules to a Buck2 repository, new or existing: the `protobuf` git cell, the
    /// `[protobuf]` section, the toolchains (the cell's shipped pins, yours over them) and
    /// your own pins file. Idempotent; never touches what it did not write.
    Init(InitArgs),
    /// Move a tool's pins to an upstream version, for every platform (rewrites the pins file).
    Bump(BumpArgs),
    /// Compare the pinned versions with the newest upstream releases.
    Outdated(OutdatedArgs),
    /// Record the exact size of every pin that has none (each artifact fetched and verified by
    /// its sha256), so Buck2 can defer its download.
    Sizes(SizesArgs),
    /// Publish upstream releases to the registry as OCI artifacts (and the configured bundles).
    Publish(PublishArgs),
    /// Check each registry (reachability, latency, expected tags) and the cache.
    Health(HealthArgs),
    /// The versions of a tool the registry holds, newest first (with --upstream: what it lacks).
    Versions(VersionsArgs),
    /// Remove cache entries unused for a while or beyond a size; or apply registry retention.
    Cleanup(CleanupArgs),
    /// Counters kept across runs, as JSON or Prometheus text.
    Metrics(MetricsArgs),
    /// Copy every artifact between registries and image-layout directories, digests unchanged.
    Mirror(MirrorArgs),
    /// Inspect the local cache (`cache verify`).
    Cache(CacheArgs),
    /// Breaking-change baselines in the registry (`baseline push`).
    Baseline(BaselineArgs),
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Push a proto library's descriptor set (a buf image) as an ORAS artifact tagged by the
    /// API's release version, and print the `registry_image` target that pins it.
    Push(BaselinePushArgs),
}

#[derive(Debug, Args)]
pub struct BaselinePushArgs {
    /// The descriptor set: a proto_library's output (`buck2 build //pkg:lib --show-output`).
    pub image: PathBuf,
    /// Repository under the registry namespace, e.g. `images/acme-weather`.
    #[arg(long)]
    pub repository: String,
    /// The API's release version, e.g. `v1.0.0`. A pushed tag never changes.
    #[arg(long)]
    pub tag: String,
    /// The registry to push to: `primary` (default) or a backup's name.
    #[arg(long)]
    pub registry: Option<String>,
    /// The name of the printed `registry_image` target.
    #[arg(long)]
    pub name: Option<String>,
    /// Print JSON (status, repository, tag, sha256, size, manifest digest) instead.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Re-hash every blob and check every tree against the manifest recorded when it was
    /// installed; exit 1 when something is wrong.
    Verify(CacheVerifyArgs),
}

#[derive(Debug, Args)]
pub struct CacheVerifyArgs {
    /// Remove what is wrong (a blob, a tree and its manifest), and trees that cannot be
    /// verified, so the next materialize fetches or extracts them again.
    #[arg(long)]
    pub repair: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PinsArg {
    /// The pins file (default: $PROTOREG_PINS, else toolchains/pins.bzl here or in a parent).
    #[arg(long, value_name = "FILE")]
    pub pins: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BumpArgs {
    /// A tool of the catalogue (toolchains/tools.bzl): protoc, buf, protoc-gen-go, ...
    pub tool: String,
    /// The upstream version to pin (`31.1`, `1.75.0`).
    pub version: String,
    /// Print the change to the pins file and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the previous default version's pins beside the new ones.
    #[arg(long)]
    pub keep_old: bool,
    /// A Markdown file whose table of pins (between `<!-- pins -->` and `<!-- /pins -->`)
    /// to rewrite from the new pins; repeatable.
    #[arg(long = "readme", value_name = "FILE")]
    pub readmes: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub pins: PinsArg,
}

#[derive(Debug, Args)]
pub struct SizesArgs {
    /// Only these tools (default: every tool with a pin of unknown size).
    pub tools: Vec<String>,
    /// Print the change to the pins file and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub pins: PinsArg,
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a tool is behind upstream (for CI).
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub pins: PinsArg,
}

#[derive(Debug, Args)]
pub struct LayoutArgs {
    /// Archive format.
    #[arg(long, value_name = "zip|tar.gz|tar.xz|raw")]
    pub format: Option<String>,
    /// Leading directory to strip from every member.
    #[arg(long, value_name = "P")]
    pub strip_prefix: Option<String>,
    /// A path in the tree to make executable (repeatable); must exist.
    #[arg(long = "executable", value_name = "PATH")]
    pub executables: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MaterializeArgs {
    /// A pinned tool, `TOOL` or `TOOL@VERSION`: pin from the pins file, sources from
    /// registry.yaml and the pin's upstream URL. Without it, give --sha256, --format (and
    /// --size when known).
    #[arg(value_name = "TOOL[@VERSION]", conflicts_with_all = ["sha256", "size"])]
    pub tool: Option<String>,
    /// A bundle from registry.yaml, `NAME` or `NAME@VERSION`: every member, verified, into
    /// `--out/<tool>/`.
    #[arg(long, value_name = "NAME[@VERSION]", conflicts_with_all = ["tool", "sha256", "size"])]
    pub bundle: Option<String>,
    /// The platform of the pinned tool or bundle (default: this machine's).
    #[arg(long, value_name = "P")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub pins: PinsArg,
    /// sha256 of the artifact (64 hex digits).
    #[arg(long, value_name = "HEX", required_unless_present_any = ["tool", "bundle"])]
    pub sha256: Option<String>,
    /// Size of the artifact in bytes. Without it the sha256 alone verifies and the body may be
    /// at most $PROTOREG_MAX_UNSIZED_BYTES (default 256 MiB).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<String>,
    #[command(flatten)]
    pub layout: LayoutArgs,
    /// Output directory (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Where to fetch from, tried in order after the cache: oci://HOST[:PORT]/REPOSITORY,
    /// https://…, http://… or oci-layout:DIR.
    #[arg(long = "source", value_name = "SRC")]
    pub sources: Vec<String>,
    /// Use only the cache.
    #[arg(long)]
    pub offline: bool,
    /// How to put the cached tree into --out: `auto` clones each file copy-on-write where the
    /// file system can and copies otherwise; `copy` always copies; `hardlink` shares the
    /// cache's files (fastest, but writing to the output, as root or after `chmod u+w`,
    /// changes the cache).
    #[arg(long, default_value = "auto", value_name = "auto|copy|hardlink")]
    pub link: String,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The archive to verify and extract.
    pub archive: PathBuf,
    #[arg(long, value_name = "HEX")]
    pub sha256: String,
    /// Size in bytes (optional: Buck2's download_file already checks it; without it the
    /// sha256 alone verifies).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<String>,
    #[command(flatten)]
    pub layout: LayoutArgs,
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The repository's root.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where Buck2 fetches these rules from (git).
    #[arg(long, default_value = crate::commands::init::ORIGIN)]
    pub origin: String,
    /// The commit of these rules to use (default: the one this protoreg was built from,
    /// when it is a release).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// Only these shipped tools' pins (repeatable; default: all of them).
    #[arg(long = "tool", value_name = "TOOL")]
    pub tools: Vec<String>,
    /// `[protobuf] fetch_mode`.
    #[arg(long, default_value = "helper", value_parser = ["helper", "native"])]
    pub fetch_mode: String,
    /// `[protobuf] registry`: HOST[:PORT]/NAMESPACE.
    #[arg(long, default_value = "oras.birb.homes/buck2-protobuf")]
    pub registry: String,
    /// `[protobuf] plain_http`: the registry has no TLS.
    #[arg(long)]
    pub plain_http: bool,
    /// `[protobuf] protoreg`: `pinned`, a path, a program on PATH, or a target.
    #[arg(long, default_value = "protoreg")]
    pub protoreg: String,
    /// Also write .github/workflows/protobuf-bumps.yml: a weekly pull request bumping the
    /// repository's own pins.
    #[arg(long)]
    pub workflow: bool,
}

#[derive(Debug, Args)]
pub struct ExpectFindingsArgs {
    /// A buf rule ID the report must hold (repeatable); nothing else may be reported.
    #[arg(long = "rule", value_name = "RULE", required = true)]
    pub rules: Vec<String>,
    /// buf lint with `--error-format json`, after `--`.
    #[arg(last = true, required = true, value_name = "BUF [ARG]...")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct CopySelfArgs {
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ProtocArgs {
    /// A plugin protoc cannot start as one executable, `NAME=PROGRAM` (e.g. `es=node`):
    /// protoc gets protoreg as `protoc-gen-NAME`, which runs PROGRAM with --plugin-arg values.
    #[arg(long, value_name = "NAME=PROGRAM")]
    pub plugin_command: Option<String>,
    /// An argument of --plugin-command's program, e.g. the plugin's script (repeatable).
    #[arg(
        long,
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "plugin_command"
    )]
    pub plugin_arg: Vec<String>,
    /// Give protoc, of the `--descriptor_set_in` sets, only the files its inputs import,
    /// directly or not (one temporary set), so it does not load every descriptor of every
    /// transitive dependency. Imports resolve exactly as before.
    #[arg(long)]
    pub prune_descriptor_sets: bool,
    /// Write FILE, Buck2's dep file: the `--descriptor_set_in` sets protoc used, one per
    /// line (with --prune-descriptor-sets, those holding a file the inputs reach; else all).
    #[arg(long, value_name = "FILE")]
    pub dep_file: Option<PathBuf>,
    /// protoc and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROTOC [ARG]...")]
    pub protoc: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// protoc, buf, a plugin name, or `all` (every tool whose repository has auto_publish).
    #[arg(long, default_value = "all", value_name = "protoc|buf|all|PLUGIN")]
    pub tool: String,
    /// Publish the N newest upstream releases.
    #[arg(long, value_name = "N", conflicts_with = "version")]
    pub versions: Option<usize>,
    /// Publish this upstream version (repeatable).
    #[arg(long = "version", value_name = "V")]
    pub version: Vec<String>,
    /// Only these platforms (repeatable; default: the configured ones).
    #[arg(long = "platform", value_name = "P")]
    pub platforms: Vec<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also publish the bundles of registry.yaml (`--tool all` does by default).
    #[arg(long)]
    pub bundles: bool,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Print the report as JSON (the seed's shape).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub pins: PinsArg,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// protoc, buf or a plugin name.
    pub tool: String,
    /// Also list upstream releases, marking what the registry lacks.
    #[arg(long)]
    pub upstream: bool,
    /// Which configured registry to ask (default: primary).
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Remove cache entries unused for this long (`7d`, `12h`, `30m`, or days as a number;
    /// default: cache.cleanup_older_than_days).
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Then remove least recently used entries until the cache fits (`10G`, `500M`).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Apply `repositories.*.retention_days` to the registry instead of cleaning the cache.
    #[arg(long)]
    pub registry: bool,
    /// Print what would be removed and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub pins: PinsArg,
    /// With --registry: apply retention with no pins file, so only bundles protect
    /// versions. Without it, retention refuses to run when no pins file is found.
    #[arg(long, requires = "registry", conflicts_with = "pins")]
    pub no_pins: bool,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,
    /// Prometheus text exposition format.
    #[arg(long)]
    pub prometheus: bool,
}

#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// A configured registry name (`primary`, a backup), oci://HOST[:PORT][/NAMESPACE] or
    /// oci-layout:DIR.
    #[arg(long, value_name = "REGISTRY")]
    pub from: String,
    /// Same forms as --from.
    #[arg(long, value_name = "REGISTRY")]
    pub to: String,
    /// Print what would be copied and copy nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}
