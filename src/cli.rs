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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch (or find in the cache) a pinned artifact, verify it and materialize its tree.
    Materialize(MaterializeArgs),
    /// Verify a local archive and extract it, with no network (Buck2's download_file mode).
    Extract(ExtractArgs),
}

#[derive(Debug, Args)]
pub struct LayoutArgs {
    /// Archive format.
    #[arg(long, value_name = "zip|tar.gz|raw")]
    pub format: String,
    /// Leading directory to strip from every member.
    #[arg(long, value_name = "P")]
    pub strip_prefix: Option<String>,
    /// A path in the tree to make executable (repeatable); must exist.
    #[arg(long = "executable", value_name = "PATH")]
    pub executables: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MaterializeArgs {
    /// sha256 of the artifact (64 hex digits).
    #[arg(long, value_name = "HEX")]
    pub sha256: String,
    /// Size of the artifact in bytes.
    #[arg(long, value_name = "BYTES")]
    pub size: String,
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
    /// How to put the cached tree into --out.
    #[arg(long, default_value = "copy", value_name = "copy|hardlink")]
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
    /// Size in bytes (optional: Buck2's download_file already checks it).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<String>,
    #[command(flatten)]
    pub layout: LayoutArgs,
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}
