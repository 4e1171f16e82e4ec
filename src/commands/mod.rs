//! One module per subcommand: argument validation (exit 2 on bad input) and output.

pub mod bump;
pub mod bundle;
pub mod cleanup;
pub mod context;
pub mod extract;
pub mod health;
pub mod materialize;
pub mod metrics;
pub mod mirror;
pub mod outdated;
pub mod publish;
pub mod retention;
pub mod versions;

use crate::cli::LayoutArgs;
use crate::error::{Error, Result};
use crate::extract::Layout;
use crate::verify::{Expected, Sha256};

pub fn parse_expected(sha256: &str, size: &str) -> Result<Expected> {
    let sha256: Sha256 = sha256.parse()?;
    let size = size.parse::<u64>().map_err(|_| {
        Error::input(
            format!("--size `{size}` is not a byte count"),
            "give the artifact's size in bytes, as in the pins file",
        )
    })?;
    Ok(Expected { sha256, size })
}

pub fn parse_layout(args: &LayoutArgs) -> Result<Layout> {
    let format = args
        .format
        .as_deref()
        .ok_or_else(|| Error::input("--format is required", "give --format zip, tar.gz or raw"))?;
    let layout = Layout {
        format: format.parse()?,
        strip_prefix: args.strip_prefix.clone().filter(|p| !p.is_empty()),
        executables: args.executables.clone(),
    };
    layout.validate()?;
    Ok(layout)
}
