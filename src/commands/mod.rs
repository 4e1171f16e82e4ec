//! One module per subcommand: argument validation (exit 2 on bad input) and output.

pub mod baseline;
pub mod bump;
pub mod bundle;
pub mod cache;
pub mod cleanup;
pub mod context;
pub mod descriptor_closure;
pub mod expect_findings;
pub mod extract;
pub mod health;
pub mod init;
pub mod materialize;
pub mod metrics;
pub mod mirror;
pub mod outdated;
pub mod protoc;
pub mod publish;
pub mod retention;
pub mod sizes;
pub mod versions;

use crate::cli::LayoutArgs;
use crate::error::{Error, Result};
use crate::pipeline::extract::{Format, Layout};
use crate::pipeline::verify::{Expected, Sha256};

/// `--sha256` and the optional `--size` (absent: verified by the sha256 alone).
pub fn parse_expected(sha256: &str, size: Option<&str>) -> Result<Expected> {
    let sha256: Sha256 = sha256.parse()?;
    let size = size
        .map(|size| {
            size.parse::<u64>().map_err(|_| {
                Error::input(
                    format!("--size `{size}` is not a byte count"),
                    "give the artifact's size in bytes, as in the pins file, or leave --size out when it is unknown",
                )
            })
        })
        .transpose()?;
    Ok(Expected { sha256, size })
}

pub fn parse_layout(args: &LayoutArgs) -> Result<Layout> {
    let format = args.format.as_deref().ok_or_else(|| {
        Error::input(
            "--format is required",
            "give --format zip, tar.gz, tar.xz or raw",
        )
    })?;
    let layout = Layout {
        format: format.parse()?,
        strip_prefix: args.strip_prefix.clone().filter(|p| !p.is_empty()),
        executables: args.executables.clone(),
    };
    if layout.format == Format::Raw && layout.executables.len() > 1 {
        return Err(Error::input(
            format!(
                "--format raw is a single file, but {} --executable paths were given ({})",
                layout.executables.len(),
                layout.executables.join(", ")
            ),
            "give at most one --executable with --format raw: the path the file is written to",
        ));
    }
    layout.validate()?;
    Ok(layout)
}
